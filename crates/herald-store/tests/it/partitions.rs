//! PostgreSQL's retention by day: old days' partitions are dropped whole; a day with a pending
//! delivery waits for it; recent days stay.

use herald_store::{Claimed, NewEndpoint, NewEvent, Outcome};

use crate::timed::Timed;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::conformance::attempt;

const HOUR: i64 = 3600 * 1000;
const DAY: i64 = 24 * HOUR;
/// 2025-01-10T00:00:00Z.
const D0: i64 = 1_736_467_200_000;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_retention_drops_old_days_whole_and_waits_for_a_pending_delivery() {
    let Some((store, schema)) = crate::postgres().await else {
        return;
    };
    let tables = rows_of(&schema).await;
    let store = crate::timed(store);
    acme(&store).await;
    let nothing = store.rotate_partitions(D0 - 365 * DAY, D0).await.unwrap();
    assert!(nothing.is_empty(), "nothing is that old: {nothing:?}");

    // Day 0: an event delivered, under an idempotency key. Day 1: one whose delivery is still
    // pending when retention comes. Day 2: one too recent to go.
    let mut keyed = NewEvent::new("acme", "t", "{}");
    keyed.idempotency_key = Some("order-1".into());
    let delivered = store.accept_event(keyed.clone(), D0 + HOUR).await.unwrap();
    let claimed = attempt_all(&store, D0 + HOUR, Outcome::Succeeded).await;
    let delivered_delivery = claimed[0].delivery_id.clone();
    let pending = store
        .accept_event(NewEvent::new("acme", "t", "{}"), D0 + DAY + HOUR)
        .await
        .unwrap();
    let recent = store
        .accept_event(NewEvent::new("acme", "t", "{}"), D0 + 2 * DAY + HOUR)
        .await
        .unwrap();
    let (partition,): (String,) =
        sqlx::query_as("SELECT tableoid::regclass::text FROM events WHERE id = $1")
            .bind(&delivered.event.id)
            .fetch_one(&tables)
            .await
            .unwrap();
    assert_eq!(partition, "events_p20250110", "each day has its partition");

    // Thirty days after the middle of day 2: days 0 and 1 are old, day 2 is not.
    let now = D0 + 32 * DAY + 12 * HOUR;
    let dropped = store.rotate_partitions(now - 30 * DAY, now).await.unwrap();
    assert_eq!(
        dropped,
        ["p20250110"],
        "day 1 waits for its pending delivery"
    );
    assert!(
        store
            .event("acme", &delivered.event.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .delivery("acme", &delivered_delivery)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .attempts("acme", &delivered_delivery)
            .await
            .unwrap()
            .is_empty()
    );
    for table in ["events", "deliveries", "attempts"] {
        let (gone,): (bool,) = sqlx::query_as("SELECT to_regclass($1) IS NULL")
            .bind(format!("{table}_p20250110"))
            .fetch_one(&tables)
            .await
            .unwrap();
        assert!(gone, "{table}_p20250110 is dropped");
    }
    let again = store.accept_event(keyed, now).await.unwrap();
    assert!(again.created, "the key went with its event");

    // The pending delivery was not lost: it is claimed, and once it has ended its day goes.
    let claimed = attempt_all(&store, now, Outcome::Succeeded).await;
    let mut events: Vec<&str> = claimed.iter().map(|c| c.event_id.as_str()).collect();
    events.sort_unstable();
    let mut expected = [
        pending.event.id.as_str(),
        recent.event.id.as_str(),
        again.event.id.as_str(),
    ];
    expected.sort_unstable();
    assert_eq!(events, expected);
    let dropped = store
        .rotate_partitions(now - 30 * DAY, now + 1)
        .await
        .unwrap();
    assert_eq!(dropped, ["p20250111"]);
    let kept = store.event("acme", &recent.event.id).await.unwrap();
    assert!(kept.is_some(), "a recent event stays");
    let states: Vec<(String,)> = sqlx::query_as("SELECT state FROM deliveries WHERE event_id = $1")
        .bind(&recent.event.id)
        .fetch_all(&tables)
        .await
        .unwrap();
    assert_eq!(states, [("succeeded".to_owned(),)], "with its delivery");
    tables.close().await;
    crate::drop_schema(&schema).await;
}

/// A replay made days later gives an old event a delivery in a later day's partition: while it
/// is pending, the event's day stays; once it has ended, the day goes and the replay's
/// delivery with it, rather than outlive its event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_replayed_delivery_keeps_its_events_day_and_goes_with_it() {
    let Some((store, schema)) = crate::postgres().await else {
        return;
    };
    let store = crate::timed(store);
    let endpoint = acme(&store).await;
    store.rotate_partitions(D0 - DAY, D0).await.unwrap();
    let event = store
        .accept_event(NewEvent::new("acme", "t", "{}"), D0 + HOUR)
        .await
        .unwrap()
        .event
        .id;
    attempt_all(&store, D0 + HOUR, Outcome::Succeeded).await;

    // Two days later the tenant replays the endpoint's history.
    let later = D0 + 2 * DAY;
    let replay = store
        .create_replay("acme", &endpoint, D0, later)
        .await
        .unwrap()
        .unwrap();
    let step = store.replay_step(&replay.id, 100, later).await.unwrap();
    assert_eq!(step.done, 1);

    let now = D0 + 31 * DAY + 12 * HOUR; // day 0 is old, day 2 is not
    let dropped = store.rotate_partitions(now - 30 * DAY, now).await.unwrap();
    assert!(
        !dropped.iter().any(|day| day == "p20250110"),
        "the replayed delivery is pending: {dropped:?}"
    );
    assert!(store.event("acme", &event).await.unwrap().is_some());

    let replayed = attempt_all(&store, now, Outcome::Succeeded).await;
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].event_id, event);
    let dropped = store
        .rotate_partitions(now - 30 * DAY, now + 1)
        .await
        .unwrap();
    assert_eq!(dropped, ["p20250110"]);
    assert!(store.event("acme", &event).await.unwrap().is_none());
    let delivery = store
        .delivery("acme", &replayed[0].delivery_id)
        .await
        .unwrap();
    assert!(
        delivery.is_none(),
        "the replay's delivery went with its event"
    );
    let attempts = store
        .attempts("acme", &replayed[0].delivery_id)
        .await
        .unwrap();
    assert!(attempts.is_empty(), "and its attempts");
    // Not only out of sight (the log reads a delivery through its event): gone.
    let tables = rows_of(&schema).await;
    for table in ["deliveries", "attempts"] {
        let column = if table == "deliveries" {
            "id"
        } else {
            "delivery_id"
        };
        let (left,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE {column} = $1"
        )))
        .bind(&replayed[0].delivery_id)
        .fetch_one(&tables)
        .await
        .unwrap();
        assert_eq!(left, 0, "no {table} row of the replay is left");
    }
    tables.close().await;
    crate::drop_schema(&schema).await;
}

