//! The store under a hand-moved clock, with each write's time spelled out in the call:
//! `store.accept_event(event, T0 + 5)` moves the clock to `T0 + 5` and accepts. Behaviour over
//! time (leases running out, retries coming due) reads as a timeline and never sleeps. Calls
//! that take no time go to the store itself (through `Deref`).

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use herald_store::{
    Accepted, Attempt, Claim, ClaimRequest, Claimed, Endpoint, EndpointPatch, EndpointSecret,
    Error, Event, Finish, Finished, ManualClock, Millis, NewEndpoint, NewEvent, NewToken, Outcome,
    QueueFigures, Replay, Signature, Store, Tenant, Token,
};

#[derive(Clone)]
pub(crate) struct Timed {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: ManualClock,
}

impl Deref for Timed {
    type Target = dyn Store;

    fn deref(&self) -> &(dyn Store + 'static) {
        &*self.store
    }
}

fn after(from: Millis, until: Millis) -> Duration {
    Duration::from_millis(u64::try_from(until - from).unwrap_or(0))
}

impl Timed {
    fn at(&self, now: Millis) -> &dyn Store {
        self.clock.set(now);
        &*self.store
    }

    pub(crate) async fn create_tenant(&self, id: &str, now: Millis) -> Result<Tenant, Error> {
        self.at(now).create_tenant(id).await
    }

    pub(crate) async fn create_endpoint(
        &self,
        new: NewEndpoint,
        now: Millis,
    ) -> Result<Endpoint, Error> {
        self.at(now).create_endpoint(new).await
    }

    pub(crate) async fn update_endpoint(
        &self,
        tenant_id: &str,
        id: &str,
        patch: EndpointPatch,
        now: Millis,
    ) -> Result<Option<Endpoint>, Error> {
        self.at(now).update_endpoint(tenant_id, id, patch).await
    }

    pub(crate) async fn secrets(
        &self,
        tenant_id: &str,
        id: &str,
        now: Millis,
    ) -> Result<Option<Vec<EndpointSecret>>, Error> {
        self.at(now).secrets(tenant_id, id).await
    }

    /// Rotates at `now`; the old secrets sign until `old_until`.
    pub(crate) async fn rotate_secret(
        &self,
        tenant_id: &str,
        id: &str,
        secret: &str,
        old_until: Millis,
        now: Millis,
    ) -> Result<Option<Signature>, Error> {
        self.at(now)
            .rotate_secret(tenant_id, id, secret, after(now, old_until))
            .await
    }

    pub(crate) async fn tenant_signing_keys(
        &self,
        tenant_id: &str,
        now: Millis,
    ) -> Result<Vec<EndpointSecret>, Error> {
        self.at(now).tenant_signing_keys(tenant_id).await
    }

    pub(crate) async fn accept_event(&self, new: NewEvent, now: Millis) -> Result<Accepted, Error> {
        self.at(now).accept_event(new).await
    }

    pub(crate) async fn accept_test_event(
        &self,
        new: NewEvent,
        endpoint_id: &str,
        now: Millis,
    ) -> Result<Option<(Event, String)>, Error> {
        self.at(now).accept_test_event(new, endpoint_id).await
    }

    /// Claims at `now` as a worker with room for `limit` deliveries, to any endpoint, leased
    /// until `lease_until`.
    pub(crate) async fn claim_due(
        &self,
        worker: &str,
        limit: u32,
        lease_until: Millis,
        now: Millis,
    ) -> Result<Vec<Claimed>, Error> {
        let request = ClaimRequest {
            worker: worker.to_owned(),
            limit,
            capacity: limit,
            remaining: BTreeMap::new(),
            lease: after(now, lease_until),
        };
        self.at(now).claim(&request).await
    }

    /// Claims at `now` as `request` says.
    pub(crate) async fn claim(
        &self,
        request: &ClaimRequest,
        now: Millis,
    ) -> Result<Vec<Claimed>, Error> {
        self.at(now).claim(request).await
    }

