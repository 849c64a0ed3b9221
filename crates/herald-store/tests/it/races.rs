//! Races between processes that only PostgreSQL has (SQLite's one writer rules them out),
//! each played out step by step with transactions held open.

use std::time::Duration;

use herald_store::{ClaimRequest, Clocked, Log, NewEndpoint, NewEvent, Queue, Registry};

fn request() -> ClaimRequest {
    ClaimRequest {
        worker: "w".into(),
        limit: 10,
        capacity: 10,
        remaining: Default::default(),
        lease: Duration::from_secs(60),
    }
}

/// Tenant `acme` with one endpoint; its id.
async fn acme(store: &impl Registry) -> String {
    store.create_tenant("acme").await.unwrap();
    store
        .create_endpoint(NewEndpoint::new(
            "acme",
            "https://example.com",
            "whsec_c2VjcmV0",
        ))
        .await
        .unwrap()
        .id
}

/// A transaction holding `endpoint`'s queue row, as a claim serving the endpoint does until it
/// commits.
async fn hold_queue_row(
    pool: &sqlx::PgPool,
    endpoint: &str,
) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM endpoint_queues WHERE endpoint_id = $1 FOR UPDATE")
        .bind(endpoint)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

/// The record of one attempt at `claimed`, made at `now`, ending as `outcome`.
fn recorded(
    claimed: &herald_store::Claimed,
    outcome: herald_store::Outcome,
    now: herald_store::Millis,
) -> herald_store::Finish {
    let succeeded = matches!(outcome, herald_store::Outcome::Succeeded);
    herald_store::Finish {
        delivery_id: claimed.delivery_id.clone(),
        endpoint_id: claimed.endpoint_id.clone(),
        event_id: claimed.event_id.clone(),
        lease: claimed.lease.clone(),
        attempt: herald_store::Attempt {
            started_at: now,
            duration_ms: 1,
            status_code: succeeded.then_some(200),
            response_excerpt: None,
            error: (!succeeded).then(|| "interrupted".into()),
            request_headers: Default::default(),
            response_headers: Default::default(),
        },
        outcome,
        gone: false,
        disable_after: Duration::from_secs(3600),
    }
}

/// An accept still in flight while a claim finds the endpoint's due work done: the endpoint
/// must not drop out of line with the accepted delivery due.
#[tokio::test]
async fn an_accept_in_flight_during_a_claim_keeps_its_endpoint_in_line() {
    let Some((store, schema)) = crate::postgres().await else {
        return;
    };
    acme(&store).await;
    store
        .accept_event(NewEvent::new("acme", "t", "{\"n\":1}"))
        .await
        .unwrap();

    // A second event, accepted in a transaction not yet committed…
    let mut tx = store.pool().begin().await.unwrap();
    store
        .accept_event_in(&mut tx, NewEvent::new("acme", "t", "{\"n\":2}"))
        .await
        .unwrap();
    // …while a claim serves the endpoint.
    let first = store.claim(&request()).await.unwrap();
    tx.commit().await.unwrap();
    let second = store.claim(&request()).await.unwrap();

    let claimed: Vec<_> = first
        .iter()
        .chain(&second)
        .map(|c| c.payload.clone())
        .collect();
    assert_eq!(claimed.len(), 2, "both events claimed: {claimed:?}");
    drop(store);
    crate::drop_schema(&schema).await;
}

/// A claim holds the endpoint's queue row locked for its whole transaction. An accept for the
/// same endpoint used to update that row, and so waited for the claim: under load, accepts and
/// claims of a busy endpoint took turns. Now the accept does not wait, and the claim after
/// the one holding the row still finds the accepted delivery.
#[tokio::test]
async fn an_accept_does_not_wait_for_a_claim_holding_its_endpoint() {
    let Some((store, schema)) = crate::postgres().await else {
        return;
    };
    let endpoint = acme(&store).await;

    // What a claim serving the endpoint holds, until it commits.
    let claim = hold_queue_row(store.pool(), &endpoint).await;
    let accepted = tokio::time::timeout(
        Duration::from_secs(2),
        store.accept_event(NewEvent::new("acme", "t", "{\"n\":1}")),
    )
    .await;
    claim.commit().await.unwrap();
    assert!(
        accepted.is_ok(),
        "the accept waited for the claim holding its endpoint's queue row"
    );
    accepted.unwrap().unwrap();

    let claimed = store.claim(&request()).await.unwrap();
    assert_eq!(claimed.len(), 1, "the accepted delivery is claimed after");
    drop(store);
    crate::drop_schema(&schema).await;
}

