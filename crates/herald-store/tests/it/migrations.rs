//! An existing database moves to the newest schema with every row it had, readable.

use herald_store::postgres::PostgresStore;
use herald_store::{Log, Upkeep};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// Runs `statements`, in order, on `pool`: rows as an older herald wrote them.
async fn run_all(pool: &PgPool, statements: impl IntoIterator<Item = String>) {
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(pool)
            .await
            .unwrap();
    }
}

/// A fresh schema brought up to migration `version`, with a pool on it; `None` (skip) when
/// PostgreSQL is unreachable outside CI.
async fn schema_at(version: i64) -> Option<(String, PgPool)> {
    let options: PgConnectOptions = crate::pg_url().parse().unwrap();
    let admin = match sqlx::PgPool::connect_with(options.clone()).await {
        Ok(admin) => admin,
        Err(error) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("SKIPPED: PostgreSQL is unreachable: {error}");
            return None;
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
        .run_to(version, &old)
        .await
        .unwrap();
    Some((schema, old))
}

/// The columns of `table`'s primary key, in order.
async fn primary_key(pool: &PgPool, table: &str) -> Vec<String> {
    let key: Vec<(String,)> = sqlx::query_as(
        "SELECT a.attname::text FROM pg_index i \
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
         WHERE i.indrelid = CAST($1 AS regclass) AND i.indisprimary \
         ORDER BY array_position(i.indkey::int2[], a.attnum)",
    )
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap();
    key.into_iter().map(|(column,)| column).collect()
}

/// The attempts' primary key changed in migration 9 (one index, in their delivery's order):
/// attempts written before it are read after it, in the order they started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_attempts_written_before_migration_9_are_read_after_it() {
    let Some((schema, old)) = schema_at(8).await else {
        return;
    };
    // Rows as a herald at migration 8 wrote them; the later attempt first.
    for statement in [
        "INSERT INTO tenants (id, created_at) VALUES ('acme', 1)",
        "INSERT INTO endpoints (id, tenant_id, url, description, event_types, headers, enabled, \
           created_at, updated_at) \
         VALUES ('ep_1', 'acme', 'https://example.com/hook', '', '[]', '{}', TRUE, 1, 1)",
        "INSERT INTO events (id, tenant_id, event_type, payload, created_at) \
         VALUES ('evt_01JBQZ0000AAAAAAAAAAAAAAAA', 'acme', 't', '{}', 1)",
        "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, next_attempt_at, \
           created_at, updated_at) \
         VALUES ('dlv_01JBQZ0000AAAAAAAAAAAAAAAA', 'evt_01JBQZ0000AAAAAAAAAAAAAAAA', 'ep_1', 'pending', 2, 10, 1, 1)",
        "INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status_code, error) \
         VALUES ('att_b', 'dlv_01JBQZ0000AAAAAAAAAAAAAAAA', 5, 3, 500, NULL), \
                ('att_a', 'dlv_01JBQZ0000AAAAAAAAAAAAAAAA', 2, 4, NULL, 'connection refused')",
    ] {
        sqlx::query(statement).execute(&old).await.unwrap();
    }
    old.close().await;

    let store = PostgresStore::open_in_schema(&crate::pg_url(), &schema)
        .await
        .unwrap();
    let attempts = store
        .attempts("acme", "dlv_01JBQZ0000AAAAAAAAAAAAAAAA")
        .await
        .unwrap();
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

/// Migration 11 partitions events, deliveries and attempts by day: the rows already there
/// become the partition `_before`, readable as they were, their idempotency keys still
/// holding, until retention drops it whole once its last day is old enough and no delivery
/// in it is pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_written_before_migration_11_stay_until_their_partition_is_old() {
    let Some((schema, old)) = schema_at(10).await else {
        return;
    };
    let now = herald_store::Clock::now(&herald_store::SystemClock);
    let id = |prefix: &str, at: i64| {
        let ulid = ulid::Ulid::from_parts(u64::try_from(at).unwrap(), 7);
        format!("{prefix}_{ulid}")
    };
    let (old_event, old_delivery) = (id("evt", now - 40 * DAY), id("dlv", now - 40 * DAY));
    let (new_event, new_delivery) = (id("evt", now - HOUR), id("dlv", now - HOUR));
    run_all(&old, [
        "INSERT INTO tenants (id, created_at) VALUES ('acme', 1)".to_owned(),
        "INSERT INTO endpoints (id, tenant_id, url, description, event_types, headers, enabled, \
           created_at, updated_at) \
         VALUES ('ep_1', 'acme', 'https://example.com/hook', '', '[]', '{}', TRUE, 1, 1)"
            .to_owned(),
        format!(
            "INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, created_at) \
             VALUES ('{old_event}', 'acme', 't', '{{\"n\":1}}', 'order-1', {}), \
                    ('{new_event}', 'acme', 't', '{{\"n\":2}}', NULL, {})",
            now - 40 * DAY,
            now - HOUR
        ),
        // The old event's delivery is still pending (its endpoint was failing).
        format!(
            "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, next_attempt_at, \
               created_at, updated_at) \
             VALUES ('{old_delivery}', '{old_event}', 'ep_1', 'pending', 1, {}, {}, {}), \
                    ('{new_delivery}', '{new_event}', 'ep_1', 'succeeded', 1, NULL, {}, {})",
            now,
            now - 40 * DAY,
            now - 40 * DAY,
            now - HOUR,
            now - HOUR
        ),
        format!(
            "INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status_code, error) \
             VALUES ('att_a', '{old_delivery}', {}, 4, 503, NULL), \
                    ('att_b', '{new_delivery}', {}, 3, 200, NULL)",
            now - 40 * DAY,
            now - HOUR
        ),
    ])
    .await;

    let store = PostgresStore::open_in_schema(&crate::pg_url(), &schema)
        .await
        .unwrap();
    let (partition,): (String,) =
        sqlx::query_as("SELECT tableoid::regclass::text FROM events WHERE id = $1")
            .bind(&old_event)
            .fetch_one(&old)
            .await
            .unwrap();
    assert_eq!(partition, "events_before");
    let (floor,): (String,) = sqlx::query_as("SELECT 'evt_' || herald_ulid_floor($1)")
        .bind(now)
        .fetch_one(&old)
        .await
        .unwrap();
    assert_eq!(
        floor,
        id("evt", now).replace(&id("evt", now)[14..], "0000000000000000")
    );
    let event = store.event("acme", &old_event).await.unwrap().unwrap();
    assert_eq!(event.payload, r#"{"n":1}"#);
    let delivery = store
        .delivery("acme", &old_delivery)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.state, herald_store::DeliveryState::Pending);
    let attempts = store.attempts("acme", &new_delivery).await.unwrap();
    assert_eq!(attempts.len(), 1);
    // Migration 20 counted the last eight days' attempts for the chart, not older ones.
    let hours = store
        .attempt_stats("acme", None, now - 7 * DAY)
        .await
        .unwrap();
    let counted: Vec<_> = hours
        .iter()
        .map(|h| (h.start, h.succeeded, h.failed, h.max_ms))
        .collect();
    assert_eq!(counted, [(now - HOUR - (now - HOUR) % HOUR, 1, 0, 3)]);
    let all = store
        .attempt_stats("acme", None, now - 50 * DAY)
        .await
        .unwrap();
    assert_eq!(all.len(), 1, "the 40-day-old attempt is not counted");
    let mut repeated = herald_store::NewEvent::new("acme", "t", "{}");
    repeated.idempotency_key = Some("order-1".into());
    let accepted = store.accept_event(repeated).await.unwrap();
    assert!(!accepted.created, "the key still names the old event");
    assert_eq!(accepted.event.id, old_event);

    // Forty days on, `_before` (which took rows until the day after the migration) is old,
    // but its pending delivery keeps it; once that delivery has ended, it goes.
    let clock = herald_store::ManualClock::at(now + 40 * DAY);
    let store = store.with_clock(std::sync::Arc::new(clock));
    let thirty_days = std::time::Duration::from_secs(30 * 24 * 3600);
    let dropped = store.rotate_partitions(Some(thirty_days)).await.unwrap();
    assert!(
        !dropped.iter().any(|day| day == "before"),
        "a pending delivery keeps its partition; the empty days made at the migration go: \
         {dropped:?}"
    );
    sqlx::query("UPDATE deliveries SET state = 'dead', next_attempt_at = NULL WHERE id = $1")
        .bind(&old_delivery)
        .execute(&old)
        .await
        .unwrap();
    let dropped = store.rotate_partitions(Some(thirty_days)).await.unwrap();
    assert_eq!(dropped, ["before"]);
    assert!(store.event("acme", &new_event).await.unwrap().is_none());
    drop(store);
    old.close().await;
    crate::drop_schema(&schema).await;
}

