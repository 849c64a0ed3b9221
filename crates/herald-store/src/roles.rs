//! What each part of herald needs of the store, one trait per role, so that each part depends
//! on its role only: the worker on [`Queue`], the management API on [`Registry`], [`Log`] and
//! [`Replays`], the operator's endpoints and retention on [`Upkeep`]. [`Store`] is all of them.
//!
//! Every read of something a tenant owns takes the tenant, and answers `None` for another
//! tenant's id exactly as for an id that does not exist.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::{
    Accepted, Attempt, AttemptStats, Claim, ClaimRequest, Claimed, Clock, Delivery, DeliveryFilter,
    Endpoint, EndpointPatch, EndpointSecret, Error, Event, EventFilter, Finish, Finished, Millis,
    NewEndpoint, NewEvent, NewToken, QueueFigures, Replay, Signature, Tenant, Token,
};

/// What every role shares: the clock the store writes its times with.
pub trait Clocked: Send + Sync + 'static {
    /// The store's clock; callers that need "now" (a link's expiry, a chart's window) read it
    /// here, so they agree with what the store writes.
    fn clock(&self) -> &Arc<dyn Clock>;

    /// Now, by [`Clocked::clock`].
    fn now(&self) -> Millis {
        self.clock().now()
    }
}

/// Tenants, their endpoints with their signing secrets, and API credentials.
#[async_trait]
pub trait Registry: Clocked {
    /// Creates a tenant; [`ErrorKind::Conflict`](crate::ErrorKind::Conflict) if the id is taken.
    async fn create_tenant(&self, id: &str) -> Result<Tenant, Error>;

    /// Tenants in id order, from just after `after`.
    async fn tenants(&self, after: Option<&str>, limit: u32) -> Result<Vec<Tenant>, Error>;

    /// A tenant by id.
    async fn tenant(&self, id: &str) -> Result<Option<Tenant>, Error>;

