//! Recording attempts: each attempt stored (a success in its delivery's row, any other in
//! `attempts`), its delivery moved on (succeeded, retried, dead), and its endpoint's state
//! settled (failure streak, circuit breaker, next turn, the next delivery of an ordering key,
//! disabling), for the whole batch at once.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::json;

use super::endpoint_state::{EndpointState, Seen, turn};
use super::exec::after;
use super::hours::{self, Counted};
use super::notify::{self, Change};
use super::rows::{count, headers_to_json, storable, stored_headers};
use super::{Backend, Query, Run, Sql, json_rows, query, sql};
use crate::error::classify;
use crate::{DeliveryState, Error, Finish, Finished, Millis, Outcome, lease_worker, new_id};

/// Moves each delivery of a batch of finishes on, found by its key ([`super::DeliveryKey`]),
/// only where the lease still holds; `RETURNING` names the deliveries that moved. An
/// attempt that succeeded comes with its columns (6 to 12), kept in the delivery's row
/// (migration 24); any other leaves them empty.
const ADVANCE: Sql = sql!(
    "UPDATE deliveries SET state = v.value->>1, attempts = attempts + 1, \
       next_attempt_at = CAST(v.value->>2 AS BIGINT), lease_owner = NULL, \
       lease_expires_at = NULL, updated_at = CAST(v.value->>3 AS BIGINT), \
       success_started_at = CAST(v.value->>6 AS BIGINT), \
       success_duration_ms = CAST(v.value->>7 AS BIGINT), \
       success_status_code = CAST(v.value->>8 AS INTEGER), \
       success_response_excerpt = v.value->>9, success_error = v.value->>10, \
       success_request_headers = v.value->>11, success_response_headers = v.value->>12 \
     FROM " [rows "$1"] " AS v \
     WHERE deliveries.endpoint_id = v.value->>5 AND deliveries.id = v.value->>0 \
       AND deliveries.lease_owner = v.value->>4 \
       AND deliveries.state = (SELECT 'pending') \
     RETURNING id, endpoint_id, ordering_key"
);

