//! What the delivery log is read through: filters for listing events and deliveries, the
//! figures behind the dashboard's chart, and replay jobs.

use crate::{DeliveryState, Error, ErrorKind, Millis};

/// Which of a tenant's events to list. Every field left `None` matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only this webhook.
    pub event_type: Option<String>,
    /// Accepted at or after.
    pub since: Option<Millis>,
    /// Accepted before.
    pub until: Option<Millis>,
}

/// Which of a tenant's deliveries to list. Every field left `None` matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    /// To this endpoint.
    pub endpoint_id: Option<String>,
    /// Of this event.
    pub event_id: Option<String>,
    /// Of this webhook.
    pub event_type: Option<String>,
    /// In this state.
    pub state: Option<DeliveryState>,
    /// Created at or after.
    pub since: Option<Millis>,
    /// Created before.
    pub until: Option<Millis>,
}

/// One bucket of attempts, for a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct AttemptStats {
    /// The bucket's start.
    pub start: Millis,
    /// Attempts answered with a 2xx.
    pub succeeded: u32,
    /// Every other attempt.
    pub failed: u32,
    /// Mean duration of the bucket's attempts.
    pub mean_ms: f64,
    /// Longest duration.
    pub max_ms: i64,
}

/// Where a replay job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayState {
    /// Still creating deliveries.
    Running,
    /// Every event has its delivery.
    Finished,
    /// Its endpoint was disabled before every event had its delivery; `done` says how far
    /// it got.
    Stopped,
}

impl ReplayState {
    /// `running`, `finished` or `stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplayState::Running => "running",
            ReplayState::Finished => "finished",
            ReplayState::Stopped => "stopped",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<ReplayState, Error> {
        match text {
            "running" => Ok(ReplayState::Running),
            "finished" => Ok(ReplayState::Finished),
            "stopped" => Ok(ReplayState::Stopped),
            other => Err(Error::new(
                ErrorKind::Corrupt,
                format!("unknown replay state {other:?}"),
            )),
        }
    }
}

/// A job that sends every event of a tenant since a time to one endpoint again, a batch at a
/// time, so a large replay neither holds a long transaction nor blocks new events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    /// `rpl_…`.
    pub id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// Where the events go.
    pub endpoint_id: String,
    /// The first event's earliest acceptance time.
    pub since: Millis,
    /// Events it covers: those accepted from `since` until the job was made, of the types the
    /// endpoint receives.
    pub total: u32,
    /// Events gone through so far: given a new delivery, or passed over because the
    /// endpoint's channels or filter do not take them.
    pub done: u32,
    /// Where it stands.
    pub state: ReplayState,
    /// When it was made.
    pub created_at: Millis,
    /// When it last moved.
    pub updated_at: Millis,
}
