//! PostgreSQL announces committed deliveries to every process (LISTEN/NOTIFY), and only
//! committed ones.

use std::sync::Arc;
use std::time::Duration;

use herald_store::postgres::{PostgresStore, accept_event_in};
use herald_store::{NewEndpoint, NewEvent, Store};
use tokio::sync::Notify;

#[tokio::test]
async fn a_commit_in_one_process_wakes_another() {
    let Some((writer, schema)) = crate::postgres().await else {
        return;
    };
    let watcher = PostgresStore::open_in_schema(&crate::pg_url(), &schema)
        .await
        .unwrap();
    let wake = Arc::new(Notify::new());
    watcher.watch(Arc::clone(&wake)).await.unwrap();

    writer.create_tenant("acme", 0).await.unwrap();
    let endpoint = NewEndpoint::new("acme", "https://example.com", "whsec_c2VjcmV0");
    writer.create_endpoint(endpoint, 0).await.unwrap();

    // Rolled back: nothing is announced.
    let mut tx = writer.pool().begin().await.unwrap();
    accept_event_in(&mut tx, NewEvent::new("acme", "t", "{}"), 1)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let woken = tokio::time::timeout(Duration::from_millis(500), wake.notified()).await;
    assert!(woken.is_err(), "a rolled-back event must not wake anyone");

    // Committed: the other handle hears of it.
    writer
        .accept_event(NewEvent::new("acme", "t", "{}"), 2)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), wake.notified())
        .await
        .expect("the watcher is woken within 5 s");

    drop((writer, watcher));
    crate::drop_schema(&schema).await;
}
