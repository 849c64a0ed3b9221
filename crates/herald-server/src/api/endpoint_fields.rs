//! What an endpoint's fields may hold, said twice from one source: the schemas the document
//! publishes for `url` and `headers`, and the checks the handlers run, which use the same
//! pattern and the same reserved names, so a request the document allows is accepted.

use std::collections::BTreeMap;

use herald_delivery::target::TargetPolicy;

use crate::problem::{Problem, Violation};
use crate::state::AppState;

/// What an endpoint URL looks like: `http(s)://`, a host, an optional port, then a path, query
/// and fragment of RFC 3986 characters. The host is a name (its last label starts with a
/// letter, and no label starts with `xn--`, which would need valid punycode), an IPv4 address,
/// or an IPv6 address in brackets.
/// The server checks URLs against this same pattern, so the document and the check agree;
/// where deliveries may go is checked after it.
const URL_PATTERN: &str = concat!(
    r"^[Hh][Tt][Tt][Pp][Ss]?://",
    r"(((?![Xx][Nn]--)[A-Za-z0-9-]+\.)*(?![Xx][Nn]--)[A-Za-z][A-Za-z0-9-]*",
    r"|((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
    // An IPv6 address in brackets, as RFC 3986 draws it (no zone).
    r"|\[(",
    r"([0-9A-Fa-f]{1,4}:){6}([0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}|((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))",
    r"|::([0-9A-Fa-f]{1,4}:){5}([0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}|((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))",
    r"|([0-9A-Fa-f]{1,4})?::([0-9A-Fa-f]{1,4}:){4}([0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}|((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))",
    r"|(([0-9A-Fa-f]{1,4}:){0,1}[0-9A-Fa-f]{1,4})?::([0-9A-Fa-f]{1,4}:){3}([0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}|((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))",
    r"|(([0-9A-Fa-f]{1,4}:){0,2}[0-9A-Fa-f]{1,4})?::([0-9A-Fa-f]{1,4}:){2}([0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}|((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))",
    r"|(([0-9A-Fa-f]{1,4}:){0,3}[0-9A-Fa-f]{1,4})?::[0-9A-Fa-f]{1,4}:([0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}|((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))",
    r"|(([0-9A-Fa-f]{1,4}:){0,4}[0-9A-Fa-f]{1,4})?::([0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}|((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))",
    r"|(([0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4})?::[0-9A-Fa-f]{1,4}",
    r"|(([0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{1,4})?::",
    r")\])",
    // Ports 1 to 65535: nothing listens on port 0.
    r"(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?",
    r"(/([A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*)?",
    r"(\?([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?",
    r"(#([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?$",
);

/// [`URL_PATTERN`] compiled once.
static URL_SHAPE: std::sync::LazyLock<jsonschema::Validator> = std::sync::LazyLock::new(|| {
    let schema = serde_json::json!({ "type": "string", "pattern": URL_PATTERN });
    #[allow(clippy::expect_used)] // A constant; every endpoint test compiles it.
    jsonschema::validator_for(&schema).expect("URL_PATTERN compiles")
});

/// A rate limit within its range (deliveries a second), or the 422 naming it.
pub(crate) fn rate_limit(limit: u32) -> Result<u32, Problem> {
    super::in_range("/rate_limit", limit, 1..=100_000)
}

/// A version an endpoint may pin (one a webhook declares), or the 422 naming those it may.
pub(crate) fn version(state: &AppState, version: &str) -> Result<String, Problem> {
    let pins = state.event_types.pins();
    if pins.contains(&version) {
        return Ok(version.to_owned());
    }
    let message = if pins.is_empty() {
        "no webhook declares versions, so there is none to pin".to_owned()
    } else {
        format!("declared versions: {}", pins.join(", "))
    };
    Err(Problem::invalid(
        format!("`{version}` is not a version any webhook declares"),
        vec![Violation {
            path: "/version".into(),
            message,
        }],
    ))
}

/// The most extra headers an endpoint may have, and how long each name and value may be
/// (in characters): every request carries them and every attempt's record keeps them, so a
/// tenant cannot make each delivery large, and they fit the header buffers of common servers
/// (nginx reads a header line into 8 KiB) beside herald's own.
pub(crate) const MAX_HEADERS: usize = 20;
pub(crate) const MAX_HEADER_NAME: usize = 64;
pub(crate) const MAX_HEADER_VALUE: usize = 1024;

/// How long an endpoint's description may be, in characters.
pub(crate) const MAX_DESCRIPTION: usize = 1024;

