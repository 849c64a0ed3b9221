//! Events in over HTTP: validated against the type's schema, stored, then delivered.

use axum::extract::State;
use axum::http::StatusCode;
use herald_delivery::trace;
use herald_store::NewEvent;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::ToSchema;

use super::openapi::EventTypeName;
use super::{rfc3339, tenant_problem};
use crate::event_types::VersionError;
use crate::problem::{Problem, Violation};
use crate::state::{ApiJson, AppState, Scope};

/// An event to send.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateEvent {
    /// A declared webhook's name.
    #[schema(value_type = EventTypeName)]
    event_type: String,
    /// The body, which must match the webhook's schema. It is delivered exactly as sent here.
    #[schema(value_type = Object)]
    payload: Box<serde_json::value::RawValue>,
    /// Repeating a key with the same type and payload returns the first event instead of
    /// storing a second; with a different one it is a 409.
    #[schema(min_length = 1, max_length = 255)]
    idempotency_key: Option<String>,
    /// Events with the same key reach each endpoint one at a time, in the order they were
    /// accepted: the next waits until the one before has succeeded or died. Other keys, and
    /// events without one, are not held back.
    #[schema(min_length = 1, max_length = 256)]
    ordering_key: Option<String>,
    /// For a versioned webhook, the version of `payload` (a date, `YYYY-MM-DD`); default: the
    /// newest. Endpoints pinned to an older version receive the payload converted by the
    /// application's conversions (none in `--spec` mode: there, send each version yourself).
    #[schema(example = "2026-12-01")]
    version: Option<String>,
    /// Up to 10 channels, each once (1 to 128 letters, digits, `_`, `.`, `:` or `-`). An endpoint
    /// that asks for channels receives only events carrying one of them; an endpoint that
    /// asks for none receives every event of its types, with channels or without.
    #[serde(default)]
    #[schema(schema_with = super::endpoint_fields::channels)]
    channels: Vec<String>,
}

/// A stored event.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventOut {
    /// `evt_…`; each delivery's `webhook-id`.
    id: String,
    event_type: String,
    /// The version of the payload, for a versioned webhook.
    version: Option<String>,
    created_at: String,
    /// How many endpoints it is being delivered to.
    deliveries: u32,
    /// How many subscribed endpoints are disabled: the event is recorded against each as a
    /// `skipped` delivery, sent if the endpoint is enabled with `deliver_skipped`.
    skipped: u32,
    /// True when the idempotency key matched an earlier event, which this is.
    duplicate: bool,
}

