//! How an endpoint's deliveries are signed and what verifies them: its HMAC secrets
//! (`…/secret`), its Ed25519 public keys (`…/keys`), and each tenant's public keys as a JSON
//! Web Key Set that needs no credential, so a receiver fetches keys, and follows their
//! rotation, without anyone copying anything.

use std::time::Duration;

use axum::extract::{OriginalUri, Path, State};
use axum::http::{Uri, header};
use axum::response::IntoResponse;
use herald_signature::{Secret, SigningKey};
use herald_store::{EndpointSecret, KeyKind, Signature, Store};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::endpoints::no_endpoint;
use super::{in_range, rfc3339};
use crate::problem::Problem;
use crate::state::{AppState, OptionalJson, Scope};

/// How deliveries are signed (the `webhook-signature` header).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SignatureName {
    /// HMAC-SHA256 with a shared `whsec_…` secret: `v1,…`.
    #[default]
    Hmac,
    /// Ed25519: `v1a,…`, verified with a `whpk_…` public key.
    Ed25519,
    /// Both, while a receiver moves from one to the other.
    Both,
}

impl From<SignatureName> for Signature {
    fn from(name: SignatureName) -> Signature {
        match name {
            SignatureName::Hmac => Signature::Hmac,
            SignatureName::Ed25519 => Signature::Ed25519,
            SignatureName::Both => Signature::Both,
        }
    }
}

impl From<Signature> for SignatureName {
    fn from(signature: Signature) -> SignatureName {
        match signature {
            Signature::Hmac => SignatureName::Hmac,
            Signature::Ed25519 => SignatureName::Ed25519,
            Signature::Both => SignatureName::Both,
        }
    }
}

/// A new key of each kind `signature` uses, as stored: `whsec_…`, `whsk_…`.
pub(super) fn fresh_keys(signature: Signature) -> Result<Vec<String>, Problem> {
    let mut keys = Vec::new();
    if signature.uses(KeyKind::Hmac) {
        keys.push(
            Secret::generate()
                .map_err(|e| Problem::internal(&e))?
                .expose(),
        );
    }
    if signature.uses(KeyKind::Ed25519) {
        keys.push(
            SigningKey::generate()
                .map_err(|e| Problem::internal(&e))?
                .expose(),
        );
    }
    Ok(keys)
}

/// The endpoint's keys of `kind` that sign now, newest first.
async fn keys_of(
    store: &dyn Store,
    tenant: &str,
    id: &str,
    kind: KeyKind,
) -> Result<Vec<EndpointSecret>, Problem> {
    let keys = store
        .secrets(tenant, id)
        .await?
        .ok_or_else(|| no_endpoint(tenant, id))?;
    Ok(keys
        .into_iter()
        .filter(|key| KeyKind::of(&key.secret) == kind)
        .collect())
}

/// How long a rotated-out key keeps signing beside the new one: a day unless told, a week at
/// most.
fn overlap(rotate: &Rotate) -> Result<Duration, Problem> {
    let keep = in_range(
        "/keep_old_seconds",
        rotate.keep_old_seconds.unwrap_or(86_400),
        0..=604_800,
    )?;
    Ok(Duration::from_secs(keep.into()))
}

/// An endpoint's signing secrets.
#[derive(Serialize, ToSchema)]
pub(crate) struct SecretOut {
    /// The newest secret, `whsec_…`: verify with it.
    secret: String,
    /// Secrets rotated out that still sign every delivery beside it until they expire.
    previous: Vec<PreviousSecret>,
}

/// A rotated-out secret that still signs.
#[derive(Serialize, ToSchema)]
pub(crate) struct PreviousSecret {
    secret: String,
    /// RFC 3339.
    expires_at: Option<String>,
}

async fn secret_out(store: &dyn Store, tenant: &str, id: &str) -> Result<SecretOut, Problem> {
    let mut secrets = keys_of(store, tenant, id, KeyKind::Hmac).await?.into_iter();
    let newest = secrets.next().ok_or_else(|| {
        Problem::conflict(format!(
            "endpoint `{id}` signs with Ed25519 only, so it has no secret: its public keys \
             are at `…/keys` (set `signature` to `both` to sign with a secret too)"
        ))
    })?;
    Ok(SecretOut {
        secret: newest.secret,
        previous: secrets
            .map(|s| PreviousSecret {
                secret: s.secret,
                expires_at: s.expires_at.map(rfc3339),
            })
            .collect(),
    })
}