    /// Registers an endpoint with its first secret;
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) if the tenant is not.
    async fn create_endpoint(&self, new: NewEndpoint) -> Result<Endpoint, Error>;

    /// The tenant's endpoint `id`.
    async fn endpoint(&self, tenant_id: &str, id: &str) -> Result<Option<Endpoint>, Error>;

    /// The tenant's endpoints in id (creation) order, after the id `after` if given.
    async fn endpoints(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Endpoint>, Error>;

    /// Applies `patch` to the tenant's endpoint `id`; `None` if there is no such endpoint.
    async fn update_endpoint(
        &self,
        tenant_id: &str,
        id: &str,
        patch: EndpointPatch,
    ) -> Result<Option<Endpoint>, Error>;

    /// Deletes the tenant's endpoint `id` with its deliveries and their attempts; false if
    /// there is no such endpoint.
    async fn delete_endpoint(&self, tenant_id: &str, id: &str) -> Result<bool, Error>;

    /// The keys (secrets and Ed25519 signing keys) of the tenant's endpoint `id` that sign now,
    /// newest first; `None` if there is no such endpoint.
    async fn secrets(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<Vec<EndpointSecret>>, Error>;

    /// Adds `secret` (a `whsec_…` secret or a `whsk_…` key) to the tenant's endpoint `id`; the
    /// keys of its kind signing until now keep signing beside it for `keep_old`. Nothing
    /// changes if the endpoint's [`Signature`] does not use that kind. The endpoint's
    /// signature; `None` if there is no such endpoint.
    async fn rotate_secret(
        &self,
        tenant_id: &str,
        id: &str,
        secret: &str,
        keep_old: Duration,
    ) -> Result<Option<Signature>, Error>;

    /// The Ed25519 signing keys that sign now for any of the tenant's endpoints, oldest first
    /// (none for a tenant that does not exist).
    async fn tenant_signing_keys(&self, tenant_id: &str) -> Result<Vec<EndpointSecret>, Error>;

    /// Stores a credential; [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) if its tenant
    /// is not.
    async fn create_token(&self, new: NewToken) -> Result<Token, Error>;

    /// The credential, revoked or not, whose hash is `hash`.
    async fn token_by_hash(&self, hash: &str) -> Result<Option<Token>, Error>;

    /// The credentials of a tenant (or, for `None`, the admin tokens), oldest first.
    async fn tokens(&self, tenant_id: Option<&str>) -> Result<Vec<Token>, Error>;

    /// Revokes credential `id` of the tenant (or admin, for `None`); false if there is no such
    /// unrevoked credential.
    async fn revoke_token(&self, tenant_id: Option<&str>, id: &str) -> Result<bool, Error>;

    /// The key stored under `name`; stores `candidate` first when there is none, so every
    /// process on the database ends up with the same key.
    async fn server_key(&self, name: &str, candidate: &str) -> Result<String, Error>;
}

/// Events in, and the record of what became of them: deliveries, attempts, figures.
#[async_trait]
pub trait Log: Clocked {
    /// Stores an event and one pending delivery per enabled endpoint subscribed to its type, in
    /// one transaction, and wakes the workers. A repeated idempotency key returns the first
    /// event and stores nothing.
    async fn accept_event(&self, new: NewEvent) -> Result<Accepted, Error>;

    /// Stores an event with one pending delivery, to the tenant's endpoint `endpoint_id` only
    /// (whatever its subscriptions): a test event. Returns it with its delivery's id; `None` if
    /// there is no such endpoint.
    async fn accept_test_event(
        &self,
        new: NewEvent,
        endpoint_id: &str,
    ) -> Result<Option<(Event, String)>, Error>;

    /// The tenant's event `id`.
    async fn event(&self, tenant_id: &str, id: &str) -> Result<Option<Event>, Error>;

    /// A tenant's events matching `filter`, newest first, from just before `before`.
    async fn events(
        &self,
        tenant_id: &str,
        filter: &EventFilter,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Event>, Error>;

    /// The tenant's delivery `id`.
    async fn delivery(&self, tenant_id: &str, id: &str) -> Result<Option<Delivery>, Error>;

    /// A tenant's deliveries matching `filter`, newest first, from just before `before`.
    async fn deliveries(
        &self,
        tenant_id: &str,
        filter: &DeliveryFilter,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Delivery>, Error>;

    /// The deliveries of the tenant's event `event_id`, in id order.
    async fn deliveries_of_event(
        &self,
        tenant_id: &str,
        event_id: &str,
    ) -> Result<Vec<Delivery>, Error> {
        let filter = DeliveryFilter {
            event_id: Some(event_id.to_owned()),
            ..DeliveryFilter::default()
        };
        let mut deliveries = self.deliveries(tenant_id, &filter, None, u32::MAX).await?;
        deliveries.reverse();
        Ok(deliveries)
    }

    /// The attempts of the tenant's delivery `delivery_id`, oldest first (none for another
    /// tenant's delivery).
    async fn attempts(&self, tenant_id: &str, delivery_id: &str) -> Result<Vec<Attempt>, Error>;

    /// The tenant's event `event_id` converted to `version`, as it is sent to endpoints that
    /// receive that version; `None` if the event carries no such conversion (or is not the
    /// tenant's).
    async fn converted_payload(
        &self,
        tenant_id: &str,
        event_id: &str,
        version: &str,
    ) -> Result<Option<String>, Error>;

    /// Makes the tenant's delivery due now, whatever its state, keeping its attempt count (a
    /// dead delivery gets one more try; a succeeded one is sent again), and wakes the workers.
    /// `None` if there is no such delivery;
    /// [`ErrorKind::Conflict`](crate::ErrorKind::Conflict) if its endpoint is disabled.
    async fn retry_delivery(&self, tenant_id: &str, id: &str) -> Result<Option<Delivery>, Error>;

    /// The tenant's attempts per hour (of one endpoint, or all), from the hour that holds
    /// `since`, oldest first; hours without attempts are left out. Kept a week: older hours
    /// may be gone.
    async fn attempt_stats(
        &self,
        tenant_id: &str,
        endpoint_id: Option<&str>,
        since: Millis,
    ) -> Result<Vec<AttemptStats>, Error>;
}

/// Jobs that send a tenant's past events to one endpoint again.
#[async_trait]
pub trait Replays: Clocked {
    /// Starts a replay of the tenant's events since `since` to one of its endpoints, counting
    /// them now. `None` if there is no such endpoint.
    async fn create_replay(
        &self,
        tenant_id: &str,
        endpoint_id: &str,
        since: Millis,
    ) -> Result<Option<Replay>, Error>;

    /// Gives up to `batch` more of the replay's events a new delivery (due now), records the
    /// progress in the same transaction, and wakes the workers.
    async fn replay_step(&self, id: &str, batch: u32) -> Result<Replay, Error>;

    /// The tenant's replay `id`.
    async fn replay(&self, tenant_id: &str, id: &str) -> Result<Option<Replay>, Error>;

    /// Every unfinished replay, to resume after a restart.
    async fn running_replays(&self) -> Result<Vec<Replay>, Error>;
}

/// What a delivery worker needs: due work, leased to it alone, and the record of each attempt.
///
/// Claims go endpoint by endpoint, in turn (the endpoint waiting longest first), and take from
/// each no more than the worker can start now, so one endpoint's backlog never holds back
/// another's. On the way they honour each endpoint's rate limit (across every process on the
/// database), its circuit breaker (an endpoint failing again and again gets one probe at a
/// time), and ordering keys (one delivery per key in flight, in acceptance order).
#[async_trait]
pub trait Queue: Clocked {
    /// Notified whenever deliveries become due: committed by this process or, once this has
    /// been called, by any other process on the same database.
    async fn due_work(&self) -> Result<Arc<Notify>, Error>;

    /// Registers worker `name` for as long as the returned registration lives: while it does,
    /// no other worker takes its claims; once its process is gone, [`Queue::reap`] anywhere
    /// hands them back at once.
    async fn register(&self, name: &str) -> Result<Box<dyn Registration>, Error>;

    /// Leases due deliveries to the worker, as `request` allows, and says when to look
    /// again.
    async fn claim_with_next_turn(&self, request: &ClaimRequest) -> Result<Claim, Error>;

    /// Leases due deliveries to the worker, as `request` allows.
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Claimed>, Error> {
        Ok(self.claim_with_next_turn(request).await?.deliveries)
    }

    /// Records an attempt and moves its delivery on (if the lease still held); disables the
    /// endpoint if it answered 410 or has failed for `disable_after`, deciding on the
    /// endpoint's state as the attempt is recorded.
    async fn finish(&self, finish: Finish) -> Result<Finished, Error>;

    /// Gives back the leases `worker` holds, so another worker can take them at once
    /// (graceful shutdown). Queued behind every finish already handed to the store.
    async fn release(&self, worker: &str) -> Result<u64, Error>;

    /// Hands back the claims of workers that are gone, and of any lease that has run out.
    async fn reap(&self) -> Result<u64, Error>;
}

/// A worker's registration: see [`Queue::register`].
#[async_trait]
pub trait Registration: Send + Sync {
    /// Whether the registration still holds. When it does not (the database lost it), the
    /// worker's claims may be taken by others: it must stop sending.
    async fn alive(&mut self) -> bool;

    /// The worker claims no more (it is stopping): the endpoints it served pass to the other
    /// workers at once, while it finishes what it has in flight. Best effort: if the database
    /// does not answer, they pass when the worker is gone.
    async fn retire(&mut self) {}
}

/// Keeping the store in shape: readiness, the queue as an operator watches it, retention.
#[async_trait]
pub trait Upkeep: Clocked {
    /// Succeeds when the database answers (readiness).
    async fn ping(&self) -> Result<(), Error>;

    /// The queue now: pending deliveries, those due, the oldest due, and the endpoints whose
    /// deliveries are failing (at most 1,000, longest first).
    async fn queue_figures(&self) -> Result<QueueFigures, Error>;

    /// Deletes at most `limit` of the oldest events accepted more than `older_than` ago whose
    /// deliveries are all finished, with their deliveries and attempts; returns how many events
    /// went. Called repeatedly, so no single statement holds its locks for long.
    async fn purge(&self, older_than: Duration, limit: u32) -> Result<u64, Error>;

    /// Where events, deliveries and attempts are partitioned by day (PostgreSQL): makes the
    /// partitions of the next few days, and with `older_than`, drops the days whose every
    /// event was accepted longer ago than that, unless a delivery of theirs is pending (that
    /// day waits, and [`purge`](Upkeep::purge) deletes its finished rows). Returns the days
    /// dropped. Does nothing on SQLite.
    async fn rotate_partitions(&self, older_than: Option<Duration>) -> Result<Vec<String>, Error>;

    /// Deletes the attempt counts per hour ([`Log::attempt_stats`]) of hours more than eight
    /// days old; returns how many rows went.
    async fn trim_attempt_hours(&self) -> Result<u64, Error>;
}

/// The whole store: every role.
pub trait Store: Registry + Log + Replays + Queue + Upkeep {}

impl<T: Registry + Log + Replays + Queue + Upkeep + ?Sized> Store for T {}
