//! herald's durable store: one database that is both the record of every event, delivery and
//! attempt, and the queue workers claim from.
//!
//! [`Store`] is the contract; [`sqlite::SqliteStore`] (embedded, the default) and
//! [`postgres::PostgresStore`] (any number of herald processes on one database) implement it
//! each in their own dialect, and one conformance suite (`tests/it`) runs against both.
//!
//! Writes that can share a transaction (events accepted, attempts recorded, claims) are
//! queued to one committing task per store, which applies whatever is waiting as one
//! transaction of multi-row statements and answers each caller after the commit: group
//! commit, so one flush to disk serves many callers and "accepted" still means durable.
//!
//! Every time is milliseconds since the Unix epoch and is passed in by the caller, so behaviour
//! over time (leases expiring, retries coming due) is tested without sleeping.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use herald_store::{NewEndpoint, NewEvent, Store, sqlite::SqliteStore};
//!
//! let store = SqliteStore::open_in_memory().await?;
//! store.create_tenant("acme", 0).await?;
//! store.create_endpoint(NewEndpoint::new("acme", "https://example.com/hook", "whsec_c2VjcmV0"), 0).await?;
//! let accepted = store
//!     .accept_event(NewEvent::new("acme", "new-subscription", r#"{"username":"rick"}"#), 0)
//!     .await?;
//! assert_eq!(accepted.deliveries, 1);
//! # Ok::<(), herald_store::Error>(())
//! # }).unwrap();
//! ```

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;

mod batch;
mod group;
mod log;
pub mod postgres;
pub mod sqlite;

pub use log::{AttemptStats, DeliveryFilter, EventFilter, Replay, ReplayState};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// What [`Store::queue_figures`] reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueFigures {
    /// Deliveries not yet succeeded or dead.
    pub pending: u64,
    /// Of those, the ones whose next attempt is due.
    pub due: u64,
    /// When the longest-waiting due delivery became due.
    pub oldest_due_at: Option<Millis>,
    /// Endpoints failing since a time: (tenant, endpoint, since).
    pub failing: Vec<(String, String, Millis)>,
}

/// One of the application's users who receives webhooks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// Chosen by the application, e.g. its own customer id.
    pub id: String,
    /// When it was created.
    pub created_at: Millis,
}

/// What it takes to register an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEndpoint {
    /// The tenant it belongs to.
    pub tenant_id: String,
    /// Where deliveries are sent; validated before it gets here.
    pub url: String,
    /// Free text for the tenant.
    pub description: String,
    /// The event types it receives; empty means all.
    pub event_types: Vec<String>,
    /// Extra headers sent with every delivery.
    pub headers: BTreeMap<String, String>,
    /// The first signing secret, `whsec_…`.
    pub secret: String,
    /// Whether deliveries are made to it.
    pub enabled: bool,
}

impl NewEndpoint {
    /// An enabled endpoint for every event type, with no extra headers.
    pub fn new(tenant_id: &str, url: &str, secret: &str) -> NewEndpoint {
        NewEndpoint {
            tenant_id: tenant_id.into(),
            url: url.into(),
            description: String::new(),
            event_types: Vec::new(),
            headers: BTreeMap::new(),
            secret: secret.into(),
            enabled: true,
        }
    }
}

/// A registered endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `ep_…`.
    pub id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// Where deliveries go.
    pub url: String,
    /// Free text.
    pub description: String,
    /// The event types it receives; empty means all.
    pub event_types: Vec<String>,
    /// Extra headers sent with every delivery.
    pub headers: BTreeMap<String, String>,
    /// Whether deliveries are made to it.
    pub enabled: bool,
    /// Why it was disabled, when herald disabled it.
    pub disabled_reason: Option<String>,
    /// The first failure since its last success, if it is failing.
    pub failing_since: Option<Millis>,
    /// When it was created.
    pub created_at: Millis,
}

