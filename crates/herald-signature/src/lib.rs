//! Signing and verifying webhooks as the [Standard Webhooks] specification defines them.
//!
//! A sender signs `{webhook-id}.{webhook-timestamp}.{body}` with HMAC-SHA256 under each active
//! secret and sends `webhook-signature: v1,<base64> [v1,<base64> …]`, or with an Ed25519 key
//! ([`SigningKey`], `v1a,<base64>`), which a receiver verifies with its public half
//! ([`PublicKey`], [`Signed::verify_with`]). A receiver recomputes the
//! signature with its secret, compares in constant time, and refuses timestamps more than five
//! minutes away from its clock. Small on purpose: no async runtime, four dependencies.
//!
//! [Standard Webhooks]: https://www.standardwebhooks.com/
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use herald_signature::{Secret, Signed};
//!
//! let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
//! let body = br#"{"test": 2432232314}"#;
//! let signature = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
//! assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
//!
//! let received = Signed {
//!     id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
//!     timestamp: "1614265330",
//!     signature: &signature,
//!     body,
//! };
//! let now = UNIX_EPOCH + Duration::from_secs(1614265330 + 10);
//! received.verify(&[secret], now)?;
//! # Ok::<(), herald_signature::Error>(())
//! ```

mod asymmetric;

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub use asymmetric::{PUBLIC_KEY_PREFIX, PublicKey, SIGNING_KEY_PREFIX, SigningKey};

/// How far a timestamp may be from the receiver's clock, either way.
pub const TOLERANCE_SECONDS: u64 = 5 * 60;

/// The prefix of a serialized secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// How many random bytes a generated secret has (192 bits, as Svix uses).
const GENERATED_SECRET_BYTES: usize = 24;

/// An endpoint's signing key. `Debug` never prints it; [`Secret::expose`] does, on purpose.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    key: Vec<u8>,
}

impl Secret {
    /// A new random secret from the operating system's generator.
    pub fn generate() -> Result<Secret, Error> {
        let mut key = vec![0; GENERATED_SECRET_BYTES];
        getrandom::fill(&mut key).map_err(|e| {
            Error::new(
                ErrorKind::Random,
                format!("no randomness for a secret: {e}"),
            )
        })?;
        Ok(Secret { key })
    }

    /// A secret made of these key bytes.
    pub fn from_bytes(key: impl Into<Vec<u8>>) -> Result<Secret, Error> {
        let key = key.into();
        if key.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidSecret,
                "a secret cannot be empty",
            ));
        }
        Ok(Secret { key })
    }

    /// The secret as it is shown to its owner and stored: `whsec_<base64 of the key>`.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// The `v1,<base64>` signature of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mac = self.mac(id, timestamp.to_string().as_bytes(), body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    fn mac(&self, id: &str, timestamp: &[u8], body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length, so this cannot fail.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts any key");
        mac.update(&signed_content(id, timestamp, body));
        mac
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl FromStr for Secret {
    type Err = Error;

    /// Parses `whsec_<base64>`; the prefix may be left off, as the specification allows.
    fn from_str(text: &str) -> Result<Secret, Error> {
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        let key = STANDARD.decode(encoded).map_err(|_| {
            Error::new(
                ErrorKind::InvalidSecret,
                "a secret is `whsec_` followed by base64; this one is not valid base64",
            )
        })?;
        Secret::from_bytes(key)
    }
}

/// What both schemes sign: `{id}.{timestamp}.{body}`.
fn signed_content(id: &str, timestamp: &[u8], body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
    content.extend_from_slice(id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp);
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

/// A key a receiver verifies with: a shared secret (`v1`) or a sender's public key (`v1a`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Key {
    /// `whsec_…`: verifies `v1` signatures.
    Secret(Secret),
    /// `whpk_…`: verifies `v1a` signatures.
    Public(PublicKey),
}

impl FromStr for Key {
    type Err = Error;

    /// A `whpk_…` public key, or else a secret (`whsec_…`, or bare base64).
    fn from_str(text: &str) -> Result<Key, Error> {
        if text.starts_with(PUBLIC_KEY_PREFIX) {
            text.parse().map(Key::Public)
        } else {
            text.parse().map(Key::Secret)
        }
    }
}

/// A key a sender signs with: a shared secret (`v1`) or an Ed25519 signing key (`v1a`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signer {
    /// `whsec_…`: signs `v1`.
    Hmac(Secret),
    /// `whsk_…`: signs `v1a`.
    Ed25519(SigningKey),
}

impl Signer {
    /// The `v1,<base64>` or `v1a,<base64>` signature of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        match self {
            Signer::Hmac(secret) => secret.sign(id, timestamp, body),
            Signer::Ed25519(key) => key.sign(id, timestamp, body),
        }
    }
}

impl FromStr for Signer {
    type Err = Error;

    /// A `whsk_…` signing key, or else a secret (`whsec_…`, or bare base64).
    fn from_str(text: &str) -> Result<Signer, Error> {
        if text.starts_with(SIGNING_KEY_PREFIX) {
            text.parse().map(Signer::Ed25519)
        } else {
            text.parse().map(Signer::Hmac)
        }
    }
}

impl From<Secret> for Signer {
    fn from(secret: Secret) -> Signer {
        Signer::Hmac(secret)
    }
}

