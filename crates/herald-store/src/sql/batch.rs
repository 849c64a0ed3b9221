//! Applying a batch of writes with a handful of statements, whatever its size.
//!
//! Group commit ([`crate::group`]) puts many writes in one transaction; this puts many rows in
//! one statement: each batch is bound as one JSON array and read back as a table, so a batch
//! of 500 events costs about as many round trips (to SQLite's thread, or over the socket to
//! PostgreSQL) as one.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};

use super::rows::headers_to_json;
use super::{Backend, Sql, json_rows, query, sql};
use crate::error::classify;
use crate::group::{Write, Written};
use crate::{
    Accepted, Attempt, DeliveryState, Error, ErrorKind, Event, Millis, NewEvent, Outcome, new_id,
};

/// The writes of one batch, applied in the caller's transaction: one result per write, in
/// order. Claims come last, so they can take what this very batch stored or rescheduled.
pub(crate) async fn apply<DB: Backend>(
    db: &mut DB::Connection,
    writes: &[Write],
) -> Result<Vec<Written>, Error> {
    let mut accepts = Vec::new();
    let mut finishes = Vec::new();
    let mut claims = Vec::new();
    for write in writes {
        match write {
            Write::Claim {
                lease,
                limit,
                lease_until,
                now,
            } => claims.push((lease, *limit, *lease_until, *now)),
            Write::Accept { new, now } => accepts.push((new, *now)),
            Write::Finish {
                delivery_id,
                lease,
                attempt,
                outcome,
            } => finishes.push(Finish {
                delivery_id,
                lease,
                attempt,
                outcome: *outcome,
            }),
        }
    }
    let mut accepted = accept_all::<DB>(db, &accepts).await?.into_iter();
    let mut finished = finish_all::<DB>(db, &finishes).await?.into_iter();
    let mut claimed = Vec::with_capacity(claims.len());
    for (lease, limit, lease_until, now) in claims {
        claimed.push(super::queue::claim::<DB>(db, lease, limit, lease_until, now).await?);
    }
    let mut claimed = claimed.into_iter();
    writes
        .iter()
        .map(|write| {
            match write {
                Write::Accept { .. } => accepted.next().map(Written::Accepted),
                Write::Finish { .. } => finished.next().map(Written::Finished),
                Write::Claim { .. } => claimed.next().map(Written::Claimed),
            }
            .ok_or_else(|| Error::new(ErrorKind::Database, "a write of the batch has no result"))
        })
        .collect()
}

