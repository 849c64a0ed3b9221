//! Tenants: created by the admin, with ids the application chooses.

use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Listed, Page, in_range, rfc3339};
use crate::problem::{Problem, Violation};
use crate::state::{Admin, ApiJson, ApiQuery, AppState, CredentialScope, OptionalJson, Scope};
use crate::tenant::TenantId;

/// A tenant to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTenant {
    /// Your id for this customer: 1 to 64 letters, digits, `_`, `-` or `.`, not starting with
    /// `_` (those are herald's, such as `_operator`).
    #[schema(example = "acme", pattern = r"^[A-Za-z0-9.-][A-Za-z0-9_.-]{0,63}$")]
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
        (status = 409, description = "The id is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The id is not valid", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_tenant(
    Admin { store }: Admin,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<(StatusCode, axum::Json<TenantOut>), Problem> {
    let id = TenantId::new(body.id).map_err(|e| {
        Problem::invalid(
            "a tenant id is 1 to 64 letters, digits, `_`, `-` or `.`",
            vec![Violation {
                path: "/id".into(),
                message: e.to_string(),
            }],
        )
    })?;
    if crate::operational::is_reserved(id.as_str()) {
        return Err(Problem::invalid(
            "tenant ids starting with `_` are herald's own",
            vec![Violation {
                path: "/id".into(),
                message: format!(
                    "`{}` starts with `_`; `{}` receives operational webhooks for the whole \
                     installation",
                    id.as_str(),
                    herald_store::operational::OPERATOR
                ),
            }],
        ));
    }
    let tenant = store.create_tenant(id.as_str()).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(TenantOut {
            id: tenant.id,
            created_at: rfc3339(tenant.created_at),
        }),
    ))
}

/// List tenants
///
/// Every tenant, in id order (admin token only).
#[utoipa::path(get, path = "/api/v1/tenants", tag = "herald", security(("token" = [])),
    params(Page),
    responses(
        (status = 200, description = "A page of tenants", body = Listed<TenantOut>),
        (status = 403, description = "A tenant's token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad paging", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_tenants(
    Admin { store }: Admin,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<axum::Json<Listed<TenantOut>>, Problem> {
    let limit = page.limit()?;
    let tenants = store.tenants(page.after.as_deref(), limit + 1).await?;
    let page = page.of(
        tenants,
        |t| &t.id,
        |t| {
            Ok(TenantOut {
                id: t.id,
                created_at: rfc3339(t.created_at),
            })
        },
    )?;
    Ok(axum::Json(page))
}

/// How long a dashboard link opens the dashboard.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateLink {
    /// Seconds until the link stops working: 60 to 86400 (a day); 3600 by default.
    #[schema(minimum = 60, maximum = 86400)]
    #[serde(default, deserialize_with = "super::whole_number")]
    ttl_seconds: Option<u32>,
}

/// A link that opens one tenant's dashboard.
#[derive(Serialize, ToSchema)]
pub(crate) struct LinkOut {
    /// Give this to the tenant's user: it opens their dashboard until `expires_at`. The path
    /// is relative to this server (`/dashboard#link=…`, under the prefix herald is mounted at);
    /// the token is in the fragment, so it never reaches a server log or a `Referer`.
    url: String,
    /// The link's token, usable as a bearer token on this tenant's routes until it expires.
    token: String,
    expires_at: String,
}

/// Make a dashboard link
///
/// A signed, short-lived link that opens this tenant's dashboard, and only this tenant's:
/// hand it to your user (like a customer-portal link).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/dashboard-link", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id")),
    request_body(content = Option<CreateLink>, description = "Optional: how long it lasts"),
    responses(
        (status = 403, description = "A dashboard link: it cannot manage tokens or links", body = Problem, content_type = "application/problem+json"),
        (status = 201, description = "The link", body = LinkOut),
        (status = 422, description = "`ttl_seconds` out of range", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_link(
    State(state): State<AppState>,
    OriginalUri(called): OriginalUri,
    CredentialScope(Scope { tenant, store, .. }): CredentialScope,
    OptionalJson(body): OptionalJson<CreateLink>,
) -> Result<(StatusCode, axum::Json<LinkOut>), Problem> {
    let ttl = i64::from(in_range(
        "/ttl_seconds",
        body.ttl_seconds.unwrap_or(3600),
        60..=86_400,
    )?);
    let expires = store.now() / 1000 + ttl;
    let token = state.credentials.links.sign(&tenant, expires);
    Ok((
        StatusCode::CREATED,
        axum::Json(LinkOut {
            url: format!("{}/dashboard#link={token}", mounted_at(called.path())),
            token,
            expires_at: rfc3339(expires * 1000),
        }),
    ))
}

/// The prefix herald's routes are nested under, from the path this operation was called at
/// (`/herald/api/v1/tenants/acme/dashboard-link` → `/herald`).
fn mounted_at(path: &str) -> &str {
    path.strip_suffix("/dashboard-link")
        .and_then(|rest| rest.rsplit_once('/'))
        .and_then(|(rest, _tenant)| rest.strip_suffix("/api/v1/tenants"))
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_prefix_is_what_precedes_the_api() {
        let cases = [
            ("/api/v1/tenants/acme/dashboard-link", ""),
            ("/herald/api/v1/tenants/acme/dashboard-link", "/herald"),
            ("/odd", ""),
            ("/x/api/v1/tenants/api/dashboard-link", "/x"),
        ];
        for (path, prefix) in cases {
            assert_eq!(super::mounted_at(path), prefix, "{path}");
        }
    }
}
