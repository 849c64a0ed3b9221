//! Applying a batch of writes with a handful of statements, whatever its size.
//!
//! Group commit ([`crate::group`]) puts many writes in one transaction; this puts many rows in
//! one statement: each batch is bound as one JSON array and read back as a table, so a batch
//! of 500 events costs about as many round trips (to SQLite's thread, or over the socket to
//! PostgreSQL) as one.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};

use super::hours::{self, Counted};
use super::rows::{count, event_columns, headers_to_json, storable, stored_headers};
use super::{Backend, Sql, json_rows, query, sql};
use crate::error::classify;
use crate::filter::{self, Filter};
use crate::group::{Holder, Write, Written};
use crate::{
    Accepted, DeliveryState, Error, ErrorKind, Event, Finish, Finished, Millis, NewEvent, Outcome,
    lease_worker, new_id, new_id_at,
};

use super::endpoint_state::turn;
pub(crate) use super::endpoint_state::{EndpointState, Seen};
use super::notify::{self, Change};

/// The writes of one batch, applied in the caller's transaction: one result per write, in
/// order. Claims come after accepts and finishes, so they can take what this very batch
/// stored or rescheduled; releases come last, so a lease is never given back ahead of the
/// attempt recorded under it.
///
/// Also says whether deliveries became due, so the workers can be woken once it commits.
pub(crate) async fn apply<DB: Backend>(
    db: &mut DB::Connection,
    writes: &[Write],
) -> Result<(Vec<Written>, bool), Error> {
    let mut accepts = Vec::new();
    let mut finishes = Vec::new();
    for write in writes {
        match write {
            Write::Accept { new, now } => accepts.push((new, *now)),
            Write::Finish { finish, now } => finishes.push((finish, *now)),
            Write::Claim { .. } | Write::Release { .. } => {}
        }
    }
    let accepted = accept_all::<DB>(db, &accepts).await?;
    let (finished, next_due) = finish_all::<DB>(db, &finishes).await?;
    let mut made_due = next_due || accepted.iter().any(|a| a.created && a.deliveries > 0);
    let mut accepted = accepted.into_iter();
    let mut finished = finished.into_iter();
    let mut claimed = Vec::new();
    for write in writes {
        if let Write::Claim {
            request,
            lease,
            now,
        } = write
        {
            let mut leased = super::claim::lease_due::<DB>(db, request, lease, *now).await?;
            if leased.ids.len() <= super::claim::READ_IN_WRITER {
                leased.read = Some(super::claim::read::<DB>(db, &leased.ids, lease, *now).await?);
            }
            claimed.push(leased);
        }
    }
    let mut released = Vec::new();
    for write in writes {
        if let Write::Release { holder, now } = write {
            let n = release::<DB>(db, holder, *now).await?;
            made_due |= n > 0;
            released.push(n);
        }
    }
    let mut claimed = claimed.into_iter();
    let mut released = released.into_iter();
    writes
        .iter()
        .map(|write| {
            match write {
                Write::Accept { .. } => accepted.next().map(Written::Accepted),
                Write::Finish { .. } => finished.next().map(Written::Finished),
                Write::Claim { .. } => claimed.next().map(Written::Claimed),
                Write::Release { .. } => released.next().map(Written::Released),
            }
            .ok_or_else(|| Error::new(ErrorKind::Database, "a write of the batch has no result"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|written| (written, made_due))
}

/// A delivery to insert: pending, or skipped (its endpoint is disabled).
pub(crate) struct NewDelivery<'a> {
    pub(crate) event_id: &'a str,
    pub(crate) endpoint_id: &'a str,
    pub(crate) ordering_key: Option<&'a str>,
    pub(crate) due: Millis,
    pub(crate) skipped: bool,
}

/// Stores events and one pending delivery per subscribed endpoint each, and announces them.
pub(crate) async fn accept_all<DB: Backend>(
    db: &mut DB::Connection,
    events: &[(&NewEvent, Millis)],
) -> Result<Vec<Accepted>, Error> {
    // ON CONFLICT makes a repeated idempotency key (in this batch, or from another process
    // at the same moment) skip the key instead of failing the batch, and its event is not
    // stored; `WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT.
    const TAKE_KEYS: Sql = sql!(
        "INSERT INTO idempotency_keys (tenant_id, key, event_id) \
         SELECT v.value->>0, v.value->>1, v.value->>2 FROM " [rows "$1"] " AS v \
         WHERE true ON CONFLICT DO NOTHING RETURNING event_id"
    );
    const INSERT_EVENTS: Sql = sql!(
        "INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, ordering_key, \
           created_at, version, versions, channels, traceparent) \
         SELECT v.value->>0, v.value->>1, v.value->>2, v.value->>3, v.value->>4, v.value->>5, \
           CAST(v.value->>6 AS BIGINT), v.value->>7, v.value->>8, v.value->>9, v.value->>10 \
         FROM " [rows "$1"] " AS v"
    );
    // Disabled endpoints too: what they miss is recorded as skipped, never dropped silently.
    // An endpoint subscribed to every type (`[]`) gets herald's operational events only if it
    // names them (`$3` false).
    const SUBSCRIBED: Sql = sql!(
        "SELECT p.id, p.version, p.enabled, p.channels, p.filter FROM endpoints p \
         WHERE p.tenant_id = $1 \
         AND ((p.event_types = '[]' AND $3) OR EXISTS (SELECT 1 FROM " [texts "p.event_types"] " AS t \
           WHERE t.value = $2))"
    );

    if events.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = events
        .iter()
        .map(|&(_, now)| new_id_at("evt", now))
        .collect();
    let keys: Vec<_> = events
        .iter()
        .zip(&ids)
        .filter_map(|(&(new, _), id)| {
            let key = new.idempotency_key.as_ref()?;
            Some((&new.tenant_id, key, id))
        })
        .collect();
    let mut created: HashSet<String> = events
        .iter()
        .zip(&ids)
        .filter(|((new, _), _)| new.idempotency_key.is_none())
        .map(|(_, id)| id.clone())
        .collect();
    if !keys.is_empty() {
        let taken: Vec<(String,)> = query(TAKE_KEYS)
            .bind(json_rows(&keys))
            .fetch_all(&mut *db)
            .await
            .map_err(|e| classify(e, &tenants_of(events)))?;
        created.extend(taken.into_iter().map(|(id,)| id));
    }
    let rows: Vec<_> = events
        .iter()
        .zip(&ids)
        .filter(|(_, id)| created.contains(*id))
        .map(|(&(new, now), id)| {
            (
                id,
                &new.tenant_id,
                &new.event_type,
                &new.payload,
                &new.idempotency_key,
                &new.ordering_key,
                now,
                new.versions.as_ref().map(|v| &v.version),
                new.versions.as_ref().map(converted_json),
                (!new.channels.is_empty()).then(|| super::json_rows(&new.channels)),
                &new.traceparent,
            )
        })
        .collect();
    if !rows.is_empty() {
        query(INSERT_EVENTS)
            .bind(json_rows(&rows))
            .execute(&mut *db)
            .await
            .map_err(|e| classify(e, &tenants_of(events)))?;
    }

    // Each endpoint with the version it pins.
    let mut subscribed: Subscribed<'_> = HashMap::new();
    for (&(new, _), id) in events.iter().zip(&ids) {
        if !created.contains(id) {
            continue;
        }
        let key = (new.tenant_id.as_str(), new.event_type.as_str());
        if let Entry::Vacant(slot) = subscribed.entry(key) {
            let endpoints: Vec<SubscribedRow> = query(SUBSCRIBED)
                .bind(key.0)
                .bind(key.1)
                .bind(!crate::operational::is_operational(key.1))
                .fetch_all(&mut *db)
                .await?;
            slot.insert(
                endpoints
                    .into_iter()
                    .map(Subscriber::try_from)
                    .collect::<Result<_, _>>()?,
            );
        }
    }
    let payloads: Vec<Option<serde_json::Value>> = events
        .iter()
        .map(|(new, _)| parsed_for_filters(&subscribed, new))
        .collect();
    let mut deliveries = Vec::new();
    for ((&(new, now), id), payload) in events.iter().zip(&ids).zip(&payloads) {
        if !created.contains(id) {
            continue;
        }
        for (endpoint_id, enabled) in reached(&subscribed, new, payload) {
            deliveries.push(NewDelivery {
                event_id: id,
                endpoint_id,
                ordering_key: new.ordering_key.as_deref(),
                due: now,
                skipped: !enabled,
            });
        }
    }
    insert_deliveries::<DB>(db, &deliveries).await?;

    let mut accepted = Vec::with_capacity(events.len());
    for ((&(new, now), id), payload) in events.iter().zip(ids).zip(&payloads) {
        if created.contains(&id) {
            let (enabled, disabled): (Vec<_>, Vec<_>) =
                reached(&subscribed, new, payload).partition(|(_, enabled)| *enabled);
            accepted.push(Accepted {
                event: Event {
                    id,
                    tenant_id: new.tenant_id.clone(),
                    event_type: new.event_type.clone(),
                    payload: new.payload.clone(),
                    idempotency_key: new.idempotency_key.clone(),
                    ordering_key: new.ordering_key.clone(),
                    test: false,
                    created_at: now,
                    version: new.versions.as_ref().map(|v| v.version.clone()),
                },
                created: true,
                deliveries: u32::try_from(enabled.len()).unwrap_or(u32::MAX),
                skipped: u32::try_from(disabled.len()).unwrap_or(u32::MAX),
            });
        } else {
            // Only a taken idempotency key keeps an event out.
            let key = new.idempotency_key.as_deref().ok_or_else(|| {
                Error::new(ErrorKind::Database, "an event without a key was not stored")
            })?;
            let earlier: Event = query(concat!(
                "SELECT ",
                event_columns!(),
                " FROM events WHERE id = \
                  (SELECT event_id FROM idempotency_keys WHERE tenant_id = $1 AND key = $2)"
            ))
            .bind(&new.tenant_id)
            .bind(key)
            .fetch_one(&mut *db)
            .await?;
            let (deliveries, skipped): (i64, i64) = query(
                "SELECT count(*) - count(*) FILTER (WHERE state = 'skipped'), \
                 count(*) FILTER (WHERE state = 'skipped') FROM deliveries WHERE event_id = $1",
            )
            .bind(&earlier.id)
            .fetch_one(&mut *db)
            .await?;
            accepted.push(Accepted {
                event: earlier,
                created: false,
                deliveries: count(deliveries),
                skipped: count(skipped),
            });
        }
    }
    Ok(accepted)
}

/// The endpoints subscribed to each tenant's event type.
type Subscribed<'a> = HashMap<(&'a str, &'a str), Vec<Subscriber>>;

/// An endpoint subscribed to a type, as [`accept_all`] reads it.
#[derive(sqlx::FromRow)]
struct SubscribedRow {
    id: String,
    version: Option<String>,
    enabled: bool,
    /// A JSON array.
    channels: String,
    filter: Option<String>,
}

/// An endpoint subscribed to a type: what decides whether an event of it reaches the endpoint.
struct Subscriber {
    id: String,
    /// The version it pins.
    version: Option<String>,
    enabled: bool,
    channels: Vec<String>,
    filter: Option<Filter>,
}

impl TryFrom<SubscribedRow> for Subscriber {
    type Error = Error;

    fn try_from(row: SubscribedRow) -> Result<Subscriber, Error> {
        Ok(Subscriber {
            channels: serde_json::from_str(&row.channels)
                .map_err(|e| Error::corrupt("channels", e))?,
            filter: row
                .filter
                .as_deref()
                .map(Filter::parse_text)
                .transpose()
                .map_err(|e| Error::corrupt("filter", e))?,
            id: row.id,
            version: row.version,
            enabled: row.enabled,
        })
    }
}

/// The endpoints subscribed to `new`'s type that receive it, with whether each is enabled: a
/// versioned event only reaches those whose version it carries, an endpoint with channels only
/// events carrying one of them, an endpoint with a filter only payloads it matches (`payload`,
/// parsed once, when some endpoint has one).
fn reached<'a>(
    subscribed: &'a Subscribed<'a>,
    new: &'a NewEvent,
    payload: &'a Option<serde_json::Value>,
) -> impl Iterator<Item = (&'a String, bool)> + 'a {
    let key = (new.tenant_id.as_str(), new.event_type.as_str());
    subscribed
        .get(&key)
        .into_iter()
        .flatten()
        .filter(|s| {
            new.versions
                .as_ref()
                .is_none_or(|v| v.reaches(s.version.as_deref()))
        })
        .filter(|s| filter::channels_match(&s.channels, &new.channels))
        .filter(move |s| match (&s.filter, payload) {
            (None, _) => true,
            (Some(filter), Some(payload)) => filter.matches(payload),
            (Some(_), None) => false, // not JSON: cannot be, it was validated
        })
        .map(|s| (&s.id, s.enabled))
}

/// `new`'s payload parsed, if an endpoint subscribed to its type has a filter to match.
fn parsed_for_filters(subscribed: &Subscribed<'_>, new: &NewEvent) -> Option<serde_json::Value> {
    let key = (new.tenant_id.as_str(), new.event_type.as_str());
    let filtered = subscribed.get(&key)?.iter().any(|s| s.filter.is_some());
    if filtered {
        serde_json::from_str(&new.payload).ok()
    } else {
        None
    }
}

/// The payloads an event carries in older versions, as stored: a JSON object, version → JSON
/// text.
pub(crate) fn converted_json(versions: &crate::Versions) -> String {
    // A map of strings always serializes.
    serde_json::to_string(&versions.converted).unwrap_or_default()
}

/// Inserts deliveries, makes the endpoints of the pending ones due, and announces them;
/// returns their ids. Deliveries with an ordering key are numbered in the order given
/// (acceptance order), skipped ones too, so they keep their place if they are sent later.
pub(crate) async fn insert_deliveries<DB: Backend>(
    db: &mut DB::Connection,
    deliveries: &[NewDelivery<'_>],
) -> Result<Vec<String>, Error> {
    const INSERT: Sql = sql!(
        "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, next_attempt_at, \
           ordering_key, seq, created_at, updated_at) \
         SELECT v.value->>0, v.value->>1, v.value->>2, v.value->>6, 0, \
           CAST(v.value->>7 AS BIGINT), v.value->>4, CAST(v.value->>5 AS BIGINT), \
           CAST(v.value->>3 AS BIGINT), CAST(v.value->>3 AS BIGINT) \
         FROM " [rows "$1"] " AS v"
    );
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    let keyed = deliveries
        .iter()
        .filter(|d| d.ordering_key.is_some())
        .count();
    let mut order = DB::reserve_order(db, keyed).await?.into_iter();
    let ids: Vec<String> = deliveries.iter().map(|d| new_id_at("dlv", d.due)).collect();
    let rows: Vec<_> = deliveries
        .iter()
        .zip(&ids)
        .map(|(d, id)| {
            let seq = d.ordering_key.and_then(|_| order.next());
            let (state, next) = if d.skipped {
                (DeliveryState::Skipped, None)
            } else {
                (DeliveryState::Pending, Some(d.due))
            };
            let state = state.as_str();
            (
                id,
                d.event_id,
                d.endpoint_id,
                d.due,
                d.ordering_key,
                seq,
                state,
                next,
            )
        })
        .collect();
    query(INSERT)
        .bind(json_rows(&rows))
        .execute(&mut *db)
        .await?;
    let mut due: BTreeMap<&str, Millis> = BTreeMap::new();
    for d in deliveries.iter().filter(|d| !d.skipped) {
        let at = due.entry(d.endpoint_id).or_insert(d.due);
        *at = (*at).min(d.due);
    }
    if !due.is_empty() {
        wake::<DB>(db, due.into_iter()).await?;
        DB::announce(db).await?;
    }
    Ok(ids)
}

/// Makes the deliveries endpoint `id` skipped while it was disabled due `now`; how many.
/// They go in acceptance order: by their ids, and by their ordering keys' numbers.
pub(crate) async fn deliver_skipped<DB: Backend>(
    db: &mut DB::Connection,
    id: &str,
    now: Millis,
) -> Result<u64, Error> {
    let sent = query(
        "UPDATE deliveries SET state = 'pending', next_attempt_at = $1, updated_at = $1 \
         WHERE endpoint_id = $2 AND state = 'skipped'",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *db)
    .await?;
    if sent > 0 {
        make_due::<DB>(db, [(id, now)].into_iter()).await?;
        DB::announce(db).await?;
    }
    Ok(sent)
}

/// Asks for each endpoint's turn to come no later than its time, without waiting for a claim
/// that holds the endpoint's queue row: the next claim folds what it can see in ([`fold`]).
///
/// A claim cannot see a wake-up whose transaction has not committed, so it cannot take it
/// away; that one is folded by the claim after, which the commit's announcement starts.
async fn wake<'a, DB: Backend>(
    db: &mut DB::Connection,
    due: impl Iterator<Item = (&'a str, Millis)>,
) -> Result<(), Error> {
    const WAKE: Sql = sql!(
        "INSERT INTO endpoint_wakeups (endpoint_id, due_at) \
         SELECT v.value->>0, CAST(v.value->>1 AS BIGINT) FROM " [rows "$1"] " AS v"
    );
    let rows: Vec<(&str, Millis)> = due.collect();
    if rows.is_empty() {
        return Ok(());
    }
    query(WAKE).bind(json_rows(&rows)).execute(&mut *db).await?;
    Ok(())
}

/// Takes the wake-ups committed so far and moves each endpoint's turn to no later than the
/// earliest asked for it. Another process's claim folding at the same moment skips the ones
/// this one took, and does not wait for them.
pub(crate) async fn fold<DB: Backend>(db: &mut DB::Connection) -> Result<(), Error> {
    const TAKE: Sql = sql!(
        "DELETE FROM endpoint_wakeups WHERE " [either "rowid" "ctid"] " IN \
           (SELECT " [either "rowid" "ctid"] " FROM endpoint_wakeups" [lock_skip] ") \
         RETURNING endpoint_id, due_at"
    );
    let woken: Vec<(String, Millis)> = query(TAKE).fetch_all(&mut *db).await?;
    let mut due: BTreeMap<&str, Millis> = BTreeMap::new();
    for (endpoint, at) in &woken {
        let earliest = due.entry(endpoint.as_str()).or_insert(*at);
        *earliest = (*earliest).min(*at);
    }
    make_due::<DB>(db, due.into_iter()).await
}

/// Moves each endpoint's turn to no later than its time.
///
/// Every row is written, even when its turn is already earlier: writing takes the row's lock.
/// A claim serving the endpoint holds that lock (and passes over an endpoint whose lock is
/// held), so either the claim sees these deliveries, or this write comes after the claim's
/// "nothing more is due" and corrects it. A write only when the turn is later would let a
/// claim that missed these deliveries put the endpoint out of line with them due.
pub(crate) async fn make_due<'a, DB: Backend>(
    db: &mut DB::Connection,
    due: impl Iterator<Item = (&'a str, Millis)>,
) -> Result<(), Error> {
    // Sorted by endpoint, so two processes' batches lock queue rows in one order.
    const DUE: Sql = sql!(
        "UPDATE endpoint_queues SET due_at = CASE \
           WHEN due_at IS NULL OR due_at > CAST(v.value->>1 AS BIGINT) \
           THEN CAST(v.value->>1 AS BIGINT) ELSE due_at END \
         FROM " [rows "$1"] " AS v \
         WHERE endpoint_queues.endpoint_id = v.value->>0"
    );
    let mut rows: Vec<(&str, Millis)> = due.collect();
    if rows.is_empty() {
        return Ok(());
    }
    rows.sort_unstable();
    query(DUE).bind(json_rows(&rows)).execute(&mut *db).await?;
    Ok(())
}

/// Records attempts and moves their deliveries on, then each endpoint's state: its failure
/// streak, its circuit, its next turn, the next delivery of each ordering key, and whether it
/// is disabled, decided on its state as of this transaction.
/// Also says whether work became due now (an ordering key's next delivery, an attempt herald cut
/// off), so the workers look at once.
async fn finish_all<DB: Backend>(
    db: &mut DB::Connection,
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
    // Only where the lease still holds; `RETURNING` names the deliveries that moved.
    const ADVANCE: Sql = sql!(
        "UPDATE deliveries SET state = v.value->>1, attempts = attempts + 1, \
           next_attempt_at = CAST(v.value->>2 AS BIGINT), lease_owner = NULL, \
           lease_expires_at = NULL, updated_at = CAST(v.value->>3 AS BIGINT) \
         FROM " [rows "$1"] " AS v \
         WHERE deliveries.id = v.value->>0 AND deliveries.lease_owner = v.value->>4 \
           AND deliveries.state = 'pending' \
         RETURNING id, endpoint_id, ordering_key"
    );

    if finishes.is_empty() {
        return Ok((Vec::new(), false));
    }
    let attempts: Vec<_> = finishes
        .iter()
        .map(|(f, _)| {
            let a = &f.attempt;
            (
                new_id("att"),
                &f.delivery_id,
                a.started_at,
                a.duration_ms,
                a.status_code,
                storable(&a.response_excerpt),
                storable(&a.error),
                stored_headers(&a.request_headers, &f.event_id, a.started_at),
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
        .map(|(f, now)| {
            let (state, next) = match f.outcome {
                Outcome::Succeeded => (DeliveryState::Succeeded, None),
                Outcome::RetryAt(at) => (DeliveryState::Pending, Some(at)),
                Outcome::Dead => (DeliveryState::Dead, None),
                Outcome::Interrupted => (DeliveryState::Pending, Some(*now)),
            };
            let finished_at = f.attempt.started_at + f.attempt.duration_ms;
            (&f.delivery_id, state.as_str(), next, finished_at, &f.lease)
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

    // What each endpoint saw, in the order the attempts were handed in.
    let mut seen: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
    let mut held = Vec::with_capacity(finishes.len());
    let mut successors = Vec::new();
    for (cause, &(finish, now)) in finishes.iter().enumerate() {
        // The first finish of a delivery is the one that held its lease.
        let Some((endpoint_id, key)) = held_by.remove(&finish.delivery_id) else {
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
    count_attempts::<DB>(db, finishes, &held).await?;
    let Settled { disabled, changes } = settle_endpoints::<DB>(db, &seen, &successors).await?;
    // A delivery due again (a retry, an attempt herald cut off) or a key's next delivery
    // asks for its endpoint's turn as an accept does: a claim running now cannot see this
    // batch's writes and may take the endpoint out of line; the settled state alone would
    // then be overwritten by the claim's commit.
    let mut due: BTreeMap<&str, Millis> = BTreeMap::new();
    let mut due_now = !successors.is_empty();
    for (&(finish, now), endpoint) in finishes.iter().zip(&held) {
        let at = match finish.outcome {
            Outcome::RetryAt(at) => at,
            Outcome::Interrupted => now,
            Outcome::Succeeded | Outcome::Dead => continue,
        };
        if let Some(endpoint) = endpoint.as_deref().filter(|e| !disabled.contains_key(*e)) {
            let earliest = due.entry(endpoint).or_insert(at);
            *earliest = (*earliest).min(at);
            due_now |= at <= now;
        }
    }
    for (endpoint, _, now) in successors
        .iter()
        .filter(|(e, _, _)| !disabled.contains_key(e))
    {
        let earliest = due.entry(endpoint.as_str()).or_insert(*now);
        *earliest = (*earliest).min(*now);
    }
    wake::<DB>(db, due.into_iter()).await?;
    let dead = finishes
        .iter()
        .zip(&held)
        .enumerate()
        .filter(|(_, ((finish, _), endpoint))| {
            endpoint.is_some() && finish.outcome == Outcome::Dead
        })
        .map(|(cause, _)| cause);
    due_now |= notify::after_attempts::<DB>(db, finishes, changes, dead).await?;
    let finished = held
        .into_iter()
        .map(|endpoint| Finished {
            held: endpoint.is_some(),
            disabled: endpoint.and_then(|e| disabled.get(&e).cloned()),
        })
        .collect();
    Ok((finished, due_now))
}

/// Counts the batch's attempts in their endpoints' hours (for the chart): a held delivery's
/// endpoint came back from its advance; one whose lease had gone, whose attempt is recorded
/// all the same, is looked up.
async fn count_attempts<DB: Backend>(
    db: &mut DB::Connection,
    finishes: &[(&Finish, Millis)],
    held: &[Option<String>],
) -> Result<(), Error> {
    const ENDPOINTS: Sql = sql!(
        "SELECT id, endpoint_id FROM deliveries \
         WHERE id IN (SELECT t.value FROM " [texts "$1"] " AS t)"
    );
    let lost: Vec<&str> = finishes
        .iter()
        .zip(held)
        .filter(|(_, endpoint)| endpoint.is_none())
        .map(|((finish, _), _)| finish.delivery_id.as_str())
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
    hours::count::<DB>(db, counted).await
}

/// Applies what the endpoints saw to their state, makes each ordering key's next delivery due
/// where its predecessor finished, and disables endpoints that must be; returns the disabled
/// ones with why, and what changed that operators hear of.
async fn settle_endpoints<DB: Backend>(
    db: &mut DB::Connection,
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
         WHERE deliveries.id = (SELECT n.id FROM deliveries n \
           WHERE n.endpoint_id = v.value->>0 AND n.ordering_key = v.value->>1 \
             AND n.state = 'pending' AND n.next_attempt_at IS NULL \
           ORDER BY n.seq LIMIT 1)"
    );

    let mut touched: Vec<&str> = seen.keys().map(String::as_str).collect();
    touched.extend(successors.iter().map(|(e, _, _)| e.as_str()));
    touched.sort_unstable();
    touched.dedup();
    if touched.is_empty() {
        return Ok(Settled::default());
    }
    let peeked: Vec<EndpointRow> = query(PEEK)
        .bind(json_rows(&touched))
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
        DB::announce(db).await?;
    }
    for (endpoint_id, reason) in &disabled {
        let now = seen
            .get(endpoint_id)
            .and_then(|s| s.last())
            .map_or(0, |s| s.now);
        disable::<DB>(db, endpoint_id, reason, now).await?;
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
#[derive(sqlx::FromRow)]
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

/// Disables endpoint `id` for `reason`: its pending deliveries are skipped and it has no
/// turn.
pub(crate) async fn disable<DB: Backend>(
    db: &mut DB::Connection,
    id: &str,
    reason: &str,
    now: Millis,
) -> Result<(), Error> {
    query(
        "UPDATE endpoints SET enabled = false, disabled_reason = $1, updated_at = $2 \
         WHERE id = $3",
    )
    .bind(reason)
    .bind(now)
    .bind(id)
    .execute(&mut *db)
    .await?;
    skip_pending::<DB>(db, id, now).await
}

/// Skips the pending deliveries of endpoint `id` (it is disabled), leases and all, so they
/// can be sent once it is enabled again ([`deliver_skipped`]); the endpoint has no turn until
/// something new is due.
pub(crate) async fn skip_pending<DB: Backend>(
    db: &mut DB::Connection,
    id: &str,
    now: Millis,
) -> Result<(), Error> {
    query(
        "UPDATE deliveries SET state = 'skipped', next_attempt_at = NULL, lease_owner = NULL, \
         lease_expires_at = NULL, updated_at = $1 WHERE endpoint_id = $2 AND state = 'pending'",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *db)
    .await?;
    query("UPDATE endpoint_queues SET due_at = NULL WHERE endpoint_id = $1")
        .bind(id)
        .execute(&mut *db)
        .await?;
    Ok(())
}

/// Gives back the leases `holder` holds; their endpoints' turns come at once.
pub(crate) async fn release<DB: Backend>(
    db: &mut DB::Connection,
    holder: &Holder,
    now: Millis,
) -> Result<u64, Error> {
    const CLAIM: Sql = sql!(
        "UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL \
         WHERE id IN (SELECT t.value FROM " [texts "$1"] " AS t) \
           AND state = 'pending' AND lease_owner = $2 \
         RETURNING endpoint_id"
    );
    let released: Vec<(String,)> = match holder {
        Holder::Worker(worker) => query(
            "UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE state = 'pending' AND substr(lease_owner, 1, length($1) + 1) = $1 || '/' \
             RETURNING endpoint_id",
        )
        .bind(worker),
        Holder::Claim { lease, ids } => query(CLAIM).bind(json_rows(ids)).bind(lease),
    }
    .fetch_all(&mut *db)
    .await?;
    due_again::<DB>(db, &released, now).await?;
    Ok(u64::try_from(released.len()).unwrap_or(u64::MAX))
}

/// Makes the endpoints of deliveries just handed back due now, and says so.
///
/// A delivery handed back unattempted may have been its half-open circuit's probe, whose hold
/// (until its lease would end) would keep the endpoint silent for a whole lease: the hold ends
/// now, as for an attempt herald cut off. (A delivery in flight when the circuit opened ends
/// its pause early the same way: one probe sooner, no more.)
pub(crate) async fn due_again<DB: Backend>(
    db: &mut DB::Connection,
    released: &[(String,)],
    now: Millis,
) -> Result<(), Error> {
    const HOLD_ENDS: Sql = sql!(
        "UPDATE endpoint_queues SET open_until = $2 \
         WHERE endpoint_id IN (SELECT t.value FROM " [texts "$1"] " AS t) \
           AND failures >= $3 AND open_until > $2"
    );
    if released.is_empty() {
        return Ok(());
    }
    let endpoints: BTreeMap<&str, Millis> = released
        .iter()
        .map(|(endpoint,)| (endpoint.as_str(), now))
        .collect();
    // In endpoint order, as make_due locks them.
    let names: Vec<&str> = endpoints.keys().copied().collect();
    make_due::<DB>(db, endpoints.into_iter()).await?;
    query(HOLD_ENDS)
        .bind(json_rows(&names))
        .bind(now)
        .bind(i64::from(super::endpoint_state::CIRCUIT_THRESHOLD))
        .execute(&mut *db)
        .await?;
    DB::announce(db).await
}

/// Names what a batch of events refers to, for an error message.
fn tenants_of(events: &[(&NewEvent, Millis)]) -> String {
    match events {
        [(one, _)] => format!("tenant `{}`", one.tenant_id),
        _ => "an event's tenant".into(),
    }
}

/// Names what a batch of attempts refers to, for an error message.
fn deliveries_of(finishes: &[(&Finish, Millis)]) -> String {
    match finishes {
        [(one, _)] => format!("delivery `{}`", one.delivery_id),
        _ => "an attempt's delivery".into(),
    }
}