/// Tenant `acme` with one endpoint for every event type, made at `D0`; the endpoint's id.
async fn acme(store: &Timed) -> String {
    store.create_tenant("acme", D0).await.unwrap();
    let url = "https://example.com/hook";
    store
        .create_endpoint(NewEndpoint::new("acme", url, SECRET), D0)
        .await
        .unwrap()
        .id
}

/// Claims what is due at `at` and records each attempt as ending in `outcome` (answered 200
/// for a success, 500 otherwise); returns the claims.
async fn attempt_all(store: &Timed, at: i64, outcome: Outcome) -> Vec<Claimed> {
    let claimed = store.claim_due("w", 10, at + HOUR, at).await.unwrap();
    let status = if outcome == Outcome::Succeeded {
        200
    } else {
        500
    };
    for c in &claimed {
        store
            .finish_attempt(c, &c.lease, attempt(at, Some(status)), outcome)
            .await
            .unwrap();
    }
    claimed
}

/// A pool on `schema`, to look at the tables themselves.
async fn rows_of(schema: &str) -> sqlx::PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .connect_with(
            crate::pg_url()
                .parse::<PgConnectOptions>()
                .unwrap()
                .options([("search_path", schema)]),
        )
        .await
        .unwrap()
}

/// No foreign key cascades from deliveries to attempts on PostgreSQL any more: deleting an
/// endpoint deletes its deliveries' attempts itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_deleting_an_endpoint_leaves_no_attempts_behind() {
    let Some((store, schema)) = crate::postgres().await else {
        return;
    };
    let store = crate::timed(store);
    let endpoint = acme(&store).await;
    store.rotate_partitions(D0 - DAY, D0).await.unwrap();
    store
        .accept_event(NewEvent::new("acme", "t", "{}"), D0 + HOUR)
        .await
        .unwrap();
    attempt_all(&store, D0 + HOUR, Outcome::RetryAt(D0 + 3 * HOUR)).await;
    assert!(store.delete_endpoint("acme", &endpoint).await.unwrap());
    let tables = rows_of(&schema).await;
    let (deliveries, attempts): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM deliveries), (SELECT count(*) FROM attempts)")
            .fetch_one(&tables)
            .await
            .unwrap();
    assert_eq!((deliveries, attempts), (0, 0));
    tables.close().await;
    crate::drop_schema(&schema).await;
}

