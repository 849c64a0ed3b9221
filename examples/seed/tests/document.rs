//! The seed example's OpenAPI document says what DESIGN.md promises, parses as OpenAPI 3.1, and
//! does not change without a reviewed snapshot update (`cargo insta review`).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap should panic loudly

use serde_json::{Value, json};

fn document() -> Value {
    let app = herald_example_seed::app()
        .build()
        .expect("the seed app builds");
    serde_json::to_value(&app.openapi).expect("serializes")
}

#[test]
fn it_is_openapi_3_1_with_the_users_route() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let get = &doc["paths"]["/users/"]["get"];
    assert_eq!(get["operationId"], "read_users");
    assert!(get["responses"]["200"].is_object());
}

#[test]
fn the_webhook_is_documented_like_fastapi_documents_it() {
    let doc = document();
    let op = &doc["webhooks"]["new-subscription"]["post"];
    assert_eq!(op["summary"], "New Subscription");
    assert_eq!(
        op["description"],
        "When a new user subscribes to your service we'll send you a POST request with this\n\
         data to the URL that you register for the event `new-subscription` in the dashboard."
    );
    assert_eq!(op["operationId"], "new_subscription");
    assert_eq!(op["requestBody"]["required"], true);
    assert_eq!(
        op["requestBody"]["content"]["application/json"]["schema"],
        json!({"$ref": "#/components/schemas/Subscription"})
    );
    assert!(op["responses"]["2XX"].is_object());
}

#[test]
fn the_body_schema_has_the_three_typed_required_properties() {
    let doc = document();
    let schema = &doc["components"]["schemas"]["Subscription"];
    assert_eq!(schema["type"], "object");
    let properties = &schema["properties"];
    assert_eq!(properties["username"]["type"], "string");
    assert_eq!(properties["monthly_fee"]["type"], "number");
    assert_eq!(properties["start_date"]["type"], "string");
    assert_eq!(properties["start_date"]["format"], "date-time");
    assert_eq!(
        schema["required"],
        json!(["username", "monthly_fee", "start_date"])
    );
}

#[test]
fn operation_ids_are_unique() {
    let doc = document();
    let mut ids = Vec::new();
    for section in ["paths", "webhooks"] {
        for item in doc[section].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                ids.push(op["operationId"].as_str().unwrap().to_owned());
            }
        }
    }
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "{ids:?}");
}

#[test]
fn it_parses_as_openapi_3_1_with_oas3() {
    let text = serde_json::to_string(&document()).unwrap();
    let spec = oas3::from_json(text).expect("oas3 parses the document");
    assert_eq!(spec.openapi, "3.1.0");
    let webhook = spec
        .webhooks
        .get("new-subscription")
        .and_then(|item| item.post.as_ref())
        .expect("oas3 sees the webhook");
    assert_eq!(webhook.operation_id.as_deref(), Some("new_subscription"));
    let body = webhook
        .request_body
        .as_ref()
        .expect("request body")
        .resolve(&spec)
        .expect("the body resolves");
    let schema = body.content["application/json"]
        .schema
        .as_ref()
        .expect("schema")
        .resolve(&spec)
        .expect("the $ref resolves into components");
    let oas3::spec::Schema::Object(schema) = schema else {
        panic!("Subscription is an object schema")
    };
    let oas3::spec::ObjectOrReference::Object(schema) = *schema else {
        panic!("resolved, so not a reference")
    };
    let mut properties: Vec<_> = schema.properties.keys().cloned().collect();
    properties.sort();
    assert_eq!(properties, ["monthly_fee", "start_date", "username"]);
}

#[test]
fn the_whole_document_matches_its_snapshot() {
    insta::assert_json_snapshot!("seed-openapi", document());
}
