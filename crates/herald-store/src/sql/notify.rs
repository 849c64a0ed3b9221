//! Operational webhooks ([`crate::operational`]), written as events in the transaction that
//! records what they tell of: the attempts that disabled, failed or healed an endpoint or killed
//! a delivery, the replay step that finished a replay.

use std::collections::{HashMap, HashSet};

use super::accept::accept_all;
use super::endpoint_state::Turn;
use super::rows::count;
use super::{Backend, Run, Sql, json_rows, query, sql};
use crate::operational::{
    self, DeliveryDead, EndpointDisabled, EndpointFailing, EndpointRecovered, LastAttempt,
    OPERATOR, time,
};
use crate::{Error, Finish, Millis, NewEvent};

/// What an attempt changed about its endpoint that operators hear of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Change {
    Turn(Turn),
    /// Disabled, for this reason.
    Disabled(String),
}

/// One operational event to store for `tenant`, and for the operator.
pub(crate) struct Notice {
    pub(crate) tenant: String,
    pub(crate) event_type: &'static str,
    pub(crate) payload: String,
}

impl Notice {
    pub(crate) fn new(
        tenant: &str,
        event_type: &'static str,
        payload: &impl serde::Serialize,
    ) -> Notice {
        Notice {
            tenant: tenant.to_owned(),
            event_type,
            // Plain structs of strings, numbers and times always serialize.
            payload: serde_json::to_string(payload).unwrap_or_default(),
        }
    }
}

/// A delivery behind a notice, with its event's type and its endpoint.
#[derive(sqlx::FromRow, serde::Deserialize)]
struct Cause {
    id: String,
    event_id: String,
    event_type: String,
    attempts: i32,
    endpoint_id: String,
    tenant_id: String,
    url: String,
    failing_since: Option<Millis>,
}

/// What an operational event about an attempt tells (`$1`: the deliveries' keys), read after
/// the attempts were recorded: the attempts made, the streak as it now stands. Each delivery
/// through its key, then its event and endpoint: with the endpoint joined beside them,
/// PostgreSQL read the deliveries' key with the endpoint alone.
pub(crate) const CAUSES: Sql = sql!(
    "SELECT d.id, d.event_id, e.event_type, d.attempts, d.endpoint_id, e.tenant_id, \
       (SELECT p.url FROM endpoints p WHERE p.id = d.endpoint_id) AS url, \
       (SELECT p.failing_since FROM endpoints p WHERE p.id = d.endpoint_id) AS failing_since \
     FROM " [rows "$1"] " AS k \
       JOIN deliveries d ON d.endpoint_id = k.value->>0 AND d.id = k.value->>1"
      [event_of "d.endpoint_id" "d.event_id"]
);

