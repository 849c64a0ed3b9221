//! Versioned webhooks: each version documented, converted to older ones by the application's
//! own functions, and read back from a document.

use herald::{App, ErrorKind, Webhook};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

/// The first version: a price as a float.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
struct PriceV1 {
    sku: String,
    price: f64,
}

/// The second: cents and a currency.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
struct PriceV2 {
    sku: String,
    cents: u64,
    currency: String,
}

/// The third: the amount nested, and an optional reason.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
struct PriceV3 {
    sku: String,
    amount: Amount,
    reason: Option<String>,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
struct Amount {
    cents: u64,
    currency: String,
}

fn v1() -> Webhook<PriceV1> {
    Webhook::<PriceV1>::post("price.changed")
        .version("2025-06-01")
        .example(PriceV1 {
            sku: "tea".into(),
            price: 4.5,
        })
}

fn v2() -> Webhook<PriceV2> {
    Webhook::<PriceV2>::post("price.changed")
        .version("2026-01-01")
        .previous(v1(), |p: PriceV2| PriceV1 {
            sku: p.sku,
            price: p.cents as f64 / 100.0,
        })
}

fn v3() -> Webhook<PriceV3> {
    Webhook::<PriceV3>::post("price.changed")
        .version("2026-12-01")
        .description("Sent when a price changes.")
        .example(PriceV3 {
            sku: "tea".into(),
            amount: Amount {
                cents: 450,
                currency: "EUR".into(),
            },
            reason: Some("harvest".into()),
        })
        .previous(v2(), |p: PriceV3| PriceV2 {
            sku: p.sku,
            cents: p.amount.cents,
            currency: p.amount.currency,
        })
}

fn document() -> Value {
    let built = App::new("t", "1").webhook(v3()).build().unwrap();
    serde_json::to_value(&built.openapi).unwrap()
}

#[test]
fn the_newest_version_brings_the_older_ones_each_with_its_own_entry() {
    let doc = document();
    let webhooks = doc["webhooks"].as_object().unwrap();
    let keys: Vec<&str> = webhooks.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "price.changed",
            "price.changed@2025-06-01",
            "price.changed@2026-01-01"
        ]
    );
    let newest = &webhooks["price.changed"]["post"];
    assert_eq!(newest["x-herald-version"], "2026-12-01");
    assert_eq!(newest["operationId"], "price_changed");
    let oldest = &webhooks["price.changed@2025-06-01"]["post"];
    assert_eq!(oldest["x-herald-version"], "2025-06-01");
    assert_eq!(oldest["operationId"], "price_changed_2025_06_01");
    assert_eq!(oldest["summary"], "Price.Changed (2025-06-01)");
    assert_eq!(
        oldest["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/PriceV1"
    );
    let header = oldest["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "herald-event-version");
    assert!(header.is_some(), "the version header is documented");
    for name in ["PriceV1", "PriceV2", "PriceV3", "Amount"] {
        assert!(doc["components"]["schemas"][name].is_object(), "{name}");
    }
}

#[test]
fn each_example_converts_down_the_chain_and_validates_against_the_older_schema() {
    let built = App::new("t", "1").webhook(v3()).build().unwrap();
    let webhooks = &built.webhooks;
    assert_eq!(
        webhooks.versions("price.changed"),
        ["2025-06-01", "2026-01-01", "2026-12-01"]
    );
    for version in webhooks.versions("price.changed") {
        let declaration = webhooks.find("price.changed", Some(version)).unwrap();
        let Some(example) = declaration.example() else {
            continue;
        };
        for herald::Converted {
            version: older,
            body,
            ..
        } in webhooks.convert("price.changed", version, example).unwrap()
        {
            let schema = webhooks
                .find("price.changed", Some(&older))
                .unwrap()
                .json_schema();
            let validator = jsonschema::validator_for(&schema).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&body)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{version} → {older}: {errors:?}");
        }
    }
    let converted = webhooks
        .convert(
            "price.changed",
            "2026-12-01",
            &json!({"sku": "tea", "amount": {"cents": 450, "currency": "EUR"}, "reason": null}),
        )
        .unwrap();
    let pairs: Vec<(&str, &Value, &str)> = converted
        .iter()
        .map(|c| (c.version.as_str(), &c.body, c.text.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            (
                "2026-01-01",
                &json!({"sku": "tea", "cents": 450, "currency": "EUR"}),
                // As sent: the fields in the order the type declares them.
                r#"{"sku":"tea","cents":450,"currency":"EUR"}"#,
            ),
            (
                "2025-06-01",
                &json!({"sku": "tea", "price": 4.5}),
                r#"{"sku":"tea","price":4.5}"#,
            ),
        ]
    );
    // An integer written `450.0` is still an integer, as JSON Schema says.
    let converted = webhooks
        .convert(
            "price.changed",
            "2026-12-01",
            &json!({"sku": "tea", "amount": {"cents": 450.0, "currency": "EUR"}, "reason": null}),
        )
        .unwrap();
    assert_eq!(
        converted[0].text,
        r#"{"sku":"tea","cents":450,"currency":"EUR"}"#
    );
    // The oldest converts to nothing; a body the type refuses names the versions.
    assert!(
        webhooks
            .convert(
                "price.changed",
                "2025-06-01",
                &json!({"sku": "x", "price": 1.0})
            )
            .unwrap()
            .is_empty()
    );
    let error = webhooks
        .convert("price.changed", "2026-12-01", &json!({"sku": "tea"}))
        .unwrap_err();
    assert!(
        error.contains("from version 2026-12-01 to 2026-01-01"),
        "{error}"
    );
}