/// Changes to an endpoint; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointPatch {
    /// A new URL, validated before it gets here.
    pub url: Option<String>,
    /// New free text.
    pub description: Option<String>,
    /// New event types; empty means all.
    pub event_types: Option<Vec<String>>,
    /// New extra headers, replacing the old ones.
    pub headers: Option<BTreeMap<String, String>>,
    /// Enable (clearing why it was disabled and its failure streak) or disable it; disabling
    /// ends its pending deliveries, as [`Store::disable_endpoint`] does.
    pub enabled: Option<bool>,
}

/// One of an endpoint's signing secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSecret {
    /// `whsec_…`.
    pub secret: String,
    /// When it was made.
    pub created_at: Millis,
    /// When it stops signing, once rotated out.
    pub expires_at: Option<Millis>,
}

/// An event to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// The tenant it is for.
    pub tenant_id: String,
    /// The webhook's name.
    pub event_type: String,
    /// The body, already validated and serialized: sent byte for byte.
    pub payload: String,
    /// A key under which a repeated request returns the first event instead of a second one.
    pub idempotency_key: Option<String>,
}

impl NewEvent {
    /// An event without an idempotency key.
    pub fn new(tenant_id: &str, event_type: &str, payload: &str) -> NewEvent {
        NewEvent {
            tenant_id: tenant_id.into(),
            event_type: event_type.into(),
            payload: payload.into(),
            idempotency_key: None,
        }
    }
}

/// A stored event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `evt_…`; also the `webhook-id` of every delivery of it.
    pub id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// The webhook's name.
    pub event_type: String,
    /// The body.
    pub payload: String,
    /// The idempotency key it was stored under, if any.
    pub idempotency_key: Option<String>,
    /// When it was accepted.
    pub created_at: Millis,
}

/// The result of [`Store::accept_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The stored event (the earlier one, for a repeated idempotency key).
    pub event: Event,
    /// False when the idempotency key matched an earlier event and nothing new was stored.
    pub created: bool,
    /// How many deliveries were created (one per enabled endpoint subscribed to its type).
    pub deliveries: u32,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt (or in flight).
    Pending,
    /// An attempt got a 2xx.
    Succeeded,
    /// Every attempt failed, or its endpoint went away.
    Dead,
}

impl DeliveryState {
    /// `pending`, `succeeded` or `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Dead => "dead",
        }
    }

    /// The state named by [`DeliveryState::as_str`].
    pub fn parse(text: &str) -> Result<DeliveryState, Error> {
        match text {
            "pending" => Ok(DeliveryState::Pending),
            "succeeded" => Ok(DeliveryState::Succeeded),
            "dead" => Ok(DeliveryState::Dead),
            other => Err(Error::new(
                ErrorKind::Corrupt,
                format!("unknown delivery state {other:?}"),
            )),
        }
    }
}

/// One event for one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// `dlv_…`.
    pub id: String,
    /// The event.
    pub event_id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// The event's webhook.
    pub event_type: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it is next due, while pending.
    pub next_attempt_at: Option<Millis>,
    /// When it was made.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
}

/// A delivery a worker has leased, with everything needed to send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// This claim's lease token; [`Store::finish_attempt`] succeeds only while it holds.
    pub lease: String,
    /// `dlv_…`.
    pub delivery_id: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// `evt_…`, sent as `webhook-id`.
    pub event_id: String,
    /// The webhook's name.
    pub event_type: String,
    /// The body, byte for byte.
    pub payload: String,
    /// `ep_…`.
    pub endpoint_id: String,
    /// Where to send it.
    pub url: String,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
    /// Every secret that signs right now (more than one while rotating), newest first.
    pub secrets: Vec<String>,
    /// The endpoint's first failure since its last success.
    pub failing_since: Option<Millis>,
}

/// One HTTP try, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// When the request started.
    pub started_at: Millis,
    /// How long until the response (or the failure).
    pub duration_ms: i64,
    /// The response status, if one came.
    pub status_code: Option<u16>,
    /// The start of the response body, capped by the caller.
    pub response_excerpt: Option<String>,
    /// Why it failed without a status (timeout, refused, blocked target…).
    pub error: Option<String>,
    /// The headers sent (signature included; secrets never are).
    pub request_headers: BTreeMap<String, String>,
    /// The response's headers, if one came (capped by the caller).
    pub response_headers: BTreeMap<String, String>,
}

