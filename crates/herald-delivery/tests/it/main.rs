//! Delivery end to end: a real store, the real worker and client, a real HTTP receiver.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap should panic loudly

mod receiver;

use std::sync::Arc;
use std::time::Duration;

use herald_delivery::client::{Client, ClientConfig};
use herald_delivery::retry::RetryPolicy;
use herald_delivery::target::{TargetPolicy, parse_range};
use herald_delivery::worker::{Worker, WorkerConfig};
use herald_signature::{Secret, Signed};
use herald_store::sqlite::SqliteStore;
use herald_store::{Delivery, DeliveryState, Endpoint, NewEndpoint, NewEvent, Store};
use tokio::sync::watch;

use crate::receiver::{Answer, Receiver, status};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WAIT: Duration = Duration::from_secs(10);

struct Harness {
    store: Arc<dyn Store>,
    stop: watch::Sender<bool>,
    worker: tokio::task::JoinHandle<()>,
}

impl Harness {
    /// A store with tenant `acme`, and a worker on a compressed schedule: `attempts` tries,
    /// 100 ms apart, no jitter; requests time out after 300 ms; loopback allowed unless
    /// `guarded`.
    async fn start(attempts: usize, guarded: bool) -> Harness {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().await.unwrap());
        store.create_tenant("acme").await.unwrap();
        let mut policy = TargetPolicy::new();
        if !guarded {
            policy = policy.allow(parse_range("127.0.0.0/8").unwrap());
        }
        let client = Client::new(ClientConfig {
            policy,
            timeout: Duration::from_millis(300),
            ..ClientConfig::default()
        })
        .unwrap();
        let mut delays = vec![Duration::ZERO];
        delays.resize(attempts, Duration::from_millis(100));
        let config = WorkerConfig {
            retry: RetryPolicy::new(delays, 0.0),
            poll: Duration::from_millis(50),
            ..WorkerConfig::new("test")
        };
        let worker = Worker::new(
            Arc::clone(&store) as Arc<dyn herald_store::Queue>,
            client,
            config,
        );
        let (stop, stopped) = watch::channel(false);
        let worker = tokio::spawn(worker.run(stopped));
        Harness {
            store,
            stop,
            worker,
        }
    }

    async fn endpoint(&self, url: &str) -> Endpoint {
        let mut new = NewEndpoint::new("acme", url, SECRET);
        new.headers.insert("x-team".into(), "billing".into());
        self.store.create_endpoint(new).await.unwrap()
    }

    async fn send(&self, payload: &str) -> String {
        let accepted = self
            .store
            .accept_event(NewEvent::new("acme", "new-subscription", payload))
            .await
            .unwrap();
        accepted.event.id
    }

    /// Waits until the event's only delivery leaves `pending`.
    async fn settled(&self, event_id: &str) -> Delivery {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let deliveries = self
                .store
                .deliveries_of_event("acme", event_id)
                .await
                .unwrap();
            if deliveries[0].state != DeliveryState::Pending {
                return deliveries[0].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still pending: {deliveries:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(WAIT, self.worker)
            .await
            .unwrap()
            .unwrap();
    }
}

fn verify(received: &receiver::Received) {
    let signed = Signed {
        id: received.header("webhook-id"),
        timestamp: received.header("webhook-timestamp"),
        signature: received.header("webhook-signature"),
        body: &received.body,
    };
    let secret: Secret = SECRET.parse().unwrap();
    signed
        .verify(&[secret], std::time::SystemTime::now())
        .unwrap();
}

#[tokio::test]
async fn delivered_signed_the_first_time() {
    let receiver = Receiver::start(vec![]).await;
    let harness = Harness::start(3, false).await;
    harness.endpoint(&receiver.url("/hooks")).await;
    let payload = r#"{"username":"rick","monthly_fee":9.99,"start_date":"2026-11-22T08:00:00Z"}"#;
    let event_id = harness.send(payload).await;

    let received = receiver.wait_for(1, WAIT).await;
    let request = &received[0];
    assert_eq!(request.path, "/hooks");
    assert_eq!(request.body, payload.as_bytes(), "the body byte for byte");
    assert_eq!(request.header("webhook-id"), event_id);
    assert_eq!(request.header("content-type"), "application/json");
    assert_eq!(request.header("x-team"), "billing");
    assert!(request.header("user-agent").starts_with("herald/"));
    verify(request);

    let delivery = harness.settled(&event_id).await;
    assert_eq!(
        (delivery.state, delivery.attempts),
        (DeliveryState::Succeeded, 1)
    );
    let attempts = harness.store.attempts("acme", &delivery.id).await.unwrap();
    assert_eq!(attempts[0].status_code, Some(200));
    harness.stop().await;
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_id() {
    let receiver = Receiver::start(vec![status(500), status(503)]).await;
    let harness = Harness::start(5, false).await;
    harness.endpoint(&receiver.url("/")).await;
    let event_id = harness.send("{}").await;

    let received = receiver.wait_for(3, WAIT).await;
    assert!(received.iter().all(|r| r.header("webhook-id") == event_id));
    received.iter().for_each(verify);
    let delivery = harness.settled(&event_id).await;
    assert_eq!(
        (delivery.state, delivery.attempts),
        (DeliveryState::Succeeded, 3)
    );
    let statuses: Vec<_> = harness
        .store
        .attempts("acme", &delivery.id)
        .await
        .unwrap()
        .iter()
        .map(|a| a.status_code)
        .collect();
    assert_eq!(statuses, [Some(500), Some(503), Some(200)]);
    harness.stop().await;
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_it_once_it_is_up() {
    // Reserve a port, then free it: nothing listens there until the receiver starts.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let harness = Harness::start(30, false).await;
    harness.endpoint(&format!("http://{port}/")).await;
    let event_id = harness.send("{}").await;

    tokio::time::sleep(Duration::from_millis(350)).await;
    let receiver = Receiver::serve(tokio::net::TcpListener::bind(port).await.unwrap(), vec![]);
    receiver.wait_for(1, WAIT).await;
    let delivery = harness.settled(&event_id).await;
    assert_eq!(delivery.state, DeliveryState::Succeeded);
    assert!(delivery.attempts >= 2, "{delivery:?}");
    let first = &harness.store.attempts("acme", &delivery.id).await.unwrap()[0];
    assert_eq!(first.status_code, None);
    assert!(
        first.error.as_deref().unwrap().contains("onnect"),
        "{first:?}"
    );
    harness.stop().await;
}

#[tokio::test]
async fn a_slow_receiver_times_out_and_is_retried() {
    let slow = Answer {
        status: 200,
        delay: Duration::from_secs(2),
        ..Answer::default()
    };
    let receiver = Receiver::start(vec![slow]).await;
    let harness = Harness::start(3, false).await;
    harness.endpoint(&receiver.url("/")).await;
    let event_id = harness.send("{}").await;

    receiver.wait_for(2, WAIT).await;
    let delivery = harness.settled(&event_id).await;
    assert_eq!(
        (delivery.state, delivery.attempts),
        (DeliveryState::Succeeded, 2)
    );
    let attempts = harness.store.attempts("acme", &delivery.id).await.unwrap();
    assert_eq!(attempts[0].error.as_deref(), Some("timed out"));
    assert!(
        attempts[0].duration_ms >= 300 && attempts[0].duration_ms < 1500,
        "{attempts:?}"
    );
    harness.stop().await;
}

#[tokio::test]
async fn gone_disables_the_endpoint() {
    let receiver = Receiver::start(vec![status(410)]).await;
    let harness = Harness::start(5, false).await;
    let endpoint = harness.endpoint(&receiver.url("/")).await;
    let event_id = harness.send("{}").await;

    let delivery = harness.settled(&event_id).await;
    assert_eq!(
        (delivery.state, delivery.attempts),
        (DeliveryState::Dead, 1)
    );
    let endpoint = harness
        .store
        .endpoint("acme", &endpoint.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!endpoint.enabled);
    assert_eq!(
        endpoint.disabled_reason.as_deref(),
        Some("the endpoint answered 410 Gone")
    );
    // A later event is recorded as skipped, and never sent.
    let later = harness.send("{}").await;
    let skipped = harness
        .store
        .deliveries_of_event("acme", &later)
        .await
        .unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].state, DeliveryState::Skipped);
    assert_eq!(receiver.received().len(), 1);
    harness.stop().await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let busy = Answer {
        status: 429,
        headers: vec![("retry-after", "1".into())],
        ..Answer::default()
    };
    let receiver = Receiver::start(vec![busy]).await;
    let harness = Harness::start(3, false).await;
    harness.endpoint(&receiver.url("/")).await;
    let event_id = harness.send("{}").await;

    let received = receiver.wait_for(2, WAIT).await;
    let waited = received[1].at - received[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}, not the 1 s asked"
    );
    assert_eq!(
        harness.settled(&event_id).await.state,
        DeliveryState::Succeeded
    );
    harness.stop().await;
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let redirect = Answer {
        status: 302,
        headers: vec![("location", "/elsewhere".into())],
        ..Answer::default()
    };
    let receiver = Receiver::start(vec![redirect]).await;
    let harness = Harness::start(3, false).await;
    harness.endpoint(&receiver.url("/hook")).await;
    let event_id = harness.send("{}").await;

    let delivery = harness.settled(&event_id).await;
    assert_eq!(
        (delivery.state, delivery.attempts),
        (DeliveryState::Succeeded, 2)
    );
    let paths: Vec<_> = receiver.received().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        ["/hook", "/hook"],
        "the 302 counts as a failure and is retried"
    );
    let attempts = harness.store.attempts("acme", &delivery.id).await.unwrap();
    assert_eq!(attempts[0].status_code, Some(302));
    harness.stop().await;
}