#[test]
fn a_document_read_back_keeps_the_versions_without_conversions() {
    let text = document().to_string();
    let spec = herald::spec::read(&text).unwrap();
    assert_eq!(
        spec.webhooks.versions("price.changed"),
        ["2025-06-01", "2026-01-01", "2026-12-01"]
    );
    let newest = spec.webhooks.find("price.changed", None).unwrap();
    assert_eq!(newest.version(), Some("2026-12-01"));
    assert!(newest.convert_to_previous(json!({})).is_none());
    // And it builds into the same webhooks again.
    let again = App::new("t", "1").webhooks(spec.webhooks).build().unwrap();
    let keys: Vec<&String> = again
        .openapi
        .webhooks
        .as_ref()
        .unwrap()
        .paths
        .keys()
        .collect();
    assert_eq!(keys.len(), 3);
}

#[test]
fn asyncapi_has_a_channel_per_version() {
    let built = App::new("t", "1").webhook(v3()).build().unwrap();
    let channels = built.asyncapi["channels"].as_object().unwrap();
    let mut keys: Vec<&str> = channels.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "price.changed",
            "price.changed_2025-06-01",
            "price.changed_2026-01-01"
        ]
    );
    let message = &built.asyncapi["components"]["messages"]["price.changed_2025-06-01"];
    assert_eq!(message["x-herald-version"], "2025-06-01");
    assert!(message["headers"]["properties"]["herald-event-version"].is_object());
}

fn refused(app: App, fragment: &str) {
    match app.build() {
        Ok(_) => panic!("should be refused: {fragment}"),
        Err(error) => {
            assert_eq!(error.kind(), ErrorKind::InvalidVersion, "{error}");
            assert!(error.to_string().contains(fragment), "{error}");
        }
    }
}

#[test]
fn versions_that_cannot_be_ordered_are_refused() {
    refused(
        App::new("t", "1").webhook(Webhook::<PriceV1>::post("p").version("June 2026")),
        "a version is a date",
    );
    refused(
        App::new("t", "1").webhook(Webhook::<PriceV1>::post("p").version("2026-13-01")),
        "a version is a date",
    );
    refused(
        App::new("t", "1")
            .webhook(Webhook::<PriceV1>::post("p").version("2026-01-01"))
            .webhook(Webhook::<PriceV2>::post("p").operation_id("p2")),
        "both with and without a version",
    );
    // A "previous" that is newer, or of another webhook.
    let newer = Webhook::<PriceV1>::post("p").version("2027-01-01");
    refused(
        App::new("t", "1").webhook(
            Webhook::<PriceV2>::post("p")
                .version("2026-01-01")
                .previous(newer, |p: PriceV2| PriceV1 {
                    sku: p.sku,
                    price: 0.0,
                }),
        ),
        "the previous version is an older version of the same webhook",
    );
    let other = Webhook::<PriceV1>::post("q").version("2025-01-01");
    refused(
        App::new("t", "1").webhook(
            Webhook::<PriceV2>::post("p")
                .version("2026-01-01")
                .previous(other, |p: PriceV2| PriceV1 {
                    sku: p.sku,
                    price: 0.0,
                }),
        ),
        "the previous version is an older version of the same webhook",
    );
}

#[test]
fn a_version_declared_twice_is_refused_and_once_on_its_own_is_kept_once() {
    // Declared on its own and as the newest's previous: one entry.
    let built = App::new("t", "1")
        .webhook(v1())
        .webhook(v2())
        .build()
        .unwrap();
    assert_eq!(built.webhooks.len(), 2);
    // Two different bodies under one version: a duplicate.
    let error = App::new("t", "1")
        .webhook(Webhook::<PriceV1>::post("p").version("2026-01-01"))
        .webhook(
            Webhook::<PriceV2>::post("p")
                .version("2026-01-01")
                .operation_id("p2"),
        )
        .build()
        .err()
        .unwrap();
    assert_eq!(error.kind(), ErrorKind::DuplicateWebhook);
    assert!(error.to_string().contains("version 2026-01-01"), "{error}");
}

#[test]
fn a_conversion_that_panics_is_an_error_not_a_crash() {
    let panicking = Webhook::<PriceV2>::post("price.changed")
        .version("2026-01-01")
        .previous(v1(), |_: PriceV2| -> PriceV1 { panic!("not written yet") });
    let built = App::new("t", "1").webhook(panicking).build().unwrap();
    let error = built
        .webhooks
        .convert(
            "price.changed",
            "2026-01-01",
            &json!({"sku": "tea", "cents": 1, "currency": "EUR"}),
        )
        .unwrap_err();
    assert!(
        error.contains("the conversion panicked: not written yet"),
        "{error}"
    );
}
