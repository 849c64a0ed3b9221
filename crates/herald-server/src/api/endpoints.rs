//! Endpoints: the URLs a tenant subscribes to event types, and their signing secrets.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use herald_signature::Secret;
use herald_store::{Endpoint, EndpointPatch, NewEndpoint, NewEvent, Store};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::endpoint_fields as fields;
use super::log::AttemptOut;
use super::openapi::EventTypeName;
use super::{Listed, Page, in_range, rfc3339, tenant_problem};
use crate::problem::{Problem, Violation};
use crate::state::{ApiJson, ApiQuery, AppState, OptionalJson, Scope};

/// An endpoint to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateEndpoint {
    /// Where deliveries are sent (described by [`fields::endpoint_url`]).
    #[schema(schema_with = fields::endpoint_url)]
    url: String,
    /// The event types to receive; omitted or empty means all.
    #[serde(default)]
    #[schema(value_type = Vec<EventTypeName>)]
    event_types: Vec<String>,
    /// Free text.
    #[serde(default)]
    description: String,
    /// Extra headers sent with every delivery (described by [`fields::extra_headers`]).
    #[serde(default)]
    #[schema(schema_with = fields::extra_headers)]
    headers: BTreeMap<String, String>,
    /// Whether deliveries are made (default true).
    #[serde(default = "yes")]
    enabled: bool,
    /// At most this many deliveries a second (1 to 100000), across every herald process;
    /// omitted or null: no limit. A burst of a tenth of a second's worth (at least one) may go
    /// at once.
    #[serde(default, deserialize_with = "super::whole_number")]
    #[schema(minimum = 1, maximum = 100000)]
    rate_limit: Option<u32>,
}

fn yes() -> bool {
    true
}

/// A registered endpoint.
#[derive(Serialize, ToSchema)]
pub(crate) struct EndpointOut {
    /// `ep_…`.
    id: String,
    url: String,
    /// The event types it receives; empty means all.
    event_types: Vec<String>,
    description: String,
    headers: BTreeMap<String, String>,
    enabled: bool,
    /// Why it was disabled, when it is.
    disabled_reason: Option<String>,
    /// Since when every delivery to it has failed (RFC 3339), while that lasts.
    failing_since: Option<String>,
    /// At most this many deliveries a second; null: no limit.
    rate_limit: Option<u32>,
    /// Verifies the `webhook-signature` of every delivery: `whsec_…`. Only in the answer
    /// that creates the endpoint; later, read it from `…/secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    created_at: String,
}

impl EndpointOut {
    fn new(endpoint: Endpoint, secret: Option<String>) -> EndpointOut {
        EndpointOut {
            id: endpoint.id,
            url: endpoint.url,
            event_types: endpoint.event_types,
            description: endpoint.description,
            headers: endpoint.headers,
            enabled: endpoint.enabled,
            disabled_reason: endpoint.disabled_reason,
            failing_since: endpoint.failing_since.map(rfc3339),
            rate_limit: endpoint.rate_limit,
            secret,
            created_at: rfc3339(endpoint.created_at),
        }
    }
}

/// Register an endpoint
///
/// Subscribes a URL of the tenant to event types. The answer carries the signing secret.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/endpoints", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id")),
    request_body = CreateEndpoint,
    responses(
        (status = 201, description = "Registered; the answer carries the signing secret", body = EndpointOut),
        (status = 422, description = "Invalid URL or unknown event type", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_endpoint(
    State(state): State<AppState>,
    Scope { tenant, store, .. }: Scope,
    ApiJson(body): ApiJson<CreateEndpoint>,
) -> Result<(StatusCode, axum::Json<EndpointOut>), Problem> {
    fields::check_fields(
        &state,
        Some(&body.url),
        Some(&body.event_types),
        Some(&body.headers),
    )?;
    let secret = Secret::generate()
        .map_err(|e| Problem::internal(&e))?
        .expose();
    let new = NewEndpoint {
        tenant_id: tenant.clone(),
        url: body.url,
        description: body.description,
        event_types: body.event_types,
        headers: body.headers,
        secret: secret.clone(),
        enabled: body.enabled,
        rate_limit: body.rate_limit.map(fields::rate_limit).transpose()?,
    };
    let endpoint = store
        .create_endpoint(new)
        .await
        .map_err(|e| tenant_problem(e, &tenant))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(EndpointOut::new(endpoint, Some(secret))),
    ))
}