const HOUR: i64 = 3600 * 1000;
const DAY: i64 = 24 * HOUR;

/// Migration 20 counts the attempts already recorded in the last eight days for the chart, on
/// SQLite as on PostgreSQL (above): the store's attempts are written, the counts and the
/// migration taken back, and opening the store runs the migration over them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_attempts_recorded_before_migration_20_are_counted_by_it() {
    use herald_store::sqlite::SqliteStore;
    use herald_store::{NewEndpoint, NewEvent, Outcome};

    let dir = crate::TempDir::new();
    let url = format!("sqlite://{}/herald.db", dir.0.display());
    let now = herald_store::Clock::now(&herald_store::SystemClock);
    let store = crate::timed(SqliteStore::open(&url).await.unwrap());
    store.create_tenant("acme", now - 20 * DAY).await.unwrap();
    let endpoint = NewEndpoint::new(
        "acme",
        "https://example.com/hook",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    );
    store
        .create_endpoint(endpoint, now - 20 * DAY)
        .await
        .unwrap();
    // One attempt ten days ago, two an hour ago.
    for (at, status) in [(now - 10 * DAY, 200), (now - HOUR, 200), (now - HOUR, 500)] {
        store
            .accept_event(NewEvent::new("acme", "t", "{}"), at)
            .await
            .unwrap();
        let claims = store.claim_due("w", 1, at + HOUR, at + 1).await.unwrap();
        let mut attempt = crate::conformance::attempt(at + 2, Some(status));
        attempt.duration_ms = 9;
        store
            .finish_attempt(&claims[0], &claims[0].lease, attempt, Outcome::Dead)
            .await
            .unwrap();
    }
    let before = store
        .attempt_stats("acme", None, now - 9 * DAY)
        .await
        .unwrap();
    drop(store);

    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    for statement in [
        "DROP TABLE attempt_hours",
        "DELETE FROM _sqlx_migrations WHERE version = 20",
    ] {
        sqlx::query(statement).execute(&raw).await.unwrap();
    }
    raw.close().await;
    let store = SqliteStore::open(&url).await.unwrap();
    let after = store
        .attempt_stats("acme", None, now - 9 * DAY)
        .await
        .unwrap();
    let counted: Vec<_> = after
        .iter()
        .map(|h| (h.start, h.succeeded, h.failed, h.max_ms))
        .collect();
    let hour = now - HOUR - (now - HOUR) % HOUR;
    assert_eq!(counted, [(hour, 1, 1, 9)]);
    assert_eq!(before.len(), 1);
    assert_eq!(
        (before[0].start, before[0].succeeded, before[0].failed),
        (hour, 1, 1),
        "what the store counted as it went is what the migration counts"
    );
    let all = store
        .attempt_stats("acme", None, now - 12 * DAY)
        .await
        .unwrap();
    assert_eq!(
        all.len(),
        1,
        "the ten-day-old attempt is not counted by the migration"
    );
}

