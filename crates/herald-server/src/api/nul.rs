//! One rule for text on both backends: no U+0000 in an id, a query value or a text field.
//! PostgreSQL's `text` cannot hold it and SQLite can, so without the rule the same request
//! would be a 500 on one and stored on the other. An event's `payload` is exempt: it is kept
//! as the JSON text it arrived as, where a NUL is the six characters `\u0000`.

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::problem::{Problem, Violation, pointer_token};

/// The pattern that the document gives every free-text string (ECMA-262, as JSON Schema reads
/// it): anything but U+0000.
pub(crate) const NO_NUL: &str = "^[^\\u0000]*$";

/// Refuses, with a 422 naming it, a path parameter or query parameter (name or value) that
/// holds U+0000. Runs after routing, so the path's parameters have their names.
pub(crate) async fn refuse_in_path_and_query(
    params: Result<RawPathParams, RawPathParamsRejection>,
    request: Request,
    next: Next,
) -> Response {
    for (name, value) in params.iter().flatten() {
        if value.contains('\0') {
            return refused(name.to_owned()).into_response();
        }
    }
    let query = request.uri().query().unwrap_or_default();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if name.contains('\0') || value.contains('\0') {
            return refused(name.into_owned()).into_response();
        }
    }
    next.run(request).await
}

/// The JSON pointer of the first string (member name or value) in `body` that holds U+0000,
/// outside the top-level `payload`; `None` when there is none.
pub(crate) fn in_body(body: &[u8]) -> Option<String> {
    // JSON spells U+0000 only as `\u0000`; most bodies have none, so look before parsing.
    if !body.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    match serde_json::from_slice(body).ok()? {
        serde_json::Value::Object(members) => in_members(
            members
                .iter()
                .filter(|(name, _)| name.as_str() != "payload"),
            "",
        ),
        other => find(&other, String::new()),
    }
}

/// The 422 for a U+0000 in `field`.
pub(crate) fn refused(field: String) -> Problem {
    Problem::invalid(
        "text may not contain U+0000 (NUL)",
        vec![Violation {
            path: field,
            message: "contains U+0000".into(),
        }],
    )
}

fn find(value: &serde_json::Value, path: String) -> Option<String> {
    match value {
        serde_json::Value::String(text) => text.contains('\0').then_some(path),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| find(item, format!("{path}/{i}"))),
        serde_json::Value::Object(members) => in_members(members.iter(), &path),
        _ => None,
    }
}

fn in_members<'a>(
    mut members: impl Iterator<Item = (&'a String, &'a serde_json::Value)>,
    path: &str,
) -> Option<String> {
    members.find_map(|(name, value)| {
        let path = format!("{path}/{}", pointer_token(name));
        if name.contains('\0') {
            Some(path)
        } else {
            find(value, path)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::in_body;

    #[test]
    fn finds_nul_outside_the_payload_only() {
        assert_eq!(in_body(br#"{"name":"tok\u0000en"}"#), Some("/name".into()));
        assert_eq!(
            in_body(br#"{"a":{"b":["x","y\u0000"]}}"#),
            Some("/a/b/1".into())
        );
        assert_eq!(in_body(br#"{"a/b\u0000":1}"#), Some("/a~1b\u{0}".into()));
        assert_eq!(in_body(br#"{"payload":{"x":"\u0000"}}"#), None);
        // An escaped backslash followed by `u0000` is six characters, not a NUL.
        assert_eq!(in_body(br#"{"name":"\\u0000"}"#), None);
        assert_eq!(in_body(br#"{"name":"plain"}"#), None);
    }
}
