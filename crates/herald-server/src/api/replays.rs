//! Replays: every event of a tenant since a time, sent again to one endpoint.

use axum::extract::Path;
use axum::http::StatusCode;
use herald_store::Replay;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{parse_time, rfc3339};
use crate::problem::Problem;
use crate::state::{ApiJson, Scope};

/// What to replay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateReplay {
    /// Every event accepted at or after this time (RFC 3339), of the types the endpoint
    /// receives, is delivered to it again.
    #[schema(example = "2026-11-22T00:00:00Z", format = DateTime)]
    since: String,
}

/// A replay job and its progress.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReplayOut {
    /// `rpl_…`.
    id: String,
    endpoint_id: String,
    since: String,
    /// `running`, `finished`, or `stopped` (its endpoint was disabled before every event had
    /// its delivery; `done` says how far it got).
    #[schema(example = "running")]
    state: String,
    /// Events it covers (counted when it started).
    total: u32,
    /// Events gone through so far: sent again, or passed over because the endpoint's
    /// channels or filter do not take them.
    done: u32,
    created_at: String,
    updated_at: String,
}

impl From<Replay> for ReplayOut {
    fn from(r: Replay) -> Self {
        ReplayOut {
            id: r.id,
            endpoint_id: r.endpoint_id,
            since: rfc3339(r.since),
            state: r.state.as_str().into(),
            total: r.total,
            done: r.done,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

/// Replay events to an endpoint
///
/// Starts a background job that gives every event since `since` (until the job is made) a
/// new delivery to this endpoint. Poll the job for progress. It finishes no sooner than 5 s
/// after it was made, so events accepted just before it whose commit lands after it are
/// included too.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}/replay", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), ("endpoint" = String, Path, description = "`ep_…`")),
    request_body = CreateReplay,
    responses(
        (status = 202, description = "Started", body = ReplayOut),
        (status = 404, description = "No such tenant or endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint is disabled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`since` is not an RFC 3339 time", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_replay(
    Scope { tenant, store, .. }: Scope,
    Path((_, endpoint)): Path<(String, String)>,
    ApiJson(body): ApiJson<CreateReplay>,
) -> Result<(StatusCode, axum::Json<ReplayOut>), Problem> {
    let since = parse_time("/since", Some(&body.since))?.unwrap_or_default();
    let replay = store
        .create_replay(&tenant, &endpoint, since)
        .await?
        .ok_or_else(|| {
            Problem::not_found(format!("no endpoint `{endpoint}` for tenant `{tenant}`"))
        })?;
    if replay.state == herald_store::ReplayState::Running {
        crate::replay::spawn(std::sync::Arc::clone(&store), replay.id.clone());
    }
    Ok((StatusCode::ACCEPTED, axum::Json(replay.into())))
}

/// Get a replay
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/replays/{replay}", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), ("replay" = String, Path, description = "`rpl_…`")),
    responses(
        (status = 200, description = "The job and its progress", body = ReplayOut),
        (status = 404, description = "No such tenant or replay", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_replay(
    Scope { tenant, store, .. }: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<axum::Json<ReplayOut>, Problem> {
    store
        .replay(&tenant, &id)
        .await?
        .map(|r| axum::Json(r.into()))
        .ok_or_else(|| Problem::not_found(format!("no replay `{id}` for tenant `{tenant}`")))
}
