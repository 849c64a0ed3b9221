//! A tenant's API tokens: made by the admin or the tenant itself, listed by prefix, revoked.

use axum::extract::Path;
use axum::http::StatusCode;
use herald_store::Token;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{rfc3339, tenant_problem};
use crate::auth::new_token;
use crate::problem::{Problem, Violation};
use crate::state::{ApiJson, CredentialScope, Scope};

/// A token to make.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateToken {
    /// What it is for (1 to 100 characters), shown in lists.
    #[schema(example = "billing service", min_length = 1, max_length = 100)]
    name: String,
}

/// A token, as listed: never the token itself.
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenOut {
    /// `tok_…`.
    id: String,
    name: String,
    /// The token's first characters.
    prefix: String,
    created_at: String,
    /// When it was revoked; it opens nothing since.
    revoked_at: Option<String>,
}

impl From<Token> for TokenOut {
    fn from(token: Token) -> TokenOut {
        TokenOut {
            id: token.id,
            name: token.name,
            prefix: token.prefix,
            created_at: rfc3339(token.created_at),
            revoked_at: token.revoked_at.map(rfc3339),
        }
    }
}

/// A token just made: the only time it is shown.
#[derive(Serialize, ToSchema)]
pub(crate) struct CreatedToken {
    /// `tok_…`.
    id: String,
    name: String,
    prefix: String,
    /// Send as `Authorization: Bearer <token>`. herald keeps only its hash: store it now.
    token: String,
    created_at: String,
}

/// Make an API token
///
/// A token that reaches this tenant only.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/tokens", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id")),
    request_body = CreateToken,
    responses(
        (status = 403, description = "A dashboard link: it cannot manage tokens or links", body = Problem, content_type = "application/problem+json"),
        (status = 201, description = "Made; the answer is the only time the token is shown", body = CreatedToken),
        (status = 422, description = "Bad name", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_token(
    CredentialScope(Scope { tenant, store, .. }): CredentialScope,
    ApiJson(body): ApiJson<CreateToken>,
) -> Result<(StatusCode, axum::Json<CreatedToken>), Problem> {
    let name = body.name.as_str();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Problem::invalid(
            "a token's name is 1 to 100 characters",
            vec![Violation {
                path: "/name".into(),
                message: "must be 1 to 100 characters".into(),
            }],
        ));
    }
    let (token, new) = new_token(Some(&tenant), name)?;
    let stored = store
        .create_token(new)
        .await
        .map_err(|e| tenant_problem(e, &tenant))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedToken {
            id: stored.id,
            name: stored.name,
            prefix: stored.prefix,
            token,
            created_at: rfc3339(stored.created_at),
        }),
    ))
}

/// List API tokens
///
/// The tenant's tokens, revoked ones included, oldest first; never the tokens themselves.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/tokens", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id")),
    responses(
        (status = 403, description = "A dashboard link: it cannot manage tokens or links", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "The tokens", body = Vec<TokenOut>),
    ))]
pub(crate) async fn list_tokens(
    CredentialScope(Scope { tenant, store, .. }): CredentialScope,
) -> Result<axum::Json<Vec<TokenOut>>, Problem> {
    let tokens = store.tokens(Some(&tenant)).await?;
    Ok(axum::Json(tokens.into_iter().map(TokenOut::from).collect()))
}

/// Revoke an API token
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/tokens/{token}", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), ("token" = String, Path, description = "`tok_…`")),
    responses(
        (status = 403, description = "A dashboard link: it cannot manage tokens or links", body = Problem, content_type = "application/problem+json"),
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such tenant or unrevoked token", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn revoke_token(
    CredentialScope(Scope { tenant, store, .. }): CredentialScope,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    if store.revoke_token(Some(&tenant), &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found(format!(
            "no unrevoked token `{id}` for tenant `{tenant}`"
        )))
    }
}
