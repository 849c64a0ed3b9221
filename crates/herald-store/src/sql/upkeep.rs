//! Readiness, the queue's figures for the operator, and retention.

use std::time::Duration;

use async_trait::async_trait;

use super::rows::{FailingRow, QueueRow};
use super::{Backend, Sql, SqlStore, hours, query, sql};
use crate::{Clocked, Error, QueueFigures, Upkeep, millis};

#[async_trait]
impl<DB: Backend> Upkeep for SqlStore<DB> {
    async fn ping(&self) -> Result<(), Error> {
        query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn queue_figures(&self) -> Result<QueueFigures, Error> {
        let queue: QueueRow = query(
            "SELECT count(*) AS pending, sum(CASE WHEN waiting THEN 1 ELSE 0 END) AS due, \
             min(CASE WHEN waiting THEN next_attempt_at END) AS oldest_due_at \
             FROM (SELECT next_attempt_at, next_attempt_at <= $1 \
               AND (lease_expires_at IS NULL OR lease_expires_at <= $1) AS waiting \
               FROM deliveries WHERE state = 'pending') AS pending",
        )
        .bind(self.now())
        .fetch_one(&self.reader)
        .await?;
        let failing: Vec<FailingRow> = query(
            "SELECT tenant_id, id, failing_since FROM endpoints \
             WHERE failing_since IS NOT NULL ORDER BY failing_since LIMIT 1000",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(QueueFigures {
            pending: u64::try_from(queue.pending).unwrap_or(0),
            due: queue.due.and_then(|d| u64::try_from(d).ok()).unwrap_or(0),
            oldest_due_at: queue.oldest_due_at,
            failing: failing
                .into_iter()
                .map(|row| (row.tenant_id, row.id, row.failing_since))
                .collect(),
        })
    }

    async fn rotate_partitions(&self, older_than: Option<Duration>) -> Result<Vec<String>, Error> {
        let now = self.now();
        DB::prepare_partitions(&self.writer, now).await?;
        match older_than {
            Some(age) => DB::drop_partitions(&self.writer, now - millis(age)).await,
            None => Ok(Vec::new()),
        }
    }

    async fn trim_attempt_hours(&self) -> Result<u64, Error> {
        hours::trim(&self.writer, self.now()).await
    }

    async fn purge(&self, older_than: Duration, limit: u32) -> Result<u64, Error> {
        // Two steps, so a retry or a replay that makes an old delivery pending again cannot
        // lose it: the candidates are locked first, skipping events a retry or replay holds
        // (each locks its event before it writes); then each is deleted only if, as of now,
        // none of its deliveries is pending. One statement would judge "pending" on a snapshot
        // taken before such a write committed, and its cascade would delete the delivery.
        let mut tx = self.writer.begin().await?;
        let cutoff = self.now() - millis(older_than);
        query(PURGE_IN_KEY_ORDER).execute(&mut *tx).await?;

        let candidates: Vec<(String, String)> = query(PURGE_CANDIDATES)
            .bind(cutoff)
            .bind(i64::from(limit))
            .bind(crate::id_floor("evt", cutoff))
            .fetch_all(&mut *tx)
            .await?;
        if candidates.is_empty() {
            return Ok(0);
        }
        let purged: Vec<(String,)> = query(PURGE)
            .bind(super::json_rows(&candidates))
            .fetch_all(&mut *tx)
            .await?;
        let ids: Vec<&str> = purged.iter().map(|(id,)| id.as_str()).collect();
        forget_events::<DB>(&mut tx, &ids).await?;
        tx.commit().await?;
        Ok(purged.len() as u64)
    }
}

/// Makes [`PURGE_CANDIDATES`] walk each tenant's events in the key's order, for the rest of
/// the transaction. PostgreSQL planned it without statistics (a young day's partition, or a
/// plan kept for any values) as a read of every old event of the tenant, sorted, for every
/// batch: the benchmark deleted 2,300-3,400 events a second where it deletes 30,000.
pub(crate) const PURGE_IN_KEY_ORDER: Sql = Sql {
    sqlite: "SELECT 1",
    postgres: "SELECT set_config('enable_sort', 'off', true), \
                 set_config('enable_bitmapscan', 'off', true)",
};

/// The oldest events accepted before `$1` (`$3`: the lowest id of that moment) with no
/// delivery pending, at most `$2`, locked, skipping those a retry or a replay holds. An event's
/// id is made at its acceptance (`new_id_at`), so the oldest are the lowest ids: no index on
/// the acceptance time to keep up. SQLite finds them through its key on the id; PostgreSQL
/// keys events by tenant and id (migration 26), so it walks each tenant's oldest through the
/// key and stops once it has a batch.
pub(crate) const PURGE_CANDIDATES: Sql = Sql {
    sqlite: "SELECT e.tenant_id, e.id FROM events e WHERE e.id < $3 AND e.created_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM deliveries d \
           WHERE d.event_id = e.id AND d.state = 'pending') \
         ORDER BY e.id LIMIT $2",
    postgres: "SELECT c.tenant_id, c.id FROM tenants t CROSS JOIN LATERAL \
         (SELECT e.tenant_id, e.id FROM events e \
           WHERE e.tenant_id = t.id AND e.id < $3 AND e.created_at < $1 \
           AND NOT EXISTS (SELECT 1 FROM deliveries d \
             WHERE d.event_id = e.id AND d.state = 'pending') \
           ORDER BY e.id LIMIT $2 FOR UPDATE SKIP LOCKED) AS c \
         LIMIT $2",
};

/// Deletes the candidates `$1` (`[tenant, id]` each) that, as of now, have no delivery
/// pending.
pub(crate) const PURGE: Sql = sql!(
    "DELETE FROM events WHERE (tenant_id, id) IN \
       (SELECT t.value->>0, t.value->>1 FROM " [rows "$1"] " AS t) \
     AND NOT EXISTS (SELECT 1 FROM deliveries d \
       WHERE d.event_id = events.id AND d.state = 'pending') RETURNING id"
);

/// Deletes what hangs off deleted events: their deliveries, those deliveries' attempts, and
/// their idempotency keys. On PostgreSQL no foreign key cascades between the partitioned
/// tables (see migration 11); on SQLite the cascades have done it and this finds nothing.
pub(crate) async fn forget_events<DB: Backend>(
    db: &mut DB::Connection,
    events: &[&str],
) -> Result<(), Error> {
    const ATTEMPTS: Sql = sql!(
        "DELETE FROM attempts WHERE delivery_id IN (SELECT d.id FROM deliveries d \
           WHERE d.event_id IN (SELECT t.value FROM " [texts "$1"] " AS t))"
    );
    const DELIVERIES: Sql = sql!(
        "DELETE FROM deliveries WHERE event_id IN (SELECT t.value FROM " [texts "$1"] " AS t)"
    );
    const KEYS: Sql = sql!(
        "DELETE FROM idempotency_keys \
         WHERE event_id IN (SELECT t.value FROM " [texts "$1"] " AS t)"
    );
    if events.is_empty() {
        return Ok(());
    }
    let events = super::json_rows(&events);
    for statement in [ATTEMPTS, DELIVERIES, KEYS] {
        query(statement).bind(&events).execute(&mut *db).await?;
    }
    Ok(())
}
