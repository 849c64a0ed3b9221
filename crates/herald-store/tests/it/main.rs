//! The store conformance suite: every case runs on SQLite and on PostgreSQL.
//!
//! PostgreSQL is `HERALD_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! each test gets a fresh schema, dropped afterwards. If the server is unreachable the
//! PostgreSQL tests are skipped with a message, except under `CI=true`, where they fail.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap should panic loudly

mod all_or_nothing;
mod bounds;
mod conformance;
mod migrations;
mod notify;
mod outbox;
mod partitions;
mod races;
mod recovery;
mod sharing;
mod subscribers;
mod timed;
mod writer;

use std::sync::Arc;

use herald_store::postgres::PostgresStore;
use herald_store::sqlite::SqliteStore;
use herald_store::{ManualClock, Store};

use timed::Timed;

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

pub(crate) fn pg_url() -> String {
    std::env::var("HERALD_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_PG.into())
}

/// A claim of up to ten deliveries by worker `w`, leased for a minute.
pub(crate) fn ten_for_a_minute() -> herald_store::ClaimRequest {
    herald_store::ClaimRequest {
        worker: "w".into(),
        limit: 10,
        capacity: 10,
        remaining: Default::default(),
        lease: std::time::Duration::from_secs(60),
    }
}

/// A file-backed SQLite store in its own temporary directory (removed on drop).
async fn sqlite() -> (SqliteStore, TempDir) {
    let dir = TempDir::new();
    let url = format!("sqlite://{}/herald.db", dir.0.display());
    (SqliteStore::open(&url).await.unwrap(), dir)
}

/// A PostgreSQL store in a fresh schema, or `None` (skip) when the server is unreachable
/// outside CI.
async fn postgres() -> Option<(PostgresStore, String)> {
    let schema = format!(
        "herald_test_{}",
        ulid::Ulid::generate().to_string().to_lowercase()
    );
    match PostgresStore::open_in_schema(&pg_url(), &schema).await {
        Ok(store) => Some((store, schema)),
        Err(error) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!(
                "SKIPPED: PostgreSQL at {} is unreachable: {error}",
                pg_url()
            );
            None
        }
        Err(error) => panic!(
            "PostgreSQL at {} is unreachable under CI: {error}",
            pg_url()
        ),
    }
}

/// `store` on a hand-moved clock.
fn timed<DB: herald_store::Backend>(store: herald_store::SqlStore<DB>) -> Timed
where
    herald_store::SqlStore<DB>: Store,
{
    let clock = ManualClock::at(0);
    let store: Arc<dyn Store> = Arc::new(store.with_clock(Arc::new(clock.clone())));
    Timed { store, clock }
}

async fn drop_schema(schema: &str) {
    let pool = sqlx::PgPool::connect(&pg_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&pool)
        .await
        .unwrap();
}

pub(crate) struct TempDir(pub(crate) std::path::PathBuf);

impl TempDir {
    pub(crate) fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!("herald-store-{}", ulid::Ulid::generate()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One `#[tokio::test]` per backend for each conformance case.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (store, _dir) = crate::sqlite().await;
                    crate::conformance::$case(&crate::timed(store)).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some((store, schema)) = crate::postgres().await else { return };
                    let timed = crate::timed(store);
                    crate::conformance::$case(&timed).await;
                    drop(timed);
                    crate::drop_schema(&schema).await;
                }
            )*
        }
    };
}

conformance!(
    tenants_are_created_once,
    operational_events_tell_both_the_tenant_and_the_operator,
    operational_events_are_stored_only_for_those_who_ask,
    a_finished_replay_is_told,
    endpoints_belong_to_existing_tenants_and_are_scoped,
    events_fan_out_to_enabled_subscribed_endpoints,
    idempotency_keys_return_the_first_event,
    an_event_for_an_unknown_tenant_stores_nothing,
    payloads_are_kept_byte_for_byte,
    claims_take_due_work_once_with_everything_needed,
    an_expired_lease_makes_work_claimable_again,
    outcomes_move_deliveries_on,
    endpoint_failure_streaks_are_tracked,
    disabling_an_endpoint_stops_its_deliveries,
    released_leases_are_claimable_at_once,
    concurrent_claims_never_share_a_delivery,
    concurrent_writes_each_get_their_own_answer,
    a_batch_of_many_tenants_and_types_fans_out_each_event_alike,
    tokens_are_found_by_hash_listed_and_revoked,
    endpoints_are_listed_updated_and_deleted_within_their_tenant,
    rotated_secrets_sign_beside_the_new_one_until_they_expire,
    a_change_of_signature_adds_and_drops_keys_by_kind,
    events_and_deliveries_are_listed_newest_first_with_filters,
    deliveries_page_newest_first_across_endpoints,
    a_tenant_with_many_endpoints_pages_its_deliveries_newest_first,
    a_retry_makes_a_delivery_due_now,
    a_success_is_logged_after_the_failures_and_through_a_retry,
    two_successes_of_one_delivery_are_both_logged,
    attempt_stats_are_counted_per_hour_and_tenant,
    attempts_read_back_the_headers_they_were_sent_with,
    a_replay_redelivers_every_matching_event_in_batches,
    a_disabled_endpoint_gets_no_replay,
    a_test_event_goes_to_one_endpoint_only,
    server_keys_are_made_once,
    retention_deletes_old_finished_events_in_batches,
    endpoints_take_turns_and_give_no_more_than_can_start,
    a_large_claim_reads_what_each_delivery_sends,
    a_claim_says_when_to_look_again,
    rate_limits_hold_across_claims,
    a_failing_endpoint_gets_one_probe_at_a_time,
    a_probe_handed_back_lets_the_next_claim_probe_at_once,
    a_probe_that_sends_nothing_leaves_the_circuit_half_open,
    interrupted_attempts_are_not_the_endpoints_failures,
    ordering_keys_go_one_at_a_time_in_acceptance_order,
    events_accepted_during_claims_are_never_left_behind,
    each_endpoint_gets_the_version_it_pins,
    what_a_disabled_endpoint_misses_is_skipped_then_sent_in_order,
);
