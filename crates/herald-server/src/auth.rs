//! Who is calling: the admin, or one tenant. Every API request names its credential as
//! `Authorization: Bearer <token>`.
//!
//! Tokens are 32 random bytes (`hrld_` + base64url). Only their SHA-256 is stored, and found
//! by that hash: a high-entropy token needs no slow hash, and a lookup by hash reveals nothing
//! about tokens that do not match.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use herald_store::{NewToken, Store};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::link::{LINK_PREFIX, Links};
use crate::problem::Problem;

/// The prefix of every herald token, so a leaked one is recognisable (and scannable).
const TOKEN_PREFIX: &str = "hrld_";

/// Whom a request acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Principal {
    /// Everything.
    Admin,
    /// One tenant's objects, and nothing of any other tenant's.
    Tenant(String),
    /// One tenant's endpoints and log, through a dashboard link: never its credentials, so a
    /// link cannot outlive itself by minting a token or a fresh link.
    Link(String),
}

impl Principal {
    /// Lets the request act for `tenant`, or answers exactly as for a tenant that does not
    /// exist, so a tenant credential learns nothing about others.
    pub(crate) fn reach(&self, tenant: &str) -> Result<(), Problem> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Tenant(own) | Principal::Link(own) if own == tenant => Ok(()),
            Principal::Tenant(_) | Principal::Link(_) => {
                Err(Problem::not_found(format!("no tenant `{tenant}`")))
            }
        }
    }

    /// Lets through credentials that may make, list and revoke credentials: not a link.
    pub(crate) fn manage_credentials(&self) -> Result<(), Problem> {
        match self {
            Principal::Link(_) => Err(Problem::forbidden(
                "a dashboard link cannot make, list or revoke tokens or links; use an API token",
            )),
            Principal::Admin | Principal::Tenant(_) => Ok(()),
        }
    }

    /// Lets only the admin through.
    pub(crate) fn admin(&self) -> Result<(), Problem> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Tenant(_) | Principal::Link(_) => Err(Problem::forbidden(
                "this needs the admin token; a tenant token reaches only its own tenant",
            )),
        }
    }
}

/// How presented tokens are checked.
#[derive(Clone)]
pub(crate) struct Credentials {
    /// SHA-256 of `HERALD_ADMIN_TOKEN`, when it is set; stored admin tokens count too.
    admin: Option<[u8; 32]>,
    store: Arc<dyn Store>,
    /// Dashboard links.
    pub(crate) links: Links,
}

impl Credentials {
    pub(crate) fn new(
        admin_token: Option<&str>,
        store: Arc<dyn Store>,
        links: Links,
    ) -> Credentials {
        Credentials {
            admin: admin_token.map(|token| Sha256::digest(token.as_bytes()).into()),
            store,
            links,
        }
    }

    async fn principal(&self, token: &str) -> Result<Option<Principal>, Problem> {
        if token.starts_with(LINK_PREFIX) {
            let now = self.store.now() / 1000;
            return Ok(self.links.verify(token, now).map(Principal::Link));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(admin) = &self.admin
            && bool::from(digest.ct_eq(admin))
        {
            return Ok(Some(Principal::Admin));
        }
        let stored = self.store.token_by_hash(&hex(&digest)).await?;
        Ok(stored
            .filter(|t| t.revoked_at.is_none())
            .map(|t| match t.tenant_id {
                None => Principal::Admin,
                Some(tenant) => Principal::Tenant(tenant),
            }))
    }
}

/// Resolves the bearer token into a [`Principal`] for the handlers, or answers 401.
pub(crate) async fn authenticate(
    State(credentials): State<Credentials>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = presented else {
        return Problem::unauthorized("send `Authorization: Bearer <token>`").into_response();
    };
    match credentials.principal(token).await {
        Ok(Some(principal)) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Ok(None) => Problem::unauthorized("the token is not valid (unknown, revoked or expired)")
            .into_response(),
        Err(problem) => problem.into_response(),
    }
}

/// A new token: what to show once, and what to store.
pub(crate) fn new_token(
    tenant_id: Option<&str>,
    name: &str,
) -> Result<(String, NewToken), Problem> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        Problem::internal(&std::io::Error::other(format!(
            "no randomness for a token: {e}"
        )))
    })?;
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let stored = NewToken {
        tenant_id: tenant_id.map(str::to_owned),
        name: name.to_owned(),
        prefix: token.chars().take(TOKEN_PREFIX.len() + 6).collect(),
        hash: hex(&Sha256::digest(token.as_bytes())),
    };
    Ok((token, stored))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_stored_hashed() {
        let (a, stored_a) = new_token(Some("acme"), "ci").unwrap();
        let (b, _) = new_token(None, "ops").unwrap();
        assert!(a.starts_with("hrld_") && a.len() == 5 + 43, "{a}");
        assert_ne!(a, b);
        assert!(a.starts_with(&stored_a.prefix));
        assert_eq!(stored_a.prefix.len(), 11);
        assert_eq!(stored_a.hash, hex(&Sha256::digest(a.as_bytes())));
        assert!(!stored_a.hash.contains(&a));
        assert_eq!(stored_a.tenant_id.as_deref(), Some("acme"));
    }

    #[test]
    fn tenants_reach_only_themselves() {
        let acme = Principal::Tenant("acme".into());
        assert!(acme.reach("acme").is_ok());
        assert_eq!(acme.reach("umbrella").unwrap_err().status, 404);
        assert!(acme.admin().is_err());
        assert!(Principal::Admin.reach("umbrella").is_ok());
        assert!(Principal::Admin.admin().is_ok());
    }
}