/// An API credential to store: only its hash, never the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewToken {
    /// The tenant it is scoped to; `None` for an admin token.
    pub tenant_id: Option<String>,
    /// What it is for, chosen by whoever made it.
    pub name: String,
    /// The token's first characters, to recognise it in a list.
    pub prefix: String,
    /// SHA-256 of the token, hex.
    pub hash: String,
}

/// A stored API credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// `tok_…`.
    pub id: String,
    /// The tenant it is scoped to; `None` for an admin token.
    pub tenant_id: Option<String>,
    /// What it is for.
    pub name: String,
    /// The token's first characters.
    pub prefix: String,
    /// When it was made.
    pub created_at: Millis,
    /// When it was revoked; a revoked token opens nothing.
    pub revoked_at: Option<Millis>,
}

/// What happens to a delivery after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered.
    Succeeded,
    /// Try again at this time.
    RetryAt(Millis),
    /// No more tries.
    Dead,
}

/// The durable store. Implementations must make [`Store::accept_event`] atomic and
/// [`Store::claim_due`] exclusive: a delivery is leased to at most one worker at a time.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a tenant; [`ErrorKind::Conflict`] if the id is taken.
    async fn create_tenant(&self, id: &str, now: Millis) -> Result<Tenant, Error>;

    /// Tenants in id order, from just after `after`.
    async fn tenants(&self, after: Option<&str>, limit: u32) -> Result<Vec<Tenant>, Error>;

    /// A tenant by id.
    async fn tenant(&self, id: &str) -> Result<Option<Tenant>, Error>;

    /// Registers an endpoint with its first secret; [`ErrorKind::NotFound`] if the tenant is not.
    async fn create_endpoint(&self, new: NewEndpoint, now: Millis) -> Result<Endpoint, Error>;

    /// The tenant's endpoint `id`; `None` for another tenant's endpoint as for a missing one.
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
        now: Millis,
    ) -> Result<Option<Endpoint>, Error>;

    /// Deletes the tenant's endpoint `id` with its deliveries and their attempts; false if
    /// there is no such endpoint.
    async fn delete_endpoint(&self, tenant_id: &str, id: &str) -> Result<bool, Error>;

    /// The secrets of the tenant's endpoint `id` that sign at `now`, newest first; `None` if
    /// there is no such endpoint.
    async fn secrets(
        &self,
        tenant_id: &str,
        id: &str,
        now: Millis,
    ) -> Result<Option<Vec<EndpointSecret>>, Error>;

    /// Adds `secret` to the tenant's endpoint `id`; the secrets signing until now keep
    /// signing beside it until `old_until`. False if there is no such endpoint.
    async fn rotate_secret(
        &self,
        tenant_id: &str,
        id: &str,
        secret: &str,
        old_until: Millis,
        now: Millis,
    ) -> Result<bool, Error>;

    /// Stops deliveries to an endpoint and records why; its pending deliveries die.
    async fn disable_endpoint(&self, id: &str, reason: &str, now: Millis) -> Result<(), Error>;

    /// Stores an event and one pending delivery per enabled endpoint subscribed to its type, in
    /// one transaction. A repeated idempotency key returns the first event and stores nothing.
    async fn accept_event(&self, new: NewEvent, now: Millis) -> Result<Accepted, Error>;

    /// An event by id, within its tenant.
    async fn event(&self, tenant_id: &str, id: &str) -> Result<Option<Event>, Error>;

    /// Leases up to `limit` due deliveries to `worker` until `lease_until`, oldest due first.
    /// A delivery whose lease has expired (its worker died) is due again.
    async fn claim_due(
        &self,
        worker: &str,
        limit: u32,
        lease_until: Millis,
        now: Millis,
    ) -> Result<Vec<Claimed>, Error>;

    /// Records an attempt and moves the delivery on. Returns false, changing nothing but the
    /// attempt log, if `lease` (from [`Claimed::lease`]) no longer holds: it expired and another
    /// worker may have taken the delivery.
    async fn finish_attempt(
        &self,
        delivery_id: &str,
        lease: &str,
        attempt: Attempt,
        outcome: Outcome,
    ) -> Result<bool, Error>;

    /// Gives back the leases `worker` holds, so another worker can take them at once
    /// (graceful shutdown).
    async fn release(&self, worker: &str) -> Result<u64, Error>;

    /// A delivery by id.
    async fn delivery(&self, id: &str) -> Result<Option<Delivery>, Error>;

    /// Deletes at most `limit` of the oldest events accepted before `before` whose deliveries
    /// are all finished, with their deliveries and attempts; returns how many events went.
    /// Called repeatedly, so no single statement holds its locks for long.
    async fn purge(&self, before: Millis, limit: u32) -> Result<u64, Error>;

    /// Succeeds when the database answers (readiness).
    async fn ping(&self) -> Result<(), Error>;

    /// The queue as an operator watches it, at `now`: pending deliveries, those due, the
    /// oldest due, and the endpoints whose deliveries are failing (at most 1,000, longest first).
    async fn queue_figures(&self, now: Millis) -> Result<QueueFigures, Error>;

    /// Stores an event with one pending delivery, to the tenant's endpoint `endpoint_id` only
    /// (whatever its subscriptions): a test event. `None` if there is no such endpoint.
    async fn accept_event_for(
        &self,
        new: NewEvent,
        endpoint_id: &str,
        now: Millis,
    ) -> Result<Option<(Event, String)>, Error>;

    /// The deliveries of one event.
    async fn deliveries_of_event(&self, event_id: &str) -> Result<Vec<Delivery>, Error>;

    /// The attempts of one delivery, oldest first.
    async fn attempts(&self, delivery_id: &str) -> Result<Vec<Attempt>, Error>;

    /// A tenant's events matching `filter`, newest first, from just before `before`.
    async fn events(
        &self,
        tenant_id: &str,
        filter: &EventFilter,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Event>, Error>;

    /// A tenant's deliveries matching `filter`, newest first, from just before `before`.
    async fn deliveries(
        &self,
        tenant_id: &str,
        filter: &DeliveryFilter,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Delivery>, Error>;

    /// Makes a delivery of the tenant due now, whatever its state, keeping its attempt count
    /// (a dead delivery gets one more try; a succeeded one is sent again). `None` if there is
    /// no such delivery; [`ErrorKind::Conflict`] if its endpoint is disabled.
    async fn retry_delivery(
        &self,
        tenant_id: &str,
        id: &str,
        now: Millis,
    ) -> Result<Option<Delivery>, Error>;

    /// The tenant's attempts since `since` (of one endpoint, or all), in buckets of
    /// `bucket_ms`, oldest first; empty buckets are left out.
    async fn attempt_stats(
        &self,
        tenant_id: &str,
        endpoint_id: Option<&str>,
        since: Millis,
        bucket_ms: i64,
    ) -> Result<Vec<AttemptStats>, Error>;

    /// Starts a replay of the tenant's events since `since` to one of its endpoints, counting
    /// them now. `None` if there is no such endpoint.
    async fn create_replay(
        &self,
        tenant_id: &str,
        endpoint_id: &str,
        since: Millis,
        now: Millis,
    ) -> Result<Option<Replay>, Error>;

    /// Gives up to `batch` more of the replay's events a new delivery (due now) and records the
    /// progress, in one transaction.
    async fn replay_step(&self, id: &str, batch: u32, now: Millis) -> Result<Replay, Error>;

    /// A replay of the tenant.
    async fn replay(&self, tenant_id: &str, id: &str) -> Result<Option<Replay>, Error>;

    /// Every unfinished replay, to resume after a restart.
    async fn running_replays(&self) -> Result<Vec<Replay>, Error>;

    /// Stores a credential; [`ErrorKind::NotFound`] if its tenant is not.
    async fn create_token(&self, new: NewToken, now: Millis) -> Result<Token, Error>;

    /// The credential, revoked or not, whose hash is `hash`.
    async fn token_by_hash(&self, hash: &str) -> Result<Option<Token>, Error>;

    /// The credentials of a tenant (or, for `None`, the admin tokens), oldest first.
    async fn tokens(&self, tenant_id: Option<&str>) -> Result<Vec<Token>, Error>;

    /// Revokes credential `id` of the tenant (or admin, for `None`); false if there is no such
    /// unrevoked credential.
    async fn revoke_token(
        &self,
        tenant_id: Option<&str>,
        id: &str,
        now: Millis,
    ) -> Result<bool, Error>;

    /// The key stored under `name`; stores `candidate` first when there is none, so every
    /// process on the database ends up with the same key.
    async fn server_key(&self, name: &str, candidate: &str) -> Result<String, Error>;

    /// Notifies `wake` whenever another process stores new deliveries, for as long as the
    /// store lives. A store with only one process (SQLite) needs nothing: the in-process
    /// signal covers it, so the default does nothing.
    async fn watch(&self, wake: std::sync::Arc<tokio::sync::Notify>) -> Result<(), Error> {
        let _ = wake;
        Ok(())
    }
}

/// A token for one claim by `worker`, so finishing checks this very lease, not just the
/// worker's name (which [`Store::release`] matches as the part before `/`).
pub(crate) fn lease_token(worker: &str) -> String {
    format!("{worker}/{}", ulid::Ulid::generate())
}

/// A new prefixed, time-ordered id such as `evt_01JD…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::generate())
}

