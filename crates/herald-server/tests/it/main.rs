//! herald-server as an application embeds it and as clients call it: typed sends from Rust
//! reach a real receiver; the management API answers on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap should panic loudly

mod access;
mod document;
mod endpoints;
mod events;
mod filters;
mod http;
mod input;
mod log;
mod nul;
mod outbox;
mod retention;
mod scheduler;
mod signing;
mod support;
mod versions;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use herald_example_seed::{Subscription, new_subscription};
use herald_server::{Config, Service};
use herald_signature::{Secret, Signed};
use herald_store::NewEndpoint;

type Received = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let sink = Arc::clone(&received);
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let sink = Arc::clone(&sink);
        async move { sink.lock().unwrap().push((headers, body)) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_send_arrives_as_its_documented_json() {
    let dir = std::env::temp_dir().join(format!("herald-server-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config =
        Config::new(&format!("sqlite://{}/send.db", dir.display())).admin_token("token");
    config.allow_targets = vec!["127.0.0.0/8".parse().unwrap()];
    let service = Service::open(config, herald_example_seed::app().declared())
        .await
        .unwrap();
    let (url, received) = receiver().await;
    let store = service.store();
    store.create_tenant("acme").await.unwrap();
    let secret = Secret::generate().unwrap().expose();
    store
        .create_endpoint(NewEndpoint::new("acme", &url, &secret))
        .await
        .unwrap();

    let sender = service.sender();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(service.serve(herald_example_seed::app(), listener, async {
        let _ = stopped.await;
    }));

    let subscription = Subscription {
        username: "rick".into(),
        monthly_fee: 9.99,
        start_date: "2026-11-22T08:00:00Z".parse().unwrap(),
    };
    let accepted = sender
        .send(&new_subscription, &"acme".parse().unwrap(), &subscription)
        .await
        .unwrap();
    assert_eq!(accepted.event.event_type, "new-subscription");
    assert_eq!(accepted.deliveries, 1);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (headers, body) = loop {
        if let Some(first) = received.lock().unwrap().first().cloned() {
            break first;
        }
        assert!(tokio::time::Instant::now() < deadline, "nothing arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(header("webhook-id"), accepted.event.id);
    let decoded: Subscription = serde_json::from_slice(&body).unwrap();
    assert_eq!(decoded, subscription);
    Signed {
        id: &header("webhook-id"),
        timestamp: &header("webhook-timestamp"),
        signature: &header("webhook-signature"),
        body: &body,
    }
    .verify(&[secret.parse().unwrap()], std::time::SystemTime::now())
    .unwrap();

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
