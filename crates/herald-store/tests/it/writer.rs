//! SQLite's committer runs its batches on the handle sqlx lends (`src/sqlite/writer.rs`): what
//! it leaves behind on the connection the rest of the store, and an application's outbox,
//! share with it.

use std::time::Duration;

use herald_store::sql::query;
use herald_store::{Log, NewEvent, Queue};

use crate::recovery::one_event;

/// A claim commits without waiting for the disk; the connection must not stay that way, or an
/// outbox transaction on it would be acknowledged before it is durable.
#[tokio::test]
async fn a_claim_leaves_the_writer_waiting_for_the_disk() {
    let (store, _dir) = crate::sqlite().await;
    one_event(&store).await;
    let request = crate::ten_for_a_minute();
    // A batch of claims alone: the committer queues nothing else meanwhile.
    assert_eq!(store.claim(&request).await.unwrap().len(), 1);
    let (synchronous,): (i64,) = query("PRAGMA synchronous")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(synchronous, 2, "FULL, as the store opened it");
}

/// The committer keeps the one writer connection through short gaps between writes; a write
/// of its own (an endpoint created) gets it within a few milliseconds, not an acquire timeout.
#[tokio::test]
async fn writes_outside_the_committer_get_the_writer_soon() {
    let (store, _dir) = crate::sqlite().await;
    one_event(&store).await;
    let started = std::time::Instant::now();
    let mut tx = store.pool().begin().await.unwrap();
    query("SELECT 1").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "waited {:?} for the writer",
        started.elapsed()
    );
}

/// An accepted delivery wakes a waiting worker once: the commit hook that wakes the workers for
/// an outbox's commit leaves the committer's commits to the committer. Woken twice, a worker
/// would claim a second time, for nothing, after every event.
#[tokio::test]
async fn an_accepted_delivery_wakes_a_waiting_worker_once() {
    let (store, _dir) = crate::sqlite().await;
    one_event(&store).await;
    let due = store.due_work().await.unwrap();
    // Whatever the first event left is spent.
    let _ = tokio::time::timeout(Duration::from_millis(20), due.notified()).await;
    let woken = due.notified();
    tokio::pin!(woken);
    woken.as_mut().enable();
    store
        .accept_event(NewEvent::new("acme", "t", "{}"))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(1), woken)
        .await
        .expect("the worker is woken");
    let again = tokio::time::timeout(Duration::from_millis(50), due.notified()).await;
    assert!(again.is_err(), "woken a second time for the same commit");
}