#[tokio::test]
async fn loopback_targets_are_refused_unless_allowed() {
    let receiver = Receiver::start(vec![]).await;
    let harness = Harness::start(1, true).await;
    let port = receiver.addr.port();
    let by_name = harness.endpoint(&format!("http://localhost:{port}/")).await;
    let event_id = harness.send("{}").await;
    // Both deliveries (by name and by IP literal) die on their single attempt.
    let by_ip = harness.endpoint(&format!("http://127.0.0.1:{port}/")).await;
    let second = harness.send("{}").await;

    for (event, endpoint) in [(&event_id, &by_name), (&second, &by_ip)] {
        let deadline = tokio::time::Instant::now() + WAIT;
        let delivery = loop {
            let deliveries = harness
                .store
                .deliveries_of_event("acme", event)
                .await
                .unwrap();
            let mine = deliveries
                .into_iter()
                .find(|d| d.endpoint_id == endpoint.id)
                .unwrap();
            if mine.state != DeliveryState::Pending {
                break mine;
            }
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(delivery.state, DeliveryState::Dead);
        let error = harness.store.attempts("acme", &delivery.id).await.unwrap()[0]
            .error
            .clone()
            .unwrap();
        assert!(error.starts_with("target refused: "), "{error}");
        assert!(error.contains("loopback"), "{error}");
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached the loopback receiver"
    );
    harness.stop().await;
}