/// Records attempts and moves their deliveries on, then each endpoint's state: its failure
/// streak, its circuit, its next turn, the next delivery of each ordering key, and whether it
/// is disabled, decided on its state as of this transaction.
/// Also says whether work became due now (an ordering key's next delivery, an attempt herald cut
/// off), so the workers look at once.
pub(crate) async fn finish_all<DB: Backend>(
    db: &mut impl Run<DB>,
    finishes: &[(&Finish, Millis)],
) -> Result<(Vec<Finished>, bool), Error> {
    const INSERT_ATTEMPTS: Sql = sql!(
        "INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status_code, \
           response_excerpt, error, request_headers, response_headers) \
         SELECT v.value->>0, v.value->>1, CAST(v.value->>2 AS BIGINT), \
           CAST(v.value->>3 AS BIGINT), CAST(v.value->>4 AS INTEGER), v.value->>5, \
           v.value->>6, v.value->>7, v.value->>8 \
         FROM " [rows "$1"] " AS v"
    );
    if finishes.is_empty() {
        return Ok((Vec::new(), false));
    }
    let holds = holders::<DB>(db, finishes).await?;
    let advances: Vec<_> = finishes
        .iter()
        .zip(&holds)
        .map(|(&(f, now), &holds)| {
            let (state, next) = match f.outcome {
                Outcome::Succeeded => (DeliveryState::Succeeded, None),
                Outcome::RetryAt(at) => (DeliveryState::Pending, Some(at)),
                Outcome::Dead => (DeliveryState::Dead, None),
                Outcome::Interrupted => (DeliveryState::Pending, Some(now)),
            };
            let finished_at = f.attempt.started_at + f.attempt.duration_ms;
            // Any other finish of the delivery names no lease, so it cannot match.
            let lease = holds.then_some(&f.lease);
            let mut row = vec![
                json!(f.delivery_id),
                json!(state.as_str()),
                json!(next),
                json!(finished_at),
                json!(lease),
                json!(f.endpoint_id),
            ];
            // A success goes into the row of the delivery it moves on.
            if holds && f.outcome == Outcome::Succeeded {
                row.extend(stored_attempt(f));
            }
            row
        })
        .collect();
    let moved: Vec<(String, String, Option<String>)> = query(ADVANCE)
        .bind(json_rows(&advances))
        .fetch_all(&mut *db)
        .await?;
    let mut held_by: HashMap<String, (String, Option<String>)> = moved
        .into_iter()
        .map(|(id, endpoint, key)| (id, (endpoint, key)))
        .collect();
    // Each finish's delivery's endpoint and ordering key, where it moved the delivery on.
    let moves: Vec<Option<(String, Option<String>)>> = finishes
        .iter()
        .zip(&holds)
        .map(|((f, _), &holds)| holds.then(|| held_by.remove(&f.delivery_id)).flatten())
        .collect();

    // Every other attempt gets a row of its own: failures, and any whose lease had gone.
    let attempts: Vec<_> = finishes
        .iter()
        .zip(&moves)
        .filter(|((f, _), moved)| !(moved.is_some() && f.outcome == Outcome::Succeeded))
        .map(|((f, _), _)| {
            let mut row = vec![json!(new_id("att")), json!(f.delivery_id)];
            row.extend(stored_attempt(f));
            row
        })
        .collect();
    if !attempts.is_empty() {
        query(INSERT_ATTEMPTS)
            .bind(json_rows(&attempts))
            .execute(&mut *db)
            .await
            .map_err(|e| classify(e, &deliveries_of(finishes)))?;
    }

    // What each endpoint saw, in the order the attempts were handed in.
    let mut seen: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
    let mut held = Vec::with_capacity(finishes.len());
    let mut successors = Vec::new();
    for (cause, (&(finish, now), moved)) in finishes.iter().zip(moves).enumerate() {
        let Some((endpoint_id, key)) = moved else {
            held.push(None);
            continue;
        };
        if let (Some(key), Outcome::Succeeded | Outcome::Dead) = (&key, finish.outcome) {
            successors.push((endpoint_id.clone(), key.clone(), now));
        }
        seen.entry(endpoint_id.clone()).or_default().push(Seen {
            outcome: finish.outcome,
            started_at: finish.attempt.started_at,
            gone: finish.gone,
            disable_after: finish.disable_after,
            now,
            cause,
        });
        held.push(Some(endpoint_id));
    }
    let counting = count_attempts::<DB>(db, finishes, &held).await?;
    let Settled { disabled, changes } =
        settle_endpoints::<DB>(db, counting, &seen, &successors).await?;
    // A delivery due again (a retry, an attempt herald cut off) or a key's next delivery
    // asks for its endpoint's turn as an accept does: a claim running now cannot see this
    // batch's writes and may take the endpoint out of line; the settled state alone would
    // then be overwritten by the claim's commit.
    let mut due: BTreeMap<&str, Millis> = BTreeMap::new();
    // The endpoints with a delivery due now, whose workers are told at the commit.
    let mut due_now: Vec<&str> = Vec::new();
    for (&(finish, now), endpoint) in finishes.iter().zip(&held) {
        let at = match finish.outcome {
            Outcome::RetryAt(at) => at,
            Outcome::Interrupted => now,
            Outcome::Succeeded | Outcome::Dead => continue,
        };
        if let Some(endpoint) = endpoint.as_deref().filter(|e| !disabled.contains_key(*e)) {
            let earliest = due.entry(endpoint).or_insert(at);
            *earliest = (*earliest).min(at);
            if at <= now {
                due_now.push(endpoint);
            }
        }
    }
    for (endpoint, _, now) in successors
        .iter()
        .filter(|(e, _, _)| !disabled.contains_key(e))
    {
        let earliest = due.entry(endpoint.as_str()).or_insert(*now);
        *earliest = (*earliest).min(*now);
        due_now.push(endpoint);
    }
    super::turns::wake::<DB>(db, due.into_iter()).await?;
    due_now.sort_unstable();
    due_now.dedup();
    let mut made_due = !due_now.is_empty();
    if made_due {
        super::announce::<DB>(db, &due_now).await?;
    }
    let dead = finishes
        .iter()
        .zip(&held)
        .enumerate()
        .filter(|(_, ((finish, _), endpoint))| {
            endpoint.is_some() && finish.outcome == Outcome::Dead
        })
        .map(|(cause, _)| cause);
    made_due |= notify::after_attempts::<DB>(db, finishes, changes, dead).await?;
    let finished = held
        .into_iter()
        .map(|endpoint| Finished {
            held: endpoint.is_some(),
            disabled: endpoint.and_then(|e| disabled.get(&e).cloned()),
        })
        .collect();
    Ok((finished, made_due))
}