/// List endpoints
///
/// The tenant's endpoints, oldest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/endpoints", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), Page),
    responses(
        (status = 200, description = "A page of endpoints", body = Listed<EndpointOut>),
        (status = 422, description = "Bad paging", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_endpoints(
    Scope { tenant, store, .. }: Scope,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<axum::Json<Listed<EndpointOut>>, Problem> {
    let limit = page.limit()?;
    // One more than asked tells whether another page follows.
    let endpoints = store
        .endpoints(&tenant, page.after.as_deref(), limit + 1)
        .await?;
    let page = page.of(endpoints, |e| &e.id, |e| Ok(EndpointOut::new(e, None)))?;
    Ok(axum::Json(page))
}

async fn found(store: &dyn Store, tenant: &str, id: &str) -> Result<Endpoint, Problem> {
    store
        .endpoint(tenant, id)
        .await?
        .ok_or_else(|| no_endpoint(tenant, id))
}

/// Get an endpoint
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), ("endpoint" = String, Path, description = "`ep_…`")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointOut),
        (status = 404, description = "No such tenant or endpoint", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_endpoint(
    Scope { tenant, store, .. }: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<axum::Json<EndpointOut>, Problem> {
    Ok(axum::Json(EndpointOut::new(
        found(&*store, &tenant, &id).await?,
        None,
    )))
}

/// Changes to an endpoint; what is left out stays as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateEndpoint {
    #[schema(schema_with = fields::endpoint_url_or_null)]
    url: Option<String>,
    /// Empty means all.
    #[schema(value_type = Option<Vec<EventTypeName>>)]
    event_types: Option<Vec<String>>,
    description: Option<String>,
    /// Replaces every extra header.
    #[schema(schema_with = fields::extra_headers_or_null)]
    headers: Option<BTreeMap<String, String>>,
    /// False stops deliveries (pending ones end); true resumes them and clears the reason.
    enabled: Option<bool>,
    /// At most this many deliveries a second (1 to 100000); null removes the limit.
    #[serde(default, deserialize_with = "super::whole_number_or_null")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 100000)]
    rate_limit: Option<Option<u32>>,
}

/// Update an endpoint
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), ("endpoint" = String, Path, description = "`ep_…`")),
    request_body = UpdateEndpoint,
    responses(
        (status = 200, description = "The endpoint as it now is", body = EndpointOut),
        (status = 404, description = "No such tenant or endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid URL, unknown event type or bad header", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn update_endpoint(
    State(state): State<AppState>,
    Scope { tenant, store, .. }: Scope,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<UpdateEndpoint>,
) -> Result<axum::Json<EndpointOut>, Problem> {
    fields::check_fields(
        &state,
        body.url.as_ref(),
        body.event_types.as_ref(),
        body.headers.as_ref(),
    )?;
    let rate_limit = match body.rate_limit {
        Some(Some(limit)) => Some(Some(fields::rate_limit(limit)?)),
        other => other,
    };
    let patch = EndpointPatch {
        url: body.url,
        description: body.description,
        event_types: body.event_types,
        headers: body.headers,
        enabled: body.enabled,
        rate_limit,
    };
    let endpoint = store
        .update_endpoint(&tenant, &id, patch)
        .await?
        .ok_or_else(|| no_endpoint(&tenant, &id))?;
    Ok(axum::Json(EndpointOut::new(endpoint, None)))
}

/// Delete an endpoint
///
/// Its deliveries and their attempts go with it.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), ("endpoint" = String, Path, description = "`ep_…`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such tenant or endpoint", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn delete_endpoint(
    Scope { tenant, store, .. }: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    if store.delete_endpoint(&tenant, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(no_endpoint(&tenant, &id))
    }
}

/// An endpoint's signing secrets.
#[derive(Serialize, ToSchema)]
pub(crate) struct SecretOut {
    /// The newest secret, `whsec_…`: verify with it.
    secret: String,
    /// Secrets rotated out that still sign every delivery beside it until they expire.
    previous: Vec<PreviousSecret>,
}

/// A rotated-out secret that still signs.
#[derive(Serialize, ToSchema)]
pub(crate) struct PreviousSecret {
    secret: String,
    /// RFC 3339.
    expires_at: Option<String>,
}

async fn secret_out(store: &dyn Store, tenant: &str, id: &str) -> Result<SecretOut, Problem> {
    let mut secrets = store
        .secrets(tenant, id)
        .await?
        .ok_or_else(|| no_endpoint(tenant, id))?
        .into_iter();
    let newest = secrets.next().ok_or_else(|| {
        Problem::internal(&std::io::Error::other(format!(
            "endpoint {id} has no secret"
        )))
    })?;
    Ok(SecretOut {
        secret: newest.secret,
        previous: secrets
            .map(|s| PreviousSecret {
                secret: s.secret,
                expires_at: s.expires_at.map(rfc3339),
            })
            .collect(),
    })
}

/// Read an endpoint's signing secret
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}/secret", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), ("endpoint" = String, Path, description = "`ep_…`")),
    responses(
        (status = 200, description = "The secrets that sign now", body = SecretOut),
        (status = 404, description = "No such tenant or endpoint", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_secret(
    Scope { tenant, store, .. }: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<axum::Json<SecretOut>, Problem> {
    Ok(axum::Json(secret_out(&*store, &tenant, &id).await?))
}

/// How to rotate.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rotate {
    /// How long the old secret keeps signing beside the new one, in seconds (0 to 604800;
    /// 86400 by default), so receivers can switch without missing a delivery.
    #[schema(minimum = 0, maximum = 604800)]
    #[serde(default, deserialize_with = "super::whole_number")]
    keep_old_seconds: Option<u32>,
}

/// Rotate an endpoint's signing secret
///
/// Makes a new secret; the old one keeps signing beside it for a while (24 hours unless told).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}/secret/rotate", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), ("endpoint" = String, Path, description = "`ep_…`")),
    request_body(content = Option<Rotate>, description = "Optional: how long the old secret keeps signing"),
    responses(
        (status = 200, description = "The new secret, and the old ones still signing", body = SecretOut),
        (status = 404, description = "No such tenant or endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `keep_old_seconds`", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn rotate_secret(
    Scope { tenant, store, .. }: Scope,
    Path((_, id)): Path<(String, String)>,
    OptionalJson(rotate): OptionalJson<Rotate>,
) -> Result<axum::Json<SecretOut>, Problem> {
    // A day by default, a week at most.
    let keep = in_range(
        "/keep_old_seconds",
        rotate.keep_old_seconds.unwrap_or(86_400),
        0..=604_800,
    )?;
    let secret = Secret::generate()
        .map_err(|e| Problem::internal(&e))?
        .expose();
    let rotated = store
        .rotate_secret(&tenant, &id, &secret, Duration::from_secs(keep.into()))
        .await?;
    if !rotated {
        return Err(no_endpoint(&tenant, &id));
    }
    Ok(axum::Json(secret_out(&*store, &tenant, &id).await?))
}

/// The answer for an endpoint that is not the tenant's (or not at all).
fn no_endpoint(tenant: &str, id: &str) -> Problem {
    Problem::not_found(format!("no endpoint `{id}` for tenant `{tenant}`"))
}

/// Which test event to send.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestEvent {
    /// The type whose example payload is sent; by default the first the endpoint receives.
    #[schema(value_type = Option<EventTypeName>)]
    event_type: Option<String>,
}

/// What came of a test event.
#[derive(Serialize, ToSchema)]
pub(crate) struct TestResult {
    event_id: String,
    delivery_id: String,
    event_type: String,
    /// The first attempt, once made (absent if it had not finished in time; the delivery
    /// carries on, and its result shows in the log).
    attempt: Option<AttemptOut>,
}

/// How long sending a test event waits for its first attempt before it answers without one.
const TEST_WAIT: Duration = Duration::from_secs(5);

/// Send a test event
///
/// Stores an event of the type's example payload for this endpoint only, waits for its
/// first attempt (at most 5 s) and answers with what happened (`attempt` is null if it has
/// not happened by then). It is an ordinary delivery: logged, and retried if it fails. An
/// endpoint whose circuit is open gets a probe at once.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}/test", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), ("endpoint" = String, Path, description = "`ep_…`")),
    request_body(content = Option<TestEvent>, description = "Optional: which type to send"),
    responses(
        (status = 200, description = "Sent; the first attempt's result", body = TestResult),
        (status = 404, description = "No such tenant or endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint is disabled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown event type", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn send_test(
    State(state): State<AppState>,
    Scope { tenant, store, .. }: Scope,
    Path((_, id)): Path<(String, String)>,
    OptionalJson(body): OptionalJson<TestEvent>,
) -> Result<axum::Json<TestResult>, Problem> {
    // The body is optional: none means the default type.
    let endpoint = found(&*store, &tenant, &id).await?;
    if !endpoint.enabled {
        return Err(Problem::conflict(format!(
            "endpoint `{id}` is disabled: enable it first"
        )));
    }
    let wanted = body.event_type;
    let catalogue = state.event_types.catalogue();
    let event_type = match &wanted {
        Some(name) => state.event_types.get(name),
        None => endpoint
            .event_types
            .iter()
            .find_map(|name| state.event_types.get(name))
            .or_else(|| catalogue.first()),
    }
    .ok_or_else(|| {
        Problem::invalid(
            "unknown event type",
            vec![Violation {
                path: "/event_type".into(),
                message: format!(
                    "{} is not declared",
                    wanted.as_deref().unwrap_or("(none declared)")
                ),
            }],
        )
    })?;
    let new = NewEvent::new(&tenant, &event_type.name, &event_type.example.to_string());
    let (event, delivery) = store
        .accept_test_event(new, &id)
        .await?
        .ok_or_else(|| no_endpoint(&tenant, &id))?;

    // The worker makes the attempt; wait for it to be recorded, a little longer than a
    // request can take but no longer than clients wait for an answer (it may be queued
    // behind the endpoint's backlog, or be the probe of an open circuit).
    let wait = (state.attempt_timeout + Duration::from_secs(2)).min(TEST_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(5);
    let attempt = loop {
        if let Some(first) = store.attempts(&tenant, &delivery).await?.into_iter().next() {
            break Some(AttemptOut::new(1, first));
        }
        if tokio::time::Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    };
    Ok(axum::Json(TestResult {
        event_id: event.id,
        delivery_id: delivery,
        event_type: event.event_type,
        attempt,
    }))
}
