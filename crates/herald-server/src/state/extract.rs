//! Extractors: who is calling ([`Principal`]), for which tenant ([`Scope`]) or as the admin
//! ([`Admin`]), and request bodies and query strings whose rejections are problems, not axum's
//! plain text.

use std::sync::Arc;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use herald_store::Store;

use super::AppState;
use crate::auth::Principal;
use crate::problem::{Problem, malformed};

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Put there by `auth::authenticate`, which every API route sits behind.
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| Problem::unauthorized("send `Authorization: Bearer <token>`"))
    }
}

/// The tenant a request acts for: the `{tenant}` of its path, which the caller's credential
/// reaches and which exists. A tenant's data is reached only through this, so no handler can
/// forget the check: another tenant's ids answer 404, exactly as ids that do not exist.
pub(crate) struct Scope {
    /// The tenant's id.
    pub(crate) tenant: String,
    /// The store, for this tenant's data.
    pub(crate) store: Arc<dyn Store>,
}

impl FromRequestParts<AppState> for Scope {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|rejection| malformed(rejection.body_text()))?;
        let tenant = params
            .iter()
            .find_map(|(name, value)| (name == "tenant").then(|| value.to_owned()))
            .ok_or_else(|| {
                Problem::internal(&std::io::Error::other(
                    "a tenant-scoped route has no {tenant} in its path",
                ))
            })?;
        principal.reach(&tenant)?;
        state.existing_tenant(&tenant).await?;
        Ok(Scope {
            tenant,
            store: Arc::clone(state.store()),
        })
    }
}

/// A [`Scope`] whose credential may manage credentials (tokens, links): a dashboard link
/// gets 403.
pub(crate) struct CredentialScope(pub(crate) Scope);

impl FromRequestParts<AppState> for CredentialScope {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let scope = Scope::from_request_parts(parts, state).await?;
        Principal::from_request_parts(parts, state)
            .await?
            .manage_credentials()?;
        Ok(CredentialScope(scope))
    }
}

/// A request made with an admin credential; a tenant's credential gets 403.
pub(crate) struct Admin {
    /// The whole store.
    pub(crate) store: Arc<dyn Store>,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        Principal::from_request_parts(parts, state).await?.admin()?;
        Ok(Admin {
            store: Arc::clone(state.store()),
        })
    }
}

/// An optional JSON body: none (zero bytes) or `null` means `T::default()`; anything else
/// must be a JSON object (whitespace alone is not JSON: 400); rejections are problems.
pub(crate) struct OptionalJson<T>(pub(crate) T);

impl<T, S> axum::extract::FromRequest<S> for OptionalJson<T>
where
    T: serde::de::DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Problem> {
        let bytes = body_bytes(request, state).await?;
        if bytes.is_empty() || bytes.trim_ascii() == b"null" {
            return Ok(OptionalJson(T::default()));
        }
        object_body(&bytes).map(OptionalJson)
    }
}

/// A JSON object body (`Content-Type: application/json`) whose rejections are problems, not
/// axum's plain text.
pub(crate) struct ApiJson<T>(pub(crate) T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Problem> {
        let declared = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !is_json(declared) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "https://herald.rs/problems/media-type",
                "Unsupported Media Type",
                "Expected request with `Content-Type: application/json`".into(),
            ));
        }
        let bytes = body_bytes(request, state).await?;
        object_body(&bytes).map(ApiJson)
    }
}

/// `application/json`, or any `application/…+json`.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The whole body, within the router's size limit (413 beyond it).
async fn body_bytes<S: Send + Sync>(
    request: axum::extract::Request,
    state: &S,
) -> Result<axum::body::Bytes, Problem> {
    <axum::body::Bytes as axum::extract::FromRequest<S>>::from_request(request, state)
        .await
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "https://herald.rs/problems/too-large",
                "Content Too Large",
                rejection.body_text(),
            ),
            _ => malformed(rejection.body_text()),
        })
}

/// `T` from a body that must be a JSON object (serde would also read a struct from an array
/// of its fields in order, which no operation documents), read in one pass: 400 when it is not
/// JSON, 422 when it is JSON of the wrong shape.
fn object_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let not_json = |e: serde_json::Error| malformed(format!("the body is not JSON: {e}"));
    if bytes.trim_ascii_start().first() != Some(&b'{') {
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(not_json)?;
        return Err(Problem::invalid(
            "the body must be a JSON object",
            Vec::new(),
        ));
    }
    let value = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            not_json(e)
        } else {
            Problem::invalid(
                format!("the body does not fit this operation: {e}"),
                Vec::new(),
            )
        }
    })?;
    match crate::api::nul::in_body(bytes) {
        Some(field) => Err(crate::api::nul::refused(field)),
        None => Ok(value),
    }
}

/// `Query` whose rejections are problems, not axum's plain text.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Problem))]
pub(crate) struct ApiQuery<T>(pub(crate) T);