impl From<SigningKey> for Signer {
    fn from(key: SigningKey) -> Signer {
        Signer::Ed25519(key)
    }
}

/// What makes the signature of a message: a [`Secret`], a [`SigningKey`] or either ([`Signer`]).
pub trait Sign {
    /// The `v1,<base64>` or `v1a,<base64>` signature of one message.
    fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String;
}

impl Sign for Secret {
    fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        Secret::sign(self, id, timestamp, body)
    }
}

impl Sign for SigningKey {
    fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        SigningKey::sign(self, id, timestamp, body)
    }
}

impl Sign for Signer {
    fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        Signer::sign(self, id, timestamp, body)
    }
}

/// The signature header for a message: one signature per key (`v1,` for a secret, `v1a,` for
/// a signing key), space-separated.
pub fn signature_header<'a, K: Sign + 'a>(
    keys: impl IntoIterator<Item = &'a K>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    keys.into_iter()
        .map(|key| key.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A received message: the three headers and the raw body, exactly as they arrived.
#[derive(Clone, Copy, Debug)]
pub struct Signed<'a> {
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp`, seconds since the Unix epoch.
    pub timestamp: &'a str,
    /// `webhook-signature`, one or more space-separated `v1,<base64>` or `v1a,<base64>`.
    pub signature: &'a str,
    /// The body's bytes, before any parsing.
    pub body: &'a [u8],
}

impl Signed<'_> {
    /// Succeeds if the timestamp is within [`TOLERANCE_SECONDS`] of `now` and any signature
    /// matches any of `secrets`.
    pub fn verify(&self, secrets: &[Secret], now: SystemTime) -> Result<(), Error> {
        let keys: Vec<&Secret> = secrets.iter().collect();
        self.check(&keys, &[], now)
    }

    /// Like [`verify`](Signed::verify), with secrets (`v1`) and public keys (`v1a`) alike: any
    /// signature that any key verifies will do.
    pub fn verify_with(&self, keys: &[Key], now: SystemTime) -> Result<(), Error> {
        let mut secrets = Vec::new();
        let mut public = Vec::new();
        for key in keys {
            match key {
                Key::Secret(secret) => secrets.push(secret),
                Key::Public(key) => public.push(key),
            }
        }
        self.check(&secrets, &public, now)
    }

    fn check(
        &self,
        secrets: &[&Secret],
        public: &[&PublicKey],
        now: SystemTime,
    ) -> Result<(), Error> {
        for (name, value) in [
            ("webhook-id", self.id),
            ("webhook-timestamp", self.timestamp),
            ("webhook-signature", self.signature),
        ] {
            if value.trim().is_empty() {
                return Err(Error::new(
                    ErrorKind::MissingHeader,
                    format!("the `{name}` header is missing or empty"),
                ));
            }
        }
        let timestamp: u64 = self.timestamp.trim().parse().map_err(|_| {
            Error::new(
                ErrorKind::InvalidTimestamp,
                format!(
                    "`webhook-timestamp` is not whole seconds: {:?}",
                    self.timestamp
                ),
            )
        })?;
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if timestamp + TOLERANCE_SECONDS < now {
            return Err(Error::new(
                ErrorKind::TimestampTooOld,
                format!(
                    "the message was signed {}s ago; at most {TOLERANCE_SECONDS}s is accepted",
                    now - timestamp
                ),
            ));
        }
        if timestamp > now + TOLERANCE_SECONDS {
            return Err(Error::new(
                ErrorKind::TimestampTooNew,
                format!("the message is dated {}s in the future", timestamp - now),
            ));
        }

        let candidates = |version: &str| -> Vec<Vec<u8>> {
            self.signature
                .split_whitespace()
                .filter_map(|part| part.strip_prefix(version)?.strip_prefix(','))
                .filter_map(|encoded| STANDARD.decode(encoded).ok())
                .collect()
        };
        let asymmetric = candidates("v1a");
        if !asymmetric.is_empty() && !public.is_empty() {
            let content = signed_content(self.id, self.timestamp.trim().as_bytes(), self.body);
            for key in public {
                if asymmetric.iter().any(|s| key.verifies(&content, s)) {
                    return Ok(());
                }
            }
        }
        let candidates = candidates("v1");
        for secret in secrets {
            for candidate in &candidates {
                let mac = secret.mac(self.id, self.timestamp.trim().as_bytes(), self.body);
                // `verify_slice` compares in constant time.
                if mac.verify_slice(candidate).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(Error::new(
            ErrorKind::NoMatchingSignature,
            "no signature matches: the body was changed, or it was signed with another secret",
        ))
    }
}

/// What went wrong, broadly; [`Error`]'s message says exactly what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The secret is not `whsec_<base64>`, or is empty.
    InvalidSecret,
    /// A key is not `whsk_<base64>` or `whpk_<base64>` of an Ed25519 key.
    InvalidKey,
    /// A `webhook-*` header is missing or empty.
    MissingHeader,
    /// `webhook-timestamp` is not a whole number of seconds.
    InvalidTimestamp,
    /// The timestamp is older than the tolerance allows: possibly a replay.
    TimestampTooOld,
    /// The timestamp is further in the future than the tolerance allows.
    TimestampTooNew,
    /// No signature in the header matches any secret.
    NoMatchingSignature,
    /// The operating system gave no randomness.
    Random,
}

/// A signing or verification error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests;
