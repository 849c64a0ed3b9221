//! The transactional outbox: an event stored in the caller's transaction exists if and only if
//! the caller commits. Backend-specific, because the caller's transaction is.

use herald_store::postgres::{PostgresStore, accept_event_in as accept_pg};
use herald_store::sqlite::accept_event_in as accept_sqlite;
use herald_store::{NewEndpoint, NewEvent, Store};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn prepare(store: &dyn Store) {
    store.create_tenant("acme", 0).await.unwrap();
    store
        .create_endpoint(NewEndpoint::new("acme", "https://example.com", SECRET), 0)
        .await
        .unwrap();
}

#[tokio::test]
async fn sqlite_outbox_follows_the_callers_transaction() {
    let (store, _dir) = crate::sqlite().await;
    prepare(&store).await;
    sqlx::query("CREATE TABLE orders (id TEXT PRIMARY KEY)")
        .execute(store.pool())
        .await
        .unwrap();

    for commit in [false, true] {
        let mut tx = store.pool().begin().await.unwrap();
        sqlx::query("INSERT INTO orders (id) VALUES (?)")
            .bind(format!("order-{commit}"))
            .execute(&mut *tx)
            .await
            .unwrap();
        let accepted = accept_sqlite(&mut tx, NewEvent::new("acme", "t", "{}"), 1)
            .await
            .unwrap();
        if commit {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
        let stored = store.event("acme", &accepted.event.id).await.unwrap();
        assert_eq!(stored.is_some(), commit, "commit = {commit}");
    }
    let claimed = store.claim_due("w", 10, 100_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "only the committed event is delivered");
}

#[tokio::test]
async fn postgres_outbox_follows_the_callers_transaction() {
    let Some((store, schema)) = crate::postgres().await else {
        return;
    };
    prepare(&store).await;
    run_postgres(&store).await;
    drop(store);
    crate::drop_schema(&schema).await;
}

async fn run_postgres(store: &PostgresStore) {
    sqlx::query("CREATE TABLE orders (id TEXT PRIMARY KEY)")
        .execute(store.pool())
        .await
        .unwrap();
    for commit in [false, true] {
        let mut tx = store.pool().begin().await.unwrap();
        sqlx::query("INSERT INTO orders (id) VALUES ($1)")
            .bind(format!("order-{commit}"))
            .execute(&mut *tx)
            .await
            .unwrap();
        let accepted = accept_pg(&mut tx, NewEvent::new("acme", "t", "{}"), 1)
            .await
            .unwrap();
        if commit {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
        let stored = store.event("acme", &accepted.event.id).await.unwrap();
        assert_eq!(stored.is_some(), commit, "commit = {commit}");
    }
    let claimed = store.claim_due("w", 10, 100_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "only the committed event is delivered");
}
