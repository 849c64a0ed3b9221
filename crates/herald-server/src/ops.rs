//! What operators and orchestrators ask: is the process up (`/health`), can it serve
//! (`/ready`: the database answers), and what is it doing (`/metrics`, admin token).

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::authenticate;
use crate::problem::Problem;
use crate::state::{Admin, AppState};

/// `/health` and `/ready` open to anyone (they say nothing about tenants); `/metrics` behind
/// the admin token, since its labels name tenants and endpoints.
pub(crate) fn routes(state: AppState) -> OpenApiRouter {
    let metrics =
        OpenApiRouter::new()
            .routes(routes!(metrics))
            .layer(axum::middleware::from_fn_with_state(
                state.credentials.clone(),
                authenticate,
            ));
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .merge(metrics)
        .with_state(state)
}

/// What [`routes`] documents, without serving anything.
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    OpenApiRouter::<AppState>::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .into_openapi()
}

/// A probe's answer.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Status {
    /// `ok`.
    #[schema(example = "ok")]
    status: &'static str,
}

/// Liveness
///
/// The process is up and answering HTTP.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Up", body = Status)))]
pub(crate) async fn health() -> axum::Json<Status> {
    axum::Json(Status { status: "ok" })
}

/// How long `/ready` waits for the database: load balancers give up after a few seconds.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_millis(1500);

/// Readiness
///
/// The database answers, so events can be accepted and deliveries made.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Status),
        (status = 503, description = "The database does not answer", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn ready(State(state): State<AppState>) -> Result<axum::Json<Status>, Problem> {
    let answered = tokio::time::timeout(READY_WITHIN, state.upkeep().ping()).await;
    match answered.unwrap_or_else(|_| Err(herald_store::Error::unavailable("no answer in time"))) {
        Ok(()) => Ok(axum::Json(Status { status: "ok" })),
        Err(error) => {
            tracing::warn!(%error, "not ready: the database does not answer");
            Err(Problem::unavailable(
                "the database does not answer; the cause is in herald's log",
            ))
        }
    }
}

/// Prometheus metrics
///
/// Events accepted and attempts made by this process (by outcome, with a latency histogram),
/// and, read from the database, the queue (pending, due, age of the oldest due) and each
/// failing endpoint's failure streak.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("token" = [])),
    responses(
        (status = 200, description = "OpenMetrics text (Prometheus reads it)", body = String, content_type = "application/openmetrics-text"),
        (status = 401, description = "Missing, unknown or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A tenant token", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn metrics(
    State(state): State<AppState>,
    _: Admin,
) -> Result<impl IntoResponse, Problem> {
    let now = state.clock().now();
    let queue = state.upkeep().queue_figures().await?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(&queue, now),
    ))
}