/// Stores events and one pending delivery per subscribed endpoint each, and announces them.
pub(crate) async fn accept_all<DB: Backend>(
    db: &mut DB::Connection,
    events: &[(&NewEvent, Millis)],
) -> Result<Vec<Accepted>, Error> {
    // ON CONFLICT makes a repeated idempotency key (in this batch, or from another process
    // at the same moment) skip the row instead of failing the batch; `WHERE true` tells
    // SQLite's parser that ON CONFLICT belongs to the INSERT.
    const INSERT_EVENTS: Sql = sql!(
        "INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, created_at) \
         SELECT v.value->>0, v.value->>1, v.value->>2, v.value->>3, v.value->>4, \
           CAST(v.value->>5 AS BIGINT) FROM " [rows "$1"] " AS v \
         WHERE true ON CONFLICT DO NOTHING RETURNING id"
    );
    const SUBSCRIBED: Sql = sql!(
        "SELECT p.id FROM endpoints p WHERE p.tenant_id = $1 AND p.enabled \
         AND (p.event_types = '[]' OR EXISTS (SELECT 1 FROM " [texts "p.event_types"] " AS t \
           WHERE t.value = $2))"
    );
    const EARLIER: &str = "SELECT id, tenant_id, event_type, payload, idempotency_key, \
         created_at FROM events WHERE tenant_id = $1 AND idempotency_key = $2";

    if events.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = events.iter().map(|_| new_id("evt")).collect();
    let rows: Vec<_> = events
        .iter()
        .zip(&ids)
        .map(|(&(new, now), id)| {
            (
                id,
                &new.tenant_id,
                &new.event_type,
                &new.payload,
                &new.idempotency_key,
                now,
            )
        })
        .collect();
    let inserted: Vec<(String,)> = query(INSERT_EVENTS)
        .bind(json_rows(&rows))
        .fetch_all(&mut *db)
        .await
        .map_err(|e| classify(e, &tenants_of(events)))?;
    let created: HashSet<String> = inserted.into_iter().map(|(id,)| id).collect();

    let mut subscribed: HashMap<(&str, &str), Vec<String>> = HashMap::new();
    for (&(new, _), id) in events.iter().zip(&ids) {
        if !created.contains(id) {
            continue;
        }
        let key = (new.tenant_id.as_str(), new.event_type.as_str());
        if let Entry::Vacant(slot) = subscribed.entry(key) {
            let endpoints: Vec<(String,)> = query(SUBSCRIBED)
                .bind(key.0)
                .bind(key.1)
                .fetch_all(&mut *db)
                .await?;
            slot.insert(endpoints.into_iter().map(|(id,)| id).collect());
        }
    }
    let mut deliveries = Vec::new();
    for (&(new, now), id) in events.iter().zip(&ids) {
        if !created.contains(id) {
            continue;
        }
        let key = (new.tenant_id.as_str(), new.event_type.as_str());
        for endpoint_id in subscribed.get(&key).into_iter().flatten() {
            deliveries.push((new_id("dlv"), id.as_str(), endpoint_id.as_str(), now));
        }
    }
    if !deliveries.is_empty() {
        insert_deliveries::<DB>(db, &deliveries).await?;
        DB::announce(db).await?;
    }

    let mut accepted = Vec::with_capacity(events.len());
    for (&(new, now), id) in events.iter().zip(ids) {
        if created.contains(&id) {
            let count = subscribed
                .get(&(new.tenant_id.as_str(), new.event_type.as_str()))
                .map_or(0, Vec::len);
            accepted.push(Accepted {
                event: Event {
                    id,
                    tenant_id: new.tenant_id.clone(),
                    event_type: new.event_type.clone(),
                    payload: new.payload.clone(),
                    idempotency_key: new.idempotency_key.clone(),
                    created_at: now,
                },
                created: true,
                deliveries: u32::try_from(count).unwrap_or(u32::MAX),
            });
        } else {
            // Only a taken idempotency key keeps an event out.
            let key = new.idempotency_key.as_deref().ok_or_else(|| {
                Error::new(ErrorKind::Database, "an event without a key was not stored")
            })?;
            let earlier: Event = query(EARLIER)
                .bind(&new.tenant_id)
                .bind(key)
                .fetch_one(&mut *db)
                .await?;
            let (count,): (i64,) = query("SELECT count(*) FROM deliveries WHERE event_id = $1")
                .bind(&earlier.id)
                .fetch_one(&mut *db)
                .await?;
            accepted.push(Accepted {
                event: earlier,
                created: false,
                deliveries: super::rows::count(count),
            });
        }
    }
    Ok(accepted)
}

/// Inserts pending deliveries, due at their time: `(id, event id, endpoint id, time)`.
pub(crate) async fn insert_deliveries<DB: Backend>(
    db: &mut DB::Connection,
    deliveries: &[(String, &str, &str, Millis)],
) -> Result<(), Error> {
    const INSERT: Sql = sql!(
        "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, next_attempt_at, \
           created_at, updated_at) \
         SELECT v.value->>0, v.value->>1, v.value->>2, 'pending', 0, \
           CAST(v.value->>3 AS BIGINT), CAST(v.value->>3 AS BIGINT), \
           CAST(v.value->>3 AS BIGINT) \
         FROM " [rows "$1"] " AS v"
    );
    query(INSERT)
        .bind(json_rows(&deliveries))
        .execute(&mut *db)
        .await?;
    Ok(())
}

