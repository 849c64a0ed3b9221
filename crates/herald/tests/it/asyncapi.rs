//! The AsyncAPI 3.0 document: the same webhooks as the OpenAPI document, served beside it.

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use herald::{App, Built, Docs, Webhook};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::Subscription;

fn subscription() -> Subscription {
    Subscription {
        username: "rick".into(),
        monthly_fee: 9.5,
        start_date: "2026-11-22T08:00:00Z".parse().unwrap(),
    }
}

fn built(docs: Docs) -> Built {
    App::new("Shop", "2.1")
        .webhook(
            Webhook::<Subscription>::post("new-subscription")
                .description(crate::DOC)
                .example(subscription()),
        )
        .webhook(
            Webhook::<Subscription>::put("plan changed/v1")
                .tag("billing")
                .header("x-shop-region", "Where the shop runs."),
        )
        .docs(docs)
        .build()
        .unwrap()
}

async fn get(built: Built, path: &str) -> (StatusCode, String, Vec<u8>) {
    let response = built
        .router
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let status = response.status();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, content_type, body.to_vec())
}

/// Follows a local `$ref` (`#/a/b`) in `doc`.
fn resolve<'a>(doc: &'a Value, reference: &Value) -> &'a Value {
    let pointer = reference["$ref"].as_str().unwrap().trim_start_matches('#');
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("{pointer} does not resolve"))
}

#[tokio::test]
async fn the_document_is_served_beside_the_openapi_document() {
    let app = built(Docs::default());
    let expected = app.asyncapi.clone();
    let (status, content_type, body) = get(app, "/asyncapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "application/json");
    let served: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(served, expected);
    assert_eq!(served["asyncapi"], "3.0.0");
    assert_eq!(served["info"]["title"], "Shop");
    assert_eq!(served["info"]["version"], "2.1");
}

#[tokio::test]
async fn each_webhook_is_a_channel_a_send_operation_and_a_message() {
    let app = built(Docs::default());
    let doc = &app.asyncapi;
    let openapi = serde_json::to_value(&app.openapi).unwrap();

    // A name that is not a valid key becomes one.
    let channels: Vec<&String> = doc["channels"].as_object().unwrap().keys().collect();
    assert_eq!(channels, ["new-subscription", "plan_changed_v1"]);
    let channel = &doc["channels"]["new-subscription"];
    assert_eq!(channel["address"], Value::Null, "each subscriber's own URL");
    assert_eq!(channel["description"], crate::DOC);

    let operation = &doc["operations"]["new_subscription"];
    assert_eq!(operation["action"], "send");
    assert_eq!(resolve(doc, &operation["channel"]), channel);
    assert_eq!(operation["bindings"]["http"]["method"], "POST");
    assert_eq!(
        doc["operations"]["plan_changed_v1"]["bindings"]["http"]["method"],
        "PUT"
    );
    assert_eq!(
        doc["operations"]["plan_changed_v1"]["tags"],
        json!([{ "name": "billing" }])
    );
    let scheme = resolve(doc, &operation["security"][0]);
    assert_eq!(scheme["type"], "httpApiKey");
    assert_eq!(scheme["name"], "webhook-signature");

    let message = resolve(doc, &resolve(doc, &operation["messages"][0]).clone());
    assert_eq!(message["contentType"], "application/json");
    assert_eq!(
        message["headers"]["required"],
        json!(["webhook-id", "webhook-timestamp", "webhook-signature"])
    );
    assert_eq!(
        message["examples"][0]["payload"],
        serde_json::to_value(subscription()).unwrap()
    );
    // The payload is the OpenAPI document's own schema, under the same name.
    assert_eq!(
        message["payload"]["$ref"],
        "#/components/schemas/Subscription"
    );
    assert_eq!(
        resolve(doc, &message["payload"]),
        &openapi["components"]["schemas"]["Subscription"]
    );
    let other = &doc["components"]["messages"]["plan_changed_v1"];
    assert_eq!(
        other["headers"]["properties"]["x-shop-region"]["description"],
        "Where the shop runs."
    );
}

#[tokio::test]
async fn its_path_is_configurable_and_it_can_be_switched_off() {
    let (status, _, _) = get(
        built(Docs::default().asyncapi_url(Some("/events.json"))),
        "/events.json",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for docs in [Docs::disabled(), Docs::default().asyncapi_url(None)] {
        let (status, _, _) = get(built(docs), "/asyncapi.json").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    // The OpenAPI document does not need it.
    let (status, _, _) = get(built(Docs::default().asyncapi_url(None)), "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
}
