//! The round trip: herald signs and delivers a typed `new-subscription`; the example receiver
//! verifies it and reads it back into its own type, equal to what was sent.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap should panic loudly

use std::time::Duration;

use herald_example_receiver::{Subscription, router};
use herald_example_seed::{Subscription as Sent, new_subscription};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_herald_sends_the_receiver_verifies_and_reads() {
    let dir = std::env::temp_dir().join(format!("herald-receiver-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let database = format!("sqlite://{}/herald.db", dir.display());
    let mut config = herald_server::Config::new(&database).admin_token("admin");
    config.allow_targets = vec!["127.0.0.0/8".parse().unwrap()];
    let service = herald_server::Service::open(config, herald_example_seed::app().declared())
        .await
        .unwrap();
    let store = service.store();
    let sender = service.sender();

    // The receiver, on a real port.
    let (received_tx, mut received) = tokio::sync::mpsc::unbounded_channel();
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/webhooks/new-subscription",
        socket.local_addr().unwrap()
    );
    store.create_tenant("acme").await.unwrap();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    store
        .create_endpoint(herald_store::NewEndpoint::new("acme", &url, secret))
        .await
        .unwrap();
    let secrets = secret.parse().unwrap();
    tokio::spawn(async move { axum::serve(socket, router(secrets, received_tx)).await });

    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    tokio::spawn(service.serve(herald_example_seed::app(), api, std::future::pending()));

    let sent = Sent {
        username: "rick".into(),
        monthly_fee: 9.99,
        start_date: "2026-11-22T08:00:00Z".parse().unwrap(),
    };
    let accepted = sender
        .send(&new_subscription, &"acme".parse().unwrap(), &sent)
        .await
        .unwrap();
    let (id, subscription) = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id, accepted.event.id);
    assert_eq!(
        subscription,
        Subscription {
            username: sent.username,
            monthly_fee: sent.monthly_fee,
            start_date: sent.start_date,
        }
    );
    let _ = std::fs::remove_dir_all(&dir);
}
