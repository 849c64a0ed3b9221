//! An existing database moves to the newest schema with every row it had, readable.

use herald_store::Log;
use herald_store::postgres::PostgresStore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The attempts' primary key changed in migration 9 (one index, in their delivery's order):
/// attempts written before it are read after it, in the order they started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_attempts_written_before_migration_9_are_read_after_it() {
    let options: PgConnectOptions = crate::pg_url().parse().unwrap();
    let admin = match sqlx::PgPool::connect_with(options.clone()).await {
        Ok(admin) => admin,
        Err(error) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED: PostgreSQL is unreachable: {error}");
            return;
        }
        Err(error) => panic!("PostgreSQL is unreachable under CI: {error}"),
    };
    let schema = format!(
        "herald_test_{}",
        ulid::Ulid::generate().to_string().to_lowercase()
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    let old = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.options([("search_path", schema.as_str())]))
        .await
        .unwrap();
    sqlx::migrate!("./migrations/postgres")
        .run_to(8, &old)
        .await
        .unwrap();
    // Rows as a herald at migration 8 wrote them; the later attempt first.
    for statement in [
        "INSERT INTO tenants (id, created_at) VALUES ('acme', 1)",
        "INSERT INTO endpoints (id, tenant_id, url, description, event_types, headers, enabled, \
           created_at, updated_at) \
         VALUES ('ep_1', 'acme', 'https://example.com/hook', '', '[]', '{}', TRUE, 1, 1)",
        "INSERT INTO events (id, tenant_id, event_type, payload, created_at) \
         VALUES ('evt_1', 'acme', 't', '{}', 1)",
        "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, next_attempt_at, \
           created_at, updated_at) \
         VALUES ('dlv_1', 'evt_1', 'ep_1', 'pending', 2, 10, 1, 1)",
        "INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status_code, error) \
         VALUES ('att_b', 'dlv_1', 5, 3, 500, NULL), \
                ('att_a', 'dlv_1', 2, 4, NULL, 'connection refused')",
    ] {
        sqlx::query(statement).execute(&old).await.unwrap();
    }
    old.close().await;

    let store = PostgresStore::open_in_schema(&crate::pg_url(), &schema)
        .await
        .unwrap();
    let attempts = store.attempts("acme", "dlv_1").await.unwrap();
    let read: Vec<_> = attempts
        .iter()
        .map(|a| (a.started_at, a.status_code, a.error.as_deref()))
        .collect();
    assert_eq!(
        read,
        [(2, None, Some("connection refused")), (5, Some(500), None)]
    );
    drop(store);
    crate::drop_schema(&schema).await;
}
