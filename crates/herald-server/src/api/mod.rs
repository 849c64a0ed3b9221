//! The management API under `/api/v1`: tenants, endpoints, events.

use std::sync::Arc;

use herald_delivery::target::TargetPolicy;
use tokio::sync::Notify;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Credentials, authenticate};
use crate::event_types::EventTypes;
use crate::problem::Problem;

mod endpoints;
mod events;
mod tenants;
mod tokens;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct ApiState {
    pub(crate) store: Arc<dyn herald_store::Store>,
    pub(crate) event_types: Arc<EventTypes>,
    pub(crate) credentials: Credentials,
    pub(crate) policy: Arc<TargetPolicy>,
    pub(crate) wake: Arc<Notify>,
}

/// The API's routes, documented, each behind a bearer token.
pub(crate) fn routes(state: ApiState) -> OpenApiRouter {
    documented()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
        .with_state(state)
}

fn documented() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(security())
        .routes(routes!(tenants::create_tenant))
        .routes(routes!(tokens::create_token, tokens::list_tokens))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(
            endpoints::create_endpoint,
            endpoints::list_endpoints
        ))
        .routes(routes!(
            endpoints::get_endpoint,
            endpoints::update_endpoint,
            endpoints::delete_endpoint
        ))
        .routes(routes!(endpoints::get_secret))
        .routes(routes!(endpoints::rotate_secret))
        .routes(routes!(events::create_event))
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
        "token",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The admin token (`HERALD_ADMIN_TOKEN`, or the one printed at first start), \
                     which reaches everything, or a tenant's API token (`hrld_…`), which \
                     reaches only that tenant: another tenant's objects answer 404.",
                ))
                .build(),
        ),
    );
    doc
}

pub(crate) fn rfc3339(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    let nanos = u32::try_from(millis.rem_euclid(1000) * 1_000_000).unwrap_or(0);
    chrono::DateTime::from_timestamp(seconds, nanos)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A store error while writing under `tenant`: a missing tenant is a 404 naming it.
pub(crate) fn tenant_problem(error: herald_store::Error, tenant: &str) -> Problem {
    if error.kind() == herald_store::ErrorKind::NotFound {
        Problem::not_found(format!("no tenant `{tenant}`"))
    } else {
        Problem::from(error)
    }
}
