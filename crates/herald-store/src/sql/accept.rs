//! Accepting events: each stored with one delivery per endpoint it reaches (subscribed to its
//! type, and its version, channels and filter), as a handful of statements for the whole batch.

use std::collections::{BTreeMap, HashSet};

use super::batch::Process;
use super::exec::after;
use super::rows::{count, event_columns};
use super::subscribers::{self, parsed_for_filters, reached};
use super::{Backend, Query, Run, Sql, json_rows, query, sql};
use crate::error::classify;
use crate::{Accepted, DeliveryState, Error, ErrorKind, Event, Millis, NewEvent, new_id_at};

/// A delivery to insert: pending, or skipped (its endpoint is disabled).
pub(crate) struct NewDelivery<'a> {
    pub(crate) event_id: &'a str,
    pub(crate) endpoint_id: &'a str,
    pub(crate) ordering_key: Option<&'a str>,
    pub(crate) due: Millis,
    pub(crate) skipped: bool,
}

/// The event stored earlier under tenant `$1`'s idempotency key `$2`.
pub(crate) const EARLIER: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM events WHERE tenant_id = $1 AND id = \
      (SELECT event_id FROM idempotency_keys WHERE tenant_id = $1 AND key = $2)"
);

/// Stores events and one pending delivery per subscribed endpoint each, and announces them to
/// the workers that serve their endpoints but `process`'s own; also says whether one of those
/// serves an endpoint, for the process to wake it itself. The subscribers `process` keeps are
/// checked as the events are written: out of date, nothing is written, they are forgotten,
/// and the error says so ([`Error::is_stale_subscribers`]).
pub(crate) async fn accept_all<DB: Backend>(
    db: &mut impl Run<DB>,
    events: &[(&NewEvent, Millis)],
    process: &Process<'_>,
) -> Result<(Vec<Accepted>, bool), Error> {
    // ON CONFLICT makes a repeated idempotency key (in this batch, or from another process
    // at the same moment) skip the key instead of failing the batch, and its event is not
    // stored; `WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT.
    const TAKE_KEYS: Sql = sql!(
        "INSERT INTO idempotency_keys (tenant_id, key, event_id) \
         SELECT v.value->>0, v.value->>1, v.value->>2 FROM " [rows "$1"] " AS v \
         WHERE true ON CONFLICT DO NOTHING RETURNING event_id"
    );
    // `$2`, where the process keeps subscribers (PostgreSQL, see `subscribers.rs`): the
    // versions of those the deliveries were made for, checked in the statement's snapshot; an
    // error if one is out of date, and the statement writes nothing. NULL checks nothing.
    const INSERT_EVENTS: Sql = sql!(
        "INSERT INTO events (id, tenant_id, event_type, payload, idempotency_key, ordering_key, \
           created_at, version, versions, channels, traceparent) \
         SELECT v.value->>0, v.value->>1, v.value->>2, v.value->>3, v.value->>4, v.value->>5, \
           CAST(v.value->>6 AS BIGINT), v.value->>7, v.value->>8, v.value->>9, v.value->>10 \
         FROM " [rows "$1"] " AS v WHERE $2 IS NULL OR "
         [either "true" "herald_subscribers_are(CAST($2 AS json))"]
    );

    if events.is_empty() {
        return Ok((Vec::new(), false));
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
    // The endpoints subscribed to the new events' types, read before the events are written,
    // so that everything the batch writes can go as one statement where the database can.
    // Storing events changes no endpoint: read before or after, the read finds the same.
    let mut pairs: Vec<(&str, &str, u32)> = events
        .iter()
        .zip(&ids)
        .filter(|(_, id)| created.contains(*id))
        .map(|((new, _), _)| {
            let everything = !crate::operational::is_operational(&new.event_type);
            (
                new.tenant_id.as_str(),
                new.event_type.as_str(),
                u32::from(everything),
            )
        })
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let (subscribed, check) = subscribers::find::<DB>(db, &pairs, process.kept)
        .await
        .map_err(|e| classify(e, &tenants_of(events)))?;
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
    // The events, their deliveries, the endpoints' wake-ups and the announcement.
    let stored =
        (!rows.is_empty()).then(|| query(INSERT_EVENTS).bind(json_rows(&rows)).bind(&check));
    let (_, here) =
        match write_deliveries::<DB>(db, stored.into_iter().collect(), &deliveries, process.own)
            .await
        {
            Ok(written) => written,
            Err(e) => {
                if let Some(kept) = process.kept.filter(|_| e.is_stale_subscribers()) {
                    kept.forget(pairs.iter().map(|(tenant, _, _)| *tenant));
                }
                return Err(classify(e, &tenants_of(events)));
            }
        };

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
            let earlier: Event = query(EARLIER)
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
    Ok((accepted, here))
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
    db: &mut impl Run<DB>,
    deliveries: &[NewDelivery<'_>],
) -> Result<Vec<String>, Error> {
    let (ids, _) = write_deliveries::<DB>(db, Vec::new(), deliveries, &[]).await?;
    Ok(ids)
}

/// Runs `writes`, then [`insert_deliveries`]. Where the database joins statements
/// ([`Backend::TOGETHER`]) that is one statement, whatever the batch holds, unless an ordering
/// key needs its numbers first: PostgreSQL's committer relies on it, and runs a batch of
/// accepts without keys as that statement alone, with no transaction around it.
///
/// The announcement leaves out the workers named in `own`; what comes back with the ids says
/// whether one of them serves an endpoint made due.
async fn write_deliveries<DB: Backend>(
    db: &mut impl Run<DB>,
    writes: Vec<Query<'_>>,
    deliveries: &[NewDelivery<'_>],
    own: &[String],
) -> Result<(Vec<String>, bool), Error> {
    const INSERT: Sql = sql!(
        "INSERT INTO deliveries (id, event_id, endpoint_id, state, attempts, next_attempt_at, \
           ordering_key, seq, created_at, updated_at) \
         SELECT v.value->>0, v.value->>1, v.value->>2, v.value->>6, 0, \
           CAST(v.value->>7 AS BIGINT), v.value->>4, CAST(v.value->>5 AS BIGINT), \
           CAST(v.value->>3 AS BIGINT), CAST(v.value->>3 AS BIGINT) \
         FROM " [rows "$1"] " AS v"
    );
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
    let mut due: BTreeMap<&str, Millis> = BTreeMap::new();
    for d in deliveries.iter().filter(|d| !d.skipped) {
        let at = due.entry(d.endpoint_id).or_insert(d.due);
        *at = (*at).min(d.due);
    }
    // The writes, the deliveries, their endpoints' wake-ups and the announcement: one round
    // trip where the database can.
    let endpoints: Vec<&str> = due.keys().copied().collect();
    let mut statements = writes;
    statements.extend(
        [
            (!rows.is_empty()).then(|| query(INSERT).bind(json_rows(&rows))),
            super::turns::wakeups(due.into_iter()),
        ]
        .into_iter()
        .flatten(),
    );
    if let Some(announcement) = DB::announcement(&endpoints, own) {
        let (here,): (bool,) = after::<DB>(db, statements, announcement)
            .await?
            .fetch_one(&mut *db)
            .await?;
        return Ok((ids, here));
    }
    if let Some(last) = statements.pop() {
        after::<DB>(db, statements, last)
            .await?
            .execute(&mut *db)
            .await?;
    }
    Ok((ids, false))
}

/// Names what a batch of events refers to, for an error message.
fn tenants_of(events: &[(&NewEvent, Millis)]) -> String {
    match events {
        [(one, _)] => format!("tenant `{}`", one.tenant_id),
        _ => "an event's tenant".into(),
    }
}
