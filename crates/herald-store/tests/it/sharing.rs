//! Workers sharing a database share its endpoints: on PostgreSQL an endpoint stays with the
//! worker serving it for a second after each claim that took some of its deliveries, so two
//! processes do not take turns at one endpoint; SQLite's one process keeps none.

use std::time::Duration;

use herald_store::{ClaimRequest, NewEndpoint, NewEvent};

use crate::timed::Timed;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const T0: i64 = 1_700_000_000_000;
const LEASE: i64 = 60_000;

async fn accept(store: &Timed, n: usize, now: i64) {
    for _ in 0..n {
        store
            .accept_event(NewEvent::new("acme", "t", "{}"), now)
            .await
            .unwrap();
    }
}

async fn claimed(store: &Timed, worker: &str, limit: u32, now: i64) -> usize {
    store
        .claim_due(worker, limit, now + LEASE, now)
        .await
        .unwrap()
        .len()
}

/// `stays`: whether the store keeps an endpoint with its worker (PostgreSQL), or not (SQLite).
async fn endpoints_stay_with_the_worker_serving_them(store: &Timed, stays: bool) {
    store.create_tenant("acme", T0).await.unwrap();
    store
        .create_endpoint(NewEndpoint::new("acme", "https://example.com", SECRET), T0)
        .await
        .unwrap();

    // w1 takes everything due: the endpoint stays with it, and w2 passes it over.
    accept(store, 1, T0).await;
    assert_eq!(claimed(store, "w1", 10, T0).await, 1);
    accept(store, 1, T0 + 1).await;
    let w2 = ClaimRequest {
        worker: "w2".into(),
        limit: 10,
        capacity: 10,
        remaining: Default::default(),
        lease: Duration::from_millis(LEASE as u64),
    };
    let second = store.claim_with_next_turn(&w2, T0 + 2).await.unwrap();
    if stays {
        assert!(second.deliveries.is_empty(), "kept by w1");
        assert_eq!(second.next_turn, None, "not w2's turn");
        // Wake-ups until then are w1's to answer.
        assert_eq!(
            second.kept_elsewhere,
            Some(T0 + 1_000),
            "a second after w1's claim"
        );
        assert_eq!(claimed(store, "w1", 10, T0 + 3).await, 1, "w1 serves it on");
    } else {
        assert_eq!(second.deliveries.len(), 1, "SQLite keeps nothing");
        assert_eq!(second.kept_elsewhere, None);
        assert_eq!(claimed(store, "w1", 10, T0 + 3).await, 0);
    }

    // A second after w1's last claim, anyone takes it.
    accept(store, 1, T0 + 4).await;
    assert_eq!(
        claimed(store, "w2", 10, T0 + 3 + 1_000).await,
        1,
        "w1's stay ended"
    );

    // A worker that releases its claims (it stops, or it is gone) lets go of its endpoints.
    let t = T0 + 20_000;
    accept(store, 1, t).await;
    assert_eq!(claimed(store, "w3", 10, t).await, 1);
    assert_eq!(store.release("w3").await.unwrap(), 1);
    accept(store, 1, t + 1).await;
    assert_eq!(claimed(store, "w1", 10, t + 2).await, 2, "free at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_an_endpoint_with_the_worker_serving_it() {
    let Some((store, schema)) = crate::postgres().await else {
        return;
    };
    let timed = crate::timed(store);
    endpoints_stay_with_the_worker_serving_them(&timed, true).await;
    drop(timed);
    crate::drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_no_endpoint_with_a_worker() {
    let (store, _dir) = crate::sqlite().await;
    endpoints_stay_with_the_worker_serving_them(&crate::timed(store), false).await;
}