/// The leases the deliveries `$1` (their keys) are held under now, read locked.
const LEASES: Sql = sql!(
    "SELECT id, lease_owner FROM deliveries \
     WHERE (endpoint_id, id) IN " [keys "$1"] " \
       AND state = (SELECT 'pending') AND lease_owner IS NOT NULL"[lock]
);

/// Which finish of each delivery may move it on: its only one in the batch, or, where the batch
/// has several (a lease that ran out and the one after it, finishing together), the one under
/// the lease the delivery is held by now, read locked so that no reap moves it meanwhile.
async fn holders<DB: Backend>(
    db: &mut impl Run<DB>,
    finishes: &[(&Finish, Millis)],
) -> Result<Vec<bool>, Error> {
    let mut finishes_of: HashMap<(&str, &str), usize> = HashMap::new();
    for (f, _) in finishes {
        *finishes_of.entry(f.key()).or_default() += 1;
    }
    let shared: Vec<(&str, &str)> = finishes_of
        .iter()
        .filter(|&(_, &n)| n > 1)
        .map(|(&key, _)| key)
        .collect();
    let leases: HashMap<String, String> = if shared.is_empty() {
        HashMap::new()
    } else {
        query(LEASES)
            .bind(json_rows(&shared))
            .fetch_all(&mut *db)
            .await?
            .into_iter()
            .collect()
    };
    let mut taken = HashSet::new();
    Ok(finishes
        .iter()
        .map(|(f, _)| {
            let id = f.delivery_id.as_str();
            finishes_of[&f.key()] == 1 || (leases.get(id) == Some(&f.lease) && taken.insert(id))
        })
        .collect())
}

/// An attempt's columns as stored, in `attempts` or as a delivery's success: the request's
/// headers without those herald rebuilds, text without NUL.
fn stored_attempt(finish: &Finish) -> [serde_json::Value; 7] {
    let a = &finish.attempt;
    [
        json!(a.started_at),
        json!(a.duration_ms),
        json!(a.status_code),
        json!(storable(&a.response_excerpt)),
        json!(storable(&a.error)),
        json!(stored_headers(
            &a.request_headers,
            &finish.event_id,
            a.started_at
        )),
        json!(headers_to_json(&a.response_headers)),
    ]
}

/// The statement that counts the batch's attempts in their endpoints' hours (for the chart): a
/// held delivery's endpoint came back from its advance; one whose lease had gone, whose
/// attempt is recorded all the same, is looked up.
async fn count_attempts<'q, DB: Backend>(
    db: &mut impl Run<DB>,
    finishes: &[(&Finish, Millis)],
    held: &[Option<String>],
) -> Result<Option<Query<'q>>, Error> {
    const ENDPOINTS: Sql = sql!(
        "SELECT id, endpoint_id FROM deliveries \
         WHERE (endpoint_id, id) IN " [keys "$1"]
    );
    let lost: Vec<(&str, &str)> = finishes
        .iter()
        .zip(held)
        .filter(|(_, endpoint)| endpoint.is_none())
        .map(|((finish, _), _)| finish.key())
        .collect();
    let found: HashMap<String, String> = if lost.is_empty() {
        HashMap::new()
    } else {
        let rows: Vec<(String, String)> = query(ENDPOINTS)
            .bind(json_rows(&lost))
            .fetch_all(&mut *db)
            .await?;
        rows.into_iter().collect()
    };
    let counted = finishes
        .iter()
        .zip(held)
        .filter_map(|((finish, _), endpoint)| {
            let endpoint_id = endpoint
                .as_deref()
                .or_else(|| found.get(&finish.delivery_id).map(String::as_str))?;
            Some(Counted {
                endpoint_id,
                worker: lease_worker(&finish.lease),
                attempt: &finish.attempt,
            })
        });
    Ok(hours::count(counted))
}

