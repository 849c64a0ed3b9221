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

#[tokio::test]
async fn a_schema_name_of_any_length_still_announces() {
    // PostgreSQL names are at most 63 bytes, and so are channel names: the channel cannot be
    // a prefix plus the schema's name.
    let Some((probe, short)) = crate::postgres().await else {
        return;
    };
    drop(probe);
    crate::drop_schema(&short).await;
    let schema = format!("{short}_{}", "x".repeat(63 - short.len() - 1));
    assert_eq!(schema.len(), 63);
    let writer = PostgresStore::open_in_schema(&crate::pg_url(), &schema)
        .await
        .unwrap();
    let watcher = PostgresStore::open_in_schema(&crate::pg_url(), &schema)
        .await
        .unwrap();
    let wake = watcher.due_work().await.unwrap();
    writer.create_tenant("acme").await.unwrap();
    let endpoint = NewEndpoint::new("acme", "https://example.com", "whsec_c2VjcmV0");
    writer.create_endpoint(endpoint).await.unwrap();
    writer
        .accept_event(NewEvent::new("acme", "t", "{}"))
        .await
        .expect("an accept in a schema with a 63-byte name");
    tokio::time::timeout(Duration::from_secs(5), wake.notified())
        .await
        .expect("the watcher is woken within 5 s");
    drop((writer, watcher));
    crate::drop_schema(&schema).await;
}
