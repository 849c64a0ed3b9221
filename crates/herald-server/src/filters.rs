//! Channels and payload filters as the API takes them: a filter ([`herald_store::filter`]) is
//! parsed, then each of its paths is checked against the schemas of the event types the
//! endpoint receives, so a path no payload can have, or a value no payload can hold there, is
//! a 422 when the filter is saved rather than an endpoint that silently receives nothing.

use herald_store::filter::{Filter, Test};
use serde_json::Value;

use crate::event_types::EventTypes;
use crate::problem::Violation;

/// The most channels an event or an endpoint names.
pub(crate) const MAX_CHANNELS: usize = 10;
/// The longest channel.
pub(crate) const MAX_CHANNEL_LEN: usize = 128;
/// What a channel is made of, as the API document says it.
pub(crate) const CHANNEL_PATTERN: &str = r"^[A-Za-z0-9_.:-]{1,128}$";

/// `channels` checked, with paths under `at` (`/channels`).
pub(crate) fn check_channels(channels: &[String], at: &str) -> Vec<Violation> {
    let mut violations = Vec::new();
    if channels.len() > MAX_CHANNELS {
        violations.push(Violation {
            path: at.into(),
            message: format!("at most {MAX_CHANNELS} channels"),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for (i, channel) in channels.iter().enumerate() {
        let valid = (1..=MAX_CHANNEL_LEN).contains(&channel.len())
            && channel
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
        let message = if !valid {
            format!(
                "{channel:?} is not a channel: 1 to {MAX_CHANNEL_LEN} letters, digits, `_`, \
                 `.`, `:` or `-`"
            )
        } else if !seen.insert(channel) {
            format!("{channel:?} is listed twice")
        } else {
            continue;
        };
        violations.push(Violation {
            path: format!("{at}/{i}"),
            message,
        });
    }
    violations
}

/// `filter` parsed and checked against the newest schemas of `event_types` (empty: every type
/// the app declares), with paths under `/filter`. The filter's JSON text when it is sound.
pub(crate) fn check_filter(
    filter: &Value,
    event_types: &[String],
    declared: &EventTypes,
) -> Result<String, Vec<Violation>> {
    let parsed = Filter::parse(filter).map_err(|e| {
        vec![Violation {
            path: format!("/filter{}", e.at.trim_end_matches('/')),
            message: e.message,
        }]
    })?;
    let types: Vec<_> = if event_types.is_empty() {
        let all = declared.catalogue().iter();
        all.filter(|t| !t.operational).collect()
    } else {
        event_types
            .iter()
            .filter_map(|name| declared.get(name))
            .collect()
    };
    let names: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
    let mut violations = Vec::new();
    for (at, path, test) in parsed.tests() {
        let Ok(tokens) = tokens(path) else {
            violations.push(Violation {
                path: format!("/filter{at}/path"),
                message: format!("{path:?} is not a JSON Pointer"),
            });
            continue;
        };
        let mut found = Vec::new();
        for event_type in &types {
            found.extend(schemas_at(
                &event_type.schema,
                &event_type.schema,
                &tokens,
                0,
            ));
        }
        if found.is_empty() {
            violations.push(Violation {
                path: format!("/filter{at}/path"),
                message: format!(
                    "no payload of {} has `{path}`",
                    names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            });
            continue;
        }
        if let Some(message) = never_holds(test, &found, path) {
            violations.push(Violation {
                path: format!("/filter{at}"),
                message,
            });
        }
    }
    if violations.is_empty() {
        Ok(filter.to_string())
    } else {
        Err(violations)
    }
}

/// The reference tokens of a JSON Pointer (RFC 6901).
fn tokens(pointer: &str) -> Result<Vec<String>, ()> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer.strip_prefix('/').ok_or(())?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// The schemas the value at `tokens` may have in a payload valid against `schema` (in the
/// document `root`): none when no payload can have it. An object's undeclared properties are
/// taken not to exist unless it declares `additionalProperties`; a schema that says nothing
/// (`{}`, `true`) lets anything exist.
fn schemas_at<'a>(
    root: &'a Value,
    schema: &'a Value,
    tokens: &[String],
    depth: usize,
) -> Vec<&'a Value> {
    const OPEN: &Value = &Value::Bool(true);
    if depth > 32 {
        return vec![OPEN]; // a cycle of references: do not refuse what might be there
    }
    let Value::Object(object) = schema else {
        return match schema {
            Value::Bool(false) => Vec::new(),
            _ => vec![OPEN],
        };
    };
    if let Some(Value::String(reference)) = object.get("$ref") {
        let target = reference.strip_prefix('#').and_then(|p| root.pointer(p));
        return match target {
            Some(target) => schemas_at(root, target, tokens, depth + 1),
            None => vec![OPEN],
        };
    }
    let mut found = Vec::new();
    let mut combined = false;
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = object.get(key) {
            combined = true;
            for branch in branches {
                found.extend(schemas_at(root, branch, tokens, depth + 1));
            }
        }
    }
    if combined {
        return found;
    }
    let Some((token, rest)) = tokens.split_first() else {
        return vec![schema];
    };
    let properties = object.get("properties").and_then(Value::as_object);
    if let Some(property) = properties.and_then(|p| p.get(token)) {
        return schemas_at(root, property, rest, depth + 1);
    }
    if let Some(items) = object.get("items")
        && token.parse::<usize>().is_ok()
    {
        return schemas_at(root, items, rest, depth + 1);
    }
    match object.get("additionalProperties") {
        Some(Value::Bool(false)) => Vec::new(),
        Some(additional) => schemas_at(root, additional, rest, depth + 1),
        // Nothing said of the value's shape at all: anything may be there.
        None if properties.is_none()
            && !object.contains_key("items")
            && !object.contains_key("type") =>
        {
            vec![OPEN]
        }
        None => Vec::new(),
    }
}

/// Why `test` can never hold for a value of any of `schemas`, if it cannot.
fn never_holds(test: &Test, schemas: &[&Value], path: &str) -> Option<String> {
    let operands: Vec<&Value> = match test {
        Test::Eq(value) => vec![value],
        Test::In(values) => values.iter().collect(),
        Test::Compare { value, .. } => vec![value],
        Test::Exists(_) => return None,
    };
    let mut allowed = Vec::new();
    for schema in schemas {
        match types_of(schema) {
            Some(types) => allowed.extend(types),
            None => return None, // a schema without a type: anything may be there
        }
    }
    let fits = |value: &Value| allowed.iter().any(|t| type_fits(t, value));
    if operands.iter().any(|v| fits(v)) {
        return None;
    }
    allowed.sort_unstable();
    allowed.dedup();
    Some(format!(
        "`{path}` is {} in these payloads, so {} never matches",
        allowed.join(" or "),
        operands
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The JSON types a schema allows, when it says (`type`, or an `enum` / `const`'s values).
fn types_of(schema: &Value) -> Option<Vec<&str>> {
    match schema.get("type") {
        Some(Value::String(t)) => Some(vec![t.as_str()]),
        Some(Value::Array(types)) => Some(types.iter().filter_map(Value::as_str).collect()),
        _ => {
            let values: Vec<&Value> = match (schema.get("enum"), schema.get("const")) {
                (Some(Value::Array(values)), _) => values.iter().collect(),
                (_, Some(value)) => vec![value],
                _ => return None,
            };
            Some(values.into_iter().map(json_type).collect())
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_fits(schema_type: &str, value: &Value) -> bool {
    let actual = json_type(value);
    actual == schema_type
        || (schema_type == "number" && actual == "integer")
        || (schema_type == "integer" && value.as_f64().is_some_and(|f| f.fract() == 0.0))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn catalogue() -> EventTypes {
        #[derive(serde::Serialize, utoipa::ToSchema)]
        struct Line {
            sku: String,
        }
        #[derive(serde::Serialize, utoipa::ToSchema)]
        struct Invoice {
            status: String,
            amount: u64,
            coupon: Option<String>,
            lines: Vec<Line>,
        }
        #[derive(serde::Serialize, utoipa::ToSchema)]
        struct Refund {
            reason: String,
        }
        let webhooks = herald_core::Webhooks::new()
            .webhook(herald_core::Webhook::<Invoice>::post("invoice.paid"))
            .webhook(herald_core::Webhook::<Refund>::post("refund.made"));
        EventTypes::new(&webhooks).unwrap()
    }

    #[test]
    fn filters_are_checked_against_the_schemas_they_read() {
        let declared = catalogue();
        let invoice = vec!["invoice.paid".to_owned()];
        // Filter, the endpoint's types, and the one violation expected (path, message).
        type Case<'a> = (Value, &'a [String], Option<(&'a str, &'a str)>);
        let cases: Vec<Case<'_>> = vec![
            (json!({"path": "/status", "eq": "paid"}), &invoice, None),
            (json!({"path": "/amount", "gte": 100}), &invoice, None),
            (
                json!({"path": "/lines/0/sku", "in": ["A-1", "B-2"]}),
                &invoice,
                None,
            ),
            (json!({"path": "/coupon", "eq": null}), &invoice, None),
            (json!({"path": "/coupon", "exists": false}), &invoice, None),
            (json!({"path": "/reason", "exists": true}), &[], None), // refund.made has it
            (
                json!({"path": "/amunt", "gt": 1}),
                &invoice,
                Some(("/filter/path", "no payload of `invoice.paid` has `/amunt`")),
            ),
            (
                json!({"path": "/reason", "eq": "late"}),
                &invoice,
                Some(("/filter/path", "no payload of `invoice.paid` has `/reason`")),
            ),
            (
                json!({"and": [{"path": "/status", "eq": "paid"}, {"path": "/amount", "eq": "ten"}]}),
                &invoice,
                Some(("/filter/and/1", "`/amount` is integer in these payloads")),
            ),
            (
                json!({"path": "/lines/x/sku", "eq": "A"}),
                &invoice,
                Some(("/filter/path", "has `/lines/x/sku`")),
            ),
            (
                json!({"path": "/status", "equals": "paid"}),
                &invoice,
                Some(("/filter", "`equals` is not a test")),
            ),
        ];
        for (filter, types, expected) in cases {
            let checked = check_filter(&filter, types, &declared);
            match (checked, expected) {
                (Ok(_), None) => {}
                (Err(violations), Some((path, message))) => {
                    assert_eq!(violations.len(), 1, "{filter}: {violations:?}");
                    assert_eq!(violations[0].path, path, "{filter}");
                    assert!(
                        violations[0].message.contains(message),
                        "{filter}: {violations:?}"
                    );
                }
                (got, want) => panic!("{filter}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn channels_are_short_plain_names() {
        let ok = vec!["project-1".to_owned(), "eu:billing.v2".to_owned()];
        assert!(check_channels(&ok, "/channels").is_empty());
        let bad = vec!["has space".to_owned(), String::new(), "x".repeat(129)];
        let paths: Vec<String> = check_channels(&bad, "/channels")
            .into_iter()
            .map(|v| v.path)
            .collect();
        assert_eq!(paths, ["/channels/0", "/channels/1", "/channels/2"]);
        let many: Vec<String> = (0..11).map(|n| n.to_string()).collect();
        assert_eq!(check_channels(&many, "/channels").len(), 1);
        let twice = vec!["a".to_owned(), "b".to_owned(), "a".to_owned()];
        let found = check_channels(&twice, "/channels");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, "/channels/2");
    }
}
