//! herald's operational webhooks, declared with the same machinery as an app's: typed payloads
//! ([`herald_store::operational`], where the store writes them), documented in the API's
//! document under `webhooks`, subscribed to by endpoints like any event type, signed and
//! retried like any delivery.

use chrono::{DateTime, Utc};
use herald_core::{Webhook, Webhooks};
use herald_store::operational::{
    self, DeliveryDead, EndpointDisabled, EndpointFailing, EndpointRecovered, LastAttempt,
    ReplayFinished,
};

/// What every operational webhook's description ends with.
const WHO: &str = "Sent to the tenant's endpoints that name this type in their `event_types` \
                   (an endpoint subscribed to every type does not get it), and to the endpoints \
                   of the tenant `_operator`, which hear it for every tenant. Delivering an \
                   operational webhook never produces one.";

/// The operational webhooks, as declared.
pub(crate) fn webhooks() -> Webhooks {
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap_or_default();
    let refused = || LastAttempt {
        status_code: Some(503),
        error: None,
    };
    let describe = |what: &str| format!("{what}\n\n{WHO}");
    Webhooks::new()
        .webhook(
            Webhook::<EndpointDisabled>::post(operational::ENDPOINT_DISABLED)
                .summary("Endpoint disabled")
                .description(describe(
                    "An endpoint was disabled by herald: it answered `410 Gone`, or every \
                     attempt failed for too long. It receives nothing more (its tenant's events \
                     are recorded against it as skipped) until it is enabled again.",
                ))
                .tag("operational")
                .example(EndpointDisabled {
                    kind: operational::OperationalType::EndpointDisabled,
                    tenant: "acme".into(),
                    endpoint_id: "ep_01KBX2Y7M0Q9V6ZC8J4T3N5R1D".into(),
                    url: "https://hooks.acme.example/herald".into(),
                    reason: "the endpoint answered 410 Gone".into(),
                    failing_since: None,
                    last_attempt: LastAttempt {
                        status_code: Some(410),
                        error: None,
                    },
                    at: at("2026-12-03T12:00:00.000Z"),
                }),
        )
        .webhook(
            Webhook::<EndpointFailing>::post(operational::ENDPOINT_FAILING)
                .summary("Endpoint failing")
                .description(describe(
                    "An endpoint failed: sent on its first failed attempt after a success, and \
                     again when its failures in a row open its circuit breaker (from then on \
                     it gets one attempt at a time until one succeeds).",
                ))
                .tag("operational")
                .example(EndpointFailing {
                    kind: operational::OperationalType::EndpointFailing,
                    tenant: "acme".into(),
                    endpoint_id: "ep_01KBX2Y7M0Q9V6ZC8J4T3N5R1D".into(),
                    url: "https://hooks.acme.example/herald".into(),
                    failures: 1,
                    circuit_open: false,
                    failing_since: at("2026-12-03T11:58:00.000Z"),
                    last_attempt: refused(),
                    at: at("2026-12-03T11:58:00.150Z"),
                }),
        )
        .webhook(
            Webhook::<EndpointRecovered>::post(operational::ENDPOINT_RECOVERED)
                .summary("Endpoint recovered")
                .description(describe(
                    "A failing endpoint answered with success again: its failure streak is over.",
                ))
                .tag("operational")
                .example(EndpointRecovered {
                    kind: operational::OperationalType::EndpointRecovered,
                    tenant: "acme".into(),
                    endpoint_id: "ep_01KBX2Y7M0Q9V6ZC8J4T3N5R1D".into(),
                    url: "https://hooks.acme.example/herald".into(),
                    failures: 3,
                    failing_since: Some(at("2026-12-03T11:58:00.000Z")),
                    at: at("2026-12-03T12:01:30.000Z"),
                }),
        )
        .webhook(
            Webhook::<DeliveryDead>::post(operational::DELIVERY_DEAD)
                .summary("Delivery dead")
                .description(describe(
                    "A delivery was given up after its last attempt failed. It stays in the \
                     log, and can be retried from the API or the dashboard.",
                ))
                .tag("operational")
                .example(DeliveryDead {
                    kind: operational::OperationalType::DeliveryDead,
                    tenant: "acme".into(),
                    delivery_id: "dlv_01KBX3A1C2D3E4F5G6H7J8K9M0".into(),
                    event_id: "evt_01KBX39Z8Y7X6W5V4T3S2R1Q0P".into(),
                    event_type: "new-subscription".into(),
                    endpoint_id: "ep_01KBX2Y7M0Q9V6ZC8J4T3N5R1D".into(),
                    url: "https://hooks.acme.example/herald".into(),
                    attempts: 8,
                    last_attempt: refused(),
                    at: at("2026-12-04T15:00:00.000Z"),
                }),
        )
        .webhook(
            Webhook::<ReplayFinished>::post(operational::REPLAY_FINISHED)
                .summary("Replay finished")
                .description(describe(
                    "A replay gave every event of its range a new delivery to its endpoint.",
                ))
                .tag("operational")
                .example(ReplayFinished {
                    kind: operational::OperationalType::ReplayFinished,
                    tenant: "acme".into(),
                    replay_id: "rpl_01KBX4B2C3D4E5F6G7H8J9K0M1".into(),
                    endpoint_id: "ep_01KBX2Y7M0Q9V6ZC8J4T3N5R1D".into(),
                    events: 120,
                    since: at("2026-12-02T00:00:00.000Z"),
                    at: at("2026-12-03T12:05:00.000Z"),
                }),
        )
}

/// `Err` naming the first of `webhooks` that takes the name of an operational one.
pub(crate) fn check_names(webhooks: &Webhooks) -> Result<(), String> {
    match webhooks
        .iter()
        .find(|d| operational::is_operational(d.name()))
    {
        Some(clash) => Err(format!(
            "webhook `{}` has the name of one of herald's operational webhooks ({}): name it \
             differently",
            clash.name(),
            operational::TYPES.join(", ")
        )),
        None => Ok(()),
    }
}

/// Whether tenant id `id` is herald's to make (`_operator`, and any other starting with `_`).
pub(crate) fn is_reserved(id: &str) -> bool {
    id.starts_with('_')
}
