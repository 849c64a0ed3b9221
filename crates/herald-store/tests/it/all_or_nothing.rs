//! An event is stored with every delivery it makes, or not at all. On PostgreSQL a batch of
//! accepts without keys commits as one statement with no transaction around it
//! (`Commit::commit` in `src/postgres.rs`), so that statement must hold every write: should a
//! later write run on its own, a failure of it would leave an event stored that no endpoint
//! will ever get.

use herald_store::sql::query;
use herald_store::{Backend, Log, NewEvent, SqlStore, Store};

use crate::recovery::one_event;

/// What makes each write of an accept fail in turn: the delivery's row, then the endpoint's
/// wake-up, the last write before the announcement.
const TABLES: [&str; 2] = ["deliveries", "endpoint_wakeups"];

async fn a_failing_write_stores_no_event<DB: Backend>(
    store: &SqlStore<DB>,
    refuse: impl Fn(&str) -> Vec<String>,
    allow: &str,
) where
    SqlStore<DB>: Store,
{
    one_event(store).await;
    for table in TABLES {
        for statement in refuse(table) {
            run(store, statement).await;
        }
        let error = store
            .accept_event(NewEvent::new("acme", "t", "{}"))
            .await
            .expect_err("the refused write fails the accept");
        assert!(
            format!("{error:?}").contains("refused"),
            "{table}: {error:?}"
        );
        run(store, allow.replace("{table}", table)).await;
        assert_eq!(
            rows(store, "events").await,
            1,
            "{table}: an event whose {table} failed was stored"
        );
    }
    // Nothing stays wedged: the next accept is stored with its delivery.
    store
        .accept_event(NewEvent::new("acme", "t", "{}"))
        .await
        .unwrap();
    assert_eq!(rows(store, "deliveries").await, 2);
}

/// Runs `statement`, made for this test (so kept for the pool's prepared statements).
async fn run<DB: Backend>(store: &SqlStore<DB>, statement: String) {
    query(&*statement.leak())
        .execute(store.pool())
        .await
        .unwrap();
}

/// How many rows `table` holds.
async fn rows<DB: Backend>(store: &SqlStore<DB>, table: &str) -> i64 {
    let (n,): (i64,) = query(&*format!("SELECT count(*) FROM {table}").leak())
        .fetch_one(store.pool())
        .await
        .unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stores_an_event_with_its_deliveries_or_not_at_all() {
    let Some((store, schema)) = crate::postgres().await else {
        return;
    };
    let refuse = |table: &str| {
        vec![
            "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'refused'; END $$"
                .to_owned(),
            format!(
                "CREATE TRIGGER refuse BEFORE INSERT ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION refuse()"
            ),
        ]
    };
    a_failing_write_stores_no_event(&store, refuse, "DROP TRIGGER refuse ON {table}").await;
    drop(store);
    crate::drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_stores_an_event_with_its_deliveries_or_not_at_all() {
    let (store, _dir) = crate::sqlite().await;
    let refuse = |table: &str| {
        vec![format!(
            "CREATE TRIGGER refuse BEFORE INSERT ON {table} \
             BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )]
    };
    a_failing_write_stores_no_event(&store, refuse, "DROP TRIGGER refuse").await;
}