/// Send an event
///
/// Validates the payload against the webhook's schema, stores the event and one delivery per
/// subscribed endpoint, and answers once that is committed.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/events", tag = "herald", security(("token" = [])),
    params(
        ("tenant" = String, Path, description = "The tenant's id"),
        ("traceparent" = Option<String>, Header, description = "A W3C trace context (`00-<trace id>-<span id>-<flags>`): the event's spans continue that trace, and each delivery hands it on to the receiver in its own `traceparent`. One that is not valid W3C is ignored."),
    ),
    request_body = CreateEvent,
    responses(
        (status = 202, description = "Stored; delivery follows", body = EventOut),
        (status = 409, description = "The idempotency key was used for a different event", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown type, or the payload does not match its schema or names a member twice", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_event(
    State(state): State<AppState>,
    scope: Scope,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<CreateEvent>,
) -> Result<(StatusCode, axum::Json<EventOut>), Problem> {
    let span = tracing::info_span!("accept", tenant = %scope.tenant, event_type = %body.event_type);
    let traceparent = headers
        .get(trace::TRACEPARENT)
        .and_then(|value| value.to_str().ok());
    let traceparent = trace::continue_in(&span, traceparent);
    accept(state, scope, body, traceparent)
        .instrument(span)
        .await
}

/// Validates and stores an event (in the `accept` span of [`create_event`]).
async fn accept(
    state: AppState,
    Scope { tenant, store, .. }: Scope,
    body: CreateEvent,
    traceparent: Option<String>,
) -> Result<(StatusCode, axum::Json<EventOut>), Problem> {
    if !state.event_types.sendable(&body.event_type) {
        let why = if state.event_types.contains(&body.event_type) {
            format!(
                "`{}` is one of herald's operational webhooks: herald sends it, nobody else",
                body.event_type
            )
        } else {
            format!("unknown event type `{}`", body.event_type)
        };
        return Err(Problem::invalid(
            why,
            vec![Violation {
                path: "/event_type".into(),
                message: format!(
                    "declared: {}",
                    state.event_types.sendable_names().join(", ")
                ),
            }],
        ));
    }
    if let Some(repeated) = super::members::first_repeated(body.payload.get()) {
        return Err(Problem::invalid(
            "the payload names a member twice; receivers disagree on which value wins",
            vec![Violation {
                path: format!("/payload{repeated}"),
                message: "repeated member".into(),
            }],
        ));
    }
    // Validate a parsed copy; store and deliver the caller's own bytes (key order included).
    let parsed: serde_json::Value = serde_json::from_str(body.payload.get())
        .map_err(|e| Problem::invalid(format!("the payload is not JSON: {e}"), Vec::new()))?;
    let violations = state.event_types.violations(
        &body.event_type,
        body.version.as_deref(),
        &parsed,
        "/payload",
    );
    if !violations.is_empty() {
        return Err(Problem::invalid(
            format!(
                "the payload does not match the schema of `{}`",
                body.event_type
            ),
            violations,
        ));
    }
    // An unknown version has no schema, so nothing above: it is refused here.
    let versions = state
        .event_types
        .versions(&body.event_type, body.version.as_deref(), &parsed)
        .map_err(version_problem)?;
    key_length(
        "idempotency key",
        "/idempotency_key",
        body.idempotency_key.as_deref(),
        255,
    )?;
    key_length(
        "ordering key",
        "/ordering_key",
        body.ordering_key.as_deref(),
        256,
    )?;
    let bad_channels = crate::filters::check_channels(&body.channels, "/channels");
    if !bad_channels.is_empty() {
        return Err(Problem::invalid("invalid channels", bad_channels));
    }
    let new = NewEvent {
        tenant_id: tenant.clone(),
        event_type: body.event_type,
        payload: body.payload.get().to_owned(),
        idempotency_key: body.idempotency_key,
        ordering_key: body.ordering_key,
        versions,
        channels: body.channels,
        traceparent,
    };
    let event_type = new.event_type.clone();
    let version = new.versions.as_ref().map(|v| v.version.clone());
    let accepted = store
        .accept_event(new)
        .instrument(tracing::info_span!("store"))
        .await
        .map_err(|e| tenant_problem(e, &tenant))?;
    if accepted.created {
        state.metrics.event_accepted();
    } else {
        same_as_earlier(&accepted.event, &event_type, version.as_deref(), &parsed)?;
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(EventOut {
            id: accepted.event.id,
            event_type: accepted.event.event_type,
            version: accepted.event.version,
            created_at: rfc3339(accepted.event.created_at),
            deliveries: accepted.deliveries,
            skipped: accepted.skipped,
            duplicate: !accepted.created,
        }),
    ))
}

/// A version that cannot be sent as a 422 that says why.
fn version_problem(error: VersionError) -> Problem {
    match error {
        VersionError::Unknown(message) => Problem::invalid(
            message,
            vec![Violation {
                path: "/version".into(),
                message: "not a declared version of this event type".into(),
            }],
        ),
        VersionError::Conversion(message) => Problem::invalid(
            format!("the payload cannot be converted to an older version: {message}"),
            vec![Violation {
                path: "/payload".into(),
                message: "conversion failed".into(),
            }],
        ),
        VersionError::Invalid {
            version,
            violations,
        } => Problem::invalid(
            format!(
                "converted to version {version}, the payload does not match that version's \
                 schema: the application's conversion gives a body its own schema refuses"
            ),
            violations,
        ),
    }
}

/// A repeated idempotency key names the same event, or it is a mistake to report: 409 when
/// the type or the payload (as JSON, whitespace and member order aside) differ from the
/// event first stored under it.
fn same_as_earlier(
    earlier: &herald_store::Event,
    event_type: &str,
    version: Option<&str>,
    payload: &serde_json::Value,
) -> Result<(), Problem> {
    let stored = serde_json::from_str::<serde_json::Value>(&earlier.payload).ok();
    let differs = if earlier.event_type != event_type {
        Some("event type")
    } else if earlier.version.as_deref() != version {
        Some("version")
    } else if stored.as_ref() != Some(payload) {
        Some("payload")
    } else {
        None
    };
    let Some(what) = differs else {
        return Ok(());
    };
    let key = earlier.idempotency_key.as_deref().unwrap_or_default();
    Err(Problem::conflict(format!(
        "idempotency key `{key}` was used for event {} with a different {what}; use a new key \
         for a new event",
        earlier.id,
    )))
}

/// A key of 1 to `max` characters (when there is one), or the 422 naming `field`.
fn key_length(what: &str, field: &str, key: Option<&str>, max: usize) -> Result<(), Problem> {
    match key {
        Some(key) if key.is_empty() || key.chars().count() > max => Err(Problem::invalid(
            format!("an {what} is 1 to {max} characters"),
            vec![Violation {
                path: field.into(),
                message: format!("must be 1 to {max} characters"),
            }],
        )),
        _ => Ok(()),
    }
}