/// What went wrong, broadly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Something it refers to does not exist.
    NotFound,
    /// It exists already.
    Conflict,
    /// The database could not be reached or failed.
    Database,
    /// Stored data does not parse.
    Corrupt,
}

/// A store error.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<sqlx::Error>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Error {
        Error {
            kind: ErrorKind::Database,
            message: "database error".into(),
            source: Some(error),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(error: sqlx::migrate::MigrateError) -> Error {
        Error::new(
            ErrorKind::Database,
            format!("migrating the database failed: {error}"),
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Maps a unique-constraint violation to [`ErrorKind::Conflict`] and a foreign-key violation
/// to [`ErrorKind::NotFound`].
pub(crate) fn classify(error: sqlx::Error, what: &str) -> Error {
    if let sqlx::Error::Database(db) = &error {
        if db.is_unique_violation() {
            return Error::new(ErrorKind::Conflict, format!("{what} already exists"));
        }
        if db.is_foreign_key_violation() {
            return Error::new(
                ErrorKind::NotFound,
                format!("{what} refers to something that does not exist"),
            );
        }
    }
    Error::from(error)
}

/// Why a delivery to a disabled endpoint cannot be retried.
pub(crate) fn disabled_endpoint() -> Error {
    Error::new(
        ErrorKind::Conflict,
        "its endpoint is disabled: enable the endpoint first",
    )
}

/// Names what a batch of events refers to, for an error message.
pub(crate) fn tenants_of(events: &[batch::EventInsert<'_>]) -> String {
    match events {
        [one] => format!("tenant `{}`", one.new.tenant_id),
        _ => "an event's tenant".into(),
    }
}

/// Names what a batch of attempts refers to, for an error message.
pub(crate) fn deliveries_of(attempts: &[batch::AttemptInsert<'_>]) -> String {
    match attempts {
        [one] => format!("delivery `{}`", one.delivery_id),
        _ => "an attempt's delivery".into(),
    }
}

pub(crate) fn headers_to_json(headers: &BTreeMap<String, String>) -> String {
    serde_json::to_string(headers).unwrap_or_else(|_| "{}".into())
}

pub(crate) fn headers_from_json(text: &str) -> Result<BTreeMap<String, String>, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::new(ErrorKind::Corrupt, format!("stored headers: {e}")))
}

pub(crate) fn to_u32(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

/// A token row, as both backends select it.
pub(crate) type TokenRow = (String, Option<String>, String, String, i64, Option<i64>);

pub(crate) fn token_from_row(row: TokenRow) -> Token {
    let (id, tenant_id, name, prefix, created_at, revoked_at) = row;
    Token {
        id,
        tenant_id,
        name,
        prefix,
        created_at,
        revoked_at,
    }
}

/// An event row, as both backends select it.
pub(crate) type EventRow = (String, String, String, String, Option<String>, i64);

/// A delivery row, as both backends select it (PostgreSQL casts `attempts` to `bigint`).
pub(crate) type DeliveryRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    i64,
    i64,
);

/// The columns of [`DeliveryRow`], from `deliveries d JOIN events e ON e.id = d.event_id`, as
/// a literal for `concat!`; `$attempts` is how the dialect reads `d.attempts` as a 64-bit int.
macro_rules! delivery_columns {
    ($attempts:literal) => {
        concat!(
            "d.id, d.event_id, d.endpoint_id, e.event_type, d.state, ",
            $attempts,
            ", d.next_attempt_at, d.created_at, d.updated_at"
        )
    };
}
pub(crate) use delivery_columns;

pub(crate) fn event_from_row(row: EventRow) -> Event {
    let (id, tenant_id, event_type, payload, idempotency_key, created_at) = row;
    Event {
        id,
        tenant_id,
        event_type,
        payload,
        idempotency_key,
        created_at,
    }
}

pub(crate) fn delivery_from_row(row: DeliveryRow) -> Result<Delivery, Error> {
    let (
        id,
        event_id,
        endpoint_id,
        event_type,
        state,
        attempts,
        next_attempt_at,
        created_at,
        updated_at,
    ) = row;
    Ok(Delivery {
        id,
        event_id,
        endpoint_id,
        event_type,
        state: DeliveryState::parse(&state)?,
        attempts: to_u32(attempts),
        next_attempt_at,
        created_at,
        updated_at,
    })
}

/// A claimed delivery joined with its event and endpoint, as both backends select it.
pub(crate) type ClaimRow = (
    String,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
);

/// Joins claimed rows with the endpoints' active secrets.
pub(crate) fn claims_from_rows(
    rows: Vec<ClaimRow>,
    secrets: Vec<(String, String)>,
    lease: &str,
) -> Result<Vec<Claimed>, Error> {
    let mut by_endpoint: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (endpoint_id, secret) in secrets {
        by_endpoint.entry(endpoint_id).or_default().push(secret);
    }
    rows.into_iter()
        .map(
            |(
                delivery_id,
                attempts,
                event_id,
                event_type,
                payload,
                endpoint_id,
                url,
                headers,
                failing,
            )| {
                Ok(Claimed {
                    lease: lease.to_owned(),
                    delivery_id,
                    attempts: to_u32(attempts),
                    event_id,
                    event_type,
                    payload,
                    secrets: by_endpoint.get(&endpoint_id).cloned().unwrap_or_default(),
                    endpoint_id,
                    url,
                    headers: headers_from_json(&headers)?,
                    failing_since: failing,
                })
            },
        )
        .collect()
}

/// An attempt row, as both backends select it.
pub(crate) type AttemptRow = (
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    String,
    String,
);

/// The columns of [`AttemptRow`], as a literal for `concat!`; `$status` is how the dialect
/// reads `status_code` as a 64-bit int.
macro_rules! attempt_columns {
    ($status:literal) => {
        concat!(
            "started_at, duration_ms, ",
            $status,
            ", response_excerpt, error, request_headers, response_headers"
        )
    };
}
pub(crate) use attempt_columns;

pub(crate) fn attempt_from_row(row: AttemptRow) -> Result<Attempt, Error> {
    let (started_at, duration_ms, status, excerpt, error, request, response) = row;
    Ok(Attempt {
        started_at,
        duration_ms,
        status_code: status.and_then(|s| u16::try_from(s).ok()),
        response_excerpt: excerpt,
        error,
        request_headers: headers_from_json(&request)?,
        response_headers: headers_from_json(&response)?,
    })
}
