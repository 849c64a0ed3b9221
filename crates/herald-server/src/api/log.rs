//! The delivery log: a tenant's events, deliveries and attempts, retrying one delivery, and
//! the hourly figures behind the dashboard's chart.

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::http::StatusCode;
use herald_store::{Attempt, Delivery, DeliveryFilter, DeliveryState, Event, EventFilter, Store};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Listed, Page, in_range, parse_time, rfc3339};
use crate::problem::Problem;
use crate::state::{ApiQuery, Scope};
use herald_delivery::worker::VERSION_HEADER;

/// A stored event, with its payload.
#[derive(Serialize, ToSchema)]
pub(crate) struct LoggedEvent {
    /// `evt_…`; each delivery's `webhook-id`.
    id: String,
    event_type: String,
    /// The body exactly as it is delivered.
    #[schema(value_type = Object)]
    payload: Box<serde_json::value::RawValue>,
    idempotency_key: Option<String>,
    ordering_key: Option<String>,
    /// Sent as a test (`…/endpoints/{endpoint}/test`), not by the application.
    test: bool,
    /// For a versioned webhook, the version of `payload`. An endpoint pinned to an older
    /// version receives it converted: its attempts' `herald-event-version` header says which.
    version: Option<String>,
    created_at: String,
}

/// A stored payload as JSON to answer with, byte for byte.
fn raw(payload: String, event: &str) -> Result<Box<serde_json::value::RawValue>, Problem> {
    serde_json::value::RawValue::from_string(payload).map_err(|e| {
        Problem::internal(&std::io::Error::other(format!(
            "stored payload of {event} is not JSON: {e}"
        )))
    })
}

impl LoggedEvent {
    fn new(event: Event) -> Result<LoggedEvent, Problem> {
        let payload = raw(event.payload, &event.id)?;
        Ok(LoggedEvent {
            id: event.id,
            event_type: event.event_type,
            payload,
            idempotency_key: event.idempotency_key,
            ordering_key: event.ordering_key,
            test: event.test,
            version: event.version,
            created_at: rfc3339(event.created_at),
        })
    }
}

/// Which events to list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventQuery {
    /// Only this webhook.
    event_type: Option<String>,
    /// Accepted at or after (RFC 3339).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Accepted before (RFC 3339).
    #[param(format = DateTime)]
    until: Option<String>,
}