/// Migration 24 keeps a delivery's success in its own row, no longer in `attempts`: a success
/// recorded before it is read after it, a retry by hand and a new success log both, and the
/// new one writes no row to `attempts`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_successes_recorded_before_migration_24_are_read_after_it() {
    let Some((schema, old)) = schema_at(23).await else {
        return;
    };
    let (event, delivery) = (
        "evt_01JBQZ0000AAAAAAAAAAAAAAAA",
        "dlv_01JBQZ0000AAAAAAAAAAAAAAAA",
    );
    run_all(&old, [
        "INSERT INTO tenants (id, created_at) VALUES ('acme', 1)".to_owned(),
        "INSERT INTO endpoints (id, tenant_id, url, description, event_types, headers, enabled, \
           created_at, updated_at) \
         VALUES ('ep_1', 'acme', 'https://example.com/hook', '', '[]', '{}', TRUE, 1, 1)"
            .to_owned(),
        "INSERT INTO endpoint_queues (endpoint_id) VALUES ('ep_1')".to_owned(),
        format!(
            "INSERT INTO events (id, tenant_id, event_type, payload, created_at) \
             VALUES ('{event}', 'acme', 't', '{{}}', 1)"
        ),
        format!(
            "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, created_at, \
               updated_at) \
             VALUES ('{delivery}', '{event}', 'ep_1', 'succeeded', 1, 1, 5)"
        ),
        format!(
            "INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status_code, error) \
             VALUES ('att_a', '{delivery}', 2, 3, 200, NULL)"
        ),
    ])
    .await;

    let store = PostgresStore::open_in_schema(&crate::pg_url(), &schema)
        .await
        .unwrap();
    let store = crate::timed(store);
    let read = |attempts: Vec<herald_store::Attempt>| -> Vec<_> {
        attempts
            .iter()
            .map(|a| (a.started_at, a.status_code))
            .collect()
    };
    let before = store.attempts("acme", delivery).await.unwrap();
    assert_eq!(read(before), [(2, Some(200))]);

    store.retry_delivery("acme", delivery, 10).await.unwrap();
    let claimed = store.claim_due("w", 1, 60_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let again = crate::conformance::attempt(20, Some(204));
    store
        .record(&claimed[0], again, herald_store::Outcome::Succeeded)
        .await;
    let after = store.attempts("acme", delivery).await.unwrap();
    assert_eq!(read(after), [(2, Some(200)), (20, Some(204))]);
    let stored: (i64, Option<i32>) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM attempts), \
           (SELECT success_status_code FROM deliveries WHERE id = $1)",
    )
    .bind(delivery)
    .fetch_one(&old)
    .await
    .unwrap();
    assert_eq!(
        stored,
        (1, Some(204)),
        "the new success is in its delivery's row"
    );
    old.close().await;
    drop(store);
    crate::drop_schema(&schema).await;
}