/// Runs `first` (the attempts' count, in one round trip with the first read where the
/// database can), applies what the endpoints saw to their state, makes each ordering key's
/// next delivery due where its predecessor finished, and disables endpoints that must be;
/// returns the disabled ones with why, and what changed that operators hear of.
async fn settle_endpoints<DB: Backend>(
    db: &mut impl Run<DB>,
    first: Option<Query<'_>>,
    seen: &BTreeMap<String, Vec<Seen>>,
    successors: &[(String, String, Millis)],
) -> Result<Settled, Error> {
    // First read without locks: most batches change nothing (successes on healthy endpoints),
    // and a lock held to the end of the batch would make claims pass the endpoint over. When
    // something changes, read again locked, in endpoint order (so two processes' batches
    // never wait on each other in a circle), and decide on that state.
    macro_rules! read {
        ($($lock:tt)*) => {
            sql!(
                "SELECT q.endpoint_id, q.failures, q.last_failure_at, q.open_until, q.due_at, \
                   p.failing_since, p.enabled \
                 FROM endpoint_queues q JOIN endpoints p ON p.id = q.endpoint_id \
                 WHERE q.endpoint_id IN (SELECT t.value FROM " [texts "$1"] " AS t) \
                 ORDER BY q.endpoint_id" $($lock)*
            )
        };
    }
    const PEEK: Sql = read!();
    const READ: Sql = read!([lock_of "q"]);
    const WRITE_QUEUES: Sql = sql!(
        "UPDATE endpoint_queues SET failures = CAST(v.value->>1 AS INTEGER), \
           last_failure_at = CAST(v.value->>2 AS BIGINT), \
           open_until = CAST(v.value->>3 AS BIGINT), due_at = CAST(v.value->>4 AS BIGINT) \
         FROM " [rows "$1"] " AS v WHERE endpoint_queues.endpoint_id = v.value->>0"
    );
    const WRITE_STREAKS: Sql = sql!(
        "UPDATE endpoints SET failing_since = CAST(v.value->>1 AS BIGINT) \
         FROM " [rows "$1"] " AS v WHERE endpoints.id = v.value->>0"
    );
    // The next delivery of each key, the one with the lowest number, waiting behind it.
    const NEXT_IN_ORDER: Sql = sql!(
        "UPDATE deliveries SET next_attempt_at = CAST(v.value->>2 AS BIGINT) \
         FROM " [rows "$1"] " AS v \
         WHERE deliveries.endpoint_id = v.value->>0 AND deliveries.id = (SELECT n.id \
           FROM deliveries n \
           WHERE n.endpoint_id = v.value->>0 AND n.ordering_key = v.value->>1 \
             AND n.state = 'pending' AND n.next_attempt_at IS NULL \
           ORDER BY n.seq LIMIT 1)"
    );

    let mut touched: Vec<&str> = seen.keys().map(String::as_str).collect();
    touched.extend(successors.iter().map(|(e, _, _)| e.as_str()));
    touched.sort_unstable();
    touched.dedup();
    if touched.is_empty() {
        if let Some(first) = first {
            first.execute(&mut *db).await?;
        }
        return Ok(Settled::default());
    }
    let peek = query(PEEK).bind(json_rows(&touched));
    let peeked: Vec<EndpointRow> = after::<DB>(db, first.into_iter().collect(), peek)
        .await?
        .fetch_all(&mut *db)
        .await?;
    if decide(&peeked, seen, successors).is_none() {
        return Ok(Settled::default());
    }
    let rows: Vec<EndpointRow> = query(READ)
        .bind(json_rows(&touched))
        .fetch_all(&mut *db)
        .await?;
    let Some(Decided {
        queues,
        streaks,
        disabled,
        changes,
    }) = decide(&rows, seen, successors)
    else {
        return Ok(Settled::default());
    };

    if !queues.is_empty() {
        query(WRITE_QUEUES)
            .bind(json_rows(&queues))
            .execute(&mut *db)
            .await?;
    }
    if !streaks.is_empty() {
        query(WRITE_STREAKS)
            .bind(json_rows(&streaks))
            .execute(&mut *db)
            .await?;
    }
    let next: Vec<_> = successors
        .iter()
        .filter(|(e, _, _)| !disabled.contains_key(e))
        .collect();
    if !next.is_empty() {
        query(NEXT_IN_ORDER)
            .bind(json_rows(&next))
            .execute(&mut *db)
            .await?;
    }
    for (endpoint_id, reason) in &disabled {
        let now = seen
            .get(endpoint_id)
            .and_then(|s| s.last())
            .map_or(0, |s| s.now);
        super::turns::disable::<DB>(db, endpoint_id, reason, now).await?;
    }
    Ok(Settled { disabled, changes })
}

/// What [`settle_endpoints`] did.
#[derive(Default)]
struct Settled {
    /// Endpoint, why.
    disabled: BTreeMap<String, String>,
    /// Endpoint, the attempt that changed it, and what its operator hears.
    changes: Vec<(String, usize, Change)>,
}

