//! An example payload made from a JSON Schema, for event types declared without one: the
//! catalogue shows it and "send test event" sends it, so it must validate against the schema.

use serde_json::{Map, Value, json};

/// How deep references and nesting are followed before giving up with `null` (recursive types).
const MAX_DEPTH: usize = 12;

/// A value that `schema` accepts in the common cases: declared `examples`, `default`, `const`,
/// `enum`, then one built from the type, with every required property (and the optional ones).
/// `root` resolves local `$ref`s (`#/…`).
pub(crate) fn example(schema: &Value) -> Value {
    generate(schema, schema, 0)
}

fn generate(schema: &Value, root: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    let Some(object) = schema.as_object() else {
        // `true` (anything) or `false` (nothing): an empty object is as good as any.
        return json!({});
    };
    if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
        return match resolve(root, reference) {
            Some(target) => generate(target, root, depth + 1),
            None => Value::Null,
        };
    }
    if let Some(first) = object
        .get("examples")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    for key in ["example", "default", "const"] {
        if let Some(value) = object.get(key) {
            return value.clone();
        }
    }
    if let Some(first) = object
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(all) = object.get("allOf").and_then(Value::as_array) {
        return merge(all.iter().map(|s| generate(s, root, depth + 1)));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(first) = object
            .get(key)
            .and_then(Value::as_array)
            .and_then(|e| e.first())
        {
            return generate(first, root, depth + 1);
        }
    }
    match schema_type(object) {
        Some("object") => {
            let mut out = Map::new();
            if let Some(properties) = object.get("properties").and_then(Value::as_object) {
                for (name, property) in properties {
                    out.insert(name.clone(), generate(property, root, depth + 1));
                }
            }
            Value::Object(out)
        }
        Some("array") => {
            let item = object
                .get("items")
                .map_or(Value::Null, |items| generate(items, root, depth + 1));
            let count = object.get("minItems").and_then(Value::as_u64).unwrap_or(1);
            Value::Array(vec![item; usize::try_from(count.clamp(1, 3)).unwrap_or(1)])
        }
        Some("string") => json!(string_for(object)),
        Some("integer") => json!(number_for(object).round() as i64),
        Some("number") => json!(number_for(object)),
        Some("boolean") => json!(true),
        Some("null") => Value::Null,
        _ if object.contains_key("properties") => {
            generate(&with_type(object, "object"), root, depth)
        }
        _ => json!({}),
    }
}

/// The first non-null type (`["string", "null"]` is a nullable string).
fn schema_type(object: &Map<String, Value>) -> Option<&str> {
    match object.get("type") {
        Some(Value::String(t)) => Some(t),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .or(Some("null")),
        _ => None,
    }
}

fn with_type(object: &Map<String, Value>, kind: &str) -> Value {
    let mut object = object.clone();
    object.insert("type".into(), json!(kind));
    Value::Object(object)
}

fn string_for(object: &Map<String, Value>) -> String {
    let text = match object.get("format").and_then(Value::as_str) {
        Some("date-time") => "2026-01-01T12:00:00Z",
        Some("date") => "2026-01-01",
        Some("time") => "12:00:00Z",
        Some("email") => "user@example.com",
        Some("uri" | "url") => "https://example.com/",
        Some("uuid") => "0b4f2c2e-5c1a-4c8e-9a51-7f7a3c1d2e4f",
        Some("ipv4") => "192.0.2.1",
        Some("ipv6") => "2001:db8::1",
        Some("hostname") => "example.com",
        _ => "string",
    };
    let min = object
        .get("minLength")
        .and_then(Value::as_u64)
        .map_or(0, |n| usize::try_from(n).unwrap_or(0));
    let max = object
        .get("maxLength")
        .and_then(Value::as_u64)
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut text = text.to_owned();
    while text.len() < min {
        text.push('x');
    }
    text.truncate(max);
    text
}

fn number_for(object: &Map<String, Value>) -> f64 {
    let get = |key: &str| object.get(key).and_then(Value::as_f64);
    match (get("minimum"), get("exclusiveMinimum"), get("maximum")) {
        (Some(min), _, _) => min,
        (None, Some(min), _) => min + 1.0,
        (None, None, Some(max)) if max < 1.0 => max,
        _ => 1.0,
    }
}

/// The objects of `parts` merged into one; a part that is not an object wins alone.
fn merge(parts: impl Iterator<Item = Value>) -> Value {
    let mut out = Map::new();
    for part in parts {
        match part {
            Value::Object(fields) => out.extend(fields),
            other => return other,
        }
    }
    Value::Object(out)
}

/// Follows a local JSON pointer reference such as `#/components/schemas/Subscription`.
fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    let unescaped: String = pointer.replace("~1", "/").replace("~0", "~");
    if unescaped == pointer {
        root.pointer(pointer)
    } else {
        root.pointer(&unescaped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each schema's example, and that the schema accepts it.
    #[test]
    fn examples_are_valid_for_their_schema() {
        let cases = [
            (json!({"type": "string"}), json!("string")),
            (
                json!({"type": "string", "format": "email"}),
                json!("user@example.com"),
            ),
            (json!({"type": "string", "minLength": 8}), json!("stringxx")),
            (json!({"type": "string", "maxLength": 3}), json!("str")),
            (json!({"type": "integer", "minimum": 5}), json!(5)),
            (json!({"type": "number", "exclusiveMinimum": 0}), json!(1.0)),
            (json!({"type": ["string", "null"]}), json!("string")),
            (json!({"enum": ["b", "a"]}), json!("b")),
            (json!({"type": "string", "examples": ["x"]}), json!("x")),
            (json!({"type": "boolean", "default": false}), json!(false)),
            (
                json!({"type": "array", "items": {"type": "integer"}, "minItems": 2}),
                json!([1, 1]),
            ),
            (
                json!({"type": "object", "required": ["a"], "properties": {
                    "a": {"type": "string", "format": "date-time"},
                    "b": {"oneOf": [{"type": "integer"}, {"type": "string"}]}
                }}),
                json!({"a": "2026-01-01T12:00:00Z", "b": 1}),
            ),
            (
                json!({"allOf": [
                    {"type": "object", "properties": {"a": {"type": "integer"}}},
                    {"type": "object", "properties": {"b": {"type": "boolean"}}}
                ]}),
                json!({"a": 1, "b": true}),
            ),
            (
                json!({
                    "$ref": "#/components/schemas/Node",
                    "components": {"schemas": {"Node": {"type": "object", "properties": {
                        "name": {"type": "string"},
                        "next": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Node"}]}
                    }}}}
                }),
                json!({"name": "string", "next": null}),
            ),
        ];
        for (schema, expected) in cases {
            let made = example(&schema);
            assert_eq!(made, expected, "for {schema}");
            let validator = jsonschema::validator_for(&schema).expect("a valid schema");
            assert!(validator.is_valid(&made), "{made} breaks {schema}");
        }
    }
}