/// List events
///
/// The tenant's events, newest first, filtered by type and time.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/events", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), EventQuery, Page),
    responses(
        (status = 200, description = "A page of events", body = Listed<LoggedEvent>),
        (status = 422, description = "A bad filter or paging", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_events(
    Scope { tenant, store, .. }: Scope,
    ApiQuery(query): ApiQuery<EventQuery>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<axum::Json<Listed<LoggedEvent>>, Problem> {
    let limit = page.limit()?;
    let filter = EventFilter {
        event_type: query.event_type,
        since: parse_time("since", query.since.as_deref())?,
        until: parse_time("until", query.until.as_deref())?,
    };
    let events = store
        .events(&tenant, &filter, page.after.as_deref(), limit + 1)
        .await?;
    Ok(axum::Json(page.of(events, |e| &e.id, LoggedEvent::new)?))
}

/// An event and where it went.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventDetail {
    #[serde(flatten)]
    event: LoggedEvent,
    deliveries: Vec<DeliveryOut>,
}

/// Get an event
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/events/{event}", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), ("event" = String, Path, description = "`evt_…`")),
    responses(
        (status = 200, description = "The event and its deliveries", body = EventDetail),
        (status = 404, description = "No such tenant or event", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_event(
    Scope { tenant, store, .. }: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<axum::Json<EventDetail>, Problem> {
    let event = store
        .event(&tenant, &id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no event `{id}` for tenant `{tenant}`")))?;
    let deliveries = store.deliveries_of_event(&tenant, &event.id).await?;
    Ok(axum::Json(EventDetail {
        event: LoggedEvent::new(event)?,
        deliveries: deliveries.into_iter().map(DeliveryOut::from).collect(),
    }))
}

/// One event for one endpoint.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeliveryOut {
    /// `dlv_…`.
    id: String,
    event_id: String,
    endpoint_id: String,
    event_type: String,
    /// Its event was sent as a test.
    test: bool,
    /// `pending` (waiting or in flight), `succeeded`, `dead` (no more tries) or `skipped`
    /// (not sent: its endpoint was disabled; enabling it with `deliver_skipped` sends it).
    #[schema(example = "succeeded")]
    state: String,
    /// Attempts made so far.
    attempt_count: u32,
    /// When it is next tried, while pending (RFC 3339).
    next_attempt_at: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<Delivery> for DeliveryOut {
    fn from(d: Delivery) -> Self {
        DeliveryOut {
            id: d.id,
            event_id: d.event_id,
            endpoint_id: d.endpoint_id,
            event_type: d.event_type,
            test: d.test,
            state: d.state.as_str().into(),
            attempt_count: d.attempts,
            next_attempt_at: d.next_attempt_at.map(rfc3339),
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
        }
    }
}

/// A delivery state, as a filter.
#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StateName {
    Pending,
    Succeeded,
    Dead,
    /// Not sent: the endpoint was disabled when the event came, or while it waited.
    Skipped,
}

impl StateName {
    fn state(self) -> DeliveryState {
        match self {
            StateName::Pending => DeliveryState::Pending,
            StateName::Succeeded => DeliveryState::Succeeded,
            StateName::Dead => DeliveryState::Dead,
            StateName::Skipped => DeliveryState::Skipped,
        }
    }
}

/// Which deliveries to list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveryQuery {
    /// To this endpoint (`ep_…`).
    endpoint: Option<String>,
    /// Of this event (`evt_…`).
    event: Option<String>,
    /// Of this webhook.
    event_type: Option<String>,
    /// `pending`, `succeeded` or `dead`.
    #[param(inline)]
    state: Option<StateName>,
    /// Created at or after (RFC 3339).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Created before (RFC 3339).
    #[param(format = DateTime)]
    until: Option<String>,
}

/// List deliveries
///
/// The tenant's deliveries, newest first, filtered by endpoint, event, type, state and time.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/deliveries", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), DeliveryQuery, Page),
    responses(
        (status = 200, description = "A page of deliveries", body = Listed<DeliveryOut>),
        (status = 422, description = "A bad filter or paging", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_deliveries(
    Scope { tenant, store, .. }: Scope,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<axum::Json<Listed<DeliveryOut>>, Problem> {
    let limit = page.limit()?;
    let filter = DeliveryFilter {
        endpoint_id: query.endpoint,
        event_id: query.event,
        event_type: query.event_type,
        state: query.state.map(StateName::state),
        since: parse_time("since", query.since.as_deref())?,
        until: parse_time("until", query.until.as_deref())?,
    };
    let deliveries = store
        .deliveries(&tenant, &filter, page.after.as_deref(), limit + 1)
        .await?;
    let page = page.of(deliveries, |d| &d.id, |d| Ok(DeliveryOut::from(d)))?;
    Ok(axum::Json(page))
}

/// One HTTP try: what was sent and what came back.
#[derive(Serialize, ToSchema)]
pub(crate) struct AttemptOut {
    /// 1 for the first try.
    number: u32,
    started_at: String,
    duration_ms: i64,
    /// The request: its headers (the body is the event's payload, byte for byte, or for a
    /// versioned webhook its conversion to the version in `herald-event-version`).
    request_headers: BTreeMap<String, String>,
    /// The response status, if one came.
    status_code: Option<u16>,
    response_headers: BTreeMap<String, String>,
    /// The start of the response body (a few KiB at most).
    response_excerpt: Option<String>,
    /// Why it failed without a status: timed out, refused, blocked target…
    error: Option<String>,
    /// A 2xx.
    succeeded: bool,
}

impl AttemptOut {
    pub(crate) fn new(number: u32, a: Attempt) -> AttemptOut {
        AttemptOut {
            number,
            started_at: rfc3339(a.started_at),
            duration_ms: a.duration_ms,
            request_headers: a.request_headers,
            succeeded: a.status_code.is_some_and(|s| (200..300).contains(&s)),
            status_code: a.status_code,
            response_headers: a.response_headers,
            response_excerpt: a.response_excerpt,
            error: a.error,
        }
    }
}

/// A delivery with its event and every attempt.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeliveryDetail {
    #[serde(flatten)]
    delivery: DeliveryOut,
    /// The event (its payload is the body of every attempt, unless `sent` says otherwise).
    event: LoggedEvent,
    /// Oldest first.
    attempts: Vec<AttemptOut>,
    /// For a versioned webhook whose latest attempt went in another version than the event's
    /// own (the endpoint pins an older one): that version and the body sent, byte for byte.
    #[serde(skip_serializing_if = "Option::is_none")]
    sent: Option<SentBody>,
}

/// The body of an attempt, when it is not the event's payload.
#[derive(Serialize, ToSchema)]
pub(crate) struct SentBody {
    /// Its version, as in the attempt's `herald-event-version` header.
    version: String,
    #[schema(value_type = Object)]
    payload: Box<serde_json::value::RawValue>,
}

/// Get a delivery
///
/// A delivery with the request each attempt sent and the response it got.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/deliveries/{delivery}", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), ("delivery" = String, Path, description = "`dlv_…`")),
    responses(
        (status = 200, description = "The delivery and its attempts", body = DeliveryDetail),
        (status = 404, description = "No such tenant or delivery", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_delivery(
    Scope { tenant, store, .. }: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<axum::Json<DeliveryDetail>, Problem> {
    let (delivery, event) = tenant_delivery(&*store, &tenant, &id).await?;
    let attempts = store.attempts(&tenant, &delivery.id).await?;
    // What the latest attempt sent, when it is a conversion of the event's payload.
    let version = attempts
        .last()
        .and_then(|a| a.request_headers.get(VERSION_HEADER))
        .filter(|v| event.version.as_ref() != Some(*v));
    let sent = match version {
        None => None,
        Some(version) => store
            .converted_payload(&tenant, &event.id, version)
            .await?
            .map(|payload| -> Result<SentBody, Problem> {
                Ok(SentBody {
                    version: version.clone(),
                    payload: raw(payload, &event.id)?,
                })
            })
            .transpose()?,
    };
    Ok(axum::Json(DeliveryDetail {
        delivery: delivery.into(),
        event: LoggedEvent::new(event)?,
        attempts: (1..)
            .zip(attempts)
            .map(|(n, a)| AttemptOut::new(n, a))
            .collect(),
        sent,
    }))
}

/// Retry a delivery
///
/// Makes the delivery due now, whatever its state: a dead one gets another try, a skipped
/// one is sent, a succeeded one is sent again (same `webhook-id`, so receivers can tell). Refused (409)
/// while an attempt of it is in flight, whose outcome would overwrite the retry.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/deliveries/{delivery}/retry", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), ("delivery" = String, Path, description = "`dlv_…`")),
    responses(
        (status = 202, description = "Due now", body = DeliveryOut),
        (status = 404, description = "No such tenant or delivery", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Its endpoint is disabled, or an attempt of it is in flight", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn retry_delivery(
    Scope { tenant, store, .. }: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<(StatusCode, axum::Json<DeliveryOut>), Problem> {
    let delivery = store
        .retry_delivery(&tenant, &id)
        .await?
        .ok_or_else(|| no_delivery(&tenant, &id))?;
    Ok((StatusCode::ACCEPTED, axum::Json(delivery.into())))
}

/// Which attempts to count.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatsQuery {
    /// Only this endpoint's attempts (`ep_…`).
    endpoint: Option<String>,
    /// How far back, in hours (1 to 168; 24 by default).
    #[param(minimum = 1, maximum = 168)]
    hours: Option<u32>,
}

/// One hour of attempts.
#[derive(Serialize, ToSchema)]
pub(crate) struct StatsBucket {
    /// The hour's start (RFC 3339).
    start: String,
    succeeded: u32,
    failed: u32,
    /// Mean attempt duration, in milliseconds.
    mean_ms: f64,
    /// Longest attempt, in milliseconds.
    max_ms: i64,
}

/// Attempts per hour; hours without attempts are included, as zeros.
#[derive(Serialize, ToSchema)]
pub(crate) struct Stats {
    hours: Vec<StatsBucket>,
}

/// Attempt figures
///
/// Successes, failures and latency per hour, for the dashboard's chart: counted as attempts are
/// recorded, and kept a week (`hours` goes back at most 168).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/stats", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), StatsQuery),
    responses(
        (status = 200, description = "One bucket per hour, oldest first", body = Stats),
        (status = 422, description = "`hours` out of range", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn stats(
    Scope { tenant, store, .. }: Scope,
    ApiQuery(query): ApiQuery<StatsQuery>,
) -> Result<axum::Json<Stats>, Problem> {
    const HOUR: i64 = 3_600_000;
    let hours = i64::from(in_range("hours", query.hours.unwrap_or(24), 1..=168)?);
    let first = (store.now() / HOUR - (hours - 1)) * HOUR;
    let mut found = store
        .attempt_stats(&tenant, query.endpoint.as_deref(), first)
        .await?
        .into_iter()
        .peekable();
    let mut buckets = Vec::new();
    for hour in 0..hours {
        let start = first + hour * HOUR;
        let bucket = match found.next_if(|s| s.start == start) {
            Some(s) => StatsBucket {
                start: rfc3339(start),
                succeeded: s.succeeded,
                failed: s.failed,
                mean_ms: s.mean_ms,
                max_ms: s.max_ms,
            },
            None => StatsBucket {
                start: rfc3339(start),
                succeeded: 0,
                failed: 0,
                mean_ms: 0.0,
                max_ms: 0,
            },
        };
        buckets.push(bucket);
    }
    Ok(axum::Json(Stats { hours: buckets }))
}

/// The tenant's delivery `id` with its event, or the 404 that also answers for another
/// tenant's.
async fn tenant_delivery(
    store: &dyn Store,
    tenant: &str,
    id: &str,
) -> Result<(Delivery, Event), Problem> {
    let delivery = store
        .delivery(tenant, id)
        .await?
        .ok_or_else(|| no_delivery(tenant, id))?;
    let event = store
        .event(tenant, &delivery.event_id)
        .await?
        .ok_or_else(|| no_delivery(tenant, id))?;
    Ok((delivery, event))
}

fn no_delivery(tenant: &str, id: &str) -> Problem {
    Problem::not_found(format!("no delivery `{id}` for tenant `{tenant}`"))
}
