//! The catalogue, test events, the delivery log, retries, figures, replays and links, against
//! a real receiver on 127.0.0.1, on SQLite and PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN, Server, databases, drop_database};

/// A receiver answering whatever status `status` holds.
async fn switchable_receiver() -> (String, Arc<AtomicU16>) {
    let status = Arc::new(AtomicU16::new(200));
    let answer = Arc::clone(&status);
    let app = axum::Router::new().fallback(move || {
        let code = answer.load(Ordering::SeqCst);
        async move {
            (
                StatusCode::from_u16(code).unwrap(),
                [("x-receiver", "test")],
                format!("answered {code}"),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, status)
}

/// Polls `path` until `done` holds (10 s at most).
async fn until(server: &Server, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let (status, body) = server.call("GET", path, Some(ADMIN), None).await;
        assert_eq!(status, 200, "{path}: {body}");
        if done(&body) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} never got there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_log_shows_every_attempt_and_retries_on_demand() {
    for (url, admin) in databases("log").await {
        let server = Server::start(&url).await;
        let (target, status) = switchable_receiver().await;
        let (code, catalogue) = server
            .call("GET", "/api/v1/event-types", Some(ADMIN), None)
            .await;
        assert_eq!(code, 200);
        let types = catalogue["data"].as_array().unwrap();
        assert_eq!(types[0]["name"], "new-subscription");
        assert!(types[0]["schema"].is_object() && types[0]["example"].is_object());

        server
            .call(
                "POST",
                "/api/v1/tenants",
                Some(ADMIN),
                Some(json!({"id": "acme"})),
            )
            .await;
        let (_, endpoint) = server
            .call(
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some(ADMIN),
                Some(json!({"url": target, "event_types": ["new-subscription"]})),
            )
            .await;
        let e = format!(
            "/api/v1/tenants/acme/endpoints/{}",
            endpoint["id"].as_str().unwrap()
        );

        // A test event: the example payload, sent for real, its attempt answered back.
        let (code, test) = server
            .call("POST", &format!("{e}/test"), Some(ADMIN), None)
            .await;
        assert_eq!(code, 200, "{test}");
        let attempt = &test["attempt"];
        assert_eq!(attempt["status_code"], 200, "{test}");
        assert_eq!(attempt["succeeded"], true);
        assert!(
            attempt["request_headers"]["webhook-signature"]
                .as_str()
                .unwrap()
                .starts_with("v1,")
        );
        assert_eq!(attempt["request_headers"]["webhook-id"], test["event_id"]);
        assert_eq!(attempt["response_headers"]["x-receiver"], "test");
        assert_eq!(attempt["response_excerpt"], "answered 200");

        // The receiver fails: the log shows the failure with its response.
        status.store(500, Ordering::SeqCst);
        let (_, failed) = server
            .call("POST", &format!("{e}/test"), Some(ADMIN), None)
            .await;
        assert_eq!(failed["attempt"]["status_code"], 500, "{failed}");
        assert_eq!(failed["attempt"]["succeeded"], false);
        let delivery = failed["delivery_id"].as_str().unwrap();
        let d = format!("/api/v1/tenants/acme/deliveries/{delivery}");
        let (_, detail) = server.call("GET", &d, Some(ADMIN), None).await;
        assert_eq!(detail["event"]["id"], failed["event_id"]);
        assert_eq!(detail["attempts"][0]["number"], 1);
        assert_eq!(detail["attempts"][0]["response_excerpt"], "answered 500");

        // Mended, and retried by hand: it succeeds.
        status.store(200, Ordering::SeqCst);
        let (code, retried) = server
            .call("POST", &format!("{d}/retry"), Some(ADMIN), None)
            .await;
        assert_eq!(code, 202, "{retried}");
        let done = until(&server, &d, |v| v["state"] == "succeeded").await;
        let attempts = done["attempts"].as_array().unwrap();
        assert_eq!(attempts.last().unwrap()["status_code"], 200);
        // Read from the store, which keeps what it cannot rebuild: all of it is shown.
        let sent = &attempts.last().unwrap()["request_headers"];
        assert_eq!(sent["webhook-id"], failed["event_id"], "{sent}");
        assert_eq!(sent["content-type"], "application/json", "{sent}");
        assert!(
            sent["webhook-signature"]
                .as_str()
                .unwrap()
                .starts_with("v1,")
        );
        let timestamp: i64 = sent["webhook-timestamp"].as_str().unwrap().parse().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(timestamp.abs_diff(now as i64) < 60, "{sent}");

        // Lists and filters.
        let listed = |query: &'static str| {
            let server = &server;
            async move {
                let (code, body) = server
                    .call(
                        "GET",
                        &format!("/api/v1/tenants/acme/deliveries{query}"),
                        Some(ADMIN),
                        None,
                    )
                    .await;
                assert_eq!(code, 200, "{query}: {body}");
                body["data"].as_array().unwrap().len()
            }
        };
        assert_eq!(listed("").await, 2);
        assert_eq!(listed("?state=succeeded").await, 2);
        assert_eq!(listed("?state=dead").await, 0);
        assert_eq!(listed("?limit=1").await, 1);
        assert_eq!(
            listed("?since=2000-01-01T00:00:00Z&until=2001-01-01T00:00:00Z").await,
            0
        );
        let (_, page) = server
            .call(
                "GET",
                "/api/v1/tenants/acme/deliveries?limit=1",
                Some(ADMIN),
                None,
            )
            .await;
        let next = page["next"].as_str().unwrap();
        let (_, rest) = server
            .call(
                "GET",
                &format!("/api/v1/tenants/acme/deliveries?limit=1&after={next}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_ne!(rest["data"][0]["id"], page["data"][0]["id"]);
        assert!(rest.get("next").is_none(), "the last page says so");
        let (_, events) = server
            .call(
                "GET",
                "/api/v1/tenants/acme/events?event_type=new-subscription",
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(events["data"].as_array().unwrap().len(), 2);

        for bad in ["?limit=0", "?state=lost", "?since=yesterday", "?limit=x"] {
            let (code, problem) = server
                .call(
                    "GET",
                    &format!("/api/v1/tenants/acme/deliveries{bad}"),
                    Some(ADMIN),
                    None,
                )
                .await;
            assert_eq!(code, 422, "{bad}: {problem}");
        }

        // The chart's figures: three attempts in this hour, one failed.
        let (_, stats) = server
            .call("GET", "/api/v1/tenants/acme/stats", Some(ADMIN), None)
            .await;
        let hours = stats["hours"].as_array().unwrap();
        assert_eq!(hours.len(), 24);
        let sum = |key: &str| hours.iter().map(|h| h[key].as_u64().unwrap()).sum::<u64>();
        assert!(sum("succeeded") >= 2 && sum("failed") >= 1, "{stats}");

        // A replay sends both events again, as a job with progress.
        let (code, replay) = server
            .call(
                "POST",
                &format!("{e}/replay"),
                Some(ADMIN),
                Some(json!({"since": "2000-01-01T00:00:00Z"})),
            )
            .await;
        assert_eq!(code, 202, "{replay}");
        assert_eq!(replay["total"], 2);
        let r = format!(
            "/api/v1/tenants/acme/replays/{}",
            replay["id"].as_str().unwrap()
        );
        let finished = until(&server, &r, |v| v["state"] == "finished").await;
        assert_eq!(finished["done"], 2);
        until(
            &server,
            "/api/v1/tenants/acme/deliveries?state=succeeded",
            |v| v["data"].as_array().unwrap().len() == 4,
        )
        .await;

        // A disabled endpoint is not replayed to: 409, saying why.
        let (code, _) = server
            .call("PATCH", &e, Some(ADMIN), Some(json!({"enabled": false})))
            .await;
        assert_eq!(code, 200);
        let (code, refused) = server
            .call(
                "POST",
                &format!("{e}/replay"),
                Some(ADMIN),
                Some(json!({"since": "2000-01-01T00:00:00Z"})),
            )
            .await;
        assert_eq!(code, 409, "{refused}");
        assert!(
            refused["detail"].as_str().unwrap().contains("disabled"),
            "{refused}"
        );

        drop(server);
        drop_database(&url, admin).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_link_opens_one_tenant_and_bodies_are_bounded() {
    for (url, admin) in databases("links").await {
        let server = Server::start(&url).await;
        server.tenant_with_endpoint("acme").await;
        let (code, link) = server
            .call(
                "POST",
                "/api/v1/tenants/acme/dashboard-link",
                Some(ADMIN),
                Some(json!({"ttl_seconds": 120})),
            )
            .await;
        assert_eq!(code, 201, "{link}");
        let token = link["token"].as_str().unwrap();
        assert_eq!(link["url"], format!("/dashboard#link={token}"));
        let (code, _) = server
            .call("GET", "/api/v1/tenants/acme/endpoints", Some(token), None)
            .await;
        assert_eq!(code, 200, "the link opens its tenant");
        let (code, _) = server
            .call("GET", "/api/v1/tenants", Some(token), None)
            .await;
        assert_eq!(code, 403, "and nothing of the admin's");
        let tampered = token.replacen("hrdl_", "hrdl_x", 1);
        let (code, _) = server
            .call(
                "GET",
                "/api/v1/tenants/acme/endpoints",
                Some(&tampered),
                None,
            )
            .await;
        assert_eq!(code, 401);
        for ttl in [0, 59, 86_401] {
            let (code, _) = server
                .call(
                    "POST",
                    "/api/v1/tenants/acme/dashboard-link",
                    Some(ADMIN),
                    Some(json!({"ttl_seconds": ttl})),
                )
                .await;
            assert_eq!(code, 422, "ttl {ttl}");
        }
        let (code, tenants) = server
            .call("GET", "/api/v1/tenants", Some(ADMIN), None)
            .await;
        // The operator's tenant is listed beside acme.
        let ids: Vec<&str> = tenants["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["id"].as_str())
            .collect();
        assert_eq!((code, ids.contains(&"acme")), (200, true), "{ids:?}");

        let huge = "x".repeat(2 << 20);
        let (code, problem) = server
            .call(
                "POST",
                "/api/v1/tenants/acme/events",
                Some(ADMIN),
                Some(json!({"event_type": "new-subscription", "payload": {"username": huge}})),
            )
            .await;
        assert_eq!(code, 413, "{problem}");
        assert!(problem["detail"].as_str().is_some());
        drop(server);
        drop_database(&url, admin).await;
    }
}
