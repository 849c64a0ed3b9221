//! The API's part of the document is complete for the app it serves: event type names, the
//! event body per type, the answers any JSON body can get, and links that lead somewhere.

use std::collections::BTreeMap;

use serde_json::Value;

fn document() -> Value {
    let doc = herald_server::api_document(herald_example_seed::app().declared()).unwrap();
    serde_json::to_value(doc).unwrap()
}

fn operations(doc: &Value) -> Vec<(String, &Value)> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .iter()
                .map(move |(method, op)| (format!("{} {path}", method.to_uppercase()), op))
        })
        .collect()
}

#[test]
fn event_bodies_name_the_declared_types_and_their_payload_schemas() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["EventTypeName"]["enum"],
        serde_json::json!([
            "new-subscription",
            "subscription-renewed",
            // herald's own, which endpoints may ask for (and the API cannot send).
            "delivery.dead",
            "endpoint.disabled",
            "endpoint.failing",
            "endpoint.recovered",
            "replay.finished"
        ])
    );
    let variants = schemas["CreateEvent"]["oneOf"].as_array().unwrap();
    // One per type and version: subscription-renewed has two.
    assert_eq!(variants.len(), 3);
    let titles: Vec<&str> = variants
        .iter()
        .map(|v| v["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "new-subscription",
            "subscription-renewed@2026-01-01",
            "subscription-renewed"
        ]
    );
    assert_eq!(
        variants[1]["properties"]["payload"]["$ref"],
        "#/components/schemas/Renewal"
    );
    assert_eq!(
        variants[1]["properties"]["version"]["enum"],
        serde_json::json!(["2026-01-01"])
    );
    assert!(
        variants[1]["required"]
            .as_array()
            .unwrap()
            .contains(&"version".into())
    );
    assert_eq!(
        variants[2]["properties"]["payload"]["$ref"],
        "#/components/schemas/RenewalV2"
    );
    assert_eq!(variants[0]["properties"]["version"]["type"], "null");
    assert_eq!(
        variants[2]["properties"]["version"]["enum"],
        serde_json::json!(["2026-12-01", null]),
        "null, like no version, is the newest"
    );
    assert_eq!(
        schemas["VersionName"]["enum"],
        serde_json::json!(["2026-01-01", "2026-12-01"])
    );
    let variant = &variants[0]["properties"];
    assert_eq!(
        variant["event_type"]["enum"],
        serde_json::json!(["new-subscription"])
    );
    assert_eq!(
        variant["payload"]["$ref"],
        "#/components/schemas/Subscription"
    );
    assert!(
        variant["idempotency_key"].is_object(),
        "the handler's own fields stay"
    );
    let endpoint = &schemas["CreateEndpoint"]["properties"];
    assert_eq!(
        endpoint["event_types"]["items"]["$ref"],
        "#/components/schemas/EventTypeName"
    );
}

#[test]
fn every_operation_with_a_body_documents_its_body_errors() {
    let doc = document();
    let mut with_body = 0;
    for (name, op) in operations(&doc) {
        if op.get("requestBody").is_none() {
            continue;
        }
        with_body += 1;
        for status in ["400", "413", "415"] {
            let answer = &op["responses"][status]["content"]["application/problem+json"];
            assert!(answer.is_object(), "{name} documents {status}");
        }
    }
    assert!(with_body >= 9, "{with_body} operations with a body");
}

#[test]
fn links_lead_to_operations_that_take_the_parameters_they_fill() {
    let doc = document();
    let parameters: BTreeMap<String, Vec<String>> = operations(&doc)
        .into_iter()
        .filter_map(|(_, op)| {
            let id = op["operationId"].as_str()?.to_owned();
            let names = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
            Some((id, names))
        })
        .collect();
    let mut links = 0;
    for (name, op) in operations(&doc) {
        for response in op["responses"].as_object().unwrap().values() {
            for link in response["links"]
                .as_object()
                .into_iter()
                .flat_map(|l| l.values())
            {
                links += 1;
                let target = link["operationId"].as_str().unwrap();
                let takes = parameters
                    .get(target)
                    .unwrap_or_else(|| panic!("{name} links to unknown {target}"));
                for parameter in link["parameters"].as_object().unwrap().keys() {
                    assert!(
                        takes.contains(parameter),
                        "{name} → {target} fills {parameter}"
                    );
                }
            }
        }
    }
    assert!(links >= 12, "{links} links");
}

/// An application type that shares a name with one of herald's.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Status {
    healthy: bool,
}

/// The app's own status.
#[utoipa::path(get, path = "/status", responses((status = 200, description = "Up", body = Status)))]
async fn status() -> axum::Json<Status> {
    axum::Json(Status { healthy: true })
}

/// herald's API has its own document, so an app's schema named like one of herald's (`Status`)
/// neither replaces it nor is replaced: each document keeps its own.
#[test]
fn an_app_schema_named_like_one_of_heralds_stays_in_the_apps_document() {
    let routes = utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(status));
    let app = herald_core::App::new("shop", "1.0.0").routes(routes);
    let api = serde_json::to_value(herald_server::api_document(app.declared()).unwrap()).unwrap();
    let own = serde_json::to_value(app.build().unwrap().openapi).unwrap();
    assert!(own["components"]["schemas"]["Status"]["properties"]["healthy"].is_object());
    assert!(api["components"]["schemas"]["Status"]["properties"]["status"].is_object());
    assert!(
        own["paths"].get("/health").is_none(),
        "herald's routes stay out of the app's document"
    );
    assert!(
        api["paths"].get("/status").is_none(),
        "the app's routes stay out of herald's"
    );
}

#[test]
fn the_version_header_is_named_alike_where_it_is_documented_and_where_it_is_sent() {
    // herald-core documents it and herald-delivery sends it; neither depends on the other.
    assert_eq!(
        herald_core::VERSION_HEADER.0,
        herald_delivery::worker::VERSION_HEADER
    );
}

#[test]
fn a_payload_filter_is_described_by_its_grammar() {
    let doc = document();
    let filter = &doc["components"]["schemas"]["PayloadFilter"];
    let titles: Vec<&str> = filter["oneOf"]
        .as_array()
        .expect("PayloadFilter is in the document")
        .iter()
        .map(|v| v["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "eq", "in", "gt", "gte", "lt", "lte", "exists", "and", "or", "not"
        ]
    );
    let create = &doc["components"]["schemas"]["CreateEndpoint"]["properties"]["filter"];
    assert_eq!(
        create["oneOf"][0]["$ref"],
        "#/components/schemas/PayloadFilter"
    );
}
