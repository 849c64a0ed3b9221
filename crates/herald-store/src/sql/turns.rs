//! An endpoint's turn in the line claims take endpoints from: moved up when deliveries become
//! due (directly, or by a wake-up the next claim folds in), when leases are given back, and
//! taken away while the endpoint is disabled.

use std::collections::BTreeMap;

use super::{Backend, Query, Run, Sql, json_rows, query, sql};
use crate::group::Holder;
use crate::{Error, Millis};

/// Makes the deliveries endpoint `id` skipped while it was disabled due `now`; how many.
/// They go in acceptance order: by their ids, and by their ordering keys' numbers.
pub(crate) async fn deliver_skipped<DB: Backend>(
    db: &mut impl Run<DB>,
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
        super::announce::<DB>(db, &[id]).await?;
    }
    Ok(sent)
}

/// Asks for each endpoint's turn to come no later than its time, without waiting for a claim
/// that holds the endpoint's queue row: the next claim folds what it can see in ([`fold`]).
///
/// A claim cannot see a wake-up whose transaction has not committed, so it cannot take it
/// away; that one is folded by the claim after, which the commit's announcement starts.
pub(crate) async fn wake<'a, DB: Backend>(
    db: &mut impl Run<DB>,
    due: impl Iterator<Item = (&'a str, Millis)>,
) -> Result<(), Error> {
    if let Some(wakeups) = wakeups(due) {
        wakeups.execute(&mut *db).await?;
    }
    Ok(())
}

/// The statement [`wake`] runs; none for no endpoints.
pub(crate) fn wakeups<'a, 'q>(due: impl Iterator<Item = (&'a str, Millis)>) -> Option<Query<'q>> {
    const WAKE: Sql = sql!(
        "INSERT INTO endpoint_wakeups (endpoint_id, due_at) \
         SELECT v.value->>0, CAST(v.value->>1 AS BIGINT) FROM " [rows "$1"] " AS v"
    );
    let rows: Vec<(&str, Millis)> = due.collect();
    (!rows.is_empty()).then(|| query(WAKE).bind(json_rows(&rows)))
}

/// Takes the wake-ups committed so far and moves each endpoint's turn to no later than the
/// earliest asked for it. Another process's claim folding at the same moment skips the ones
/// this one took, and does not wait for them.
pub(crate) async fn fold<DB: Backend>(db: &mut impl Run<DB>) -> Result<(), Error> {
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
    db: &mut impl Run<DB>,
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

/// Disables endpoint `id` for `reason`: its pending deliveries are skipped and it has no
/// turn.
pub(crate) async fn disable<DB: Backend>(
    db: &mut impl Run<DB>,
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
    db: &mut impl Run<DB>,
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

/// Gives back the leases of one claim's deliveries (`$1`, their keys) under lease `$2`.
pub(super) const RELEASE_CLAIM: Sql = sql!(
    "UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL \
     WHERE (endpoint_id, id) IN " [keys "$1"] " \
       AND state = (SELECT 'pending') AND lease_owner = $2 \
     RETURNING endpoint_id"
);

/// Gives back the leases `holder` holds; their endpoints' turns come at once.
pub(crate) async fn release<DB: Backend>(
    db: &mut impl Run<DB>,
    holder: &Holder,
    now: Millis,
) -> Result<u64, Error> {
    let released: Vec<(String,)> = match holder {
        Holder::Worker(worker) => query(
            "UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE state = 'pending' AND substr(lease_owner, 1, length($1) + 1) = $1 || '/' \
             RETURNING endpoint_id",
        )
        .bind(worker),
        Holder::Claim { lease, ids } => query(RELEASE_CLAIM).bind(json_rows(ids)).bind(lease),
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
    db: &mut impl Run<DB>,
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
    super::announce::<DB>(db, &names).await
}
