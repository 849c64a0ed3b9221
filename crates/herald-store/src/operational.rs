//! herald's own webhooks about the delivery itself: an endpoint disabled, failing or
//! recovered, a delivery given up, a replay finished. They are events like any other (stored,
//! signed, retried, in the log), written in the very transaction that records what caused them,
//! so none is lost and none is sent for something that did not commit.
//!
//! Who receives them:
//! - a tenant's endpoint that names an operational type in its `event_types` receives it for
//!   that tenant's endpoints (an endpoint subscribed to every type, `[]`, does not: they are
//!   never sent to an endpoint that did not ask for them);
//! - an endpoint of the tenant [`OPERATOR`] receives it for every tenant of the installation.
//!
//! They never feed themselves: the outcome of delivering an operational event produces no
//! operational event, so an operator endpoint that fails costs one failing delivery per notice,
//! not a loop.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Millis;

/// The tenant whose endpoints receive the operational webhooks of the whole installation. It
/// exists in every database (a migration makes it); only the admin token reaches it.
pub const OPERATOR: &str = "_operator";

/// `endpoint.disabled`: see [`EndpointDisabled`].
pub const ENDPOINT_DISABLED: &str = "endpoint.disabled";
/// `endpoint.failing`: see [`EndpointFailing`].
pub const ENDPOINT_FAILING: &str = "endpoint.failing";
/// `endpoint.recovered`: see [`EndpointRecovered`].
pub const ENDPOINT_RECOVERED: &str = "endpoint.recovered";
/// `delivery.dead`: see [`DeliveryDead`].
pub const DELIVERY_DEAD: &str = "delivery.dead";
/// `replay.finished`: see [`ReplayFinished`].
pub const REPLAY_FINISHED: &str = "replay.finished";

/// Every operational webhook's name.
pub const TYPES: [&str; 5] = [
    DELIVERY_DEAD,
    ENDPOINT_DISABLED,
    ENDPOINT_FAILING,
    ENDPOINT_RECOVERED,
    REPLAY_FINISHED,
];

/// Whether `event_type` is one of herald's operational webhooks.
pub fn is_operational(event_type: &str) -> bool {
    TYPES.contains(&event_type)
}

/// Which operational webhook a payload is, in its `type` field, so one endpoint can take all
/// of them and tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum OperationalType {
    /// `endpoint.disabled`.
    #[serde(rename = "endpoint.disabled")]
    EndpointDisabled,
    /// `endpoint.failing`.
    #[serde(rename = "endpoint.failing")]
    EndpointFailing,
    /// `endpoint.recovered`.
    #[serde(rename = "endpoint.recovered")]
    EndpointRecovered,
    /// `delivery.dead`.
    #[serde(rename = "delivery.dead")]
    DeliveryDead,
    /// `replay.finished`.
    #[serde(rename = "replay.finished")]
    ReplayFinished,
}

impl OperationalType {
    /// The webhook's name.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationalType::EndpointDisabled => ENDPOINT_DISABLED,
            OperationalType::EndpointFailing => ENDPOINT_FAILING,
            OperationalType::EndpointRecovered => ENDPOINT_RECOVERED,
            OperationalType::DeliveryDead => DELIVERY_DEAD,
            OperationalType::ReplayFinished => REPLAY_FINISHED,
        }
    }
}

/// An endpoint was disabled: herald sends it nothing more (what its tenant's events would
/// have sent it is recorded as skipped) until it is enabled again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EndpointDisabled {
    /// `endpoint.disabled`: which operational webhook this is.
    #[serde(rename = "type")]
    pub kind: OperationalType,
    /// The tenant whose endpoint it is.
    pub tenant: String,
    /// `ep_…`.
    pub endpoint_id: String,
    /// Where it was sent to.
    pub url: String,
    /// Why: it answered `410 Gone`, or every attempt failed for too long.
    pub reason: String,
    /// When its current failure streak began.
    pub failing_since: Option<DateTime<Utc>>,
    /// The attempt that disabled it.
    pub last_attempt: LastAttempt,
    /// When it was disabled.
    pub at: DateTime<Utc>,
}

/// An endpoint is failing: its first failed attempt after a success, and again when the
/// failures in a row reach the circuit breaker's threshold (from then on it gets one attempt
/// at a time until one succeeds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EndpointFailing {
    /// `endpoint.failing`: which operational webhook this is.
    #[serde(rename = "type")]
    pub kind: OperationalType,
    /// The tenant whose endpoint it is.
    pub tenant: String,
    /// `ep_…`.
    pub endpoint_id: String,
    /// Where it is sent to.
    pub url: String,
    /// Attempts failed in a row, this one included.
    pub failures: u32,
    /// Whether its circuit breaker is now open (one attempt at a time).
    pub circuit_open: bool,
    /// When this failure streak began.
    pub failing_since: DateTime<Utc>,
    /// The attempt that failed.
    pub last_attempt: LastAttempt,
    /// When the failure was recorded.
    pub at: DateTime<Utc>,
}

/// A failing endpoint answered with success again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EndpointRecovered {
    /// `endpoint.recovered`: which operational webhook this is.
    #[serde(rename = "type")]
    pub kind: OperationalType,
    /// The tenant whose endpoint it is.
    pub tenant: String,
    /// `ep_…`.
    pub endpoint_id: String,
    /// Where it is sent to.
    pub url: String,
    /// Attempts that had failed in a row before this success.
    pub failures: u32,
    /// When the failure streak that ended began.
    pub failing_since: Option<DateTime<Utc>>,
    /// When the success was recorded.
    pub at: DateTime<Utc>,
}

/// A delivery was given up: its last attempt failed, and it is dead. It can still be retried
/// by hand (API or dashboard).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryDead {
    /// `delivery.dead`: which operational webhook this is.
    #[serde(rename = "type")]
    pub kind: OperationalType,
    /// The tenant whose event it is.
    pub tenant: String,
    /// `dlv_…`.
    pub delivery_id: String,
    /// `evt_…`: the event, as its `webhook-id` said.
    pub event_id: String,
    /// The event's webhook.
    pub event_type: String,
    /// `ep_…`.
    pub endpoint_id: String,
    /// Where it was sent to.
    pub url: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last one.
    pub last_attempt: LastAttempt,
    /// When it was given up.
    pub at: DateTime<Utc>,
}

/// A replay sent every event of its range to its endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReplayFinished {
    /// `replay.finished`: which operational webhook this is.
    #[serde(rename = "type")]
    pub kind: OperationalType,
    /// The tenant whose events were sent again.
    pub tenant: String,
    /// `rpl_…`.
    pub replay_id: String,
    /// `ep_…`: the endpoint they were sent to.
    pub endpoint_id: String,
    /// Events sent again.
    pub events: u64,
    /// The start of the range replayed.
    pub since: DateTime<Utc>,
    /// When it finished.
    pub at: DateTime<Utc>,
}

/// How an attempt ended, as an operational webhook tells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LastAttempt {
    /// The response's status, if one came.
    pub status_code: Option<u16>,
    /// Why it failed without a status (timeout, refused…).
    pub error: Option<String>,
}

/// A time of the store's clock as a payload carries it.
pub(crate) fn time(at: Millis) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at).unwrap_or_default()
}
