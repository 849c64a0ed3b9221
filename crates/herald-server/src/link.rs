//! Dashboard links: a short-lived capability for one tenant, signed (HMAC-SHA256) with a key
//! every herald process on the database shares, so the application can hand its user a URL
//! that opens that tenant's dashboard and nothing else, without storing anything per link.
//!
//! A link token is `hrdl_<tenant, base64url>.<expiry, Unix seconds>.<signature, base64url>`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The prefix of every link token.
pub(crate) const LINK_PREFIX: &str = "hrdl_";

/// Signs and checks link tokens.
#[derive(Clone)]
pub(crate) struct Links {
    key: Vec<u8>,
}

impl Links {
    pub(crate) fn new(key: &[u8]) -> Links {
        Links { key: key.to_vec() }
    }

    fn mac(&self, signed: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC accepts any key");
        mac.update(b"herald dashboard link\0");
        mac.update(signed.as_bytes());
        mac
    }

    /// A token for `tenant` that opens its dashboard until `expires` (Unix seconds).
    pub(crate) fn sign(&self, tenant: &str, expires: i64) -> String {
        let signed = format!("{}.{expires}", URL_SAFE_NO_PAD.encode(tenant));
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&signed).finalize().into_bytes());
        format!("{LINK_PREFIX}{signed}.{signature}")
    }

    /// The tenant a token opens at `now` (Unix seconds): `None` if it is not ours, was
    /// altered, or has expired.
    pub(crate) fn verify(&self, token: &str, now: i64) -> Option<String> {
        let rest = token.strip_prefix(LINK_PREFIX)?;
        let (signed, signature) = rest.rsplit_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        // Constant-time comparison.
        self.mac(signed).verify_slice(&signature).ok()?;
        let (tenant, expires) = signed.split_once('.')?;
        if expires.parse::<i64>().ok()? <= now {
            return None;
        }
        String::from_utf8(URL_SAFE_NO_PAD.decode(tenant).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_open_one_tenant_until_they_expire() {
        let links = Links::new(b"key");
        let token = links.sign("acme", 1_000);
        assert!(token.starts_with("hrdl_"));
        assert_eq!(links.verify(&token, 999).as_deref(), Some("acme"));
        assert_eq!(links.verify(&token, 1_000), None, "expired");
        assert_eq!(Links::new(b"other").verify(&token, 0), None, "another key");

        let (signed, signature) = token.rsplit_once('.').unwrap();
        let forged_tenant = signed.replace(
            &URL_SAFE_NO_PAD.encode("acme"),
            &URL_SAFE_NO_PAD.encode("umbrella"),
        );
        let forged_expiry = signed.replace(".1000", ".9999");
        for forged in [
            format!("{forged_tenant}.{signature}"),
            format!("{forged_expiry}.{signature}"),
            format!("{signed}.{}", &signature[1..]),
            format!("{signed}."),
            signed.to_owned(),
            "hrdl_".into(),
            "hrld_acme.1000.x".into(),
        ] {
            assert_eq!(links.verify(&forged, 0), None, "{forged}");
        }
    }
}