    /// Claims at `now` as `request` says, with the next turn.
    pub(crate) async fn claim_with_next_turn(
        &self,
        request: &ClaimRequest,
        now: Millis,
    ) -> Result<Claim, Error> {
        self.at(now).claim_with_next_turn(request).await
    }

    /// Records an attempt (with the outcome the worker decided), at the attempt's end; true if
    /// the lease held.
    pub(crate) async fn finish_attempt(
        &self,
        claim: &Claimed,
        lease: &str,
        attempt: Attempt,
        outcome: Outcome,
    ) -> Result<bool, Error> {
        let finish = self.finish(finish(claim, lease, attempt, outcome)).await?;
        Ok(finish.held)
    }

    /// Records `attempt` of the claimed delivery `claim`, with `outcome`, at the attempt's end.
    pub(crate) async fn record(
        &self,
        claim: &Claimed,
        attempt: Attempt,
        outcome: Outcome,
    ) -> Finished {
        self.finish(Finish {
            event_id: claim.event_id.clone(),
            ..finish(claim, &claim.lease, attempt, outcome)
        })
        .await
        .expect("the attempt is recorded")
    }

    /// Records `finish` at its attempt's end.
    pub(crate) async fn finish(&self, finish: Finish) -> Result<Finished, Error> {
        let end = finish.attempt.started_at + finish.attempt.duration_ms;
        self.at(end).finish(finish).await
    }

    /// Hands back the claims of workers that are gone and leases that ran out, at `now`.
    pub(crate) async fn reap(&self, now: Millis) -> Result<u64, Error> {
        self.at(now).reap().await
    }

    pub(crate) async fn queue_figures(&self, now: Millis) -> Result<QueueFigures, Error> {
        self.at(now).queue_figures().await
    }

    /// Purges what was accepted before `before`, at the clock's time.
    pub(crate) async fn purge(&self, before: Millis, limit: u32) -> Result<u64, Error> {
        use herald_store::Clock;
        let now = self.clock.now();
        self.store.purge(after(before, now), limit).await
    }

    /// Makes the next days' partitions and drops those of days before `before`, at `now`.
    pub(crate) async fn rotate_partitions(
        &self,
        before: Millis,
        now: Millis,
    ) -> Result<Vec<String>, Error> {
        self.at(now)
            .rotate_partitions(Some(after(before, now)))
            .await
    }

    pub(crate) async fn retry_delivery(
        &self,
        tenant_id: &str,
        id: &str,
        now: Millis,
    ) -> Result<Option<herald_store::Delivery>, Error> {
        self.at(now).retry_delivery(tenant_id, id).await
    }

    pub(crate) async fn create_replay(
        &self,
        tenant_id: &str,
        endpoint_id: &str,
        since: Millis,
        now: Millis,
    ) -> Result<Option<Replay>, Error> {
        self.at(now)
            .create_replay(tenant_id, endpoint_id, since)
            .await
    }

    pub(crate) async fn replay_step(
        &self,
        id: &str,
        batch: u32,
        now: Millis,
    ) -> Result<Replay, Error> {
        self.at(now).replay_step(id, batch).await
    }

    pub(crate) async fn create_token(&self, new: NewToken, now: Millis) -> Result<Token, Error> {
        self.at(now).create_token(new).await
    }

    pub(crate) async fn revoke_token(
        &self,
        tenant_id: Option<&str>,
        id: &str,
        now: Millis,
    ) -> Result<bool, Error> {
        self.at(now).revoke_token(tenant_id, id).await
    }
}

/// A finish as the worker reports it, for an endpoint disabled after 5 days of failures; with
/// no event named, its request headers are stored as they are.
pub(crate) fn finish(claim: &Claimed, lease: &str, attempt: Attempt, outcome: Outcome) -> Finish {
    Finish {
        delivery_id: claim.delivery_id.clone(),
        endpoint_id: claim.endpoint_id.clone(),
        event_id: String::new(),
        lease: lease.to_owned(),
        attempt,
        outcome,
        gone: false,
        disable_after: Duration::from_secs(5 * 24 * 3600),
    }
}