struct Finish<'a> {
    delivery_id: &'a str,
    lease: &'a str,
    attempt: &'a Attempt,
    outcome: Outcome,
}

/// Records attempts and moves their deliveries on; true for each whose lease held.
async fn finish_all<DB: Backend>(
    db: &mut DB::Connection,
    finishes: &[Finish<'_>],
) -> Result<Vec<bool>, Error> {
    const INSERT_ATTEMPTS: Sql = sql!(
        "INSERT INTO attempts (id, delivery_id, started_at, duration_ms, status_code, \
           response_excerpt, error, request_headers, response_headers) \
         SELECT v.value->>0, v.value->>1, CAST(v.value->>2 AS BIGINT), \
           CAST(v.value->>3 AS BIGINT), CAST(v.value->>4 AS INTEGER), v.value->>5, \
           v.value->>6, v.value->>7, v.value->>8 \
         FROM " [rows "$1"] " AS v"
    );
    // Only where the lease still holds; `RETURNING` names the deliveries that moved.
    const ADVANCE: Sql = sql!(
        "UPDATE deliveries SET state = v.value->>1, attempts = attempts + 1, \
           next_attempt_at = CAST(v.value->>2 AS BIGINT), lease_owner = NULL, \
           lease_expires_at = NULL, updated_at = CAST(v.value->>3 AS BIGINT) \
         FROM " [rows "$1"] " AS v \
         WHERE deliveries.id = v.value->>0 AND deliveries.lease_owner = v.value->>4 \
           AND deliveries.state = 'pending' \
         RETURNING id, endpoint_id"
    );

    if finishes.is_empty() {
        return Ok(Vec::new());
    }
    let attempts: Vec<_> = finishes
        .iter()
        .map(|f| {
            let a = f.attempt;
            (
                new_id("att"),
                f.delivery_id,
                a.started_at,
                a.duration_ms,
                a.status_code,
                &a.response_excerpt,
                &a.error,
                headers_to_json(&a.request_headers),
                headers_to_json(&a.response_headers),
            )
        })
        .collect();
    query(INSERT_ATTEMPTS)
        .bind(json_rows(&attempts))
        .execute(&mut *db)
        .await
        .map_err(|e| classify(e, &deliveries_of(finishes)))?;

    let advances: Vec<_> = finishes
        .iter()
        .map(|f| {
            let (state, next) = match f.outcome {
                Outcome::Succeeded => (DeliveryState::Succeeded, None),
                Outcome::RetryAt(at) => (DeliveryState::Pending, Some(at)),
                Outcome::Dead => (DeliveryState::Dead, None),
            };
            let finished_at = f.attempt.started_at + f.attempt.duration_ms;
            (f.delivery_id, state.as_str(), next, finished_at, f.lease)
        })
        .collect();
    let moved: Vec<(String, String)> = query(ADVANCE)
        .bind(json_rows(&advances))
        .fetch_all(&mut *db)
        .await?;
    let mut held_by: HashMap<String, String> = moved.into_iter().collect();

    let mut held = Vec::with_capacity(finishes.len());
    let mut outcomes = Vec::new();
    for finish in finishes {
        // The first finish of a delivery is the one that held its lease.
        match held_by.remove(finish.delivery_id) {
            Some(endpoint_id) => {
                held.push(true);
                outcomes.push((endpoint_id, finish.outcome, finish.attempt.started_at));
            }
            None => held.push(false),
        }
    }
    let streaks = streaks(outcomes);
    if !streaks.is_empty() {
        record_streaks::<DB>(db, &streaks).await?;
    }
    Ok(held)
}

/// How an endpoint's failure streak changes.
#[derive(Debug, PartialEq, Eq)]
struct Streak {
    endpoint_id: String,
    /// A delivery succeeded: the streak becomes exactly `since` (none, or the first failure
    /// after that success). Otherwise an existing streak goes on and `since` starts a new one.
    reset: bool,
    since: Option<Millis>,
}

async fn record_streaks<DB: Backend>(
    db: &mut DB::Connection,
    streaks: &[Streak],
) -> Result<(), Error> {
    // Written only when it changes, so a healthy endpoint's row is not locked by every batch
    // (and two processes' batches do not queue on it).
    const RECORD: Sql = sql!(
        "UPDATE endpoints SET failing_since = CAST(v.value->>2 AS BIGINT) \
         FROM " [rows "$1"] " AS v \
         WHERE endpoints.id = v.value->>0 AND CASE WHEN CAST(v.value->>1 AS BOOLEAN) \
           THEN endpoints.failing_since IS DISTINCT FROM CAST(v.value->>2 AS BIGINT) \
           ELSE endpoints.failing_since IS NULL END"
    );
    let rows: Vec<_> = streaks
        .iter()
        .map(|s| (&s.endpoint_id, s.reset, s.since))
        .collect();
    query(RECORD)
        .bind(json_rows(&rows))
        .execute(&mut *db)
        .await?;
    Ok(())
}

/// How each endpoint's failure streak changes after these outcomes, in order.
fn streaks(outcomes: Vec<(String, Outcome, Millis)>) -> Vec<Streak> {
    let mut by_endpoint: BTreeMap<String, Streak> = BTreeMap::new();
    for (endpoint_id, outcome, started_at) in outcomes {
        let streak = by_endpoint
            .entry(endpoint_id.clone())
            .or_insert_with(|| Streak {
                endpoint_id,
                reset: false,
                since: None,
            });
        match outcome {
            Outcome::Succeeded => {
                streak.reset = true;
                streak.since = None;
            }
            Outcome::RetryAt(_) | Outcome::Dead => {
                streak.since = streak.since.or(Some(started_at));
            }
        }
    }
    by_endpoint.into_values().collect()
}

/// Names what a batch of events refers to, for an error message.
fn tenants_of(events: &[(&NewEvent, Millis)]) -> String {
    match events {
        [(one, _)] => format!("tenant `{}`", one.tenant_id),
        _ => "an event's tenant".into(),
    }
}

/// Names what a batch of attempts refers to, for an error message.
fn deliveries_of(finishes: &[Finish<'_>]) -> String {
    match finishes {
        [one] => format!("delivery `{}`", one.delivery_id),
        _ => "an attempt's delivery".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streak(endpoint_id: &str, reset: bool, since: Option<Millis>) -> Streak {
        Streak {
            endpoint_id: endpoint_id.into(),
            reset,
            since,
        }
    }

    #[test]
    fn failure_streaks() {
        let failed = Outcome::RetryAt(99);
        let cases = [
            (
                "one success",
                vec![("a", Outcome::Succeeded, 1)],
                vec![streak("a", true, None)],
            ),
            (
                "one failure",
                vec![("a", failed, 1)],
                vec![streak("a", false, Some(1))],
            ),
            (
                "failures keep the first",
                vec![("a", failed, 1), ("a", Outcome::Dead, 2)],
                vec![streak("a", false, Some(1))],
            ),
            (
                "a success ends a streak",
                vec![("a", failed, 1), ("a", Outcome::Succeeded, 2)],
                vec![streak("a", true, None)],
            ),
            (
                "failures after a success start a new one",
                vec![
                    ("a", failed, 1),
                    ("a", Outcome::Succeeded, 2),
                    ("a", failed, 3),
                    ("a", failed, 4),
                ],
                vec![streak("a", true, Some(3))],
            ),
            (
                "endpoints apart",
                vec![("b", failed, 1), ("a", Outcome::Succeeded, 2)],
                vec![streak("a", true, None), streak("b", false, Some(1))],
            ),
        ];
        for (name, outcomes, expected) in cases {
            let outcomes = outcomes
                .into_iter()
                .map(|(endpoint, outcome, at)| (endpoint.to_owned(), outcome, at))
                .collect();
            assert_eq!(streaks(outcomes), expected, "{name}");
        }
    }
}
