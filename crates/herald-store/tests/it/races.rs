//! Races between processes that only PostgreSQL has (SQLite's one writer rules them out),
//! each played out step by step with transactions held open.

use std::time::Duration;

use herald_store::{ClaimRequest, Log, NewEndpoint, NewEvent, Queue, Registry};

fn request() -> ClaimRequest {
    ClaimRequest {
        worker: "w".into(),
        limit: 10,
        capacity: 10,
        remaining: Default::default(),
        lease: Duration::from_secs(60),
    }
}

/// An accept still in flight while a claim finds the endpoint's due work done: the endpoint
/// must not drop out of line with the accepted delivery due.
#[tokio::test]
async fn an_accept_in_flight_during_a_claim_keeps_its_endpoint_in_line() {
    let Some((store, schema)) = crate::postgres().await else {
        return;
    };
    store.create_tenant("acme").await.unwrap();
    store
        .create_endpoint(NewEndpoint::new(
            "acme",
            "https://example.com",
            "whsec_c2VjcmV0",
        ))
        .await
        .unwrap();
    store
        .accept_event(NewEvent::new("acme", "t", "{\"n\":1}"))
        .await
        .unwrap();

    // A second event, accepted in a transaction not yet committed…
    let mut tx = store.pool().begin().await.unwrap();
    store
        .accept_event_in(&mut tx, NewEvent::new("acme", "t", "{\"n\":2}"))
        .await
        .unwrap();
    // …while a claim serves the endpoint.
    let first = store.claim(&request()).await.unwrap();
    tx.commit().await.unwrap();
    let second = store.claim(&request()).await.unwrap();

    let claimed: Vec<_> = first
        .iter()
        .chain(&second)
        .map(|c| c.payload.clone())
        .collect();
    assert_eq!(claimed.len(), 2, "both events claimed: {claimed:?}");
    drop(store);
    crate::drop_schema(&schema).await;
}
