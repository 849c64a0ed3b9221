//! PostgreSQL announces committed deliveries to every process (LISTEN/NOTIFY), and only
//! committed ones.

use std::time::Duration;

use herald_store::postgres::PostgresStore;
use herald_store::{Log, NewEndpoint, NewEvent, Queue, Registry};

#[tokio::test]
async fn a_commit_in_one_process_wakes_another() {
    let Some((writer, schema)) = crate::postgres().await else {
        return;
    };
    let watcher = PostgresStore::open_in_schema(&crate::pg_url(), &schema)
        .await
        .unwrap();
    let wake = watcher.due_work().await.unwrap();

    writer.create_tenant("acme").await.unwrap();
    let endpoint = NewEndpoint::new("acme", "https://example.com", "whsec_c2VjcmV0");
    writer.create_endpoint(endpoint).await.unwrap();

    // Rolled back: nothing is announced.
    let mut tx = writer.pool().begin().await.unwrap();
    writer
        .accept_event_in(&mut tx, NewEvent::new("acme", "t", "{}"))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let woken = tokio::time::timeout(Duration::from_millis(500), wake.notified()).await;
    assert!(woken.is_err(), "a rolled-back event must not wake anyone");

    // Committed: the other handle hears of it.
    writer
        .accept_event(NewEvent::new("acme", "t", "{}"))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), wake.notified())
        .await
        .expect("the watcher is woken within 5 s");

    drop((writer, watcher));
    crate::drop_schema(&schema).await;
}
