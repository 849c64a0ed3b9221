//! Payload filters: which of a type's events an endpoint receives, decided on the event's
//! payload. A filter is JSON, so it is stored, sent and shown as it was written:
//!
//! | filter | matches when the value at the JSON Pointer `path` … |
//! | --- | --- |
//! | `{"path": "/status", "eq": "paid"}` | equals the value (any JSON) |
//! | `{"path": "/currency", "in": ["EUR", "USD"]}` | equals one of them |
//! | `{"path": "/amount", "gt": 100}` (also `gte`, `lt`, `lte`) | is a number above it, or a string after it |
//! | `{"path": "/coupon", "exists": true}` | is there (`false`: is not) |
//! | `{"and": [f, …]}`, `{"or": [f, …]}`, `{"not": f}` | all, any, not |
//!
//! A value that is missing, or of another JSON type than the one compared with, matches no
//! comparison (and `not` of one). Paths are RFC 6901 JSON Pointers into the payload as the
//! event was sent (its own version). The parse is strict, so a typo is an error with where it is,
//! not a filter that silently matches nothing.

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

/// How deep `and`, `or` and `not` may nest.
const MAX_DEPTH: usize = 8;
/// The most conditions and combinators in one filter.
const MAX_NODES: usize = 64;
/// The most values in an `in`, and filters in an `and` / `or`.
const MAX_ITEMS: usize = 100;

/// A parsed filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// A condition on one value of the payload.
    Test {
        /// The JSON Pointer, as written.
        path: String,
        /// What it checks.
        test: Test,
    },
    /// All of them.
    And(Vec<Filter>),
    /// Any of them.
    Or(Vec<Filter>),
    /// Not it.
    Not(Box<Filter>),
}

/// What a condition checks of the value at its path.
#[derive(Clone, Debug, PartialEq)]
pub enum Test {
    /// Equal to.
    Eq(Value),
    /// Equal to one of.
    In(Vec<Value>),
    /// Compared with (numbers with numbers, strings with strings), as `op` says.
    Compare {
        /// `gt`, `gte`, `lt` or `lte`.
        op: &'static str,
        /// The value compared with: a number or a string.
        value: Value,
    },
    /// There (`true`) or not (`false`).
    Exists(bool),
}

/// Why a filter does not parse: where in the filter (a JSON Pointer into it), and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    /// A JSON Pointer into the filter.
    pub at: String,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

impl std::error::Error for FilterError {}

const COMPARISONS: [&str; 4] = ["gt", "gte", "lt", "lte"];
const TESTS: [&str; 7] = ["eq", "in", "gt", "gte", "lt", "lte", "exists"];

impl Filter {
    /// Parses `filter`, refusing anything it does not define.
    pub fn parse(filter: &Value) -> Result<Filter, FilterError> {
        let mut nodes = 0;
        parse(filter, "", 0, &mut nodes)
    }

    /// Parses the JSON text of a stored filter.
    pub fn parse_text(text: &str) -> Result<Filter, FilterError> {
        let value: Value = serde_json::from_str(text).map_err(|e| FilterError {
            at: String::new(),
            message: format!("not JSON: {e}"),
        })?;
        Filter::parse(&value)
    }

    /// Whether `payload` matches.
    pub fn matches(&self, payload: &Value) -> bool {
        match self {
            Filter::Test { path, test } => test.holds(payload.pointer(path)),
            Filter::And(all) => all.iter().all(|f| f.matches(payload)),
            Filter::Or(any) => any.iter().any(|f| f.matches(payload)),
            Filter::Not(filter) => !filter.matches(payload),
        }
    }

    /// Every condition, with where it is in the filter (a JSON Pointer into it).
    pub fn tests(&self) -> Vec<(String, &str, &Test)> {
        let mut found = Vec::new();
        self.collect("", &mut found);
        found
    }

    fn collect<'a>(&'a self, at: &str, found: &mut Vec<(String, &'a str, &'a Test)>) {
        match self {
            Filter::Test { path, test } => found.push((at.to_owned(), path, test)),
            Filter::And(items) | Filter::Or(items) => {
                let key = if matches!(self, Filter::And(_)) {
                    "and"
                } else {
                    "or"
                };
                for (i, item) in items.iter().enumerate() {
                    item.collect(&format!("{at}/{key}/{i}"), found);
                }
            }
            Filter::Not(filter) => filter.collect(&format!("{at}/not"), found),
        }
    }
}