/// A claim that finds nothing more due takes its endpoint out of line; it cannot see an attempt
/// being recorded at the same moment, whose delivery is due again at once (cut off by herald,
/// or a retry). The record used to leave the line alone when the endpoint was already in it,
/// so the claim's commit, after it, stranded the delivery (seen in CI's outage test: three
/// deliveries due, unleased, their endpoint's turn 31 s away).
#[tokio::test]
async fn an_attempt_recorded_during_a_claim_keeps_its_delivery_in_line() {
    use herald_store::Outcome;
    let Some((store, schema)) = crate::postgres().await else {
        return;
    };
    let endpoint = acme(&store).await;
    for n in 1..=2 {
        let payload = format!("{{\"n\":{n}}}");
        store
            .accept_event(NewEvent::new("acme", "t", &payload))
            .await
            .unwrap();
    }
    // One taken, one left: the endpoint stays in line, due now.
    let one = ClaimRequest {
        limit: 1,
        ..request()
    };
    let taken = store.claim(&one).await.unwrap().remove(0);

    // Another claim serves the endpoint: it took the other delivery, saw the first still
    // leased, and takes the endpoint out of line, not yet committed…
    let mut claim = store.pool().begin().await.unwrap();
    sqlx::query("UPDATE endpoint_queues SET due_at = NULL WHERE endpoint_id = $1")
        .bind(&endpoint)
        .execute(&mut *claim)
        .await
        .unwrap();
    // …while the first delivery's attempt is recorded: cut off, due again at once.
    let finish = recorded(&taken, Outcome::Interrupted, store.now());
    let recorded = tokio::time::timeout(Duration::from_secs(2), store.finish(finish)).await;
    claim.commit().await.unwrap();
    assert!(recorded.unwrap().unwrap().held);

    let again = store.claim(&request()).await.unwrap();
    let ids: Vec<&str> = again.iter().map(|c| c.delivery_id.as_str()).collect();
    assert!(
        ids.contains(&taken.delivery_id.as_str()),
        "the cut-off delivery is claimed again: {ids:?}"
    );
    drop(store);
    crate::drop_schema(&schema).await;
}

/// Two processes accept events for three endpoints while both claim and finish as fast as
/// they can: every delivery is claimed once and none is left behind, with two claims folding
/// wake-ups at once. (Under load the interleaving that strands work is rare; the test above
/// plays it out step by step.)
#[tokio::test]
async fn accepts_racing_claims_in_two_processes_leave_nothing_behind() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use herald_store::Outcome;
    use herald_store::postgres::PostgresStore;

    const ENDPOINTS: usize = 3;
    const EVENTS: usize = 300;
    let Some((first, schema)) = crate::postgres().await else {
        return;
    };
    let second = PostgresStore::open_in_schema(&crate::pg_url(), &schema)
        .await
        .unwrap();
    first.create_tenant("acme").await.unwrap();
    for n in 0..ENDPOINTS {
        let url = format!("https://example.com/{n}");
        first
            .create_endpoint(NewEndpoint::new("acme", &url, "whsec_c2VjcmV0"))
            .await
            .unwrap();
    }
    let stores = [Arc::new(first), Arc::new(second)];

    let mut accepts = tokio::task::JoinSet::new();
    for task in 0..6 {
        let store = Arc::clone(&stores[task % 2]);
        accepts.spawn(async move {
            for n in 0..EVENTS / 6 {
                let payload = format!("{{\"task\":{task},\"n\":{n}}}");
                store
                    .accept_event(NewEvent::new("acme", "t", &payload))
                    .await
                    .unwrap();
            }
        });
    }

    let claimed: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let mut claims = tokio::task::JoinSet::new();
    for (n, store) in stores.iter().enumerate() {
        let (store, claimed) = (Arc::clone(store), Arc::clone(&claimed));
        claims.spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            let request = herald_store::ClaimRequest {
                worker: format!("w{n}"),
                ..request()
            };
            while claimed.lock().unwrap().len() < EVENTS * ENDPOINTS
                && tokio::time::Instant::now() < deadline
            {
                for claim in store.claim(&request).await.unwrap() {
                    *claimed
                        .lock()
                        .unwrap()
                        .entry(claim.delivery_id.clone())
                        .or_default() += 1;
                    let finish = recorded(&claim, Outcome::Succeeded, store.now());
                    assert!(store.finish(finish).await.unwrap().held);
                }
            }
        });
    }
    while let Some(done) = accepts.join_next().await {
        done.unwrap();
    }
    while let Some(done) = claims.join_next().await {
        done.unwrap();
    }

    let claimed = claimed.lock().unwrap().clone();
    let twice = claimed.values().filter(|n| **n > 1).count();
    assert_eq!(twice, 0, "deliveries claimed twice");
    assert_eq!(
        claimed.len(),
        EVENTS * ENDPOINTS,
        "deliveries left behind, due but never claimed"
    );
    for store in stores {
        drop(Arc::into_inner(store));
    }
    crate::drop_schema(&schema).await;
}

