//! Applying a batch of writes with a handful of statements, whatever its size.
//!
//! Group commit ([`crate::group`]) puts many writes in one transaction; this puts many rows in
//! one statement. Each statement is a round trip to the database (to SQLite's thread, or over
//! the socket to PostgreSQL), so a batch of 500 events costs about as many round trips as one.
//! The steps are the same on both backends; [`Dialect`] is the SQL each writes in its own way.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;

use crate::group::{Write, Written};
use crate::{
    Accepted, Attempt, Claimed, DeliveryState, Error, ErrorKind, Event, EventRow, Millis, NewEvent,
    Outcome, event_from_row, new_id, to_u32,
};

/// An event row to insert.
pub(crate) struct EventInsert<'a> {
    pub(crate) id: String,
    pub(crate) new: &'a NewEvent,
    pub(crate) now: Millis,
}

/// A delivery row to insert.
pub(crate) struct DeliveryInsert {
    pub(crate) id: String,
    pub(crate) event_id: String,
    pub(crate) endpoint_id: String,
    pub(crate) now: Millis,
}

/// An attempt row to insert.
pub(crate) struct AttemptInsert<'a> {
    pub(crate) id: String,
    pub(crate) delivery_id: &'a str,
    pub(crate) attempt: &'a Attempt,
}

/// A delivery to move on after an attempt, if its lease still holds.
pub(crate) struct Advance<'a> {
    pub(crate) delivery_id: &'a str,
    pub(crate) lease: &'a str,
    pub(crate) state: &'static str,
    pub(crate) next: Option<Millis>,
    pub(crate) now: Millis,
}

/// How an endpoint's failure streak changes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Streak {
    pub(crate) endpoint_id: String,
    /// A delivery succeeded: the streak becomes exactly `since` (none, or the first failure
    /// after that success). Otherwise an existing streak goes on and `since` starts a new one.
    pub(crate) reset: bool,
    pub(crate) since: Option<Millis>,
}

