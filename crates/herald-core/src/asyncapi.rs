//! The AsyncAPI 3.0 document: the same webhooks as the OpenAPI document's `webhooks`, in the
//! format that code generators and event catalogues read for message APIs.
//!
//! One channel per webhook, whose address is left open (each subscriber registers its own URL);
//! one `send` operation on it, with the HTTP method as its binding; one message with the
//! Standard Webhooks headers and the body's schema, which is the OpenAPI document's own (the
//! same `#/components/schemas/…` names), and the signature scheme as a security scheme.

use serde_json::{Map, Value, json};

use crate::catalog::Webhooks;
use crate::openapi::{SIGNATURE_HEADERS, VERSION_HEADER};
use crate::webhook::Declaration;

/// The AsyncAPI 3.0 document for `webhooks`, titled like the application's OpenAPI document.
pub fn document(title: &str, version: &str, webhooks: &Webhooks) -> Value {
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    let mut schemas = Map::new();
    for declaration in webhooks.iter() {
        let id = key(&webhooks.key(declaration));
        let summary = webhooks.summary(declaration);
        channels.insert(id.clone(), channel(declaration, &id, &summary));
        operations.insert(
            key(&webhooks.operation_id(declaration)),
            operation(declaration, &id, &summary),
        );
        messages.insert(id.clone(), message(declaration, &summary));
        if let Some(Value::Object(theirs)) = declaration
            .json_schema()
            .pointer_mut("/components/schemas")
            .map(Value::take)
        {
            // Two declarations needing one schema name need the same schema: the OpenAPI
            // document refuses anything else before this is built.
            schemas.extend(theirs);
        }
    }
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": version,
            "description": format!(
                "The webhooks {title} sends. Each subscriber registers an endpoint URL and the \
                 webhooks it wants; every message is an HTTP request to that URL, signed per \
                 Standard Webhooks (https://www.standardwebhooks.com), and retried with \
                 backoff until the endpoint answers 2xx."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas,
            "securitySchemes": {
                "standardWebhooks": {
                    "type": "httpApiKey",
                    "name": "webhook-signature",
                    "in": "header",
                    "description": "A signature of `{webhook-id}.{webhook-timestamp}.{body}`: \
                        HMAC-SHA256 keyed with the endpoint's secret (the base64 after \
                        `whsec_`), sent as `v1,<base64>`, or for an endpoint that chose \
                        Ed25519, an Ed25519 signature sent as `v1a,<base64>` and verified with \
                        its public key (`whpk_`, also published in the tenant's JWKS \
                        document); several, space-separated, while a key is rotated or both \
                        are sent. Verify it with any Standard Webhooks library, and refuse \
                        timestamps more than five minutes from now.",
                },
            },
        },
    })
}

/// A name usable as a key of `channels`, `operations` or `components` (letters, digits, `.`,
/// `-` and `_`): webhook names read from an OpenAPI file may hold anything.
fn key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn channel(declaration: &Declaration, id: &str, summary: &str) -> Value {
    let mut channel = json!({
        // Each subscriber's own endpoint URL.
        "address": null,
        "title": summary,
        "messages": { id: { "$ref": format!("#/components/messages/{id}") } },
    });
    if let Some(description) = declaration.description() {
        channel["description"] = description.into();
    }
    channel
}

fn operation(declaration: &Declaration, id: &str, summary: &str) -> Value {
    let mut operation = json!({
        "action": "send",
        "channel": { "$ref": format!("#/channels/{id}") },
        "summary": summary,
        "messages": [{ "$ref": format!("#/channels/{id}/messages/{id}") }],
        "security": [{ "$ref": "#/components/securitySchemes/standardWebhooks" }],
        "bindings": {
            "http": { "method": declaration.method().as_str(), "bindingVersion": "0.3.0" },
        },
    });
    if let Some(description) = declaration.description() {
        operation["description"] = description.into();
    }
    if !declaration.tags().is_empty() {
        let tags: Vec<Value> = declaration
            .tags()
            .iter()
            .map(|t| json!({ "name": t }))
            .collect();
        operation["tags"] = tags.into();
    }
    operation
}

fn message(declaration: &Declaration, summary: &str) -> Value {
    let mut headers = Map::new();
    for (name, description) in SIGNATURE_HEADERS {
        headers.insert(
            name.into(),
            json!({ "type": "string", "description": description }),
        );
    }
    if declaration.version().is_some() {
        let (name, description) = VERSION_HEADER;
        headers.insert(
            name.into(),
            json!({ "type": "string", "description": description }),
        );
    }
    for header in &declaration.headers {
        headers.insert(
            header.name.clone(),
            json!({ "type": "string", "description": header.description }),
        );
    }
    let required: Vec<&str> = SIGNATURE_HEADERS.iter().map(|(name, _)| *name).collect();
    let mut message = json!({
        "name": declaration.name(),
        "title": summary,
        "contentType": "application/json",
        "headers": { "type": "object", "required": required, "properties": headers },
        "payload": {
            "$ref": format!("#/components/schemas/{}", declaration.body_schema_name()),
        },
    });
    if let Some(description) = declaration.description() {
        message["description"] = description.into();
    }
    if let Some(example) = declaration.example() {
        message["examples"] = json!([{ "name": "example", "payload": example }]);
    }
    if declaration.is_deprecated() {
        message["x-deprecated"] = true.into();
    }
    if let Some(version) = declaration.version() {
        message[crate::openapi::VERSION_EXTENSION] = version.into();
    }
    message
}
