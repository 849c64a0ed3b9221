//! What the store keeps, as its callers see it: tenants, endpoints, events, deliveries,
//! attempts and credentials. How each is read from a row lives with the SQL (`sql/rows.rs`).

use std::collections::BTreeMap;

use crate::{Error, ErrorKind, Millis};

/// What [`Upkeep::queue_figures`](crate::Upkeep::queue_figures) reads.
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
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow, serde::Deserialize)]
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
    /// How its deliveries are signed.
    pub signature: Signature,
    /// Its first keys: one of each kind `signature` uses (`whsec_…`, `whsk_…`).
    pub keys: Vec<String>,
    /// Whether deliveries are made to it.
    pub enabled: bool,
    /// At most this many deliveries a second; `None`: no limit.
    pub rate_limit: Option<u32>,
    /// The version it pins (a date): of each versioned webhook it receives the newest version
    /// on or before it. `None`: always the newest.
    pub version: Option<String>,
    /// The channels it asks for: empty, every event; otherwise the events that carry one.
    pub channels: Vec<String>,
    /// A payload filter ([`crate::filter`]) as JSON text, checked before it gets here.
    pub filter: Option<String>,
}

impl NewEndpoint {
    /// An enabled endpoint for every event type, with no extra headers, signed with `secret`
    /// (HMAC).
    pub fn new(tenant_id: &str, url: &str, secret: &str) -> NewEndpoint {
        NewEndpoint {
            tenant_id: tenant_id.into(),
            url: url.into(),
            description: String::new(),
            event_types: Vec::new(),
            headers: BTreeMap::new(),
            signature: Signature::Hmac,
            keys: vec![secret.into()],
            enabled: true,
            rate_limit: None,
            version: None,
            channels: Vec::new(),
            filter: None,
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
    /// At most this many deliveries a second; `None`: no limit.
    pub rate_limit: Option<u32>,
    /// How its deliveries are signed.
    pub signature: Signature,
    /// When it was created.
    pub created_at: Millis,
    /// The version it pins; see [`NewEndpoint::version`].
    pub version: Option<String>,
    /// The channels it asks for; see [`NewEndpoint::channels`].
    pub channels: Vec<String>,
    /// Its payload filter as JSON text; see [`crate::filter`].
    pub filter: Option<String>,
    /// While its circuit is open (it kept failing): no attempt but a probe before then.
    pub circuit_open_until: Option<Millis>,
}

/// How an endpoint's deliveries are signed (the `webhook-signature` header).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Signature {
    /// HMAC-SHA256 (`v1,…`) with shared `whsec_…` secrets.
    #[default]
    Hmac,
    /// Ed25519 (`v1a,…`) with `whsk_…` keys that never leave herald; receivers verify with
    /// the public halves.
    Ed25519,
    /// Both, while receivers move from one to the other.
    Both,
}

impl Signature {
    /// Every way, in the order they are listed.
    pub const ALL: [Signature; 3] = [Signature::Hmac, Signature::Ed25519, Signature::Both];

    /// `hmac`, `ed25519` or `both`: how it is written in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Signature::Hmac => "hmac",
            Signature::Ed25519 => "ed25519",
            Signature::Both => "both",
        }
    }

    /// The way written `text`, if it is one.
    pub fn named(text: &str) -> Option<Signature> {
        Signature::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether keys of `kind` sign this way.
    pub fn uses(self, kind: KeyKind) -> bool {
        matches!(
            (self, kind),
            (Signature::Both, _)
                | (Signature::Hmac, KeyKind::Hmac)
                | (Signature::Ed25519, KeyKind::Ed25519)
        )
    }
}

/// What an endpoint's key is, told by its prefix: `whsk_…` is an Ed25519 signing key, anything
/// else an HMAC secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// `whsec_…`.
    Hmac,
    /// `whsk_…`.
    Ed25519,
}

impl KeyKind {
    /// Both kinds.
    pub const ALL: [KeyKind; 2] = [KeyKind::Hmac, KeyKind::Ed25519];

    /// The kind of `key`.
    pub fn of(key: &str) -> KeyKind {
        if key.starts_with("whsk_") {
            KeyKind::Ed25519
        } else {
            KeyKind::Hmac
        }
    }
}

