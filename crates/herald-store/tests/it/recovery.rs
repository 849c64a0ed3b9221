//! A worker that is gone loses its claims at once, not when its leases run out; a live one
//! never does. How a store knows differs: PostgreSQL by each worker's session lock, SQLite by
//! being the one process on its file.

use std::time::Duration;

use herald_store::postgres::PostgresStore;
use herald_store::sqlite::SqliteStore;
use herald_store::{ClaimRequest, ErrorKind, Log, NewEndpoint, NewEvent, Queue, Registry};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn request(worker: &str) -> ClaimRequest {
    ClaimRequest {
        worker: worker.into(),
        limit: 10,
        capacity: 10,
        remaining: Default::default(),
        // Far longer than the test: only the worker's going can free its claims.
        lease: Duration::from_secs(3600),
    }
}

/// A tenant `acme` with one endpoint, and one event accepted for it.
pub(crate) async fn one_event(store: &(impl Registry + Log)) {
    store.create_tenant("acme").await.unwrap();
    store
        .create_endpoint(NewEndpoint::new("acme", "https://example.com", SECRET))
        .await
        .unwrap();
    store
        .accept_event(NewEvent::new("acme", "t", "{}"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_hands_back_the_claims_of_a_worker_that_is_gone() {
    let Some((first, schema)) = crate::postgres().await else {
        return;
    };
    let second = PostgresStore::open_in_schema(&crate::pg_url(), &schema)
        .await
        .unwrap();
    one_event(&first).await;
    let registration = first.register("gone").await.unwrap();
    let claimed = first.claim(&request("gone")).await.unwrap();
    assert_eq!(claimed.len(), 1);

    let survivor = second.register("survivor").await.unwrap();
    assert_eq!(
        second.reap().await.unwrap(),
        0,
        "a live worker keeps its claims"
    );
    assert!(second.claim(&request("survivor")).await.unwrap().is_empty());

    // The process goes: its session closes, and with it the lock.
    drop(registration);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let handed_back = loop {
        let n = second.reap().await.unwrap();
        if n > 0 || tokio::time::Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(handed_back, 1, "handed back once the worker is gone");
    let rescued = second.claim(&request("survivor")).await.unwrap();
    assert_eq!(rescued.len(), 1);
    assert_eq!(rescued[0].delivery_id, claimed[0].delivery_id);
    assert_eq!(second.reap().await.unwrap(), 0, "the survivor keeps it");

    drop((survivor, first, second));
    crate::drop_schema(&schema).await;
}

#[tokio::test]
async fn sqlite_serves_one_process_and_frees_an_earlier_ones_claims() {
    let dir = crate::TempDir::new();
    let url = format!("sqlite://{}/herald.db", dir.0.display());
    let store = SqliteStore::open(&url).await.unwrap();
    one_event(&store).await;
    assert_eq!(store.claim(&request("w1")).await.unwrap().len(), 1);

    let second = SqliteStore::open(&url).await.unwrap_err();
    assert_eq!(second.kind(), ErrorKind::Conflict);
    assert!(
        second.to_string().contains("another herald process"),
        "{second}"
    );

    // The process goes (its store, and the file's lock, with it); the next one takes over
    // its claims at once.
    drop(store);
    let store = SqliteStore::open(&url).await.unwrap();
    assert_eq!(store.claim(&request("w2")).await.unwrap().len(), 1);
}
