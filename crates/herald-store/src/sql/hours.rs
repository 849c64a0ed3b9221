//! Attempts counted per endpoint and hour (`attempt_hours`, migration 20): what the chart of a
//! tenant's attempts reads, so its cost follows the hours shown and the tenant's endpoints, not
//! the tenant's history.
//!
//! Each batch of recorded attempts adds to its endpoints' rows in the same transaction, so the
//! counts are exactly the attempts committed. Rows are per worker as well: two processes'
//! batches never add to the same row, so neither waits for the other's commit.

use std::collections::BTreeMap;

use sqlx::Pool;

use super::rows::StatsRow;
use super::{Backend, Query, Run, Sql, json_rows, query, sql};
use crate::{Attempt, AttemptStats, Error, Millis};

/// An hour, in milliseconds.
pub(crate) const HOUR: Millis = 3_600_000;

/// How long rows are kept: the chart shows at most a week.
pub(crate) const KEPT: Millis = 8 * 24 * HOUR;

/// One attempt to count: its endpoint, the worker that made it, and what happened.
pub(crate) struct Counted<'a> {
    pub(crate) endpoint_id: &'a str,
    pub(crate) worker: &'a str,
    pub(crate) attempt: &'a Attempt,
}

#[derive(Default)]
struct Counts {
    succeeded: i64,
    failed: i64,
    total_ms: i64,
    max_ms: i64,
}

/// The statement that adds attempts to their endpoints' hours; none for no attempts.
pub(crate) fn count<'a, 'q>(attempts: impl Iterator<Item = Counted<'a>>) -> Option<Query<'q>> {
    // One row per key in the batch (PostgreSQL refuses to update a row twice in a statement),
    // in key order, so two batches lock rows they share in the same order.
    const ADD: Sql = sql!(
        "INSERT INTO attempt_hours \
           (endpoint_id, hour, worker, succeeded, failed, total_ms, max_ms) \
         SELECT v.value->>0, CAST(v.value->>1 AS BIGINT), v.value->>2, \
           CAST(v.value->>3 AS BIGINT), CAST(v.value->>4 AS BIGINT), \
           CAST(v.value->>5 AS BIGINT), CAST(v.value->>6 AS BIGINT) \
         FROM " [rows "$1"] " AS v WHERE true \
         ON CONFLICT (endpoint_id, hour, worker) DO UPDATE SET \
           succeeded = attempt_hours.succeeded + excluded.succeeded, \
           failed = attempt_hours.failed + excluded.failed, \
           total_ms = attempt_hours.total_ms + excluded.total_ms, \
           max_ms = " [either "max" "greatest"] "(attempt_hours.max_ms, excluded.max_ms)"
    );
    let mut hours: BTreeMap<(&str, Millis, &str), Counts> = BTreeMap::new();
    for Counted {
        endpoint_id,
        worker,
        attempt,
    } in attempts
    {
        let hour = attempt.started_at - attempt.started_at.rem_euclid(HOUR);
        let counts = hours.entry((endpoint_id, hour, worker)).or_default();
        if attempt.status_code.is_some_and(|s| (200..300).contains(&s)) {
            counts.succeeded += 1;
        } else {
            counts.failed += 1;
        }
        counts.total_ms += attempt.duration_ms;
        counts.max_ms = counts.max_ms.max(attempt.duration_ms);
    }
    if hours.is_empty() {
        return None;
    }
    let rows: Vec<_> = hours
        .iter()
        .map(|((endpoint, hour, worker), c)| {
            (
                endpoint,
                hour,
                worker,
                c.succeeded,
                c.failed,
                c.total_ms,
                c.max_ms,
            )
        })
        .collect();
    Some(query(ADD).bind(json_rows(&rows)))
}

/// The chart's figures: the tenant's endpoints (`$1`, or the one `$2`), each one's hours from
/// `$3` through the primary key, summed per hour.
const READ: &str = "SELECT h.hour AS bucket, \
     CAST(sum(h.succeeded) AS BIGINT) AS succeeded, CAST(sum(h.failed) AS BIGINT) AS failed, \
     CAST(sum(h.total_ms) AS DOUBLE PRECISION) \
       / CAST(sum(h.succeeded + h.failed) AS DOUBLE PRECISION) AS mean_ms, \
     max(h.max_ms) AS max_ms \
     FROM endpoints p JOIN attempt_hours h ON h.endpoint_id = p.id \
     WHERE p.tenant_id = $1 AND ($2 IS NULL OR p.id = $2) AND h.hour >= $3 \
     GROUP BY h.hour ORDER BY h.hour";

/// The tenant's attempts per hour since `since` (of one endpoint, or all), oldest first;
/// hours without attempts are left out.
pub(crate) async fn read<DB: Backend>(
    reader: &Pool<DB>,
    tenant_id: &str,
    endpoint_id: Option<&str>,
    since: Millis,
) -> Result<Vec<AttemptStats>, Error> {
    let since = since - since.rem_euclid(HOUR);
    let rows: Vec<StatsRow> = query(READ)
        .bind(tenant_id)
        .bind(endpoint_id)
        .bind(since)
        .fetch_all(reader)
        .await?;
    Ok(rows.into_iter().map(StatsRow::stats).collect())
}

/// Rows of hours that began before `$1`, found through `attempt_hours_by_hour`.
const TRIM: &str = "DELETE FROM attempt_hours WHERE hour < $1";

/// Deletes the rows of hours that began more than [`KEPT`] before `now`; returns how many.
pub(crate) async fn trim<DB: Backend>(writer: &Pool<DB>, now: Millis) -> Result<u64, Error> {
    let deleted = query(TRIM).bind(now - KEPT).execute(writer).await?;
    Ok(deleted)
}

/// Deletes an endpoint's rows (with the endpoint: no foreign key does it, see migration 20).
pub(crate) async fn forget<DB: Backend>(
    db: &mut impl Run<DB>,
    endpoint_id: &str,
) -> Result<(), Error> {
    query("DELETE FROM attempt_hours WHERE endpoint_id = $1")
        .bind(endpoint_id)
        .execute(&mut *db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The chart reads the tenant's endpoints and their hours through the primary key, nothing
    /// of the deliveries or attempts: its cost follows the hours shown, not the history.
    #[tokio::test]
    async fn the_chart_reads_hours_through_the_primary_key() {
        let steps = crate::sql::sqlite_plan(super::READ, 3).await;
        assert!(
            steps
                .iter()
                .any(|s| s == "SEARCH h USING PRIMARY KEY (endpoint_id=? AND hour>?)"),
            "{steps:?}"
        );
        assert!(
            steps
                .iter()
                .all(|s| !s.contains("deliveries") && !s.contains("attempts ")),
            "{steps:?}"
        );
    }

    /// Retention finds the old hours through their index, not by reading every row kept.
    #[tokio::test]
    async fn old_hours_are_found_through_their_index() {
        let steps = crate::sql::sqlite_plan(super::TRIM, 1).await;
        assert_eq!(
            steps,
            ["SEARCH attempt_hours USING INDEX attempt_hours_by_hour (hour<?)"]
        );
    }
}