/// The row purge (a day kept for a pending delivery) deletes a purged event's deliveries,
/// attempts and idempotency key itself, as the cascades did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_row_purge_leaves_nothing_of_a_purged_event() {
    let Some((store, schema)) = crate::postgres().await else {
        return;
    };
    let store = crate::timed(store);
    acme(&store).await;
    let mut keyed = NewEvent::new("acme", "t", "{}");
    keyed.idempotency_key = Some("order-1".into());
    store.accept_event(keyed, D0 + HOUR).await.unwrap();
    attempt_all(&store, D0 + HOUR, Outcome::Succeeded).await;
    store.clock.set(D0 + 2 * DAY);
    assert_eq!(store.purge(D0 + DAY, 10).await.unwrap(), 1);
    let tables = rows_of(&schema).await;
    let left: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM deliveries), \
           (SELECT count(*) FROM attempts), (SELECT count(*) FROM idempotency_keys)",
    )
    .fetch_one(&tables)
    .await
    .unwrap();
    assert_eq!(left, (0, 0, 0, 0));
    tables.close().await;
    crate::drop_schema(&schema).await;
}

/// Two processes making and dropping partitions at the same moment: neither fails, and each
/// day is made and dropped once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_processes_rotate_partitions_at_once() {
    let Some((first, schema)) = crate::postgres().await else {
        return;
    };
    let second = herald_store::postgres::PostgresStore::open_in_schema(&crate::pg_url(), &schema)
        .await
        .unwrap();
    let (first, second) = (crate::timed(first), crate::timed(second));
    // Both make the days of 2025-01-10 onwards, at once.
    let (a, b) = tokio::join!(
        first.rotate_partitions(D0 - DAY, D0),
        second.rotate_partitions(D0 - DAY, D0)
    );
    assert!(a.unwrap().is_empty() && b.unwrap().is_empty());
    // Forty days on, both drop them, at once: every day goes once, by one or the other.
    let now = D0 + 40 * DAY;
    let (a, b) = tokio::join!(
        first.rotate_partitions(now - 30 * DAY, now),
        second.rotate_partitions(now - 30 * DAY, now)
    );
    let mut dropped: Vec<String> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    dropped.sort_unstable();
    let expected: Vec<String> = (10..=13).map(|day| format!("p202501{day}")).collect();
    dropped.retain(|day| day.starts_with("p2025"));
    assert_eq!(dropped, expected);
    crate::drop_schema(&schema).await;
}

/// An id no day covers (a clock years ahead) lands in the default partition: the insert does
/// not fail, the day it belongs to is not made while it sits there, and the row purge deletes
/// it once it is old.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_event_from_a_clock_far_off_lands_in_the_default_partition() {
    let Some((store, schema)) = crate::postgres().await else {
        return;
    };
    let store = crate::timed(store);
    const FAR: i64 = D0 + 3 * 365 * DAY;
    store.create_tenant("acme", D0).await.unwrap();
    let event = store
        .accept_event(NewEvent::new("acme", "t", "{}"), FAR)
        .await
        .unwrap()
        .event
        .id;
    let tables = rows_of(&schema).await;
    let partition = |id: String| {
        let tables = tables.clone();
        async move {
            let (partition,): (String,) =
                sqlx::query_as("SELECT tableoid::regclass::text FROM events WHERE id = $1")
                    .bind(id)
                    .fetch_one(&tables)
                    .await
                    .unwrap();
            partition
        }
    };
    assert_eq!(partition(event.clone()).await, "events_default");
    // Its day cannot be made while its row is in the default partition; the next days can.
    store.rotate_partitions(FAR - 30 * DAY, FAR).await.unwrap();
    let (made,): (bool,) = sqlx::query_as("SELECT to_regclass('events_p20280110') IS NOT NULL")
        .fetch_one(&tables)
        .await
        .unwrap();
    assert!(
        !made,
        "the day of the row in the default partition is not made"
    );
    let later = store
        .accept_event(NewEvent::new("acme", "t", "{}"), FAR + DAY)
        .await
        .unwrap()
        .event
        .id;
    assert_ne!(partition(later).await, "events_default");
    store.clock.set(FAR + 40 * DAY);
    assert!(store.purge(FAR + 30 * DAY, 10).await.unwrap() >= 1);
    assert!(store.event("acme", &event).await.unwrap().is_none());
    tables.close().await;
    crate::drop_schema(&schema).await;
}
