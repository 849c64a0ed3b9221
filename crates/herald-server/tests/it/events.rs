//! What an event may be: a key names one event, and a payload reads the same everywhere.

use serde_json::json;

use crate::support::{ADMIN, Server, databases, drop_database};

const EVENTS: &str = "/api/v1/tenants/acme/events";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_idempotency_key_is_the_same_event_or_a_409() {
    for (url, admin) in databases("idempotency").await {
        let server = Server::start(&url).await;
        server.tenant_with_endpoint("acme").await;
        let event = |fee: f64, key: &str| {
            json!({
                "event_type": "new-subscription",
                "payload": { "username": "rick", "monthly_fee": fee, "start_date": "2026-11-22T00:00:00Z" },
                "idempotency_key": key,
            })
        };
        let (status, first) = server
            .call("POST", EVENTS, Some(ADMIN), Some(event(5.0, "k1")))
            .await;
        assert_eq!((status, &first["duplicate"]), (202, &json!(false)), "{url}");

        // The same event again, member order and spacing aside: the first one, once.
        let same = r#"{"idempotency_key":"k1","event_type":"new-subscription","payload":
            {"start_date":"2026-11-22T00:00:00Z", "monthly_fee":5.0,"username":"rick"}}"#;
        let (status, again) = server
            .call_raw(
                "POST",
                EVENTS,
                Some(ADMIN),
                Some(("application/json", same.into())),
            )
            .await;
        assert_eq!(status, 202, "{url}: {again}");
        assert_eq!(again["id"], first["id"]);
        assert_eq!(again["duplicate"], true);

        // Another payload under the same key: refused, naming the key, nothing stored.
        let (status, refused) = server
            .call("POST", EVENTS, Some(ADMIN), Some(event(9.5, "k1")))
            .await;
        assert_eq!(status, 409, "{url}: {refused}");
        let detail = refused["detail"].as_str().unwrap();
        assert!(
            detail.contains("`k1`") && detail.contains("payload"),
            "{detail}"
        );
        let (_, listed) = server.call("GET", EVENTS, Some(ADMIN), None).await;
        assert_eq!(
            listed["data"].as_array().unwrap().len(),
            1,
            "{url}: {listed}"
        );

        drop(server);
        drop_database(&url, admin).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_named_twice_in_a_payload_is_a_422_naming_it() {
    for (url, admin) in databases("members").await {
        let server = Server::start(&url).await;
        server.tenant_with_endpoint("acme").await;
        let body = r#"{"event_type":"new-subscription","payload":{"username":"rick",
            "monthly_fee":"free","start_date":"2026-11-22T00:00:00Z","monthly_fee":9.5}}"#;
        let (status, refused) = server
            .call_raw(
                "POST",
                EVENTS,
                Some(ADMIN),
                Some(("application/json", body.into())),
            )
            .await;
        assert_eq!(status, 422, "{url}: {refused}");
        assert_eq!(refused["errors"][0]["path"], "/payload/monthly_fee");
        let (_, listed) = server.call("GET", EVENTS, Some(ADMIN), None).await;
        assert_eq!(listed["data"], json!([]), "{url}: nothing stored");
        drop(server);
        drop_database(&url, admin).await;
    }
}
