//! The shop as its users see it, over HTTP: the event exists if and only if the subscription
//! commits, its delivery arrives at a real receiver and verifies, and herald answers under
//! `/herald`, behind the shop's middleware.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap should panic loudly

use std::time::Duration;

use herald::receiver::{Secrets, Verified};
use herald_example_shop::Subscription;
use serde_json::{Value, json};
use tokio::sync::mpsc;

const ADMIN: &str = "shop-admin-token";

struct Shop {
    base: String,
    client: reqwest::Client,
    _dir: TempDir,
}

/// A directory under the system's temporary one, removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Shop {
    async fn start(name: &str) -> Shop {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = std::env::temp_dir().join(format!("herald-shop-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = herald::Config::sqlite(dir.join("shop.db"))
            .allow_target("127.0.0.0/8".parse().unwrap())
            .admin_token(ADMIN);
        let (router, running, _herald) = herald_example_shop::start(config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = herald::axum::serve(listener, router).await;
            running.shutdown().await;
        });
        Shop {
            base,
            client: reqwest::Client::new(),
            _dir: TempDir(dir),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        tokio::time::timeout(Duration::from_secs(10), request.send())
            .await
            .expect("answered within 10 s")
            .unwrap()
    }

    async fn json(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.call(method, path, body).await.json().await.unwrap()
    }
}

#[tokio::test]
async fn the_event_exists_if_and_only_if_the_subscription_commits() {
    let shop = Shop::start("commit").await;
    let created = shop
        .call(
            reqwest::Method::POST,
            "/herald/api/v1/tenants",
            Some(json!({"id": "acme"})),
        )
        .await;
    assert_eq!(created.status(), 201);

    let rick = json!({"username": "rick", "monthly_fee_cents": 999});
    let first = shop
        .call(
            reqwest::Method::POST,
            "/merchants/acme/subscriptions",
            Some(rick.clone()),
        )
        .await;
    assert_eq!(first.status(), 201);
    // The same customer again: the insert fails after the event was stored in the
    // transaction, and the event goes with the rollback.
    let again = shop
        .call(
            reqwest::Method::POST,
            "/merchants/acme/subscriptions",
            Some(rick),
        )
        .await;
    assert_eq!(again.status(), 409);

    let events = shop
        .json(
            reqwest::Method::GET,
            "/herald/api/v1/tenants/acme/events",
            None,
        )
        .await;
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event_type"], "new-subscription");
    assert_eq!(events[0]["payload"]["username"], "rick");
}

#[tokio::test]
async fn the_merchant_receives_a_verified_webhook() {
    let shop = Shop::start("deliver").await;
    shop.call(
        reqwest::Method::POST,
        "/herald/api/v1/tenants",
        Some(json!({"id": "acme"})),
    )
    .await;

    // The merchant's receiver: a real server on loopback, checking signatures with
    // herald's receiver extractor.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let endpoint = shop
        .json(
            reqwest::Method::POST,
            "/herald/api/v1/tenants/acme/endpoints",
            Some(json!({"url": url, "event_types": ["new-subscription"]})),
        )
        .await;
    let secrets: Secrets = endpoint["secret"].as_str().unwrap().parse().unwrap();
    let (received, mut arrivals) = mpsc::unbounded_channel();
    let receiver = herald::axum::Router::new()
        .route(
            "/hooks",
            herald::axum::routing::post(
                async move |Verified { id, body, .. }: Verified<Subscription>| {
                    let _ = received.send((id, body));
                    herald::axum::http::StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(secrets);
    tokio::spawn(async move { herald::axum::serve(listener, receiver).await });

    let morty = Subscription {
        username: "morty".into(),
        monthly_fee_cents: 499,
    };
    let answer = shop
        .call(
            reqwest::Method::POST,
            "/merchants/acme/subscriptions",
            Some(serde_json::to_value(&morty).unwrap()),
        )
        .await;
    assert_eq!(answer.status(), 201);
    let (id, body) = tokio::time::timeout(Duration::from_secs(10), arrivals.recv())
        .await
        .expect("delivered within 10 s")
        .unwrap();
    assert_eq!(body, morty);
    assert!(id.starts_with("evt_"), "{id}");
}

#[tokio::test]
async fn herald_is_nested_behind_the_shops_middleware_with_two_documents() {
    let shop = Shop::start("nested").await;

    let own = shop.call(reqwest::Method::GET, "/openapi.json", None).await;
    assert_eq!(own.headers()["x-served-by"], "shop");
    let own: Value = own.json().await.unwrap();
    assert!(own["paths"]["/merchants/{merchant}/subscriptions"]["post"].is_object());
    assert!(own["webhooks"]["new-subscription"]["post"].is_object());
    let paths: Vec<&String> = own["paths"].as_object().unwrap().keys().collect();
    assert_eq!(
        paths,
        ["/merchants/{merchant}/subscriptions"],
        "only the shop's own"
    );

    let api = shop
        .call(reqwest::Method::GET, "/herald/api/v1/openapi.json", None)
        .await;
    assert_eq!(api.status(), 200);
    assert_eq!(api.headers()["x-served-by"], "shop");
    let api: Value = api.json().await.unwrap();
    assert_eq!(api["info"]["title"], "herald");
    assert_eq!(
        api["servers"][0]["url"], "/herald",
        "try-it-out calls land under /herald"
    );
    assert!(api["paths"]["/api/v1/tenants"]["post"].is_object());

    for page in [
        "/herald/api/v1/docs",
        "/herald/dashboard",
        "/herald/health",
        "/docs",
    ] {
        let answer = shop.call(reqwest::Method::GET, page, None).await;
        assert_eq!(answer.status(), 200, "{page}");
        assert_eq!(answer.headers()["x-served-by"], "shop", "{page}");
    }
    // herald's routes are where it was nested, not at the root.
    let root = shop
        .call(reqwest::Method::GET, "/api/v1/tenants", None)
        .await;
    assert_eq!(root.status(), 404);

    shop.call(
        reqwest::Method::POST,
        "/herald/api/v1/tenants",
        Some(json!({"id": "acme"})),
    )
    .await;
    let link = shop
        .json(
            reqwest::Method::POST,
            "/herald/api/v1/tenants/acme/dashboard-link",
            None,
        )
        .await;
    assert!(
        link["url"]
            .as_str()
            .unwrap()
            .starts_with("/herald/dashboard#link="),
        "{link}"
    );
}