/// A machine whose clock runs ahead of the true time by so many milliseconds.
#[derive(Debug)]
struct Skewed(i64);

impl herald_store::Clock for Skewed {
    fn now(&self) -> herald_store::Millis {
        herald_store::SystemClock.now() + self.0
    }
}

/// Two processes whose machines disagree by 90 s share the database's time, so the one ahead
/// does not take a 60 s lease the other holds; on its own clock it would.
#[tokio::test]
async fn clock_skew_between_processes_does_not_shorten_leases() {
    use herald_store::postgres::PostgresStore;
    use std::sync::Arc;
    let Some((store, schema)) = crate::postgres().await else {
        return;
    };
    let here = store
        .with_database_clock(Arc::new(herald_store::SystemClock))
        .await
        .unwrap();
    let ahead = || async {
        PostgresStore::open_in_schema(&crate::pg_url(), &schema)
            .await
            .unwrap()
    };
    let there = ahead()
        .await
        .with_database_clock(Arc::new(Skewed(90_000)))
        .await
        .unwrap();
    let apart = (there.now() - here.now()).abs();
    assert!(
        apart < 1_000,
        "the two agree on now within a second: {apart} ms"
    );

    here.create_tenant("acme").await.unwrap();
    here.create_endpoint(NewEndpoint::new(
        "acme",
        "https://example.com",
        "whsec_c2VjcmV0",
    ))
    .await
    .unwrap();
    here.accept_event(NewEvent::new("acme", "t", "{}"))
        .await
        .unwrap();
    assert_eq!(here.claim(&request()).await.unwrap().len(), 1);
    assert_eq!(there.reap().await.unwrap(), 0, "no lease has run out");
    let stolen = there
        .claim(&ClaimRequest {
            worker: "there".into(),
            ..request()
        })
        .await
        .unwrap();
    assert!(
        stolen.is_empty(),
        "a live lease was taken by the process ahead"
    );

    // The hazard, shown: the same process on its own clock takes the lease.
    let naive = ahead().await.with_clock(Arc::new(Skewed(90_000)));
    assert_eq!(naive.reap().await.unwrap(), 1);
    let taken = naive
        .claim(&ClaimRequest {
            worker: "naive".into(),
            ..request()
        })
        .await
        .unwrap();
    assert_eq!(
        taken.len(),
        1,
        "on its own clock, 90 s ahead, the lease looks expired"
    );
    drop((here, there, naive));
    crate::drop_schema(&schema).await;
}

/// A PostgreSQL store under a hand-moved clock (standing at the real time), with tenant
/// `acme` and one endpoint: the store, its schema, the clock and the endpoint's id.
async fn at_hand() -> Option<(
    herald_store::postgres::PostgresStore,
    String,
    herald_store::ManualClock,
    String,
)> {
    use herald_store::Clock;
    let (store, schema) = crate::postgres().await?;
    let clock = herald_store::ManualClock::at(herald_store::SystemClock.now());
    let store = store.with_clock(std::sync::Arc::new(clock.clone()));
    let endpoint = acme(&store).await;
    Some((store, schema, clock, endpoint))
}

