//! The management API under `/api/v1`: tenants, endpoints, events.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_delivery::target::TargetPolicy;
use herald_delivery::worker::now_millis;
use herald_signature::Secret;
use herald_store::{NewEndpoint, NewEvent, Store};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::sync::Notify;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::event_types::EventTypes;
use crate::problem::{ApiJson, Problem, Violation};

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct ApiState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) event_types: Arc<EventTypes>,
    pub(crate) admin_token: Arc<str>,
    pub(crate) policy: Arc<TargetPolicy>,
    pub(crate) wake: Arc<Notify>,
}

/// The API's routes, documented, behind the admin token.
pub(crate) fn routes(state: ApiState) -> OpenApiRouter {
    documented()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_admin,
        ))
        .with_state(state)
}

fn documented() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(security())
        .routes(routes!(create_tenant))
        .routes(routes!(create_endpoint))
        .routes(routes!(create_event))
}

/// The API's part of the document, without serving anything.
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    documented().into_openapi()
}

/// Declares the bearer scheme every API operation requires.
fn security() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
    let mut doc = utoipa::openapi::OpenApi::default();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "admin_token",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("The admin token (`HERALD_ADMIN_TOKEN`)."))
                .build(),
        ),
    );
    doc
}

async fn require_admin(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        None => Problem::unauthorized("send `Authorization: Bearer <token>`").into_response(),
        Some(token) if bool::from(token.as_bytes().ct_eq(state.admin_token.as_bytes())) => {
            next.run(request).await
        }
        Some(_) => Problem::unauthorized("the token is not valid").into_response(),
    }
}

fn rfc3339(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    let nanos = u32::try_from(millis.rem_euclid(1000) * 1_000_000).unwrap_or(0);
    chrono::DateTime::from_timestamp(seconds, nanos)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A tenant to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateTenant {
    /// Your id for this customer: 1 to 64 letters, digits, `_`, `-` or `.`.
    #[schema(example = "acme")]
    id: String,
}

/// A tenant.
#[derive(Serialize, ToSchema)]
struct TenantOut {
    id: String,
    /// RFC 3339.
    created_at: String,
}

/// Create a tenant
///
/// A tenant is one of your users who receives webhooks; its id is yours to choose.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "herald", security(("admin_token" = [])), request_body = CreateTenant,
    responses(
        (status = 201, description = "Created", body = TenantOut),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The id is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id is not valid", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_tenant(
    State(state): State<ApiState>,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<(StatusCode, axum::Json<TenantOut>), Problem> {
    let valid = (1..=64).contains(&body.id.len())
        && body
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if !valid {
        return Err(Problem::invalid(
            "a tenant id is 1 to 64 letters, digits, `_`, `-` or `.`",
            vec![Violation {
                path: "/id".into(),
                message: format!("{:?} is not a valid tenant id", body.id),
            }],
        ));
    }
    let tenant = state.store.create_tenant(&body.id, now_millis()).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(TenantOut {
            id: tenant.id,
            created_at: rfc3339(tenant.created_at),
        }),
    ))
}

/// An endpoint to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateEndpoint {
    /// Where deliveries are sent: an absolute `http` or `https` URL.
    #[schema(example = "https://example.com/webhooks")]
    url: String,
    /// The event types to receive; omitted or empty means all.
    #[serde(default)]
    event_types: Vec<String>,
    /// Free text.
    #[serde(default)]
    description: String,
    /// Extra headers sent with every delivery.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Whether deliveries are made (default true).
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

/// A registered endpoint, with its signing secret.
#[derive(Serialize, ToSchema)]
struct EndpointOut {
    /// `ep_…`.
    id: String,
    url: String,
    event_types: Vec<String>,
    description: String,
    headers: BTreeMap<String, String>,
    enabled: bool,
    /// Verifies the `webhook-signature` of every delivery: `whsec_…`.
    secret: String,
    created_at: String,
}

/// Register an endpoint
///
/// Subscribes a URL of the tenant to event types. The answer carries the signing secret.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/endpoints", tag = "herald", security(("admin_token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id")),
    request_body = CreateEndpoint,
    responses(
        (status = 201, description = "Registered; the answer carries the signing secret", body = EndpointOut),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid URL or unknown event type", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_endpoint(
    State(state): State<ApiState>,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<CreateEndpoint>,
) -> Result<(StatusCode, axum::Json<EndpointOut>), Problem> {
    let mut violations = Vec::new();
    if let Err(message) = check_url(&body.url, &state.policy) {
        violations.push(Violation {
            path: "/url".into(),
            message,
        });
    }
    for (i, name) in body.event_types.iter().enumerate() {
        if !state.event_types.contains(name) {
            violations.push(Violation {
                path: format!("/event_types/{i}"),
                message: format!(
                    "unknown event type `{name}`; declared: {}",
                    state.event_types.names().join(", ")
                ),
            });
        }
    }
    for name in body.headers.keys() {
        if axum::http::HeaderName::try_from(name.as_str()).is_err()
            || name.to_ascii_lowercase().starts_with("webhook-")
        {
            violations.push(Violation {
                path: format!("/headers/{name}"),
                message: format!("`{name}` is not a header name herald can set"),
            });
        }
    }
    if !violations.is_empty() {
        return Err(Problem::invalid("the endpoint is not valid", violations));
    }
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
    };
    let endpoint = state
        .store
        .create_endpoint(new, now_millis())
        .await
        .map_err(|e| tenant_problem(e, &tenant))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(EndpointOut {
            id: endpoint.id,
            url: endpoint.url,
            event_types: endpoint.event_types,
            description: endpoint.description,
            headers: endpoint.headers,
            enabled: endpoint.enabled,
            secret,
            created_at: rfc3339(endpoint.created_at),
        }),
    ))
}

