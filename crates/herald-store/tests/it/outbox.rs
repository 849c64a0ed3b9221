//! The transactional outbox: an event stored in the caller's transaction exists if and only if
//! the caller commits. One body for both databases, since the caller's transaction is the only
//! part that differs.

use std::time::Duration;

use herald_store::sql::{Backend, query};
use herald_store::{Log, NewEndpoint, NewEvent, Queue, Registry, SqlStore, Store};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn outbox_follows_the_callers_transaction<DB: Backend>(store: &SqlStore<DB>)
where
    SqlStore<DB>: Store,
{
    store.create_tenant("acme").await.unwrap();
    store
        .create_endpoint(NewEndpoint::new("acme", "https://example.com", SECRET))
        .await
        .unwrap();
    query("CREATE TABLE orders (id TEXT PRIMARY KEY)")
        .execute(store.pool())
        .await
        .unwrap();

    let due = store.due_work().await.unwrap();
    for commit in [false, true] {
        // Whatever woke the workers before this transaction is spent.
        let _ = tokio::time::timeout(Duration::from_millis(20), due.notified()).await;
        let mut tx = store.pool().begin().await.unwrap();
        query("INSERT INTO orders (id) VALUES ($1)")
            .bind(format!("order-{commit}"))
            .execute(&mut *tx)
            .await
            .unwrap();
        let accepted = store
            .accept_event_in(&mut tx, NewEvent::new("acme", "t", "{}"))
            .await
            .unwrap();
        if commit {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
        // The workers hear of a committed delivery at once, not at their next poll.
        let woken = tokio::time::timeout(Duration::from_millis(50), due.notified()).await;
        assert_eq!(
            woken.is_ok(),
            commit,
            "woken at once if and only if committed"
        );
        let stored = store.event("acme", &accepted.event.id).await.unwrap();
        assert_eq!(stored.is_some(), commit, "commit = {commit}");
    }
    let request = crate::ten_for_a_minute();
    let claimed = store.claim(&request).await.unwrap();
    assert_eq!(claimed.len(), 1, "only the committed event is delivered");
}

#[tokio::test]
async fn sqlite_outbox_follows_the_callers_transaction() {
    let (store, _dir) = crate::sqlite().await;
    outbox_follows_the_callers_transaction(&store).await;
}

#[tokio::test]
async fn postgres_outbox_follows_the_callers_transaction() {
    let Some((store, schema)) = crate::postgres().await else {
        return;
    };
    outbox_follows_the_callers_transaction(&store).await;
    drop(store);
    crate::drop_schema(&schema).await;
}