/// Migration 25 keys deliveries by their endpoint and id, with no index on the id alone: a
/// delivery written before it is found after it through its tenant (and not through another
/// tenant), claimed and recorded through its endpoint; the key is (endpoint, id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_deliveries_written_before_migration_25_are_found_through_their_endpoint() {
    let Some((schema, old)) = schema_at(24).await else {
        return;
    };
    let (event, delivery) = (
        "evt_01JBQZ0000BBBBBBBBBBBBBBBB",
        "dlv_01JBQZ0000BBBBBBBBBBBBBBBB",
    );
    let endpoint = |id: &str, tenant: &str| {
        format!(
            "INSERT INTO endpoints (id, tenant_id, url, description, event_types, headers, \
               enabled, created_at, updated_at) \
             VALUES ('{id}', '{tenant}', 'https://example.com/hook', '', '[]', '{{}}', TRUE, 1, 1)"
        )
    };
    run_all(
        &old,
        [
            "INSERT INTO tenants (id, created_at) VALUES ('acme', 1), ('globex', 1)".to_owned(),
            endpoint("ep_1", "acme"),
            endpoint("ep_2", "acme"),
            endpoint("ep_3", "globex"),
            "INSERT INTO endpoint_queues (endpoint_id, due_at) \
         VALUES ('ep_1', 1), ('ep_2', NULL), ('ep_3', NULL)"
                .to_owned(),
            format!(
                "INSERT INTO events (id, tenant_id, event_type, payload, created_at) \
             VALUES ('{event}', 'acme', 't', '{{}}', 1)"
            ),
            format!(
                "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, \
               next_attempt_at, created_at, updated_at) \
             VALUES ('{delivery}', '{event}', 'ep_2', 'pending', 0, 1, 1, 1)"
            ),
        ],
    )
    .await;

    let store = PostgresStore::open_in_schema(&crate::pg_url(), &schema)
        .await
        .unwrap();
    let store = crate::timed(store);
    assert_eq!(primary_key(&old, "deliveries").await, ["endpoint_id", "id"]);

    let found = store.delivery("acme", delivery).await.unwrap().unwrap();
    assert_eq!(found.endpoint_id, "ep_2");
    assert!(
        store.delivery("globex", delivery).await.unwrap().is_none(),
        "another tenant does not find it"
    );
    // The endpoint's line was wrong before the migration: make it due.
    sqlx::query("UPDATE endpoint_queues SET due_at = 1 WHERE endpoint_id = 'ep_2'")
        .execute(&old)
        .await
        .unwrap();
    let claimed = store.claim_due("w", 10, 60_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].delivery_id, delivery);
    let sent = crate::conformance::attempt(20, Some(200));
    let finished = store
        .record(&claimed[0], sent, herald_store::Outcome::Succeeded)
        .await;
    assert!(finished.held);
    let attempts = store.attempts("acme", delivery).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert!(store.attempts("globex", delivery).await.unwrap().is_empty());
    old.close().await;
    drop(store);
    crate::drop_schema(&schema).await;
}

