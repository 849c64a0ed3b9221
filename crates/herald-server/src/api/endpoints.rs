//! Endpoints: the URLs a tenant subscribes to event types.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use herald_signature::Signer;
use herald_store::{
    Endpoint, EndpointPatch, NewEndpoint, NewEvent, Signature, SignatureChange, Store,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::endpoint_fields as fields;
use super::log::AttemptOut;
use super::openapi::EventTypeName;
use super::signing::{self, SignatureName};
use super::{Listed, Page, rfc3339, tenant_problem};
use crate::problem::{Problem, Violation};
use crate::state::{ApiJson, ApiQuery, AppState, OptionalJson, Scope};

/// An endpoint to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateEndpoint {
    /// Where deliveries are sent (described by [`fields::endpoint_url`]).
    #[schema(schema_with = fields::endpoint_url)]
    url: String,
    /// The event types to receive, each once; omitted or empty means all.
    #[serde(default)]
    #[schema(value_type = BTreeSet<EventTypeName>)]
    event_types: Vec<String>,
    /// Free text, at most 1024 characters.
    #[serde(default)]
    #[schema(max_length = 1024)] // fields::MAX_DESCRIPTION (an attribute takes a literal)
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
    /// How deliveries are signed; `hmac` unless told.
    #[serde(default)]
    signature: SignatureName,
    /// The version to pin (a date): of each versioned webhook, the endpoint receives the
    /// newest version on or before it. Default: the newest version declared today, so a new
    /// version declared later does not change what it receives until it is moved.
    #[schema(example = "2026-12-01")]
    version: Option<String>,
    /// Channels to receive: only events carrying one of them are delivered. Omitted or
    /// empty: every event of its types, with channels or without.
    #[serde(default)]
    #[schema(schema_with = fields::channels)]
    channels: Vec<String>,
    #[schema(schema_with = fields::filter)]
    filter: Option<serde_json::Value>,
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
    /// While its circuit is open because it kept failing: no attempt but a single probe
    /// before this time (RFC 3339).
    circuit_open_until: Option<String>,
    /// At most this many deliveries a second; null: no limit.
    rate_limit: Option<u32>,
    /// How deliveries are signed.
    signature: SignatureName,
    /// The version it pins; null: always the newest (an endpoint made before any webhook
    /// declared versions).
    version: Option<String>,
    /// The channels it receives; empty: every event of its types.
    channels: Vec<String>,
    /// Its payload filter; null: none.
    #[schema(value_type = Option<Object>)]
    filter: Option<serde_json::Value>,
    /// Verifies the `v1` signatures of every delivery: `whsec_…`. Only in the answer that
    /// creates an endpoint signed with HMAC; later, read it from `…/secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    /// Verifies the `v1a` signatures of every delivery: `whpk_…`. Only in the answer that
    /// creates an endpoint signed with Ed25519; later, read it from `…/keys` or the tenant's
    /// JWKS document.
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key: Option<String>,
    created_at: String,
}

impl EndpointOut {
    fn new(endpoint: Endpoint, first: Option<FirstKeys>) -> EndpointOut {
        let first = first.unwrap_or_default();
        EndpointOut {
            id: endpoint.id,
            url: endpoint.url,
            event_types: endpoint.event_types,
            description: endpoint.description,
            headers: endpoint.headers,
            enabled: endpoint.enabled,
            disabled_reason: endpoint.disabled_reason,
            failing_since: endpoint.failing_since.map(rfc3339),
            circuit_open_until: endpoint.circuit_open_until.map(rfc3339),
            rate_limit: endpoint.rate_limit,
            signature: endpoint.signature.into(),
            version: endpoint.version,
            channels: endpoint.channels,
            filter: endpoint
                .filter
                .and_then(|text| serde_json::from_str(&text).ok()),
            secret: first.secret,
            public_key: first.public_key,
            created_at: rfc3339(endpoint.created_at),
        }
    }
}

/// What verifies a new endpoint's deliveries, shown once in the answer that creates it.
#[derive(Default)]
struct FirstKeys {
    secret: Option<String>,
    public_key: Option<String>,
}

impl FirstKeys {
    fn of(keys: &[String]) -> FirstKeys {
        let mut first = FirstKeys::default();
        for key in keys {
            match key.parse() {
                Ok(Signer::Hmac(_)) => first.secret = Some(key.clone()),
                Ok(Signer::Ed25519(key)) => first.public_key = Some(key.public_key().expose()),
                Err(_) => {}
            }
        }
        first
    }
}