/// Read an endpoint's signing secret
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}/secret", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), ("endpoint" = String, Path, description = "`ep_…`")),
    responses(
        (status = 200, description = "The secrets that sign now", body = SecretOut),
        (status = 404, description = "No such tenant or endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint signs with Ed25519 only", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_secret(
    Scope { tenant, store, .. }: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<axum::Json<SecretOut>, Problem> {
    Ok(axum::Json(secret_out(&*store, &tenant, &id).await?))
}

/// How to rotate.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rotate {
    /// How long the old key keeps signing beside the new one, in seconds (0 to 604800;
    /// 86400 by default), so receivers can switch without missing a delivery.
    #[schema(minimum = 0, maximum = 604800)]
    #[serde(default, deserialize_with = "super::whole_number")]
    keep_old_seconds: Option<u32>,
}

/// Rotate an endpoint's signing secret
///
/// Makes a new secret; the old one keeps signing beside it for a while (24 hours unless told).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}/secret/rotate", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), ("endpoint" = String, Path, description = "`ep_…`")),
    request_body(content = Option<Rotate>, description = "Optional: how long the old secret keeps signing"),
    responses(
        (status = 200, description = "The new secret, and the old ones still signing", body = SecretOut),
        (status = 404, description = "No such tenant or endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint signs with Ed25519 only", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `keep_old_seconds`", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn rotate_secret(
    Scope { tenant, store, .. }: Scope,
    Path((_, id)): Path<(String, String)>,
    OptionalJson(rotate): OptionalJson<Rotate>,
) -> Result<axum::Json<SecretOut>, Problem> {
    let keep = overlap(&rotate)?;
    let secret = Secret::generate()
        .map_err(|e| Problem::internal(&e))?
        .expose();
    match store.rotate_secret(&tenant, &id, &secret, keep).await? {
        None => Err(no_endpoint(&tenant, &id)),
        Some(signature) if !signature.uses(KeyKind::Hmac) => Err(Problem::conflict(format!(
            "endpoint `{id}` signs with Ed25519 only: rotate its key at `…/keys/rotate`"
        ))),
        Some(_) => Ok(axum::Json(secret_out(&*store, &tenant, &id).await?)),
    }
}

/// An endpoint's Ed25519 public keys.
#[derive(Serialize, ToSchema)]
pub(crate) struct KeysOut {
    /// The keys whose private halves sign now, newest first: more than one while rotating,
    /// none for an endpoint signed with HMAC only.
    keys: Vec<PublicKeyOut>,
    /// Where the tenant's public keys are published as a JSON Web Key Set, for anyone to
    /// fetch with no credential.
    jwks: String,
}

/// One public key.
#[derive(Serialize, ToSchema)]
pub(crate) struct PublicKeyOut {
    /// The key's JWK Thumbprint (RFC 7638): its `kid` in the JWKS document.
    kid: String,
    /// `whpk_…`: verifies `v1a` signatures.
    public_key: String,
    /// RFC 3339.
    created_at: String,
    /// When its private half stops signing, once rotated out (RFC 3339).
    expires_at: Option<String>,
}

/// Where the tenant's JWKS document is, under whatever prefix herald is nested at.
fn jwks_url(original: &Uri, routed: &Uri, tenant: &str) -> String {
    let prefix = original
        .path()
        .strip_suffix(routed.path())
        .unwrap_or_default();
    format!("{prefix}/api/v1/tenants/{tenant}/jwks.json")
}

async fn keys_out(
    store: &dyn Store,
    public_keys: &crate::state::PublicKeys,
    tenant: &str,
    id: &str,
    jwks: String,
) -> Result<KeysOut, Problem> {
    let keys = keys_of(store, tenant, id, KeyKind::Ed25519).await?;
    let keys = keys
        .iter()
        .map(|key| {
            let public = public_keys.of(&key.secret)?;
            Ok(PublicKeyOut {
                kid: public.thumbprint(),
                public_key: public.expose(),
                created_at: rfc3339(key.created_at),
                expires_at: key.expires_at.map(rfc3339),
            })
        })
        .collect::<Result<_, Problem>>()?;
    Ok(KeysOut { keys, jwks })
}

/// Read an endpoint's public keys
///
/// The Ed25519 public keys that verify its `v1a` signatures. Its private keys never leave
/// herald.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}/keys", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), ("endpoint" = String, Path, description = "`ep_…`")),
    responses(
        (status = 200, description = "The public keys of the keys that sign now", body = KeysOut),
        (status = 404, description = "No such tenant or endpoint", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_keys(
    State(state): State<AppState>,
    Scope { tenant, store, .. }: Scope,
    Path((_, id)): Path<(String, String)>,
    OriginalUri(original): OriginalUri,
    routed: Uri,
) -> Result<axum::Json<KeysOut>, Problem> {
    let jwks = jwks_url(&original, &routed, &tenant);
    let keys = keys_out(&*store, &state.public_keys, &tenant, &id, jwks).await?;
    Ok(axum::Json(keys))
}

/// Rotate an endpoint's signing key
///
/// Makes a new Ed25519 key pair; the old one keeps signing beside it for a while (24 hours
/// unless told), and both public keys are published meanwhile.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/endpoints/{endpoint}/keys/rotate", tag = "herald", security(("token" = [])),
    params(("tenant" = String, Path, description = "The tenant's id"), ("endpoint" = String, Path, description = "`ep_…`")),
    request_body(content = Option<Rotate>, description = "Optional: how long the old key keeps signing"),
    responses(
        (status = 200, description = "The new public key, and the old ones still signing", body = KeysOut),
        (status = 404, description = "No such tenant or endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint signs with HMAC only", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `keep_old_seconds`", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn rotate_keys(
    State(state): State<AppState>,
    Scope { tenant, store, .. }: Scope,
    Path((_, id)): Path<(String, String)>,
    OriginalUri(original): OriginalUri,
    routed: Uri,
    OptionalJson(rotate): OptionalJson<Rotate>,
) -> Result<axum::Json<KeysOut>, Problem> {
    let keep = overlap(&rotate)?;
    let key = SigningKey::generate()
        .map_err(|e| Problem::internal(&e))?
        .expose();
    match store.rotate_secret(&tenant, &id, &key, keep).await? {
        None => Err(no_endpoint(&tenant, &id)),
        Some(signature) if !signature.uses(KeyKind::Ed25519) => Err(Problem::conflict(format!(
            "endpoint `{id}` signs with HMAC only: set its `signature` to `ed25519` or \
                 `both` first"
        ))),
        Some(_) => {
            let jwks = jwks_url(&original, &routed, &tenant);
            let keys = keys_out(&*store, &state.public_keys, &tenant, &id, jwks).await?;
            Ok(axum::Json(keys))
        }
    }
}

/// A JSON Web Key Set (RFC 7517).
#[derive(Serialize, ToSchema)]
pub(crate) struct Jwks {
    keys: Vec<Jwk>,
}

/// An Ed25519 public key as a JSON Web Key (RFC 8037).
#[derive(Serialize, ToSchema)]
pub(crate) struct Jwk {
    /// `OKP`.
    #[schema(example = "OKP")]
    kty: &'static str,
    /// `Ed25519`.
    #[schema(example = "Ed25519")]
    crv: &'static str,
    /// The public key's 32 bytes, base64url without padding.
    x: String,
    /// Its JWK Thumbprint (RFC 7638).
    kid: String,
    /// `sig`.
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    usage: &'static str,
    /// `EdDSA`.
    #[schema(example = "EdDSA")]
    alg: &'static str,
}

/// How long a JWKS document may be cached: far less than a rotation's overlap (a day unless
/// told), so a receiver that caches it sees a new key long before the old one stops signing.
const JWKS_MAX_AGE: &str = "public, max-age=60";

/// A tenant's public keys (JWKS)
///
/// The public keys of every Ed25519 key that signs deliveries to the tenant's endpoints now,
/// as a JSON Web Key Set. Needs no credential: a receiver fetches it, verifies a `v1a`
/// signature with any of its keys, and fetches it again when none verifies. A tenant with no
/// such key, or no tenant of that id, has an empty set.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/jwks.json", tag = "herald",
    params(("tenant" = String, Path, description = "The tenant's id")),
    responses(
        (status = 200, description = "The tenant's public keys", body = Jwks, content_type = "application/jwk-set+json"),
        (status = 503, description = "The database is unavailable; `Retry-After` says when to try again", body = Problem, content_type = "application/problem+json"),
    ))]
pub(crate) async fn jwks(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
) -> Result<impl IntoResponse, Problem> {
    let keys = state
        .tenant_signing_keys(&tenant)
        .await?
        .iter()
        .map(|key| {
            let public = state.public_keys.of(&key.secret)?;
            Ok(Jwk {
                kty: "OKP",
                crv: "Ed25519",
                x: public.jwk_x(),
                kid: public.thumbprint(),
                usage: "sig",
                alg: "EdDSA",
            })
        })
        .collect::<Result<_, Problem>>()?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, JWKS_MAX_AGE),
        ],
        axum::Json(Jwks { keys }),
    ))
}