/// Migration 26 keys events by their tenant and id, with no index on the id alone: events
/// written before it are found after it through their tenant (and not through another
/// tenant's), a repeated idempotency key still answers with its event, a pending delivery's
/// event is read by its claim, and retention deletes the old events that have nothing pending
/// and keeps the one that has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_events_written_before_migration_26_are_found_through_their_tenant() {
    let Some((schema, old)) = schema_at(25).await else {
        return;
    };
    let (pending, done, other) = (
        "evt_01JBQZ0000CCCCCCCCCCCCCCC1",
        "evt_01JBQZ0000CCCCCCCCCCCCCCC2",
        "evt_01JBQZ0000CCCCCCCCCCCCCCC3",
    );
    let delivery = "dlv_01JBQZ0000CCCCCCCCCCCCCCC1";
    let event = |id: &str, tenant: &str, key: &str| {
        format!(
            "INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, \
               created_at) VALUES ('{id}', '{tenant}', 't', '{{\"n\":1}}', '{key}', 1)"
        )
    };
    run_all(
        &old,
        [
            "INSERT INTO tenants (id, created_at) VALUES ('acme', 1), ('globex', 1)".to_owned(),
            "INSERT INTO endpoints (id, tenant_id, url, description, event_types, headers, \
               enabled, created_at, updated_at) \
             VALUES ('ep_1', 'acme', 'https://example.com/hook', '', '[]', '{}', TRUE, 1, 1)"
                .to_owned(),
            "INSERT INTO endpoint_queues (endpoint_id, due_at) VALUES ('ep_1', 1)".to_owned(),
            event(pending, "acme", "k1"),
            event(done, "acme", "k2"),
            event(other, "globex", "k3"),
            "INSERT INTO idempotency_keys (tenant_id, key, event_id) VALUES \
               ('acme', 'k1', 'evt_01JBQZ0000CCCCCCCCCCCCCCC1'), \
               ('acme', 'k2', 'evt_01JBQZ0000CCCCCCCCCCCCCCC2'), \
               ('globex', 'k3', 'evt_01JBQZ0000CCCCCCCCCCCCCCC3')"
                .to_owned(),
            format!(
                "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, \
                   next_attempt_at, created_at, updated_at) \
                 VALUES ('{delivery}', '{pending}', 'ep_1', 'pending', 0, 1, 1, 1)"
            ),
        ],
    )
    .await;

    let store = PostgresStore::open_in_schema(&crate::pg_url(), &schema)
        .await
        .unwrap();
    let store = crate::timed(store);
    assert_eq!(primary_key(&old, "events").await, ["tenant_id", "id"]);
    let (indexes,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM pg_index WHERE indrelid = 'events'::regclass")
            .fetch_one(&old)
            .await
            .unwrap();
    assert_eq!(indexes, 1, "the key is the events' only index");

    let found = store.event("acme", pending).await.unwrap().unwrap();
    assert_eq!(found.payload, r#"{"n":1}"#);
    assert!(store.event("globex", pending).await.unwrap().is_none());
    assert!(store.event("acme", other).await.unwrap().is_none());
    let mut again = herald_store::NewEvent::new("acme", "t", r#"{"n":2}"#);
    again.idempotency_key = Some("k2".into());
    let repeated = store.accept_event(again, 10).await.unwrap();
    assert!(!repeated.created);
    assert_eq!(repeated.event.id, done);

    let claimed = store.claim_due("w", 10, 60_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].event_id, pending);
    assert_eq!(claimed[0].payload, r#"{"n":1}"#);

    // In 2096 every event here is older than a day; the pending delivery keeps its event.
    let in_2096 = 4_000_000_000_000;
    store.clock.set(in_2096);
    let purged = store.purge(in_2096 - 86_400_000, 500).await.unwrap();
    assert_eq!(purged, 2, "acme's finished event and globex's");
    assert!(store.event("acme", pending).await.unwrap().is_some());
    assert!(store.event("acme", done).await.unwrap().is_none());
    assert!(store.event("globex", other).await.unwrap().is_none());
    old.close().await;
    drop(store);
    crate::drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_migrated_by_a_newer_herald_is_refused_with_what_to_do() {
    use herald_store::sqlite::SqliteStore;

    let dir = crate::TempDir::new();
    let url = format!("sqlite://{}/herald.db", dir.0.display());
    drop(SqliteStore::open(&url).await.unwrap());
    // A newer herald's migration, as it would have recorded it.
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from a newer herald', true, x'00', 1)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let Err(error) = SqliteStore::open(&url).await else {
        panic!("a database this herald does not know is opened");
    };
    let message = error.to_string();
    assert!(
        message.contains("migrated by a newer herald") && message.contains("9999"),
        "{message}"
    );
    assert!(!message.contains('\n'), "one line: {message}");
}

/// Deliveries' partitions keep 70% of each page free, those an older herald made (the default
/// partition, 40% before migration 30) and those made since, so a finish's new row version
/// stays on its page (migration 30, `crates/herald-store/src/partitions.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_deliveries_partitions_old_and_new_are_filled_to_30_percent() {
    let Some((schema, old)) = schema_at(29).await else {
        return;
    };
    let fill = |pool: PgPool| async move {
        let parts: Vec<(String, Option<Vec<String>>)> = sqlx::query_as(
            "SELECT c.relname::text, c.reloptions FROM pg_inherits i \
               JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = CAST('deliveries' AS regclass) ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        parts
    };
    let before = fill(old.clone()).await;
    assert!(
        before
            .iter()
            .all(|(_, options)| options.as_deref() == Some(&["fillfactor=40".to_owned()][..])),
        "{before:?}"
    );
    let store = PostgresStore::open_in_schema(&crate::pg_url(), &schema)
        .await
        .unwrap();
    let after = fill(old.clone()).await;
    assert!(after.len() > before.len(), "days made: {after:?}");
    assert!(
        after
            .iter()
            .all(|(_, options)| options.as_deref() == Some(&["fillfactor=30".to_owned()][..])),
        "{after:?}"
    );
    drop((store, old));
    crate::drop_schema(&schema).await;
}