/// Retention racing a retry on PostgreSQL: the retry of an old, finished delivery is held
/// after it made the delivery pending (a lock on the endpoint's queue row stops it there),
/// while retention runs. Retention must leave the event alone: deleting it would take the
/// pending delivery with it, neither sent nor dead.
#[tokio::test]
async fn retention_never_deletes_a_delivery_a_retry_made_pending() {
    use herald_store::{Attempt, Clock, Finish, Outcome, Upkeep};
    use std::sync::Arc;
    const DAY: i64 = 24 * 3600 * 1000;
    let Some((store, schema, clock, endpoint)) = at_hand().await else {
        return;
    };
    let t0 = clock.now();
    let store = Arc::new(store);
    store
        .accept_event(NewEvent::new("acme", "t", "{}"))
        .await
        .unwrap();
    let claimed = store.claim(&request()).await.unwrap().remove(0);
    store
        .finish(Finish {
            delivery_id: claimed.delivery_id.clone(),
            endpoint_id: claimed.endpoint_id.clone(),
            event_id: claimed.event_id.clone(),
            lease: claimed.lease.clone(),
            attempt: Attempt {
                started_at: t0,
                duration_ms: 5,
                status_code: Some(200),
                response_excerpt: None,
                error: None,
                request_headers: Default::default(),
                response_headers: Default::default(),
            },
            outcome: Outcome::Succeeded,
            gone: false,
            disable_after: Duration::from_secs(5 * 24 * 3600),
        })
        .await
        .unwrap();
    clock.set(t0 + 31 * DAY);

    // Hold the endpoint's queue row: the retry stops after marking the delivery pending.
    let hold = hold_queue_row(store.pool(), &endpoint).await;
    let retrying = {
        let store = Arc::clone(&store);
        let id = claimed.delivery_id.clone();
        tokio::spawn(async move { store.retry_delivery("acme", &id).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let purging = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.purge(Duration::from_secs(30 * 24 * 3600), 10).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    hold.commit().await.unwrap();

    let retried = retrying.await.unwrap().unwrap();
    assert!(retried.is_some(), "the retry found its delivery");
    let purged = purging.await.unwrap().unwrap();
    let after = store.delivery("acme", &claimed.delivery_id).await.unwrap();
    assert_eq!(
        after.map(|d| d.state),
        Some(herald_store::DeliveryState::Pending),
        "the retried delivery is still there, pending ({purged} purged)"
    );
    drop(store);
    crate::drop_schema(&schema).await;
}

/// A replay made while an accept is still in flight: the event's id is older than events that
/// committed before it, so the replay's cursor passes it before it is visible. The replay's
/// last look, once accepts in flight have had time to commit, still sends it.
#[tokio::test]
async fn a_replay_sends_an_event_whose_commit_landed_after_its_cursor_passed() {
    use herald_store::{Clock, ReplayState, Replays};
    let Some((store, schema, clock, endpoint)) = at_hand().await else {
        return;
    };
    let t0 = clock.now();
    // Disabled while both events are accepted (so neither gets a delivery to it, nor waits
    // on its queue row), enabled before the replay: the replay is the only way they reach it.
    let off = herald_store::EndpointPatch {
        enabled: Some(false),
        ..Default::default()
    };
    store.update_endpoint("acme", &endpoint, off).await.unwrap();
    // The late event gets its id first, then another event commits before it does.
    let mut late = store.pool().begin().await.unwrap();
    store
        .accept_event_in(&mut late, NewEvent::new("acme", "t", "{\"n\":\"late\"}"))
        .await
        .unwrap();
    clock.set(t0 + 1); // ids are made from the store's clock: a later one
    store
        .accept_event(NewEvent::new("acme", "t", "{\"n\":\"early\"}"))
        .await
        .unwrap();
    let on = herald_store::EndpointPatch {
        enabled: Some(true),
        ..Default::default()
    };
    store.update_endpoint("acme", &endpoint, on).await.unwrap();
    clock.set(t0 + 10);
    let replay = store
        .create_replay("acme", &endpoint, t0)
        .await
        .unwrap()
        .unwrap();
    let step = store.replay_step(&replay.id, 100).await.unwrap();
    assert_eq!((step.done, step.state), (1, ReplayState::Running));
    late.commit().await.unwrap();

    let step = store.replay_step(&replay.id, 100).await.unwrap();
    assert_eq!(
        (step.done, step.state),
        (1, ReplayState::Running),
        "within 5 s of being made, it waits for late commits"
    );
    clock.set(t0 + 10 + 5_000);
    let mut step = store.replay_step(&replay.id, 100).await.unwrap();
    while step.state == ReplayState::Running {
        step = store.replay_step(&replay.id, 100).await.unwrap();
    }
    assert_eq!(
        (step.done, step.total, step.state),
        (2, 2, ReplayState::Finished)
    );
    drop(store);
    crate::drop_schema(&schema).await;
}

/// Deleting an endpoint takes its deliveries, then its queue row; a claim serving it holds the
/// queue row, then leases deliveries. Met head on, PostgreSQL broke the deadlock by failing the
/// delete: a 500 for the user (seen in CI, `access::a_tenant_token_reaches_only_its_own_tenant`).
/// The delete is tried again once the claim is through.
#[tokio::test]
async fn deleting_an_endpoint_a_claim_holds_is_no_error() {
    let Some((store, schema)) = crate::postgres().await else {
        return;
    };
    let endpoint = acme(&store).await;
    store
        .accept_event(NewEvent::new("acme", "t", "{\"n\":1}"))
        .await
        .unwrap();

    // A claim serving the endpoint: its queue row first…
    let mut claim = hold_queue_row(store.pool(), &endpoint).await;
    let lease = async {
        // …then, once the delete holds the deliveries and waits for the queue row, the lease.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let leased = sqlx::query("UPDATE deliveries SET lease_owner = 'w' WHERE endpoint_id = $1")
            .bind(&endpoint)
            .execute(&mut *claim)
            .await;
        claim.commit().await.unwrap();
        leased
    };
    let (deleted, leased) = tokio::join!(store.delete_endpoint("acme", &endpoint), lease);
    assert!(leased.is_ok(), "the claim went through: {leased:?}");
    assert_eq!(
        deleted.map_err(|e| e.to_string()),
        Ok(true),
        "the delete was tried again after the deadlock"
    );
    drop(store);
    crate::drop_schema(&schema).await;
}