/// A new way of signing for an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureChange {
    /// The way.
    pub signature: Signature,
    /// A fresh key of each kind it uses, taken only for a kind the endpoint has no key of that
    /// signs now; keys of a kind it does not use are deleted at once.
    pub fresh_keys: Vec<String>,
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
    /// ends its pending deliveries.
    pub enabled: Option<bool>,
    /// A new rate limit: `Some(None)` removes it.
    pub rate_limit: Option<Option<u32>>,
    /// A new way of signing.
    pub signature: Option<SignatureChange>,
    /// A new version to pin.
    pub version: Option<String>,
    /// New channels; empty: every event.
    pub channels: Option<Vec<String>>,
    /// A new payload filter: `Some(None)` removes it.
    pub filter: Option<Option<String>>,
    /// Sends the deliveries skipped while it was disabled, now, in the order their events
    /// were accepted; only if the endpoint is enabled once the patch applies.
    pub deliver_skipped: bool,
}

/// One of an endpoint's signing keys.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow, serde::Deserialize)]
pub struct EndpointSecret {
    /// A secret, `whsec_…`, or an Ed25519 signing key, `whsk_…` (see [`KeyKind`]).
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
    /// For each endpoint, events with the same key are delivered one at a time, in the order
    /// they were accepted.
    pub ordering_key: Option<String>,
    /// For a versioned webhook: the version of `payload`, and the older versions it carries.
    pub versions: Option<Versions>,
    /// Its channels: it reaches endpoints without channels, and those asking for one of these.
    pub channels: Vec<String>,
    /// The W3C `traceparent` it was accepted under: its attempts continue that trace.
    pub traceparent: Option<String>,
}

/// The versions of an event of a versioned webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versions {
    /// Every version the webhook declares, oldest first (dates, `YYYY-MM-DD`).
    pub declared: Vec<String>,
    /// The version of the event's own payload.
    pub version: String,
    /// The payload converted to older versions: version → JSON, sent byte for byte.
    pub converted: BTreeMap<String, String>,
}

impl Versions {
    /// Whether an endpoint pinned to `pin` receives this event: the version it receives of
    /// this webhook ([`resolve`]) is one the event carries.
    pub fn reaches(&self, pin: Option<&str>) -> bool {
        resolve(&self.declared, pin)
            .is_some_and(|v| v == self.version || self.converted.contains_key(v))
    }
}

/// The version of a webhook with `versions` (oldest first) an endpoint pinned to `pin`
/// receives: the newest on or before the pin; the oldest if the pin is before them all; the
/// newest if there is no pin.
pub fn resolve<'a, S: AsRef<str>>(versions: &'a [S], pin: Option<&str>) -> Option<&'a str> {
    let newest = versions.last().map(AsRef::as_ref);
    let Some(pin) = pin else {
        return newest;
    };
    versions
        .iter()
        .map(AsRef::as_ref)
        .rfind(|v| *v <= pin)
        .or_else(|| versions.first().map(AsRef::as_ref))
}

impl NewEvent {
    /// An event without an idempotency key.
    pub fn new(tenant_id: &str, event_type: &str, payload: &str) -> NewEvent {
        NewEvent {
            tenant_id: tenant_id.into(),
            event_type: event_type.into(),
            payload: payload.into(),
            idempotency_key: None,
            ordering_key: None,
            versions: None,
            channels: Vec::new(),
            traceparent: None,
        }
    }
}

/// A stored event.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow, serde::Deserialize)]
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
    /// Its ordering key, if any.
    pub ordering_key: Option<String>,
    /// Whether it is a test event ([`Log::accept_test_event`](crate::Log::accept_test_event)).
    pub test: bool,
    /// When it was accepted.
    pub created_at: Millis,
    /// The version of `payload`, for a versioned webhook.
    pub version: Option<String>,
}

/// The result of [`Log::accept_event`](crate::Log::accept_event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The stored event (the earlier one, for a repeated idempotency key).
    pub event: Event,
    /// False when the idempotency key matched an earlier event and nothing new was stored.
    pub created: bool,
    /// How many deliveries were created (one per enabled endpoint subscribed to its type).
    pub deliveries: u32,
    /// How many were recorded as skipped (one per disabled endpoint subscribed to its type).
    pub skipped: u32,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt (or in flight).
    Pending,
    /// An attempt got a 2xx.
    Succeeded,
    /// Every attempt failed.
    Dead,
    /// Not sent: its endpoint was disabled when the event came, or while it waited. Enabling
    /// the endpoint with [`EndpointPatch::deliver_skipped`] sends it.
    Skipped,
}