impl Test {
    fn holds(&self, value: Option<&Value>) -> bool {
        match (self, value) {
            (Test::Exists(wanted), value) => value.is_some() == *wanted,
            (_, None) => false,
            (Test::Eq(expected), Some(value)) => value == expected,
            (Test::In(options), Some(value)) => options.contains(value),
            (Test::Compare { op, value: bound }, Some(value)) => {
                let ordering = match (value, bound) {
                    (Value::Number(a), Value::Number(b)) => a
                        .as_f64()
                        .zip(b.as_f64())
                        .and_then(|(a, b)| a.partial_cmp(&b)),
                    (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
                    _ => None,
                };
                ordering.is_some_and(|o| match *op {
                    "gt" => o == Ordering::Greater,
                    "gte" => o != Ordering::Less,
                    "lt" => o == Ordering::Less,
                    _ => o != Ordering::Greater,
                })
            }
        }
    }
}

fn error(at: &str, message: impl Into<String>) -> FilterError {
    FilterError {
        at: if at.is_empty() { "/".into() } else { at.into() },
        message: message.into(),
    }
}

fn parse(value: &Value, at: &str, depth: usize, nodes: &mut usize) -> Result<Filter, FilterError> {
    *nodes += 1;
    if *nodes > MAX_NODES {
        return Err(error(at, format!("a filter has at most {MAX_NODES} parts")));
    }
    if depth > MAX_DEPTH {
        return Err(error(at, format!("filters nest at most {MAX_DEPTH} deep")));
    }
    let Value::Object(object) = value else {
        return Err(error(
            at,
            "a filter is an object: {\"path\": …, \"eq\": …}, {\"and\": […]}, {\"or\": […]} or {\"not\": …}",
        ));
    };
    for combinator in ["and", "or", "not"] {
        let Some(inner) = object.get(combinator) else {
            continue;
        };
        if object.len() != 1 {
            return Err(error(
                at,
                format!("`{combinator}` stands alone in its object"),
            ));
        }
        let here = format!("{at}/{combinator}");
        if combinator == "not" {
            return Ok(Filter::Not(Box::new(parse(
                inner,
                &here,
                depth + 1,
                nodes,
            )?)));
        }
        let Value::Array(items) = inner else {
            return Err(error(&here, "a list of filters"));
        };
        if items.is_empty() || items.len() > MAX_ITEMS {
            return Err(error(&here, format!("1 to {MAX_ITEMS} filters")));
        }
        let items = items
            .iter()
            .enumerate()
            .map(|(i, item)| parse(item, &format!("{here}/{i}"), depth + 1, nodes))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if combinator == "and" {
            Filter::And(items)
        } else {
            Filter::Or(items)
        });
    }
    let path = match object.get("path") {
        Some(Value::String(path)) if path.is_empty() || path.starts_with('/') => path.clone(),
        Some(_) => {
            return Err(error(
                &format!("{at}/path"),
                "a JSON Pointer into the payload, such as \"/amount\" (\"\" is the whole payload)",
            ));
        }
        None => return Err(error(at, "a condition names its `path`")),
    };
    let mut tests = object.iter().filter(|(key, _)| *key != "path");
    let (Some((op, operand)), None) = (tests.next(), tests.next()) else {
        return Err(error(
            at,
            format!(
                "a condition has its `path` and exactly one of {}",
                TESTS.join(", ")
            ),
        ));
    };
    let here = format!("{at}/{op}");
    let test = match (op.as_str(), operand) {
        ("eq", value) => Test::Eq(value.clone()),
        ("in", Value::Array(values)) if !values.is_empty() && values.len() <= MAX_ITEMS => {
            Test::In(values.clone())
        }
        ("in", _) => return Err(error(&here, format!("a list of 1 to {MAX_ITEMS} values"))),
        ("exists", Value::Bool(wanted)) => Test::Exists(*wanted),
        ("exists", _) => return Err(error(&here, "true or false")),
        (op, value @ (Value::Number(_) | Value::String(_))) if COMPARISONS.contains(&op) => {
            let op = COMPARISONS.into_iter().find(|c| *c == op).unwrap_or("gt");
            Test::Compare {
                op,
                value: value.clone(),
            }
        }
        (op, _) if COMPARISONS.contains(&op) => {
            return Err(error(&here, "a number or a string"));
        }
        (op, _) => {
            return Err(error(
                at,
                format!("`{op}` is not a test; the tests are {}", TESTS.join(", ")),
            ));
        }
    };
    Ok(Filter::Test { path, test })
}

