//! U+0000 is refused alike on both backends, naming where it was (PostgreSQL's `text` cannot
//! hold it: these were 500s there and stored on SQLite); a payload keeps it.

use serde_json::json;

use crate::support::{ADMIN, Server, databases, drop_database};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_in_an_id_a_query_or_a_text_field_is_a_422_naming_it() {
    for (url, admin) in databases("nul").await {
        let server = Server::start(&url).await;
        let endpoint = server.tenant_with_endpoint("acme").await;
        let tenant = "/api/v1/tenants/acme";
        let ep = format!("{tenant}/endpoints/{endpoint}");
        let event = |key: &str| {
            json!({
                "event_type": "new-subscription",
                "payload": { "username": "rick", "monthly_fee": 5.0, "start_date": "2026-11-22T00:00:00Z" },
                "idempotency_key": key,
            })
        };
        let bodies: &[(&str, String, serde_json::Value, &str)] = &[
            (
                "POST",
                format!("{tenant}/tokens"),
                json!({"name": "tok\0en"}),
                "/name",
            ),
            (
                "POST",
                "/api/v1/tenants".into(),
                json!({"id": "a\0b"}),
                "/id",
            ),
            (
                "POST",
                format!("{tenant}/endpoints"),
                json!({"url": "https://example.com/", "description": "x\0"}),
                "/description",
            ),
            (
                "PATCH",
                ep.clone(),
                json!({"description": "x\0"}),
                "/description",
            ),
            (
                "POST",
                format!("{tenant}/endpoints"),
                json!({"url": "https://example.com/", "event_types": ["new-\0subscription"]}),
                "/event_types/0",
            ),
            (
                "POST",
                format!("{tenant}/endpoints"),
                json!({"url": "https://example.com/", "headers": {"X-A\0": "b"}}),
                "/headers/X-A\0",
            ),
            (
                "POST",
                format!("{tenant}/events"),
                event("k\0"),
                "/idempotency_key",
            ),
        ];
        for (method, path, body, field) in bodies {
            let (status, answer) = server
                .call(method, path, Some(ADMIN), Some(body.clone()))
                .await;
            assert_eq!(status, 422, "{url}: {method} {path} {body}: {answer}");
            assert_eq!(answer["errors"][0]["path"], *field, "{answer}");
        }
        let queries = [
            ("/api/v1/tenants/a%00b/endpoints", "tenant"),
            ("/api/v1/tenants/acme%00/tokens", "tenant"),
            ("/api/v1/event-types/new%00", "name"),
            (&format!("{tenant}/endpoints/ep%00x"), "endpoint"),
            (&format!("{tenant}/endpoints/ep%00x/secret"), "endpoint"),
            (&format!("{tenant}/events/evt%00"), "event"),
            (&format!("{tenant}/deliveries/dlv%00"), "delivery"),
            (&format!("{tenant}/replays/rpl%00"), "replay"),
            (&format!("{tenant}/deliveries?after=x%00y"), "after"),
            (&format!("{tenant}/deliveries?endpoint=x%00y"), "endpoint"),
            (&format!("{tenant}/deliveries?event=x%00y"), "event"),
            (
                &format!("{tenant}/deliveries?event_type=x%00y"),
                "event_type",
            ),
            (&format!("{tenant}/events?event_type=%00"), "event_type"),
            (&format!("{tenant}/events?after=%00"), "after"),
            (&format!("{tenant}/endpoints?after=%00"), "after"),
            (&format!("{tenant}/tokens?after=%00"), "after"),
            (&format!("{tenant}/stats?endpoint=%00"), "endpoint"),
            (&format!("{tenant}/stats?x%00=1"), "x\0"),
        ];
        let (status, answer) = server
            .call("GET", "/api/v1/nothing/here", Some(ADMIN), None)
            .await;
        assert_eq!(status, 404, "unknown API paths answer a problem: {answer}");
        for (path, field) in queries {
            let (status, answer) = server.call("GET", path, Some(ADMIN), None).await;
            assert_eq!(status, 422, "{url}: GET {path}: {answer}");
            assert_eq!(answer["errors"][0]["path"], field, "{answer}");
        }
        for path in [
            format!("{tenant}/tokens/tok%00"),
            format!("{tenant}/endpoints/ep%00"),
        ] {
            let (status, answer) = server.call("DELETE", &path, Some(ADMIN), None).await;
            assert_eq!(status, 422, "{url}: DELETE {path}: {answer}");
        }

        // A payload is JSON as it came: a NUL in it is stored and given back on both backends.
        let payload = json!({ "username": "ri\0ck", "monthly_fee": 5.0, "start_date": "2026-11-22T00:00:00Z" });
        let (status, accepted) = server
            .call(
                "POST",
                &format!("{tenant}/events"),
                Some(ADMIN),
                Some(json!({"event_type": "new-subscription", "payload": payload})),
            )
            .await;
        assert_eq!(status, 202, "{url}: {accepted}");
        let id = accepted["id"].as_str().unwrap();
        let (status, stored) = server
            .call("GET", &format!("{tenant}/events/{id}"), Some(ADMIN), None)
            .await;
        assert_eq!(status, 200, "{stored}");
        assert_eq!(stored["payload"], payload, "{url}");

        drop(server);
        drop_database(&url, admin).await;
    }
}

/// A receiver's answer is not ours to refuse: a NUL in its body is stored as U+FFFD, as a byte
/// that is not text is, and the delivery succeeds. On PostgreSQL the attempt could not be
/// recorded at all before: the delivery was sent again and again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_answering_nul_bytes_is_recorded_and_succeeds() {
    let app = axum::Router::new().fallback(|| async { "ok\0done" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    for (url, admin) in databases("nul_answer").await {
        let server = Server::start(&url).await;
        let tenant = "/api/v1/tenants/acme";
        server.tenant_with_endpoint_at("acme", &target).await;
        let payload =
            json!({ "username": "rick", "monthly_fee": 5.0, "start_date": "2026-11-22T00:00:00Z" });
        let (status, accepted) = server
            .call(
                "POST",
                &format!("{tenant}/events"),
                Some(ADMIN),
                Some(json!({"event_type": "new-subscription", "payload": payload})),
            )
            .await;
        assert_eq!(status, 202, "{url}: {accepted}");
        let event = accepted["id"].as_str().unwrap();
        let mut delivery = serde_json::Value::Null;
        for _ in 0..200 {
            let (_, list) = server
                .call(
                    "GET",
                    &format!("{tenant}/deliveries?event={event}"),
                    Some(ADMIN),
                    None,
                )
                .await;
            delivery = list["data"][0].clone();
            if delivery["state"] == "succeeded" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(delivery["state"], "succeeded", "{url}: {delivery}");
        let id = delivery["id"].as_str().unwrap();
        let (_, detail) = server
            .call(
                "GET",
                &format!("{tenant}/deliveries/{id}"),
                Some(ADMIN),
                None,
            )
            .await;
        let attempts = detail["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1, "{url}: sent once: {detail}");
        assert_eq!(attempts[0]["status_code"], 200);
        assert_eq!(attempts[0]["response_excerpt"], "ok\u{FFFD}done", "{url}");
        drop(server);
        drop_database(&url, admin).await;
    }
}
