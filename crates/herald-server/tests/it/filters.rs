//! Channels and payload filters over HTTP: real receivers get exactly what their endpoint's
//! channels and filter let through; a filter that cannot match a payload is refused when it is
//! saved; a preview says what a filter would have matched; a replay keeps to both.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{ADMIN, Answer, Server, TestReceiver, databases, drop_database};

fn subscription(fee: f64) -> Value {
    json!({ "username": "rick", "monthly_fee": fee, "start_date": "2026-11-22T08:00:00Z" })
}

async fn call(server: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    server.call(method, path, Some(ADMIN), body).await
}

async fn endpoint(server: &Server, body: Value) -> String {
    let (status, created) =
        call(server, "POST", "/api/v1/tenants/acme/endpoints", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

async fn send(server: &Server, fee: f64, channels: &[&str]) -> String {
    let body = json!({
        "event_type": "new-subscription", "payload": subscription(fee), "channels": channels
    });
    let (status, event) = call(server, "POST", "/api/v1/tenants/acme/events", Some(body)).await;
    assert_eq!(status, 202, "{event}");
    event["id"].as_str().unwrap().to_owned()
}

/// The ids `receiver` got, sorted, once `count` have arrived (and a moment more for strays).
async fn got(receiver: &TestReceiver, count: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while receiver.arrivals().len() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "{count} never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ids: Vec<String> = receiver
        .arrivals()
        .into_iter()
        .map(|a| a.webhook_id)
        .collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_and_filters_decide_what_each_endpoint_receives() {
    for (url, admin) in databases("filters").await {
        let server = Server::start(&url).await;
        let (eu, big, all) = (
            TestReceiver::start(Answer::Ok).await,
            TestReceiver::start(Answer::Ok).await,
            TestReceiver::start(Answer::Ok).await,
        );
        call(
            &server,
            "POST",
            "/api/v1/tenants",
            Some(json!({ "id": "acme" })),
        )
        .await;

        // Refused when saved: a path no payload has, a value the payload cannot hold there, a
        // test that is not one, a channel with a space.
        for (body, path) in [
            (json!({"path": "/monthly_fe", "gt": 10}), "/filter/path"),
            (json!({"path": "/monthly_fee", "eq": "ten"}), "/filter"),
            (
                json!({"or": [{"path": "/username", "like": "r%"}]}),
                "/filter/or/0",
            ),
        ] {
            let (status, problem) = call(
                &server,
                "POST",
                "/api/v1/tenants/acme/endpoints",
                Some(
                    json!({ "url": big.url, "event_types": ["new-subscription"], "filter": body }),
                ),
            )
            .await;
            assert_eq!(status, 422, "{body}: {problem}");
            assert_eq!(problem["errors"][0]["path"], path, "{body}: {problem}");
        }
        let (status, problem) = call(
            &server,
            "POST",
            "/api/v1/tenants/acme/endpoints",
            Some(json!({ "url": eu.url, "channels": ["e u"] })),
        )
        .await;
        assert_eq!(
            (status, problem["errors"][0]["path"].as_str()),
            (422, Some("/channels/0"))
        );

        let eu_id = endpoint(&server, json!({ "url": eu.url, "channels": ["eu"] })).await;
        let big_id = endpoint(
            &server,
            json!({
                "url": big.url, "event_types": ["new-subscription"],
                "filter": {"and": [{"path": "/monthly_fee", "gte": 10}, {"not": {"path": "/username", "in": ["test"]}}]}
            }),
        )
        .await;
        endpoint(&server, json!({ "url": all.url })).await;

        let small_eu = send(&server, 5.0, &["eu"]).await;
        let big_none = send(&server, 20.0, &[]).await;
        let big_us = send(&server, 50.0, &["us", "ca"]).await;
        assert_eq!(
            got(&eu, 1).await,
            std::slice::from_ref(&small_eu),
            "only the eu channel"
        );
        assert_eq!(
            got(&big, 2).await,
            sorted(vec![big_none.clone(), big_us.clone()]),
            "only fees of 10 and more"
        );
        assert_eq!(
            got(&all, 3).await,
            sorted(vec![small_eu.clone(), big_none.clone(), big_us.clone()]),
            "no channels, no filter: everything"
        );

        // The endpoint shows them; the preview says what a filter would have matched.
        let (_, shown) = call(
            &server,
            "GET",
            &format!("/api/v1/tenants/acme/endpoints/{big_id}"),
            None,
        )
        .await;
        assert_eq!(shown["filter"]["and"][0]["gte"], 10, "{shown}");
        let (_, shown) = call(
            &server,
            "GET",
            &format!("/api/v1/tenants/acme/endpoints/{eu_id}"),
            None,
        )
        .await;
        assert_eq!(shown["channels"], json!(["eu"]));
        let (status, preview) = call(
            &server,
            "POST",
            "/api/v1/tenants/acme/filter-preview",
            Some(json!({ "event_types": ["new-subscription"], "filter": {"path": "/monthly_fee", "gt": 30} })),
        )
        .await;
        assert_eq!(status, 200, "{preview}");
        assert_eq!(preview["checked"], 3);
        let matched: Vec<&str> = preview["matched"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        assert_eq!(matched, [big_us.as_str()]);
        let (status, problem) = call(
            &server,
            "POST",
            "/api/v1/tenants/acme/filter-preview",
            Some(json!({ "filter": {"path": "/nope", "exists": true} })),
        )
        .await;
        assert_eq!(
            (status, problem["errors"][0]["path"].as_str()),
            (422, Some("/filter/path"))
        );

        // A replay sends again only what the filter takes.
        let (status, replay) = call(
            &server,
            "POST",
            &format!("/api/v1/tenants/acme/endpoints/{big_id}/replay"),
            Some(json!({ "since": "2020-01-01T00:00:00Z" })),
        )
        .await;
        assert_eq!(status, 202, "{replay}");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (_, state) = call(
                &server,
                "GET",
                &format!(
                    "/api/v1/tenants/acme/replays/{}",
                    replay["id"].as_str().unwrap()
                ),
                None,
            )
            .await;
            if state["state"] == "finished" {
                assert_eq!(state["done"], state["total"], "{state}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{state}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let again = got(&big, 4).await;
        assert_eq!(
            again.iter().filter(|id| **id == small_eu).count(),
            0,
            "{again:?}"
        );

        // Removed with null: everything again.
        let (status, patched) = call(
            &server,
            "PATCH",
            &format!("/api/v1/tenants/acme/endpoints/{big_id}"),
            Some(json!({ "filter": null })),
        )
        .await;
        assert_eq!(
            (status, &patched["filter"]),
            (200, &Value::Null),
            "{patched}"
        );
        let small = send(&server, 1.0, &[]).await;
        assert!(got(&big, 5).await.contains(&small));
        drop_database(&url, admin).await;
    }
}