/// Register an endpoint
///
/// Subscribes a URL of the tenant to event types. The answer carries what verifies its
/// deliveries: the secret (HMAC), the public key (Ed25519), or both.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/endpoints", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id")),
    request_body = CreateEndpoint,
    responses(
        (status = 201, description = "Registered; the answer carries the secret or public key", body = EndpointOut),
        (status = 409, description = "The tenant has as many endpoints as a tenant may (`tenants.max_endpoints`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid URL or unknown event type", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_endpoint(
    State(state): State<AppState>,
    Scope { tenant, store, .. }: Scope,
    ApiJson(body): ApiJson<CreateEndpoint>,
) -> Result<(StatusCode, axum::Json<EndpointOut>), Problem> {
    fields::check_fields(
        &state,
        fields::Fields {
            url: Some(&body.url),
            event_types: Some(&body.event_types),
            headers: Some(&body.headers),
            description: Some(&body.description),
        },
    )?;
    let filter = fields::channels_and_filter(
        &state,
        &body.channels,
        body.filter.as_ref(),
        &body.event_types,
    )?;
    let signature = Signature::from(body.signature);
    let keys = signing::fresh_keys(signature)?;
    let first = FirstKeys::of(&keys);
    let new = NewEndpoint {
        tenant_id: tenant.clone(),
        url: body.url,
        description: body.description,
        event_types: body.event_types,
        headers: body.headers,
        signature,
        keys,
        enabled: body.enabled,
        rate_limit: body.rate_limit.map(fields::rate_limit).transpose()?,
        version: match &body.version {
            Some(version) => Some(fields::version(&state, version)?),
            None => state.event_types.pins().last().map(|v| (*v).to_owned()),
        },
        channels: body.channels,
        filter,
    };
    let endpoint = store
        .create_endpoint(new)
        .await
        .map_err(|e| tenant_problem(e, &tenant))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(EndpointOut::new(endpoint, Some(first))),
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
    /// Each once; empty means all.
    #[schema(value_type = Option<BTreeSet<EventTypeName>>)]
    event_types: Option<Vec<String>>,
    /// At most 1024 characters.
    #[schema(max_length = 1024)] // fields::MAX_DESCRIPTION (an attribute takes a literal)
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
    /// How deliveries are signed from now on. A way newly used gets a key (read the secret
    /// from `…/secret`, public keys from `…/keys`); keys of a way no longer used stop signing
    /// at once, so move a receiver through `both`.
    signature: Option<SignatureName>,
    /// A version to pin instead (one a webhook declares): events accepted from now on are
    /// sent in it; a retry or a replay sends the newest the event carries on or before it.
    #[schema(example = "2026-12-01")]
    version: Option<String>,
    /// With `enabled: true` (or on an enabled endpoint): also send, now and in the order their
    /// events were accepted, the deliveries skipped while it was disabled. Default false:
    /// they stay in the log as `skipped`.
    #[serde(default)]
    deliver_skipped: bool,
    /// New channels to receive; empty: every event of its types.
    #[schema(schema_with = fields::channels_or_null)]
    channels: Option<Vec<String>>,
    /// A new payload filter; null removes it. Also checked again when `event_types` changes.
    #[serde(default, deserialize_with = "fields::present")]
    #[schema(schema_with = fields::filter)]
    filter: Option<Option<serde_json::Value>>,
}

/// Update an endpoint
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), ("endpoint" = String, Path, description = "`ep_…`")),
    request_body = UpdateEndpoint,
    responses(
        (status = 200, description = "The endpoint as it now is", body = EndpointOut),
        (status = 404, description = "No such tenant or endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`deliver_skipped` for an endpoint that stays disabled", body = Problem, content_type = "application/problem+json"),
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
        fields::Fields {
            url: body.url.as_ref(),
            event_types: body.event_types.as_ref(),
            headers: body.headers.as_ref(),
            description: body.description.as_ref(),
        },
    )?;
    let rate_limit = match body.rate_limit {
        Some(Some(limit)) => Some(Some(fields::rate_limit(limit)?)),
        other => other,
    };
    // A filter is checked against the types the endpoint will receive: a new one, or the one
    // it has when its types change.
    let filter = match (body.filter, &body.event_types) {
        (Some(None), _) => Some(None),
        (Some(Some(filter)), types) => {
            let types = match types {
                Some(types) => types.clone(),
                None => found(&*store, &tenant, &id).await?.event_types,
            };
            let checked = fields::channels_and_filter(&state, &[], Some(&filter), &types)?;
            Some(checked)
        }
        (None, Some(types)) => {
            let current = found(&*store, &tenant, &id).await?.filter;
            if let Some(current) = current.and_then(|t| serde_json::from_str(&t).ok()) {
                fields::channels_and_filter(&state, &[], Some(&current), types)?;
            }
            None
        }
        (None, None) => None,
    };
    if let Some(channels) = &body.channels {
        fields::channels_and_filter(&state, channels, None, &[])?;
    }
    if body.deliver_skipped {
        // Skipped deliveries go only to an endpoint that takes them: say so rather than keep
        // them back without a word.
        let enabled = match body.enabled {
            Some(enabled) => enabled,
            None => found(&*store, &tenant, &id).await?.enabled,
        };
        if !enabled {
            return Err(Problem::conflict(format!(
                "endpoint `{id}` stays disabled, so nothing skipped can be sent: add \
                 \"enabled\": true"
            )));
        }
    }
    let patch = EndpointPatch {
        url: body.url,
        description: body.description,
        event_types: body.event_types,
        headers: body.headers,
        enabled: body.enabled,
        rate_limit,
        signature: body
            .signature
            .map(|name| {
                let signature = Signature::from(name);
                signing::fresh_keys(signature).map(|fresh_keys| SignatureChange {
                    signature,
                    fresh_keys,
                })
            })
            .transpose()?,
        version: body
            .version
            .map(|v| fields::version(&state, &v))
            .transpose()?,
        deliver_skipped: body.deliver_skipped,
        channels: body.channels,
        filter,
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

/// The answer for an endpoint that is not the tenant's (or not at all).
pub(super) fn no_endpoint(tenant: &str, id: &str) -> Problem {
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
            .or_else(|| catalogue.iter().find(|t| !t.operational)),
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
    let mut new = NewEvent::new(&tenant, &event_type.name, &event_type.example.to_string());
    // A versioned type: the example of the version the endpoint receives.
    let declared: Vec<&str> = event_type
        .versions
        .iter()
        .map(|v| v.version.as_str())
        .collect();
    if let Some(version) = herald_store::resolve(&declared, endpoint.version.as_deref()) {
        let example = event_type.versions.iter().find(|v| v.version == version);
        if let Some(example) = example {
            new.payload = example.example.to_string();
        }
        new.versions = Some(herald_store::Versions {
            declared: declared.iter().map(|v| (*v).to_owned()).collect(),
            version: version.to_owned(),
            converted: BTreeMap::new(),
        });
    }
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