/// The statements a backend runs, each over every row it is given.
#[async_trait]
pub(crate) trait Dialect: Send {
    /// Inserts the events, skipping any whose idempotency key is already taken (also by an
    /// earlier row of the same call); returns the ids it inserted.
    async fn insert_events(&mut self, events: &[EventInsert<'_>])
    -> Result<HashSet<String>, Error>;

    /// The enabled endpoints of `tenant_id` subscribed to `event_type`.
    async fn subscribed(&mut self, tenant_id: &str, event_type: &str)
    -> Result<Vec<String>, Error>;

    async fn insert_deliveries(&mut self, deliveries: &[DeliveryInsert]) -> Result<(), Error>;

    /// Tells other processes that deliveries are waiting, once the transaction commits.
    async fn announce(&mut self) -> Result<(), Error>;

    /// The event stored under an idempotency key, and how many deliveries it has.
    async fn earlier(&mut self, tenant_id: &str, key: &str) -> Result<(EventRow, i64), Error>;

    async fn insert_attempts(&mut self, attempts: &[AttemptInsert<'_>]) -> Result<(), Error>;

    /// Moves on the deliveries whose lease still holds; returns them as
    /// `(delivery id, endpoint id)`.
    async fn advance(&mut self, rows: &[Advance<'_>]) -> Result<Vec<(String, String)>, Error>;

    async fn record_streaks(&mut self, streaks: &[Streak]) -> Result<(), Error>;

    /// Leases up to `limit` due deliveries under `lease`, oldest due first, with everything
    /// needed to send them.
    async fn claim(
        &mut self,
        lease: &str,
        limit: u32,
        lease_until: Millis,
        now: Millis,
    ) -> Result<Vec<Claimed>, Error>;
}

/// Applies `writes` inside the caller's transaction, one result per write, in order.
pub(crate) async fn apply<D: Dialect + ?Sized>(
    db: &mut D,
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
    let mut accepted = accept_all(db, &accepts).await?.into_iter();
    let mut finished = finish_all(db, &finishes).await?.into_iter();
    // Claims come last, so they can take what this very batch stored or rescheduled.
    let mut claimed = Vec::with_capacity(claims.len());
    for (lease, limit, lease_until, now) in claims {
        claimed.push(db.claim(lease, limit, lease_until, now).await?);
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

/// Stores events and one pending delivery per subscribed endpoint each.
pub(crate) async fn accept_all<D: Dialect + ?Sized>(
    db: &mut D,
    events: &[(&NewEvent, Millis)],
) -> Result<Vec<Accepted>, Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<EventInsert<'_>> = events
        .iter()
        .map(|&(new, now)| EventInsert {
            id: new_id("evt"),
            new,
            now,
        })
        .collect();
    let created = db.insert_events(&rows).await?;

    let mut subscribed: HashMap<(&str, &str), Vec<String>> = HashMap::new();
    let mut deliveries = Vec::new();
    for row in rows.iter().filter(|row| created.contains(&row.id)) {
        let key = (row.new.tenant_id.as_str(), row.new.event_type.as_str());
        if let Entry::Vacant(slot) = subscribed.entry(key) {
            slot.insert(db.subscribed(key.0, key.1).await?);
        }
        for endpoint_id in subscribed.get(&key).into_iter().flatten() {
            deliveries.push(DeliveryInsert {
                id: new_id("dlv"),
                event_id: row.id.clone(),
                endpoint_id: endpoint_id.clone(),
                now: row.now,
            });
        }
    }
    if !deliveries.is_empty() {
        db.insert_deliveries(&deliveries).await?;
        db.announce().await?;
    }

    let mut accepted = Vec::with_capacity(rows.len());
    for row in rows {
        let new = row.new;
        if created.contains(&row.id) {
            let count = subscribed
                .get(&(new.tenant_id.as_str(), new.event_type.as_str()))
                .map_or(0, Vec::len);
            accepted.push(Accepted {
                event: Event {
                    id: row.id,
                    tenant_id: new.tenant_id.clone(),
                    event_type: new.event_type.clone(),
                    payload: new.payload.clone(),
                    idempotency_key: new.idempotency_key.clone(),
                    created_at: row.now,
                },
                created: true,
                deliveries: u32::try_from(count).unwrap_or(u32::MAX),
            });
        } else {
            // Only a taken idempotency key keeps an event out.
            let key = new.idempotency_key.as_deref().ok_or_else(|| {
                Error::new(ErrorKind::Database, "an event without a key was not stored")
            })?;
            let (earlier, count) = db.earlier(&new.tenant_id, key).await?;
            accepted.push(Accepted {
                event: event_from_row(earlier),
                created: false,
                deliveries: to_u32(count),
            });
        }
    }
    Ok(accepted)
}

struct Finish<'a> {
    delivery_id: &'a str,
    lease: &'a str,
    attempt: &'a Attempt,
    outcome: Outcome,
}

/// Records attempts and moves their deliveries on; true for each whose lease held.
async fn finish_all<D: Dialect + ?Sized>(
    db: &mut D,
    finishes: &[Finish<'_>],
) -> Result<Vec<bool>, Error> {
    if finishes.is_empty() {
        return Ok(Vec::new());
    }
    let attempts: Vec<AttemptInsert<'_>> = finishes
        .iter()
        .map(|f| AttemptInsert {
            id: new_id("att"),
            delivery_id: f.delivery_id,
            attempt: f.attempt,
        })
        .collect();
    db.insert_attempts(&attempts).await?;

    let advances: Vec<Advance<'_>> = finishes
        .iter()
        .map(|f| {
            let (state, next) = match f.outcome {
                Outcome::Succeeded => (DeliveryState::Succeeded, None),
                Outcome::RetryAt(at) => (DeliveryState::Pending, Some(at)),
                Outcome::Dead => (DeliveryState::Dead, None),
            };
            Advance {
                delivery_id: f.delivery_id,
                lease: f.lease,
                state: state.as_str(),
                next,
                now: f.attempt.started_at + f.attempt.duration_ms,
            }
        })
        .collect();
    let mut held_by: HashMap<String, String> = db.advance(&advances).await?.into_iter().collect();

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
        db.record_streaks(&streaks).await?;
    }
    Ok(held)
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