/// Stores the operational events for a batch of attempts: the endpoint `changes` (with the
/// index in `finishes` of the attempt behind each) and the deliveries at `dead` that died.
/// Attempts at delivering operational events produce none. Whether deliveries became due.
pub(crate) async fn after_attempts<DB: Backend>(
    db: &mut impl Run<DB>,
    finishes: &[(&Finish, Millis)],
    changes: Vec<(String, usize, Change)>,
    dead: impl Iterator<Item = usize>,
) -> Result<bool, Error> {
    let dead: Vec<usize> = dead.collect();
    if changes.is_empty() && dead.is_empty() {
        return Ok(false);
    }
    let ids: Vec<(&str, &str)> = changes
        .iter()
        .map(|(_, cause, _)| *cause)
        .chain(dead.iter().copied())
        .map(|cause| finishes[cause].0.key())
        .collect();
    let causes: Vec<Cause> = query(CAUSES)
        .bind(json_rows(&ids))
        .fetch_all(&mut *db)
        .await?;
    let causes: HashMap<&str, &Cause> = causes
        .iter()
        .filter(|c| !operational::is_operational(&c.event_type))
        .map(|c| (c.id.as_str(), c))
        .collect();
    let behind = |index: usize| {
        let (finish, now) = finishes[index];
        let last_attempt = LastAttempt {
            status_code: finish.attempt.status_code,
            error: finish.attempt.error.clone(),
        };
        causes
            .get(finish.delivery_id.as_str())
            .map(|cause| (*cause, last_attempt, time(now), finish.attempt.started_at))
    };

    let mut notices = Vec::new();
    for (_, index, change) in changes {
        let Some((c, last_attempt, at, started_at)) = behind(index) else {
            continue;
        };
        notices.push(match change {
            Change::Disabled(reason) => Notice::new(
                &c.tenant_id,
                operational::ENDPOINT_DISABLED,
                &EndpointDisabled {
                    kind: operational::OperationalType::EndpointDisabled,
                    tenant: c.tenant_id.clone(),
                    endpoint_id: c.endpoint_id.clone(),
                    url: c.url.clone(),
                    reason,
                    failing_since: c.failing_since.map(time),
                    last_attempt,
                    at,
                },
            ),
            Change::Turn(Turn::Failing {
                failures,
                circuit_open,
            }) => Notice::new(
                &c.tenant_id,
                operational::ENDPOINT_FAILING,
                &EndpointFailing {
                    kind: operational::OperationalType::EndpointFailing,
                    tenant: c.tenant_id.clone(),
                    endpoint_id: c.endpoint_id.clone(),
                    url: c.url.clone(),
                    failures,
                    circuit_open,
                    failing_since: time(c.failing_since.unwrap_or(started_at)),
                    last_attempt,
                    at,
                },
            ),
            Change::Turn(Turn::Recovered { failures, since }) => Notice::new(
                &c.tenant_id,
                operational::ENDPOINT_RECOVERED,
                &EndpointRecovered {
                    kind: operational::OperationalType::EndpointRecovered,
                    tenant: c.tenant_id.clone(),
                    endpoint_id: c.endpoint_id.clone(),
                    url: c.url.clone(),
                    failures,
                    failing_since: since.map(time),
                    at,
                },
            ),
        });
    }
    for index in dead {
        let Some((c, last_attempt, at, _)) = behind(index) else {
            continue;
        };
        notices.push(Notice::new(
            &c.tenant_id,
            operational::DELIVERY_DEAD,
            &DeliveryDead {
                kind: operational::OperationalType::DeliveryDead,
                tenant: c.tenant_id.clone(),
                delivery_id: c.id.clone(),
                event_id: c.event_id.clone(),
                event_type: c.event_type.clone(),
                endpoint_id: c.endpoint_id.clone(),
                url: c.url.clone(),
                attempts: count(c.attempts.into()),
                last_attempt,
                at,
            },
        ));
    }
    let now = finishes.iter().map(|(_, now)| *now).max().unwrap_or(0);
    emit::<DB>(db, notices, now).await
}

/// Stores each notice as an event of its tenant and one of the operator's, for those with an
/// endpoint that asked for its type (nobody listening, nothing stored). Whether deliveries
/// became due.
pub(crate) async fn emit<DB: Backend>(
    db: &mut impl Run<DB>,
    notices: Vec<Notice>,
    now: Millis,
) -> Result<bool, Error> {
    const LISTENING: Sql = sql!(
        "SELECT DISTINCT p.tenant_id, t.value FROM endpoints p, " [texts "p.event_types"] " AS t \
         WHERE p.tenant_id IN (SELECT u.value FROM " [texts "$1"] " AS u) \
           AND t.value IN (SELECT u.value FROM " [texts "$2"] " AS u)"
    );

    if notices.is_empty() {
        return Ok(false);
    }
    let mut tenants: Vec<&str> = notices.iter().map(|n| n.tenant.as_str()).collect();
    tenants.push(OPERATOR);
    tenants.sort_unstable();
    tenants.dedup();
    let mut types: Vec<&str> = notices.iter().map(|n| n.event_type).collect();
    types.sort_unstable();
    types.dedup();
    let listening: Vec<(String, String)> = query(LISTENING)
        .bind(json_rows(&tenants))
        .bind(json_rows(&types))
        .fetch_all(&mut *db)
        .await?;
    let listening: HashSet<(&str, &str)> = listening
        .iter()
        .map(|(tenant, event_type)| (tenant.as_str(), event_type.as_str()))
        .collect();
    let mut events = Vec::new();
    for notice in &notices {
        let mut to = vec![notice.tenant.as_str()];
        if notice.tenant != OPERATOR {
            to.push(OPERATOR);
        }
        for tenant in to {
            if listening.contains(&(tenant, notice.event_type)) {
                events.push(NewEvent::new(tenant, notice.event_type, &notice.payload));
            }
        }
    }
    if events.is_empty() {
        return Ok(false);
    }
    let events: Vec<(&NewEvent, Millis)> = events.iter().map(|e| (e, now)).collect();
    let (accepted, _) = accept_all::<DB>(db, &events, &Default::default()).await?;
    Ok(accepted.iter().any(|a| a.deliveries > 0))
}
