//! Versioned webhooks over HTTP: endpoints pin versions, one event reaches each in its own
//! version (converted by the application's code), signed over the bytes sent.

use std::time::{Duration, SystemTime};

use herald_signature::{Key, Signed};
use serde_json::{Value, json};

use crate::support::{ADMIN, Answer, Arrival, Server, TestReceiver, databases, drop_database};

const OLD: &str = "2026-01-01";
const NEW: &str = "2026-12-01";

fn renewal() -> Value {
    json!({ "username": "rick", "fee": { "amount": 1250, "currency": "EUR" } })
}

async fn endpoint(server: &Server, url: &str, version: Option<&str>) -> (String, String) {
    let mut body = json!({ "url": url, "event_types": ["subscription-renewed"] });
    if let Some(version) = version {
        body["version"] = version.into();
    }
    let (status, created) = server
        .call(
            "POST",
            "/api/v1/tenants/acme/endpoints",
            Some(ADMIN),
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

async fn send(server: &Server, event: Value) -> (u16, Value) {
    server
        .call(
            "POST",
            "/api/v1/tenants/acme/events",
            Some(ADMIN),
            Some(event),
        )
        .await
}

async fn arrival(receiver: &TestReceiver, id: &str) -> Arrival {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(a) = receiver.arrivals().into_iter().find(|a| a.webhook_id == id) {
            return a;
        }
        assert!(std::time::Instant::now() < deadline, "{id} never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Checks `arrival` is signed with `secret` over its body, and its body matches `schema`.
fn verified(arrival: &Arrival, secret: &str, schema: &Value) -> Value {
    let key = Key::Secret(secret.parse().unwrap());
    Signed {
        id: &arrival.webhook_id,
        timestamp: &arrival.timestamp,
        signature: &arrival.signature,
        body: arrival.body.as_bytes(),
    }
    .verify_with(&[key], SystemTime::now())
    .unwrap();
    let body: Value = serde_json::from_str(&arrival.body).unwrap();
    let validator = jsonschema::validator_for(schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{body}: {errors:?}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_endpoint_receives_the_version_it_pins() {
    for (url, admin) in databases("versions").await {
        let server = Server::start(&url).await;
        let (old_receiver, new_receiver) = (
            TestReceiver::start(Answer::Ok).await,
            TestReceiver::start(Answer::Ok).await,
        );
        let (status, _) = server
            .call(
                "POST",
                "/api/v1/tenants",
                Some(ADMIN),
                Some(json!({ "id": "acme" })),
            )
            .await;
        assert_eq!(status, 201);

        // The catalogue lists both versions, each with its schema.
        let (status, catalogue) = server
            .call(
                "GET",
                "/api/v1/event-types/subscription-renewed",
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(catalogue["version"], NEW);
        let versions = catalogue["versions"].as_array().unwrap();
        assert_eq!(versions[0]["version"], OLD);
        assert_eq!(versions[1]["converts_to"], OLD);
        let (old_schema, new_schema) = (&versions[0]["schema"], &versions[1]["schema"]);

        // Pins: a declared version, or the newest by default; anything else is a 422.
        let (status, problem) = server
            .call(
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some(ADMIN),
                Some(json!({ "url": old_receiver.url, "version": "2026-06-01" })),
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["path"], "/version", "{problem}");
        let (old, old_secret) = endpoint(&server, &old_receiver.url, Some(OLD)).await;
        let (new, new_secret) = endpoint(&server, &new_receiver.url, None).await;
        let (_, read) = server
            .call(
                "GET",
                &format!("/api/v1/tenants/acme/endpoints/{new}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(read["version"], NEW, "the newest at creation");

        // One event, sent in the newest version: each endpoint gets its own.
        let (status, accepted) = send(
            &server,
            json!({ "event_type": "subscription-renewed", "payload": renewal() }),
        )
        .await;
        assert_eq!(status, 202, "{accepted}");
        assert_eq!(accepted["deliveries"], 2);
        assert_eq!(accepted["version"], NEW);
        let id = accepted["id"].as_str().unwrap();
        let (at_old, at_new) = (
            arrival(&old_receiver, id).await,
            arrival(&new_receiver, id).await,
        );
        assert_eq!(at_old.version, OLD);
        assert_eq!(at_new.version, NEW);
        assert_eq!(
            verified(&at_old, &old_secret, old_schema),
            json!({ "username": "rick", "monthly_fee": 12.5 })
        );
        assert_eq!(verified(&at_new, &new_secret, new_schema), renewal());
        // The log shows what each endpoint was sent: the conversion, for the old one.
        let (_, log) = server
            .call(
                "GET",
                &format!("/api/v1/tenants/acme/deliveries?event={id}"),
                Some(ADMIN),
                None,
            )
            .await;
        for delivery in log["data"].as_array().unwrap() {
            let detail = loop {
                let path = format!(
                    "/api/v1/tenants/acme/deliveries/{}",
                    delivery["id"].as_str().unwrap()
                );
                let (_, detail) = server.call("GET", &path, Some(ADMIN), None).await;
                if !detail["attempts"].as_array().unwrap().is_empty() {
                    break detail;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            assert_eq!(detail["event"]["payload"], renewal());
            if delivery["endpoint_id"] == old.as_str() {
                assert_eq!(detail["sent"]["version"], OLD, "{detail}");
                assert_eq!(
                    detail["sent"]["payload"],
                    serde_json::from_str::<Value>(&at_old.body).unwrap()
                );
            } else {
                assert!(detail.get("sent").is_none(), "{detail}");
            }
        }

        // The old version sent directly reaches only the endpoint that receives it.
        let (status, accepted) = send(
            &server,
            json!({
                "event_type": "subscription-renewed",
                "version": OLD,
                "payload": { "username": "morty", "monthly_fee": 3.0 },
            }),
        )
        .await;
        assert_eq!(status, 202, "{accepted}");
        assert_eq!(accepted["deliveries"], 1);
        let at_old = arrival(&old_receiver, accepted["id"].as_str().unwrap()).await;
        assert_eq!(at_old.version, OLD);

        // Wrong versions and bodies are refused, saying why.
        for (event, path) in [
            (
                json!({ "event_type": "subscription-renewed", "version": "2027-01-01", "payload": renewal() }),
                "/version",
            ),
            (
                json!({ "event_type": "new-subscription", "version": OLD, "payload": { "username": "a", "monthly_fee": 1.0, "start_date": "2026-01-01T00:00:00Z" } }),
                "/version",
            ),
            (
                // An old body without its version is checked against the newest schema.
                json!({ "event_type": "subscription-renewed", "payload": { "username": "a", "monthly_fee": 1.0 } }),
                "/payload",
            ),
        ] {
            let (status, problem) = send(&server, event).await;
            assert_eq!(status, 422, "{problem}");
            assert_eq!(problem["errors"][0]["path"], path, "{problem}");
        }

        // An idempotency key names one event, version included.
        let keyed = |version: Option<&str>, payload: Value| {
            let mut event = json!({ "event_type": "subscription-renewed", "payload": payload,
                                    "idempotency_key": "renewal-1" });
            if let Some(version) = version {
                event["version"] = version.into();
            }
            event
        };
        let (status, first) = send(&server, keyed(None, renewal())).await;
        assert_eq!(status, 202, "{first}");
        let (status, again) = send(&server, keyed(Some(NEW), renewal())).await;
        assert_eq!(
            (status, &again["id"]),
            (202, &first["id"]),
            "the newest, named"
        );
        let old_body = json!({ "username": "rick", "monthly_fee": 12.5 });
        let (status, problem) = send(&server, keyed(Some(OLD), old_body)).await;
        assert_eq!(status, 409, "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("different version"),
            "{problem}"
        );

        // A test event goes in the endpoint's own version.
        let (status, tested) = server
            .call(
                "POST",
                &format!("/api/v1/tenants/acme/endpoints/{old}/test"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(status, 200, "{tested}");
        let at_old = arrival(&old_receiver, tested["event_id"].as_str().unwrap()).await;
        assert_eq!(at_old.version, OLD);
        verified(&at_old, &old_secret, old_schema);

        // Moved to the newest version, the old endpoint gets the newest body.
        let (status, moved) = server
            .call(
                "PATCH",
                &format!("/api/v1/tenants/acme/endpoints/{old}"),
                Some(ADMIN),
                Some(json!({ "version": NEW })),
            )
            .await;
        assert_eq!(status, 200, "{moved}");
        assert_eq!(moved["version"], NEW);
        let (status, problem) = server
            .call(
                "PATCH",
                &format!("/api/v1/tenants/acme/endpoints/{old}"),
                Some(ADMIN),
                Some(json!({ "version": "yesterday" })),
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        let (_, accepted) = send(
            &server,
            json!({ "event_type": "subscription-renewed", "payload": renewal() }),
        )
        .await;
        let at_old = arrival(&old_receiver, accepted["id"].as_str().unwrap()).await;
        assert_eq!(at_old.version, NEW);
        assert_eq!(verified(&at_old, &old_secret, new_schema), renewal());

        drop(server);
        drop_database(&url, admin).await;
    }
}
