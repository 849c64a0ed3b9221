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

/// Each endpoint is served by one worker (`claim.rs`): an announcement names the workers that
/// serve its endpoints, and only their processes wake, the committing one included.
#[tokio::test]
async fn a_commit_wakes_only_the_worker_serving_its_endpoint() {
    let Some((one, schema)) = crate::postgres().await else {
        return;
    };
    let other = PostgresStore::open_in_schema(&crate::pg_url(), &schema)
        .await
        .unwrap();
    let _first = one.register("first").await.unwrap();
    let _second = other.register("second").await.unwrap();
    let wakes = [
        one.due_work().await.unwrap(),
        other.due_work().await.unwrap(),
    ];

    one.create_tenant("acme").await.unwrap();
    let endpoint = NewEndpoint::new("acme", "https://example.com", "whsec_c2VjcmV0");
    let endpoint = one.create_endpoint(endpoint).await.unwrap();
    let (serving,): (String,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT w.id FROM {schema}.workers w ORDER BY md5($1 || w.id) DESC LIMIT 1"
    )))
    .bind(&endpoint.id)
    .fetch_one(one.pool())
    .await
    .unwrap();
    let (woken, passed) = if serving == "first" {
        (&wakes[0], &wakes[1])
    } else {
        (&wakes[1], &wakes[0])
    };

    // Committed through the first store, whichever serves the endpoint.
    one.accept_event(NewEvent::new("acme", "t", "{}"))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), woken.notified())
        .await
        .expect("the serving worker is woken within 5 s");
    let other_woken = tokio::time::timeout(Duration::from_millis(500), passed.notified()).await;
    assert!(
        other_woken.is_err(),
        "{serving} serves the endpoint; the other sleeps"
    );

    drop((one, other));
    crate::drop_schema(&schema).await;
}
