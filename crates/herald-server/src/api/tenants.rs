//! Tenants: created by the admin, with ids the application chooses.

use axum::extract::State;
use axum::http::StatusCode;
use herald_delivery::worker::now_millis;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiState, rfc3339};
use crate::auth::Principal;
use crate::problem::{ApiJson, Problem, Violation};

/// A tenant to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTenant {
    /// Your id for this customer: 1 to 64 letters, digits, `_`, `-` or `.`.
    #[schema(example = "acme")]
    id: String,
}

/// A tenant.
#[derive(Serialize, ToSchema)]
pub(crate) struct TenantOut {
    id: String,
    /// RFC 3339.
    created_at: String,
}

/// Create a tenant
///
/// A tenant is one of your users who receives webhooks; its id is yours to choose.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "herald", security(("token" = [])), request_body = CreateTenant,
    responses(
        (status = 201, description = "Created", body = TenantOut),
        (status = 401, description = "Missing, unknown or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The id is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id is not valid", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_tenant(
    State(state): State<ApiState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<(StatusCode, axum::Json<TenantOut>), Problem> {
    principal.admin()?;
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
