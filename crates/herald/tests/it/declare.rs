//! The macro and the builder declare the same thing; options land where OpenAPI expects them.

use herald::{App, Declare, Method, Webhook, webhook};
use serde_json::{Value, json};

use crate::{DOC, Subscription};

/// When a new user subscribes to your service we'll send you a POST request with this
/// data to the URL that you register for the event `new-subscription` in the dashboard.
#[webhook(post, "new-subscription")]
fn new_subscription(body: Subscription) {}

fn document(app: App) -> Value {
    serde_json::to_value(app.build().expect("valid app").openapi).expect("serializes")
}

#[test]
fn macro_and_builder_produce_the_same_document() {
    let by_macro = document(App::new("t", "1").webhook(new_subscription));
    let by_builder = document(
        App::new("t", "1")
            .webhook(Webhook::<Subscription>::post("new-subscription").description(DOC)),
    );
    assert_eq!(by_macro, by_builder);
}

#[test]
fn the_macro_reads_name_method_summary_and_doc_comment() {
    let declared = new_subscription.declare();
    let declaration = declared.declaration();
    assert_eq!(declaration.name(), "new-subscription");
    assert_eq!(declaration.method(), Method::Post);
    assert_eq!(declaration.summary(), "New Subscription");
    assert_eq!(declaration.operation_id(), "new_subscription");
    assert_eq!(declaration.description(), Some(DOC));
    assert_eq!(declaration.body_schema_name(), "Subscription");
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Cancellation {
    username: String,
    reason: Option<String>,
}

/// Sent when a subscription ends.
///
/// Receivers should stop service at the end of the billing period.
#[webhook(
    delete,
    "subscription.cancelled",
    tag = "billing",
    tag = "lifecycle",
    deprecated,
    summary = "Subscription cancelled",
    operation_id = "cancelled_v1",
    header(name = "x-tenant", description = "Which of your accounts this is for."),
    response(status = 410, description = "Unsubscribes the endpoint."),
    response(status = 204, description = "Received."),
    example = Cancellation { username: "rick".into(), reason: None },
)]
fn subscription_cancelled(body: Cancellation) {}

#[test]
fn every_option_of_the_macro_reaches_the_document() {
    let doc = document(App::new("t", "1").webhook(subscription_cancelled));
    let op = &doc["webhooks"]["subscription.cancelled"]["delete"];
    assert_eq!(op["summary"], "Subscription cancelled");
    assert_eq!(op["operationId"], "cancelled_v1");
    assert_eq!(
        op["description"],
        "Sent when a subscription ends.\n\nReceivers should stop service at the end of the billing period."
    );
    assert_eq!(op["tags"], json!(["billing", "lifecycle"]));
    assert_eq!(op["deprecated"], true);
    let headers: Vec<&str> = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        headers,
        [
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "x-tenant"
        ]
    );
    assert_eq!(
        op["responses"]["410"]["description"],
        "Unsubscribes the endpoint."
    );
    assert_eq!(op["responses"]["204"]["description"], "Received.");
    assert!(
        op["responses"].get("2XX").is_none(),
        "a declared 2xx replaces the default"
    );
    assert_eq!(
        op["requestBody"]["content"]["application/json"]["example"],
        json!({"username": "rick", "reason": null})
    );
}

#[test]
fn the_same_options_by_builder_give_the_same_document() {
    let built = Webhook::<Cancellation>::delete("subscription.cancelled")
        .tag("billing")
        .tag("lifecycle")
        .deprecated(true)
        .summary("Subscription cancelled")
        .operation_id("cancelled_v1")
        .description(
            "Sent when a subscription ends.\n\nReceivers should stop service at the end of the billing period.",
        )
        .header("x-tenant", "Which of your accounts this is for.")
        .response(410, "Unsubscribes the endpoint.")
        .response(204, "Received.")
        .example(Cancellation {
            username: "rick".into(),
            reason: None,
        });
    assert_eq!(
        document(App::new("t", "1").webhook(built)),
        document(App::new("t", "1").webhook(subscription_cancelled))
    );
}

#[test]
fn webhooks_and_routes_share_components() {
    /// Lists subscriptions.
    #[utoipa::path(get, path = "/subscriptions", responses((status = 200, body = Vec<Subscription>)))]
    async fn list_subscriptions() -> axum::Json<Vec<Subscription>> {
        axum::Json(Vec::new())
    }
    let doc = document(
        App::new("t", "1")
            .routes(
                utoipa_axum::router::OpenApiRouter::new()
                    .routes(utoipa_axum::routes!(list_subscriptions)),
            )
            .webhook(new_subscription),
    );
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    assert_eq!(schemas.keys().collect::<Vec<_>>(), ["Subscription"]);
    assert_eq!(
        doc["paths"]["/subscriptions"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            ["items"]["$ref"],
        "#/components/schemas/Subscription"
    );
}

#[test]
fn every_method_is_documented_under_its_own_key() {
    let mut app = App::new("t", "1");
    for method in [
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Get,
    ] {
        app = app.webhook(
            Webhook::<Subscription>::new(method, "changed")
                .operation_id(format!("changed_{}", method.as_str().to_lowercase())),
        );
    }
    let doc = document(app);
    let item = doc["webhooks"]["changed"].as_object().unwrap();
    let mut keys: Vec<_> = item.keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["delete", "get", "patch", "post", "put"]);
}

/// Schemas built for [`Counted`] so far.
static COUNTED_SCHEMAS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[derive(serde::Serialize)]
struct Counted {
    n: u32,
}

impl utoipa::PartialSchema for Counted {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        COUNTED_SCHEMAS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        utoipa::openapi::ObjectBuilder::new().into()
    }
}

impl utoipa::ToSchema for Counted {}

/// Counted.
#[webhook(post, "counted")]
fn counted(body: Counted) {}

/// Sending asks a webhook for its name and version with every event: neither builds the
/// declaration (the body's schema most of all) to answer.
#[test]
fn name_and_version_are_answered_without_building_the_declaration() {
    let before = COUNTED_SCHEMAS.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(counted.name(), "counted");
    assert_eq!(counted.version(), None);
    assert_eq!(new_subscription.version(), None);
    assert_eq!(
        COUNTED_SCHEMAS.load(std::sync::atomic::Ordering::SeqCst),
        before
    );
    assert_eq!(counted.declare().declaration().version(), None);
    assert!(COUNTED_SCHEMAS.load(std::sync::atomic::Ordering::SeqCst) > before);
}
