//! Webhooks read from OpenAPI documents: FastAPI's own, 3.0 `x-webhooks`, and documents herald
//! must refuse with the JSON pointer at fault.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap should panic loudly

use serde_json::{Value, json};

/// What FastAPI 0.165 prints for its webhooks example (tests/e2e/fastapi_app/app.py).
const FASTAPI: &str = include_str!("fixtures/fastapi-webhooks.json");

#[test]
fn fastapi_s_document_serves_its_webhook_unchanged() {
    let fastapi: Value = serde_json::from_str(FASTAPI).unwrap();
    let spec = herald::spec::read(FASTAPI).unwrap();
    assert_eq!(
        (spec.title.as_str(), spec.version.as_str()),
        ("FastAPI", "0.1.0")
    );
    let declared: Vec<_> = spec.webhooks.iter().collect();
    assert_eq!(declared.len(), 1);
    let webhook = declared[0];
    let theirs = &fastapi["webhooks"]["new-subscription"]["post"];
    assert_eq!(webhook.name(), "new-subscription");
    assert_eq!(webhook.method(), herald::Method::Post);
    assert_eq!(webhook.summary(), theirs["summary"]);
    assert_eq!(webhook.description().unwrap(), theirs["description"]);
    assert_eq!(webhook.operation_id(), theirs["operationId"]);
    assert_eq!(webhook.body_schema_name(), "Subscription");
    // Validation reads the schema exactly as FastAPI wrote it.
    let subscription = &fastapi["components"]["schemas"]["Subscription"];
    let schema = webhook.json_schema();
    assert_eq!(schema["$ref"], "#/components/schemas/Subscription");
    assert_eq!(
        &schema["components"]["schemas"]["Subscription"],
        subscription
    );
    // The document herald serves carries the same webhook and schema.
    let built = spec.app().build().unwrap();
    let served = serde_json::to_value(&built.openapi).unwrap();
    let ours = &served["webhooks"]["new-subscription"]["post"];
    assert_eq!(
        ours["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Subscription"
    );
    assert_eq!(ours["description"], theirs["description"]);
    assert_eq!(
        &served["components"]["schemas"]["Subscription"],
        subscription
    );
}

fn document(webhooks: Value, schemas: Value) -> String {
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Shop", "version": "2" },
        "webhooks": webhooks,
        "components": { "schemas": schemas, "requestBodies": {
            "Paid": { "content": { "application/json": {
                "schema": { "$ref": "#/components/schemas/Order" } } } } } },
    })
    .to_string()
}

fn order() -> Value {
    json!({ "Order": { "type": "object", "required": ["id"], "properties": {
        "id": { "type": "string" },
        "customer": { "$ref": "#/components/schemas/Customer" } } },
        "Customer": { "type": "object", "properties": { "name": { "type": "string" } } } })
}

#[test]
fn references_are_followed_and_inline_bodies_get_a_name() {
    let text = document(
        json!({
            "order-paid": { "post": { "requestBody": { "$ref": "#/components/requestBodies/Paid" } } },
            "order-shipped": { "put": { "requestBody": { "content": { "application/cloudevents+json": {
                "schema": { "type": "object", "properties": { "order": { "$ref": "#/components/schemas/Order" } } },
                "example": { "order": { "id": "o1" } } } } } } },
        }),
        order(),
    );
    let spec = herald::spec::read(&text).unwrap();
    let [paid, shipped] = spec.webhooks.iter().collect::<Vec<_>>()[..] else {
        panic!("two webhooks")
    };
    assert_eq!(paid.body_schema_name(), "Order");
    let needed = paid.json_schema();
    assert!(
        needed["components"]["schemas"]["Customer"].is_object(),
        "{needed}"
    );
    assert_eq!(shipped.body_schema_name(), "OrderShippedBody");
    assert_eq!(shipped.method(), herald::Method::Put);
    assert_eq!(shipped.example(), Some(&json!({ "order": { "id": "o1" } })));
    let needed = shipped.json_schema();
    assert!(needed["components"]["schemas"]["Order"].is_object());
    assert!(needed["components"]["schemas"]["Customer"].is_object());
    spec.app().build().unwrap();
}

#[test]
fn openapi_3_0_x_webhooks_are_read_with_nullable_as_a_null_type() {
    let text = json!({
        "openapi": "3.0.3",
        "info": { "title": "Old", "version": "1" },
        "paths": {},
        "x-webhooks": { "ping": { "post": { "requestBody": { "content": { "application/json": {
            "schema": { "$ref": "#/components/schemas/Ping" } } } } } } },
        "components": { "schemas": { "Ping": { "type": "object", "properties": {
            "note": { "type": "string", "nullable": true } } } } },
    })
    .to_string();
    let spec = herald::spec::read(&text).unwrap();
    let ping = spec.webhooks.iter().next().unwrap();
    let schema = ping.json_schema();
    assert_eq!(
        schema["components"]["schemas"]["Ping"]["properties"]["note"],
        json!({ "type": ["string", "null"] })
    );
}

#[test]
fn documents_herald_cannot_serve_are_refused_at_their_pointer() {
    let body = |schema: Value| {
        json!({ "a": { "post": { "requestBody": { "content": {
        "application/json": { "schema": schema } } } } } })
    };
    let cases = [
        ("{".to_owned(), "#: not JSON"),
        (
            json!({ "openapi": "2.0", "webhooks": {} }).to_string(),
            "#/openapi: version 2.0 is not supported",
        ),
        (
            json!({ "swagger": "2.0" }).to_string(),
            "#/openapi: missing",
        ),
        (document(json!({}), order()), "#/webhooks: no webhooks"),
        (
            document(json!({ "a": { "post": {} } }), order()),
            "#/webhooks/a/post/requestBody: missing",
        ),
        (
            document(json!({ "a": { "head": {} } }), order()),
            "#/webhooks/a/head: herald sends POST",
        ),
        (
            document(json!({ "a": { "summary": "none" } }), order()),
            "#/webhooks/a: no operation",
        ),
        (
            document(
                json!({ "a": { "post": { "requestBody": { "content": { "text/plain": {} } } } } }),
                order(),
            ),
            "#/webhooks/a/post/requestBody/content: no JSON media type",
        ),
        (
            document(
                body(json!({ "$ref": "#/components/schemas/Nope" })),
                order(),
            ),
            "#/webhooks/a/post/requestBody/content/application~1json/schema/$ref: \
             `#/components/schemas/Nope` is not in this document",
        ),
        (
            document(body(json!({ "$ref": "shared.json#/Order" })), order()),
            "#/webhooks/a/post/requestBody/content/application~1json/schema/$ref: \
             `shared.json#/Order`: herald follows only references",
        ),
        (
            document(
                body(json!({ "$ref": "#/components/schemas/Order" })),
                json!({ "Order": { "properties": { "c": { "$ref": "#/components/schemas/Customer" } } } }),
            ),
            "#/components/schemas/Order/properties/c/$ref: \
             `#/components/schemas/Customer` is not in this document",
        ),
        (
            document(
                json!({ "a": { "post": { "requestBody": { "$ref": "#/components/requestBodies/Gone" } } } }),
                order(),
            ),
            "#/webhooks/a/post/requestBody/$ref: `#/components/requestBodies/Gone` is not in",
        ),
    ];
    for (text, expected) in cases {
        let error = herald::spec::read(&text).unwrap_err();
        assert_eq!(error.kind(), herald::ErrorKind::InvalidSpec);
        assert!(
            error.to_string().starts_with(expected),
            "{error}\n  expected to start with {expected}"
        );
    }
}
