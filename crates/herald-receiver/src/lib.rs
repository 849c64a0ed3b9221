//! Receiving webhooks in axum: [`Verified<T>`] checks the Standard Webhooks signature against
//! the endpoint's secrets (from the router's state, via [`Secrets`]) and deserializes the body
//! into `T`, so a handler only ever sees genuine, well-formed webhooks.
//!
//! ```
//! use axum::{Router, http::StatusCode, routing::post};
//! use herald_receiver::{Secrets, Verified};
//!
//! #[derive(serde::Deserialize)]
//! struct Subscription {
//!     username: String,
//! }
//!
//! async fn new_subscription(Verified { body, .. }: Verified<Subscription>) -> StatusCode {
//!     println!("{} subscribed", body.username);
//!     StatusCode::NO_CONTENT
//! }
//!
//! let secrets: Secrets = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
//! let app: Router = Router::new()
//!     .route("/webhooks/new-subscription", post(new_subscription))
//!     .with_state(secrets);
//! # Ok::<(), herald_signature::Error>(())
//! ```
//!
//! A request that fails is answered before the handler runs: `401` when the signature headers
//! are missing, the timestamp is more than five minutes off, or no signature matches; `400`
//! when the body is not JSON; `422` when it does not fit `T`. Each answer says why in plain text.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use herald_signature::{Key, Secret, Signed};

/// The keys an endpoint accepts: usually one, two while one is being rotated. A shared secret
/// (`whsec_…`) verifies `v1` signatures; a sender's public key (`whpk_…`) verifies `v1a`.
#[derive(Clone)]
pub struct Secrets(Arc<[Key]>);

impl Secrets {
    /// Accepts signatures made with any of `secrets`.
    pub fn new(secrets: impl IntoIterator<Item = Secret>) -> Secrets {
        Secrets(secrets.into_iter().map(Key::Secret).collect())
    }

    /// Accepts signatures any of `keys` verifies: secrets and public keys alike.
    pub fn keys(keys: impl IntoIterator<Item = Key>) -> Secrets {
        Secrets(keys.into_iter().collect())
    }
}

impl FromStr for Secrets {
    type Err = herald_signature::Error;

    /// One key, or several separated by spaces or commas: secrets (`whsec_` optional) and
    /// public keys (`whpk_`).
    fn from_str(text: &str) -> Result<Secrets, Self::Err> {
        text.split([' ', ','])
            .filter(|part| !part.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Key>, _>>()
            .map(Secrets::keys)
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} redacted)", self.0.len())
    }
}

/// A webhook whose signature verified, with its body deserialized.
#[derive(Clone, Debug)]
pub struct Verified<T> {
    /// `webhook-id`: the same on every retry, so a receiver can drop duplicates by it.
    pub id: String,
    /// `webhook-timestamp`, seconds since the Unix epoch.
    pub timestamp: u64,
    /// `herald-event-version`, for a versioned webhook: the version of `body` (the endpoint's
    /// pin resolved), so a receiver that reads several versions knows which it got.
    pub version: Option<String>,
    /// The body.
    pub body: T,
}

/// Why a request was refused; its response says the same in plain text.
#[derive(Debug)]
pub enum Rejection {
    /// Missing headers, a timestamp out of tolerance, or no matching signature (401).
    Signature(herald_signature::Error),
    /// The body could not be read (400).
    Body(String),
    /// The body is not JSON (400) or does not fit the type (422).
    Json(serde_json::Error),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Signature(error) => write!(f, "signature: {error}"),
            Rejection::Body(error) => write!(f, "body: {error}"),
            Rejection::Json(error) => write!(f, "body: {error}"),
        }
    }
}

impl std::error::Error for Rejection {}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = match &self {
            Rejection::Signature(_) => StatusCode::UNAUTHORIZED,
            Rejection::Json(error) if error.is_data() => StatusCode::UNPROCESSABLE_ENTITY,
            Rejection::Body(_) | Rejection::Json(_) => StatusCode::BAD_REQUEST,
        };
        (status, self.to_string()).into_response()
    }
}

impl<S, T> FromRequest<S> for Verified<T>
where
    Secrets: FromRef<S>,
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Rejection> {
        let secrets = Secrets::from_ref(state);
        let headers = request.headers().clone();
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|e| Rejection::Body(e.body_text()))?;
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        let signed = Signed {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body: &body,
        };
        signed
            .verify_with(&secrets.0, SystemTime::now())
            .map_err(Rejection::Signature)?;
        Ok(Verified {
            id: signed.id.to_owned(),
            // Verification parsed it already; it cannot fail here.
            timestamp: signed.timestamp.trim().parse().unwrap_or_default(),
            version: Some(header("herald-event-version"))
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
            body: serde_json::from_slice(&body).map_err(Rejection::Json)?,
        })
    }
}

#[cfg(test)]
mod tests;
