//! Asymmetric signatures (`v1a`): Ed25519 over the same signed content as `v1`, so a receiver
//! verifies with a public key (`whpk_…`) and never holds anything that could sign.
//!
//! Keys are serialized as the specification says, base64 after a prefix. It calls the secret
//! key "a standard ed25519 key pair" without fixing its layout: herald writes the 64 bytes of
//! the libsodium layout (the 32-byte seed, then the public key), which PyNaCl, libsodium and
//! Svix read, and reads that or a bare 32-byte seed.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::Signer;
use sha2::{Digest, Sha256};

use crate::{Error, ErrorKind};

/// The prefix of a serialized secret (signing) key.
pub const SIGNING_KEY_PREFIX: &str = "whsk_";

/// The prefix of a serialized public key.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// An endpoint's Ed25519 signing key. `Debug` never prints it; [`SigningKey::expose`] does.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A new key pair from the operating system's generator.
    pub fn generate() -> Result<SigningKey, Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| Error::new(ErrorKind::Random, format!("no randomness for a key: {e}")))?;
        Ok(SigningKey::from_seed(seed))
    }

    /// The key pair of a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The key as it is stored and shown to its owner: `whsk_<base64 of seed and public key>`.
    pub fn expose(&self) -> String {
        format!(
            "{SIGNING_KEY_PREFIX}{}",
            STANDARD.encode(self.0.to_keypair_bytes())
        )
    }

    /// The public half, which receivers verify with.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The `v1a,<base64>` signature of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let content = crate::signed_content(id, timestamp.to_string().as_bytes(), body);
        format!("v1a,{}", STANDARD.encode(self.0.sign(&content).to_bytes()))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl PartialEq for SigningKey {
    fn eq(&self, other: &SigningKey) -> bool {
        self.0.to_bytes() == other.0.to_bytes()
    }
}

impl Eq for SigningKey {}

impl FromStr for SigningKey {
    type Err = Error;

    /// Parses `whsk_<base64>` of 64 bytes (seed, then public key: the two must agree) or of a
    /// 32-byte seed.
    fn from_str(text: &str) -> Result<SigningKey, Error> {
        let invalid = |why: &str| {
            Error::new(
                ErrorKind::InvalidKey,
                format!("a signing key is `whsk_` followed by base64 of 64 bytes: {why}"),
            )
        };
        let encoded = text
            .strip_prefix(SIGNING_KEY_PREFIX)
            .ok_or_else(|| invalid("the prefix is missing"))?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| invalid("not valid base64"))?;
        match bytes.len() {
            32 => {
                let mut seed = [0u8; 32];
                seed.copy_from_slice(&bytes);
                Ok(SigningKey::from_seed(seed))
            }
            64 => {
                let mut pair = [0u8; 64];
                pair.copy_from_slice(&bytes);
                ed25519_dalek::SigningKey::from_keypair_bytes(&pair)
                    .map(SigningKey)
                    .map_err(|_| invalid("its public half is not the seed's"))
            }
            n => Err(invalid(&format!("it has {n} bytes"))),
        }
    }
}

/// A public key: verifies `v1a` signatures, cannot make them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// `whpk_<base64 of the 32 bytes>`.
    pub fn expose(&self) -> String {
        format!("{PUBLIC_KEY_PREFIX}{}", STANDARD.encode(self.0.as_bytes()))
    }

    /// The key's 32 bytes as a JSON Web Key's `x` (base64url, no padding; RFC 8037).
    pub fn jwk_x(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// The key's JWK Thumbprint (RFC 7638, SHA-256, base64url): a `kid` anyone can recompute
    /// from the key itself.
    pub fn thumbprint(&self) -> String {
        // The required members in lexicographic order, no whitespace, as RFC 7638 fixes them.
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, self.jwk_x());
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// Whether `signature` (64 bytes) is this key's over `content`.
    pub(crate) fn verifies(&self, content: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        // `verify_strict` also refuses the malleable and small-order forms plain verification
        // lets through.
        self.0.verify_strict(content, &signature).is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.expose())
    }
}

impl FromStr for PublicKey {
    type Err = Error;

    /// Parses `whpk_<base64 of 32 bytes>`.
    fn from_str(text: &str) -> Result<PublicKey, Error> {
        let invalid = |why: &str| {
            Error::new(
                ErrorKind::InvalidKey,
                format!("a public key is `whpk_` followed by base64 of 32 bytes: {why}"),
            )
        };
        let encoded = text
            .strip_prefix(PUBLIC_KEY_PREFIX)
            .ok_or_else(|| invalid("the prefix is missing"))?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| invalid("not valid base64"))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| invalid(&format!("it has {} bytes", b.len())))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| invalid("not a point on the curve"))
    }
}

#[cfg(test)]
mod tests;
