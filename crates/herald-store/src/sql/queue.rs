//! The worker's side: claiming due deliveries under a lease, recording attempts, giving leases
//! back, disabling endpoints.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::registry::end_pending;
use super::rows::{ClaimRow, SecretRow, claims};
use super::{Backend, Sql, SqlStore, json_rows, query, sql};
use crate::{Attempt, Claimed, Clocked, Error, Millis, Outcome, Queue, lease_token, millis};

#[async_trait]
impl<DB: Backend> Queue for SqlStore<DB> {
    async fn due_work(&self) -> Result<Arc<Notify>, Error> {
        self.start_listening().await
    }

    async fn claim_due(
        &self,
        worker: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<Claimed>, Error> {
        let now = self.now();
        let lease_until = now + millis(lease);
        if DB::CLAIMS_IN_BATCH {
            return self.committer.claim(worker, limit, lease_until, now).await;
        }
        let lease = lease_token(worker);
        let mut tx = self.writer.begin().await?;
        DB::relax_claim(&mut tx).await?;
        let claimed = claim::<DB>(&mut tx, &lease, limit, lease_until, now).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn finish_attempt(
        &self,
        delivery_id: &str,
        lease: &str,
        attempt: Attempt,
        outcome: Outcome,
    ) -> Result<bool, Error> {
        self.committer
            .finish(delivery_id, lease, attempt, outcome)
            .await
    }

    async fn release(&self, worker: &str) -> Result<u64, Error> {
        let released = query(
            "UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE state = 'pending' AND substr(lease_owner, 1, length($1) + 1) = $1 || '/'",
        )
        .bind(worker)
        .execute(&self.writer)
        .await?;
        Ok(released)
    }

    async fn disable_endpoint(&self, id: &str, reason: &str) -> Result<(), Error> {
        let now = self.now();
        let mut tx = self.writer.begin().await?;
        query(
            "UPDATE endpoints SET enabled = false, disabled_reason = $1, updated_at = $2 \
             WHERE id = $3",
        )
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        end_pending::<DB>(&mut tx, id, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Leases up to `limit` due deliveries under `lease`, oldest due first, with everything needed
/// to send them. PostgreSQL passes over rows another process is claiming (`SKIP LOCKED`)
/// rather than waiting; on SQLite the one writer makes the claim exclusive. The due index holds
/// the lease expiry, so deliveries in flight are stepped over without reading their rows.
pub(crate) async fn claim<DB: Backend>(
    db: &mut DB::Connection,
    lease: &str,
    limit: u32,
    lease_until: Millis,
    now: Millis,
) -> Result<Vec<Claimed>, Error> {
    const LEASE: Sql = sql!(
        "UPDATE deliveries SET lease_owner = $1, lease_expires_at = $2, updated_at = $3 \
         WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' \
           AND next_attempt_at <= $3 AND (lease_expires_at IS NULL OR lease_expires_at <= $3) \
           ORDER BY next_attempt_at LIMIT $4" [lock_skip] ") \
         RETURNING id"
    );
    const READ: Sql = sql!(
        "SELECT d.id AS delivery_id, d.attempts, e.id AS event_id, e.event_type, e.payload, \
           p.id AS endpoint_id, p.url, p.headers, p.failing_since \
         FROM deliveries d JOIN events e ON e.id = d.event_id \
         JOIN endpoints p ON p.id = d.endpoint_id \
         WHERE d.id IN (SELECT t.value FROM " [texts "$1"] " AS t) ORDER BY d.next_attempt_at"
    );
    const SECRETS: Sql = sql!(
        "SELECT endpoint_id, secret FROM endpoint_secrets \
         WHERE endpoint_id IN (SELECT t.value FROM " [texts "$1"] " AS t) \
         AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC"
    );

    let leased: Vec<(String,)> = query(LEASE)
        .bind(lease)
        .bind(lease_until)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *db)
        .await?;
    if leased.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = leased.iter().map(|(id,)| id.as_str()).collect();
    let rows: Vec<ClaimRow> = query(READ)
        .bind(json_rows(&ids))
        .fetch_all(&mut *db)
        .await?;
    let mut endpoints: Vec<&str> = rows.iter().map(|row| row.endpoint_id.as_str()).collect();
    endpoints.sort_unstable();
    endpoints.dedup();
    let secrets: Vec<SecretRow> = query(SECRETS)
        .bind(json_rows(&endpoints))
        .bind(now)
        .fetch_all(&mut *db)
        .await?;
    claims(rows, secrets, lease)
}