/// A store error while writing under `tenant`: a missing tenant is a 404 naming it.
fn tenant_problem(error: herald_store::Error, tenant: &str) -> Problem {
    if error.kind() == herald_store::ErrorKind::NotFound {
        Problem::not_found(format!("no tenant `{tenant}`"))
    } else {
        Problem::from(error)
    }
}

/// Where a URL may not point, said before any delivery is tried.
fn check_url(text: &str, policy: &TargetPolicy) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|e| format!("not an absolute URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "the scheme must be http or https, not `{}`",
            url.scheme()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL would be logged; use `headers` instead".into());
    }
    let ip = match url.host() {
        None => return Err("the URL has no host".into()),
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => None,
    };
    if let Some(ip) = ip {
        policy
            .check(ip)
            .map_err(|reason| format!("{ip} is {reason}; herald does not deliver there"))?;
    }
    if text.len() > 2048 {
        return Err("the URL is longer than 2048 characters".into());
    }
    Ok(())
}

/// An event to send.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateEvent {
    /// A declared webhook's name.
    #[schema(example = "new-subscription")]
    event_type: String,
    /// The body, which must match the webhook's schema. It is delivered exactly as sent here.
    #[schema(value_type = Object)]
    payload: Box<serde_json::value::RawValue>,
    /// Repeating a key returns the first event instead of storing a second.
    idempotency_key: Option<String>,
}

/// A stored event.
#[derive(Serialize, ToSchema)]
struct EventOut {
    /// `evt_…`; each delivery's `webhook-id`.
    id: String,
    event_type: String,
    created_at: String,
    /// How many endpoints it is being delivered to.
    deliveries: u32,
    /// True when the idempotency key matched an earlier event, which this is.
    duplicate: bool,
}

/// Send an event
///
/// Validates the payload against the webhook's schema, stores the event and one delivery per
/// subscribed endpoint, and answers once that is committed.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/events", tag = "herald", security(("admin_token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id")),
    request_body = CreateEvent,
    responses(
        (status = 202, description = "Stored; delivery follows", body = EventOut),
        (status = 401, description = "Missing or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown type, or the payload does not match its schema", body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_event(
    State(state): State<ApiState>,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<CreateEvent>,
) -> Result<(StatusCode, axum::Json<EventOut>), Problem> {
    if !state.event_types.contains(&body.event_type) {
        return Err(Problem::invalid(
            format!("unknown event type `{}`", body.event_type),
            vec![Violation {
                path: "/event_type".into(),
                message: format!("declared: {}", state.event_types.names().join(", ")),
            }],
        ));
    }
    // Validate a parsed copy; store and deliver the caller's own bytes (key order included).
    let parsed: serde_json::Value = serde_json::from_str(body.payload.get())
        .map_err(|e| Problem::invalid(format!("the payload is not JSON: {e}"), Vec::new()))?;
    let violations = state
        .event_types
        .violations(&body.event_type, &parsed, "/payload");
    if !violations.is_empty() {
        return Err(Problem::invalid(
            format!(
                "the payload does not match the schema of `{}`",
                body.event_type
            ),
            violations,
        ));
    }
    if body
        .idempotency_key
        .as_ref()
        .is_some_and(|k| k.is_empty() || k.len() > 255)
    {
        return Err(Problem::invalid(
            "an idempotency key is 1 to 255 characters",
            vec![Violation {
                path: "/idempotency_key".into(),
                message: "must be 1 to 255 characters".into(),
            }],
        ));
    }
    let new = NewEvent {
        tenant_id: tenant.clone(),
        event_type: body.event_type,
        payload: body.payload.get().to_owned(),
        idempotency_key: body.idempotency_key,
    };
    let accepted = state
        .store
        .accept_event(new, now_millis())
        .await
        .map_err(|e| tenant_problem(e, &tenant))?;
    if accepted.deliveries > 0 {
        state.wake.notify_one();
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(EventOut {
            id: accepted.event.id,
            event_type: accepted.event.event_type,
            created_at: rfc3339(accepted.event.created_at),
            deliveries: accepted.deliveries,
            duplicate: !accepted.created,
        }),
    ))
}
