//! The worker's side: registering, claiming (`claim.rs`), recording attempts (through the
//! group committer), giving leases back, and reaping the claims of workers that are gone.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{Backend, Sql, SqlStore, batch, query, sql};
use crate::{
    Claim, ClaimRequest, Clocked, Error, Finish, Finished, Millis, Queue, Registration, lease_token,
};

#[async_trait]
impl<DB: Backend> Queue for SqlStore<DB> {
    async fn due_work(&self) -> Result<Arc<Notify>, Error> {
        self.start_listening().await
    }

    async fn register(&self, name: &str) -> Result<Box<dyn Registration>, Error> {
        DB::register(&self.writer, name, self.now()).await
    }

    async fn claim_with_next_turn(&self, request: &ClaimRequest) -> Result<Claim, Error> {
        let now = self.now();
        if DB::CLAIMS_IN_BATCH {
            // Leased by the one writer, in a batch with other writes; what the deliveries send
            // is read after the commit on a reader, beside the writer's next batch, unless the
            // claim is small (`READ_IN_WRITER`). (Should this read fail, the leases come due
            // again when they end.)
            let leased = self.committer.claim(request, now).await?;
            let deliveries = match leased.read {
                Some(read) => read,
                None => {
                    let mut reader = self.reader.acquire().await?;
                    super::claim::read::<DB>(&mut reader, &leased.ids, &leased.lease, now).await?
                }
            };
            return Ok(Claim {
                deliveries,
                next_turn: leased.next_turn,
            });
        }
        let lease = lease_token(&request.worker);
        let mut tx = self.writer.begin().await?;
        DB::relax_claim(&mut tx).await?;
        let claimed = super::claim::claim::<DB>(&mut tx, request, &lease, now).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn finish(&self, finish: Finish) -> Result<Finished, Error> {
        self.committer.finish(finish, self.now()).await
    }

    async fn release(&self, worker: &str) -> Result<u64, Error> {
        self.committer.release(worker, self.now()).await
    }

    async fn reap(&self) -> Result<u64, Error> {
        let now = self.now();
        let mut tx = self.writer.begin().await?;
        let mut handed_back = 0;
        for worker in DB::dead_workers(&mut tx).await? {
            let released = batch::release::<DB>(&mut tx, &worker, now).await?;
            if released > 0 {
                tracing::warn!(%worker, released, "worker gone: its claims are handed back");
            }
            handed_back += released;
        }
        let expired: Vec<(String,)> = query(
            "UPDATE deliveries SET lease_owner = NULL, lease_expires_at = NULL \
             WHERE state = 'pending' AND lease_owner IS NOT NULL AND lease_expires_at <= $1 \
             RETURNING endpoint_id",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        if !expired.is_empty() {
            tracing::warn!(
                released = expired.len(),
                "leases ran out while their workers lived: handed back"
            );
        }
        handed_back += u64::try_from(expired.len()).unwrap_or(u64::MAX);
        batch::due_again::<DB>(&mut tx, &expired, now).await?;
        let stuck = next_in_order_after_loss::<DB>(&mut tx, now).await?;
        batch::due_again::<DB>(&mut tx, &stuck, now).await?;
        tx.commit().await?;
        if handed_back > 0 || !stuck.is_empty() {
            self.wake();
        }
        Ok(handed_back)
    }
}

/// A safety net for ordering keys: a key whose deliveries all wait (none due, none in flight)
/// would wait forever; its first gets its turn. Recording an attempt does this as it goes; this
/// catches what a lost attempt left behind.
async fn next_in_order_after_loss<DB: Backend>(
    db: &mut DB::Connection,
    now: Millis,
) -> Result<Vec<(String,)>, Error> {
    const UNSTICK: Sql = sql!(
        "UPDATE deliveries SET next_attempt_at = $1 WHERE id IN (\
           SELECT w.id FROM deliveries w \
           WHERE w.state = 'pending' AND w.ordering_key IS NOT NULL \
             AND w.next_attempt_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM deliveries o \
               WHERE o.endpoint_id = w.endpoint_id AND o.ordering_key = w.ordering_key \
                 AND o.state = 'pending' AND o.id <> w.id \
                 AND (o.next_attempt_at IS NOT NULL OR o.seq < w.seq))) \
         RETURNING endpoint_id"
    );
    let stuck: Vec<(String,)> = query(UNSTICK).bind(now).fetch_all(&mut *db).await?;
    if !stuck.is_empty() {
        tracing::warn!(
            deliveries = stuck.len(),
            "ordering keys with nothing due or in flight: their next delivery is due again"
        );
    }
    Ok(stuck)
}