/// What a batch's outcomes do to its endpoints' state: rows to write, streaks to change, and
/// endpoints to disable; `None` when nothing changes and no ordering key moves on.
fn decide(
    rows: &[EndpointRow],
    seen: &BTreeMap<String, Vec<Seen>>,
    successors: &[(String, String, Millis)],
) -> Option<Decided> {
    let mut queues = Vec::new();
    let mut streaks = Vec::new();
    let mut disabled = BTreeMap::new();
    let mut changes = Vec::new();
    for row in rows {
        let before = row.state();
        let mut after = before.clone();
        let mut reason = None;
        for event in seen.get(&row.endpoint_id).into_iter().flatten() {
            let step = after.clone();
            let disables = after
                .record(event)
                .filter(|_| row.enabled && reason.is_none());
            let change = match disables {
                // Disabled by this very attempt: that is the news, not that it failed.
                Some(why) => {
                    reason = Some(why.clone());
                    Some(Change::Disabled(why))
                }
                None if reason.is_none() && row.enabled => turn(&step, &after).map(Change::Turn),
                None => None,
            };
            changes.extend(change.map(|change| (row.endpoint_id.clone(), event.cause, change)));
        }
        for (_, _, now) in successors.iter().filter(|(e, _, _)| *e == row.endpoint_id) {
            after.due_by(*now);
        }
        if let Some(reason) = reason {
            disabled.insert(row.endpoint_id.clone(), reason);
            continue;
        }
        if after.failing_since != before.failing_since {
            streaks.push((row.endpoint_id.clone(), after.failing_since));
        }
        if after != before {
            queues.push((
                row.endpoint_id.clone(),
                after.failures,
                after.last_failure_at,
                after.open_until,
                after.due_at,
            ));
        }
    }
    let unchanged = queues.is_empty() && streaks.is_empty() && disabled.is_empty();
    if unchanged && successors.is_empty() {
        return None;
    }
    Some(Decided {
        queues,
        streaks,
        disabled,
        changes,
    })
}

/// An endpoint's queue row as written: endpoint, failures, last failure, open until, due at.
type QueueRow = (String, u32, Option<Millis>, Option<Millis>, Option<Millis>);

/// See [`decide`].
struct Decided {
    queues: Vec<QueueRow>,
    /// Endpoint, failing since.
    streaks: Vec<(String, Option<Millis>)>,
    /// Endpoint, why.
    disabled: BTreeMap<String, String>,
    /// Endpoint, the attempt that changed it, and what its operator hears.
    changes: Vec<(String, usize, Change)>,
}

/// An endpoint's scheduling state as [`settle_endpoints`] reads it.
#[derive(sqlx::FromRow, serde::Deserialize)]
struct EndpointRow {
    endpoint_id: String,
    failures: i32,
    last_failure_at: Option<Millis>,
    open_until: Option<Millis>,
    due_at: Option<Millis>,
    failing_since: Option<Millis>,
    enabled: bool,
}

impl EndpointRow {
    fn state(&self) -> EndpointState {
        EndpointState {
            failures: count(self.failures.into()),
            failing_since: self.failing_since,
            last_failure_at: self.last_failure_at,
            open_until: self.open_until,
            due_at: self.due_at,
        }
    }
}

