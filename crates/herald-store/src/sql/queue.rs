//! The worker's side: registering, claiming (`claim.rs`), recording attempts (through the
//! group committer), giving leases back, and reaping the claims of workers that are gone.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{Backend, Sql, SqlStore, query, sql, turns};
use crate::group::Holder;
use crate::{
    Claim, ClaimRequest, Claimed, Clocked, Error, Finish, Finished, Millis, Queue, Registration,
    lease_token,
};

#[async_trait]
impl<DB: Backend> Queue for SqlStore<DB> {
    async fn due_work(&self) -> Result<Arc<Notify>, Error> {
        self.start_listening().await
    }

    async fn register(&self, name: &str) -> Result<Box<dyn Registration>, Error> {
        self.workers.add(name);
        DB::register(&self.writer, name, self.now()).await
    }

    async fn claim_with_next_turn(&self, request: &ClaimRequest) -> Result<Claim, Error> {
        let now = self.now();
        if DB::CLAIMS_IN_BATCH {
            // Leased by the one writer, in a batch with other writes; what the deliveries send
            // is read after the commit on a reader, beside the writer's next batch, unless the
            // claim is small (`READ_IN_WRITER`).
            let leased = self.committer.claim(request, now).await?;
            let deliveries = match leased.read {
                Some(read) => read,
                None => {
                    self.read_or_hand_back(leased.lease, leased.ids, now)
                        .await?
                }
            };
            return Ok(Claim {
                deliveries,
                next_turn: leased.next_turn,
            });
        }
        let lease = lease_token(&request.worker);
        let mut tx = self.writer.begin_with(DB::BEGIN_CLAIM).await?;
        let claimed = super::claim::claim::<DB>(&mut *tx, request, &lease, now).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn finish(&self, finish: Finish) -> Result<Finished, Error> {
        self.committer.finish(finish, self.now()).await
    }

    async fn release(&self, worker: &str) -> Result<u64, Error> {
        self.committer
            .release(Holder::Worker(worker.to_owned()), self.now())
            .await
    }

    async fn reap(&self) -> Result<u64, Error> {
        let now = self.now();
        let mut tx = self.writer.begin().await?;
        let mut handed_back = 0;
        for worker in DB::dead_workers(&mut tx).await? {
            let released =
                turns::release::<DB>(&mut *tx, &Holder::Worker(worker.clone()), now).await?;
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
        turns::due_again::<DB>(&mut *tx, &expired, now).await?;
        let stuck = next_in_order_after_loss::<DB>(&mut tx, now).await?;
        turns::due_again::<DB>(&mut *tx, &stuck, now).await?;
        tx.commit().await?;
        if handed_back > 0 || !stuck.is_empty() {
            self.wake();
        }
        Ok(handed_back)
    }
}

impl<DB: Backend> SqlStore<DB> {
    /// What the deliveries of a claim send, read on a reader after the claim committed. If
    /// that fails, the claim is handed back at once rather than left due again when its leases
    /// end (a minute by default): the worker never saw it.
    async fn read_or_hand_back(
        &self,
        lease: String,
        ids: Vec<super::DeliveryKey>,
        now: Millis,
    ) -> Result<Vec<Claimed>, Error> {
        let read = DB::read_claimed(&self.reader, &ids, &lease, now).await;
        if read.is_err() {
            let holder = Holder::Claim { lease, ids };
            if let Err(back) = self.committer.release(holder, self.now()).await {
                tracing::warn!(
                    error = %back,
                    "a claim that could not be read is due again when its leases end"
                );
            }
        }
        read
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
        "UPDATE deliveries SET next_attempt_at = $1 WHERE (endpoint_id, id) IN (\
           SELECT w.endpoint_id, w.id FROM deliveries w \
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::query;
    use crate::sqlite::SqliteStore;
    use crate::{ClaimRequest, Log, NewEndpoint, NewEvent, Queue, Registry};

    #[tokio::test]
    async fn a_claim_whose_read_fails_hands_its_leases_back_at_once() {
        let dir = std::env::temp_dir().join(crate::new_id("herald-claim-read"));
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(&format!("sqlite://{}/herald.db", dir.display()))
            .await
            .unwrap();
        store.create_tenant("acme").await.unwrap();
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        store
            .create_endpoint(NewEndpoint::new("acme", "https://example.com", secret))
            .await
            .unwrap();
        // More than a claim reads in the writer's transaction: this one reads on a reader.
        for _ in 0..=super::super::claim::READ_IN_WRITER {
            store
                .accept_event(NewEvent::new("acme", "t", "{}"))
                .await
                .unwrap();
        }
        // No reader to be had, as when none comes before the acquire timeout.
        store.reader.close().await;
        let request = ClaimRequest {
            worker: "w".into(),
            limit: 100,
            capacity: 100,
            remaining: Default::default(),
            lease: Duration::from_secs(3600),
        };
        assert!(store.claim(&request).await.is_err());

        let (leased,): (i64,) =
            query("SELECT count(*) FROM deliveries WHERE lease_owner IS NOT NULL")
                .fetch_one(&store.writer)
                .await
                .unwrap();
        assert_eq!(leased, 0, "held an hour for a worker that never saw them");
        let (due_at,): (Option<i64>,) = query("SELECT due_at FROM endpoint_queues")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert!(
            due_at.is_some_and(|at| at <= crate::Clocked::now(&store)),
            "the endpoint's turn comes at once, not {due_at:?}"
        );
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