/// An endpoint's fields that [`check_fields`] checks; `None` for those a change leaves alone.
#[derive(Default)]
pub(crate) struct Fields<'a> {
    pub(crate) url: Option<&'a String>,
    pub(crate) event_types: Option<&'a Vec<String>>,
    pub(crate) headers: Option<&'a BTreeMap<String, String>>,
    pub(crate) description: Option<&'a String>,
}

/// Checks the fields an endpoint is made of, naming every one that is wrong.
pub(crate) fn check_fields(state: &AppState, fields: Fields<'_>) -> Result<(), Problem> {
    let mut violations = Vec::new();
    if let Some(Err(message)) = fields.url.map(|url| check_url(url, &state.policy)) {
        violations.push(Violation {
            path: "/url".into(),
            message,
        });
    }
    let mut listed = std::collections::HashSet::new();
    for (i, name) in fields.event_types.into_iter().flatten().enumerate() {
        let message = if !state.event_types.contains(name) {
            format!(
                "unknown event type `{name}`; declared: {}",
                state.event_types.names().join(", ")
            )
        } else if !listed.insert(name) {
            format!("`{name}` is listed twice")
        } else {
            continue;
        };
        violations.push(Violation {
            path: format!("/event_types/{i}"),
            message,
        });
    }
    if let Some(headers) = fields.headers {
        violations.extend(check_headers(headers));
    }
    if let Some(description) = fields.description
        && description.chars().count() > MAX_DESCRIPTION
    {
        violations.push(Violation {
            path: "/description".into(),
            message: format!("at most {MAX_DESCRIPTION} characters"),
        });
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Problem::invalid("the endpoint is not valid", violations))
    }
}

/// What is wrong with an endpoint's extra headers: names herald cannot set, values it cannot
/// send, more or longer than the limits, or one name twice in different cases (HTTP names
/// ignore case, so only one of them would be sent).
fn check_headers(headers: &BTreeMap<String, String>) -> Vec<Violation> {
    let mut violations = Vec::new();
    if headers.len() > MAX_HEADERS {
        violations.push(Violation {
            path: "/headers".into(),
            message: format!("at most {MAX_HEADERS} headers"),
        });
    }
    let mut seen = std::collections::HashSet::new();
    for (name, value) in headers {
        let message =
            if axum::http::HeaderName::try_from(name.as_str()).is_err() || reserved_header(name) {
                format!("`{name}` is not a header name herald can set")
            } else if name.chars().count() > MAX_HEADER_NAME {
                format!("a header name is at most {MAX_HEADER_NAME} characters")
            } else if !seen.insert(name.to_ascii_lowercase()) {
                format!("`{name}` is named twice (header names ignore case)")
            } else if axum::http::HeaderValue::try_from(value.as_str()).is_err() {
                "a header value cannot hold control characters".into()
            } else if value.chars().count() > MAX_HEADER_VALUE {
                format!("a header value is at most {MAX_HEADER_VALUE} characters")
            } else {
                continue;
            };
        violations.push(Violation {
            path: format!("/headers/{name}"),
            message,
        });
    }
    violations
}

/// Headers herald sets itself, or that would change how the request is framed or routed.
const RESERVED_HEADERS: &[&str] = &[
    "webhook-",
    "content-type",
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-",
];

/// True for a name in (or, for those ending in `-`, under) [`RESERVED_HEADERS`].
fn reserved_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    RESERVED_HEADERS
        .iter()
        .any(|reserved| match reserved.strip_suffix('-') {
            Some(_) => name.starts_with(reserved),
            None => name == *reserved,
        })
}

/// The schema of `headers`: token names, none of them reserved, and values without control
/// characters.
pub(crate) fn extra_headers() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let reserved: Vec<String> = RESERVED_HEADERS
        .iter()
        .map(|r| {
            // Either case, spelled out: ECMA-262 patterns have no `(?i)`.
            let letters: String = r
                .chars()
                .map(|c| match c.is_ascii_alphabetic() {
                    true => format!("[{}{}]", c.to_ascii_uppercase(), c),
                    false => c.to_string(),
                })
                .collect();
            let tail = if r.ends_with('-') { "" } else { "$" };
            format!("{letters}{tail}")
        })
        .collect();
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(MAX_HEADERS))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(MAX_HEADER_NAME))
                .pattern(Some(format!(
                    "^(?!{})[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
                    reserved.join("|")
                ))),
        ))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(MAX_HEADER_VALUE))
                .pattern(Some(r"^[^\x00-\x08\x0A-\x1F\x7F]*$")),
        ))
        .description(Some(format!(
            "Extra headers sent with every delivery: at most {MAX_HEADERS}, names of at most \
             {MAX_HEADER_NAME} characters and values of at most {MAX_HEADER_VALUE}; names ignore \
             case, so no name may appear twice in different cases."
        )))
        .build()
}