/// Names what a batch of attempts refers to, for an error message.
fn deliveries_of(finishes: &[(&Finish, Millis)]) -> String {
    match finishes {
        [(one, _)] => format!("delivery `{}`", one.delivery_id),
        _ => "an attempt's delivery".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::Sqlite;

    use super::finish_all;
    use crate::sql::query;
    use crate::sqlite::SqliteStore;
    use crate::{Attempt, Finish, Log, NewEndpoint, NewEvent, Outcome, Registry};

    fn success(lease: &str, (endpoint_id, delivery_id): (&str, &str), status: u16) -> Finish {
        Finish {
            delivery_id: delivery_id.into(),
            endpoint_id: endpoint_id.into(),
            event_id: String::new(),
            lease: lease.into(),
            attempt: Attempt {
                started_at: 1_000,
                duration_ms: 5,
                status_code: Some(status),
                response_excerpt: None,
                error: None,
                request_headers: Default::default(),
                response_headers: Default::default(),
            },
            outcome: Outcome::Succeeded,
            gone: false,
            disable_after: Duration::from_secs(3600),
        }
    }

    /// Two finishes of one delivery in one batch, the one under a lease that ran out handed in
    /// first: the one under the lease the delivery is held by moves it on, is told so, and is
    /// the success kept in its row; the other is logged in `attempts`.
    #[tokio::test]
    async fn of_two_finishes_of_a_delivery_in_a_batch_the_one_under_its_lease_moves_it() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        store.create_tenant("acme").await.unwrap();
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let endpoint = NewEndpoint::new("acme", "https://example.com", secret);
        store.create_endpoint(endpoint).await.unwrap();
        store
            .accept_event(NewEvent::new("acme", "t", "{}"))
            .await
            .unwrap();
        let (endpoint, id): (String, String) = query("SELECT endpoint_id, id FROM deliveries")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        query("UPDATE deliveries SET lease_owner = 'w2/now', lease_expires_at = 9000000000000")
            .execute(&store.writer)
            .await
            .unwrap();

        let key = (endpoint.as_str(), id.as_str());
        let (late, on_time) = (success("w1/gone", key, 200), success("w2/now", key, 204));
        let mut tx = store.writer.begin().await.unwrap();
        let (finished, _) = finish_all::<Sqlite>(&mut *tx, &[(&late, 2_000), (&on_time, 2_000)])
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let held: Vec<bool> = finished.iter().map(|f| f.held).collect();
        assert_eq!(held, [false, true]);
        let logged: Vec<_> = store
            .attempts("acme", &id)
            .await
            .unwrap()
            .iter()
            .map(|a| a.status_code)
            .collect();
        assert_eq!(logged, [Some(200), Some(204)]);
        let (kept, rows): (Option<i64>, i64) =
            query("SELECT success_status_code, (SELECT count(*) FROM attempts) FROM deliveries")
                .fetch_one(&store.writer)
                .await
                .unwrap();
        assert_eq!((kept, rows), (Some(204), 1));
    }

    /// On PostgreSQL the statements that find deliveries by key and want them pending (the
    /// finish, the look-up of a delivery's lease, the hand-back of a claim) read them through
    /// the key, in a day's partition too young to have statistics too. Naming the state as a
    /// literal let PostgreSQL read them through `deliveries_ready` instead (every pending
    /// delivery of the endpoint, filtered by id), 136 ms a finish of a batch in the benchmark
    /// where the key takes 1 ms (`super::super::DeliveryKey`).
    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn postgres_reads_pending_deliveries_by_key_through_the_key() {
        let Some((store, schema)) = crate::sql::plans::store_in_new_schema().await else {
            return;
        };
        store.create_tenant("acme").await.unwrap();
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let endpoint = NewEndpoint::new("acme", "https://example.com", secret);
        let endpoint = store.create_endpoint(endpoint).await.unwrap().id;
        let ids: Vec<String> = (0..2_000).map(|_| crate::new_id("dlv")).collect();
        query(
            "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, \
               next_attempt_at, lease_owner, created_at, updated_at) \
             SELECT t.value, 'evt_1', $2, 'pending', 0, 1, 'w/1', 1, 1 \
             FROM json_array_elements_text(CAST($1 AS json)) AS t",
        )
        .bind(super::super::json_rows(&ids))
        .bind(&endpoint)
        .execute(&store.writer)
        .await
        .unwrap();

        let key = serde_json::json!([[&endpoint, &ids[7]]]).to_string();
        let finish = serde_json::json!([[&ids[7], "succeeded", null, 2, "w/1", &endpoint]]);
        for (name, sql, binds) in [
            ("the finish", super::ADVANCE, vec![finish.to_string()]),
            ("the lease's look-up", super::LEASES, vec![key.clone()]),
            (
                "the hand-back",
                super::super::turns::RELEASE_CLAIM,
                vec![key.clone(), "w/1".to_owned()],
            ),
        ] {
            let binds: Vec<&str> = binds.iter().map(String::as_str).collect();
            let plan = crate::sql::plans::plan(&store, &[], sql.postgres, &[], &binds).await;
            let read = plan
                .iter()
                .find(|line| line.contains("Scan") && line.contains("deliveries_p"))
                .map(String::as_str)
                .unwrap_or_default();
            assert!(read.contains("_pkey"), "{name}: {plan:#?}");
        }
        crate::sql::plans::drop_schema(store, &schema).await;
    }
}