impl DeliveryState {
    /// `pending`, `succeeded`, `dead` or `skipped`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Dead => "dead",
            DeliveryState::Skipped => "skipped",
        }
    }

    /// The state named by [`DeliveryState::as_str`].
    pub fn parse(text: &str) -> Result<DeliveryState, Error> {
        match text {
            "pending" => Ok(DeliveryState::Pending),
            "succeeded" => Ok(DeliveryState::Succeeded),
            "dead" => Ok(DeliveryState::Dead),
            "skipped" => Ok(DeliveryState::Skipped),
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
    /// Whether its event is a test event.
    pub test: bool,
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
    /// This claim's lease token; [`Queue::finish`](crate::Queue::finish) succeeds only while it holds.
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
    /// Its event's ordering key, if any.
    pub ordering_key: Option<String>,
    /// The version of `payload`, for a versioned webhook: the one the endpoint's pin resolves
    /// to among those the event carries.
    pub version: Option<String>,
    /// The W3C `traceparent` its event was accepted under.
    pub traceparent: Option<String>,
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
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow, serde::Deserialize)]
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
    /// herald cut the attempt off (it was stopping, or lost its claim to the database): due
    /// again at once, and not the endpoint's failure, since the endpoint was given no chance to
    /// answer.
    Interrupted,
}

/// What a worker asks for when it claims: how much it can start now, endpoint by endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRequest {
    /// The worker's name; its leases are `name/…`.
    pub worker: String,
    /// Deliveries it can start now, in all.
    pub limit: u32,
    /// Deliveries it can start now to an endpoint not in `remaining`.
    pub capacity: u32,
    /// Deliveries it can start now to these endpoints (those it has in flight, or whose
    /// capacity it has changed); 0 passes the endpoint over.
    pub remaining: BTreeMap<String, u32>,
    /// How long a claim holds if the worker stops finishing without going away (a stuck
    /// process); a worker that is gone loses its claims at once.
    pub lease: std::time::Duration,
}

/// What a claim leased, and when the worker should look again if nothing wakes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The deliveries leased, to start now.
    pub deliveries: Vec<Claimed>,
    /// When the next endpoint's turn comes after this claim (a retry, a rate limit's next
    /// token, a circuit half-opening; now, if more is due), leaving out the endpoints the
    /// worker has no room for once it starts these; `None` when nothing is pending. Read in
    /// the claim's own transaction, so a worker asks nothing more before it sleeps.
    pub next_turn: Option<Millis>,
}

impl ClaimRequest {
    /// Deliveries the worker can start now to `endpoint`.
    pub fn room(&self, endpoint: &str) -> u32 {
        self.remaining
            .get(endpoint)
            .copied()
            .unwrap_or(self.capacity)
    }
}

/// One attempt's end, as the worker reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finish {
    /// `dlv_…`.
    pub delivery_id: String,
    /// Its endpoint, `ep_…` (the store finds a delivery through it).
    pub endpoint_id: String,
    /// Its event (the `webhook-id` it was sent with).
    pub event_id: String,
    /// The lease it was claimed under.
    pub lease: String,
    /// What happened.
    pub attempt: Attempt,
    /// What becomes of the delivery.
    pub outcome: Outcome,
    /// The endpoint answered `410 Gone`: it is disabled.
    pub gone: bool,
    /// An endpoint whose every attempt has failed for this long is disabled.
    pub disable_after: std::time::Duration,
}

impl Finish {
    /// `(endpoint, delivery)`: how statements find the delivery.
    pub(crate) fn key(&self) -> (&str, &str) {
        (&self.endpoint_id, &self.delivery_id)
    }
}

/// What a [`Finish`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// The lease held: the delivery moved on. When it did not (another worker may have the
    /// delivery now), only the attempt was recorded.
    pub held: bool,
    /// The endpoint was disabled, for this reason, and its pending deliveries ended.
    pub disabled: Option<String>,
}