pub(crate) fn extra_headers_or_null() -> utoipa::openapi::Object {
    or_null(extra_headers())
}

/// The schema of `url`: [`URL_PATTERN`], at most 2048 characters.
pub(crate) fn endpoint_url() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom("uri".into())))
        .pattern(Some(URL_PATTERN))
        .max_length(Some(2048))
        .description(Some(
            "Where deliveries are sent: an absolute `http` or `https` URL, without \
             credentials, to an address deliveries may reach.",
        ))
        .examples(["https://example.com/webhooks"])
        .build()
}

pub(crate) fn endpoint_url_or_null() -> utoipa::openapi::Object {
    or_null(endpoint_url())
}

/// `schema`, or `null` for "leave as it is".
fn or_null(mut schema: utoipa::openapi::Object) -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    if let SchemaType::Type(own) = schema.schema_type {
        schema.schema_type = [own, Type::Null].into_iter().collect();
    }
    schema
}

/// Where a URL may not point, said before any delivery is tried.
fn check_url(text: &str, policy: &TargetPolicy) -> Result<(), String> {
    if text.len() > 2048 {
        return Err("the URL is longer than 2048 characters".into());
    }
    if !URL_SHAPE.is_valid(&serde_json::Value::from(text)) {
        return Err(
            "not an http(s) URL with a host name, an IPv4 address or a bracketed IPv6 \
             address, an optional port, and a \
             path of RFC 3986 characters (no credentials)"
                .into(),
        );
    }
    let url = url::Url::parse(text).map_err(|e| format!("not an absolute URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "the scheme must be http or https, not `{}`",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL would be logged; use `headers` instead".into());
    }
    let ip = match url.host() {
        None => return Err("the URL has no host".into()),
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => None,
    };
    if let Some(ip) = ip {
        policy
            .check(ip)
            .map_err(|reason| format!("{ip} is {reason}; herald does not deliver there"))?;
    }
    Ok(())
}

/// `channels` of an event or an endpoint, as the document describes them.
pub(crate) fn channels() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(crate::filters::CHANNEL_PATTERN))
                .examples(["project-123"]),
        )
        .max_items(Some(crate::filters::MAX_CHANNELS))
        .unique_items(true)
        .build()
}

/// `channels`, or null to leave them as they are.
pub(crate) fn channels_or_null() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(channels())
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .build(),
    )
}

/// A payload filter, as the document describes it: a `PayloadFilter` (its grammar, added by
/// [`super::openapi::describe`]), or null for none.
pub(crate) fn filter() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::Ref;
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(Ref::from_schema_name("PayloadFilter"))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some(
                "Only events whose payload matches are delivered; null: no filter. A condition \
                 is `{\"path\": \"/amount\", \"gt\": 100}`: a JSON Pointer into the payload \
                 (as the event was sent) and one test of `eq` (any JSON), `in` (a list), `gt`, \
                 `gte`, `lt`, `lte` (a number or a string; numbers compare with numbers, \
                 strings with strings) or `exists` (true or false); conditions combine with \
                 `{\"and\": [...]}`, `{\"or\": [...]}` and `{\"not\": ...}`. Every path must \
                 exist in the schema of an event type the endpoint receives, and every value \
                 be one the payload can hold there, or it is a 422.",
            ))
            .examples([serde_json::json!({"and": [
                {"path": "/monthly_fee", "gte": 10},
                {"not": {"path": "/username", "in": ["test", "demo"]}}
            ]})])
            .build(),
    )
}

/// Reads a field that may be absent (outer `None`), null (`Some(None)`) or a value.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    use serde::Deserialize;
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Checks an endpoint's `channels` and its `filter` against the `event_types` it receives;
/// the filter's JSON text when there is one.
pub(crate) fn channels_and_filter(
    state: &AppState,
    channels: &[String],
    filter: Option<&serde_json::Value>,
    event_types: &[String],
) -> Result<Option<String>, Problem> {
    let mut violations = crate::filters::check_channels(channels, "/channels");
    let checked = match filter {
        None | Some(serde_json::Value::Null) => None,
        Some(filter) => {
            match crate::filters::check_filter(filter, event_types, &state.event_types) {
                Ok(text) => Some(text),
                Err(found) => {
                    violations.extend(found);
                    None
                }
            }
        }
    };
    if violations.is_empty() {
        Ok(checked)
    } else {
        Err(Problem::invalid("invalid channels or filter", violations))
    }
}