/// The channels an endpoint asks for let an event through: an endpoint without channels takes
/// every event; one with channels takes the events that carry at least one of them.
pub fn channels_match(endpoint: &[String], event: &[String]) -> bool {
    endpoint.is_empty() || endpoint.iter().any(|c| event.contains(c))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_language_as_a_table() {
        let payload = json!({
            "status": "paid", "amount": 250, "currency": "EUR", "paid_at": "2026-12-03T10:00:00Z",
            "lines": [{"sku": "A-1"}], "coupon": null, "a/b": 1, "m~n": 2
        });
        let cases = [
            (json!({"path": "/status", "eq": "paid"}), true),
            (json!({"path": "/status", "eq": "open"}), false),
            (json!({"path": "/amount", "eq": 250.0}), false), // JSON equality: 250 is not 250.0
            (json!({"path": "/currency", "in": ["USD", "EUR"]}), true),
            (json!({"path": "/currency", "in": ["USD"]}), false),
            (json!({"path": "/amount", "gt": 100}), true),
            (json!({"path": "/amount", "gt": 250}), false),
            (json!({"path": "/amount", "gte": 250}), true),
            (json!({"path": "/amount", "lt": 250.5}), true),
            (json!({"path": "/amount", "lte": 249}), false),
            (json!({"path": "/paid_at", "gte": "2026-12-01"}), true),
            (json!({"path": "/amount", "gt": "100"}), false), // a number is not after a string
            (json!({"path": "/missing", "lt": 5}), false),
            (json!({"path": "/missing", "exists": false}), true),
            (json!({"path": "/coupon", "exists": true}), true), // null is there
            (json!({"path": "/coupon", "eq": null}), true),
            (json!({"path": "/lines/0/sku", "eq": "A-1"}), true),
            (json!({"path": "/a~1b", "eq": 1}), true),
            (json!({"path": "/m~0n", "eq": 2}), true),
            (json!({"path": "", "exists": true}), true),
            (
                json!({"and": [{"path": "/status", "eq": "paid"}, {"path": "/amount", "gt": 500}]}),
                false,
            ),
            (
                json!({"or": [{"path": "/status", "eq": "open"}, {"path": "/amount", "gt": 100}]}),
                true,
            ),
            (json!({"not": {"path": "/currency", "eq": "EUR"}}), false),
            (json!({"not": {"path": "/missing", "gt": 1}}), true),
        ];
        for (filter, expected) in cases {
            let parsed = Filter::parse(&filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
            assert_eq!(parsed.matches(&payload), expected, "{filter}");
        }
    }

    #[test]
    fn mistakes_say_where_they_are() {
        let deep = (0..10).fold(
            json!({"path": "/a", "exists": true}),
            |f, _| json!({"not": f}),
        );
        let cases = [
            (json!("paid"), "/", "a filter is an object"),
            (json!({"path": "status", "eq": 1}), "/path", "JSON Pointer"),
            (json!({"eq": 1}), "/", "names its `path`"),
            (json!({"path": "/a"}), "/", "exactly one of"),
            (
                json!({"path": "/a", "eq": 1, "gt": 0}),
                "/",
                "exactly one of",
            ),
            (
                json!({"path": "/a", "equals": 1}),
                "/",
                "`equals` is not a test",
            ),
            (json!({"path": "/a", "in": []}), "/in", "1 to 100 values"),
            (
                json!({"path": "/a", "gt": true}),
                "/gt",
                "a number or a string",
            ),
            (
                json!({"path": "/a", "exists": "yes"}),
                "/exists",
                "true or false",
            ),
            (json!({"and": []}), "/and", "1 to 100 filters"),
            (
                json!({"and": [{"path": "/a", "eq": 1}], "or": []}),
                "/",
                "stands alone",
            ),
            (
                json!({"or": [{"path": "/a", "eq": 1}, {"path": 3, "eq": 1}]}),
                "/or/1/path",
                "JSON Pointer",
            ),
            (deep, "/not/not/not/not/not/not/not/not/not", "nest at most"),
        ];
        for (filter, at, message) in cases {
            let error = Filter::parse(&filter).unwrap_err();
            assert_eq!(error.at, at, "{filter}: {error}");
            assert!(error.message.contains(message), "{filter}: {error}");
        }
    }

    #[test]
    fn tests_are_listed_with_where_they_are() {
        let filter = Filter::parse(&json!({"and": [
            {"path": "/a", "eq": 1},
            {"not": {"or": [{"path": "/b", "exists": true}]}}
        ]}))
        .unwrap();
        let listed: Vec<(String, &str)> = filter
            .tests()
            .into_iter()
            .map(|(at, p, _)| (at, p))
            .collect();
        assert_eq!(
            listed,
            [
                ("/and/0".to_owned(), "/a"),
                ("/and/1/not/or/0".to_owned(), "/b")
            ]
        );
    }

    #[test]
    fn channels() {
        let s = |v: &[&str]| v.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
        assert!(channels_match(&[], &[]));
        assert!(channels_match(&[], &s(&["eu"])));
        assert!(channels_match(&s(&["eu", "us"]), &s(&["us"])));
        assert!(!channels_match(&s(&["eu"]), &s(&["us"])));
        assert!(
            !channels_match(&s(&["eu"]), &[]),
            "an event without channels"
        );
    }
}
