//! The keys claimed deliveries are signed with, parsed once per key rather than once per
//! delivery: parsing an Ed25519 key derives its public half (a scalar multiplication, as dear as
//! the signature itself), where a secret is only base64.

use std::collections::HashMap;
use std::sync::Mutex;

use herald_signature::{SIGNING_KEY_PREFIX, Signer, SigningKey};

/// How many Ed25519 keys are kept parsed; past it the lot is dropped and parsed again as used,
/// so a key that stopped signing does not stay in memory for long.
const KEPT: usize = 4_096;

/// Ed25519 keys already parsed, by their stored text.
#[derive(Default)]
pub(crate) struct Keys {
    parsed: Mutex<HashMap<String, SigningKey>>,
}

impl Keys {
    /// The signers of `stored` keys (`whsec_…`, `whsk_…`); one that does not parse is left out,
    /// as the store should never hold it.
    pub(crate) fn signers(&self, stored: &[String]) -> Vec<Signer> {
        stored
            .iter()
            .filter_map(|text| {
                if text.starts_with(SIGNING_KEY_PREFIX) {
                    self.ed25519(text).map(Signer::Ed25519)
                } else {
                    text.parse().ok()
                }
            })
            .collect()
    }

    fn ed25519(&self, text: &str) -> Option<SigningKey> {
        let mut parsed = self
            .parsed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(key) = parsed.get(text) {
            return Some(key.clone());
        }
        let key: SigningKey = text.parse().ok()?;
        if parsed.len() >= KEPT {
            parsed.clear();
        }
        parsed.insert(text.to_owned(), key.clone());
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn keys_sign_as_parsed_and_ed25519_ones_are_parsed_once() {
        let key = SigningKey::generate().unwrap().expose();
        let stored = vec![key.clone(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()];
        let keys = Keys::default();
        let signers = keys.signers(&stored);
        let expected: Vec<Signer> = stored.iter().map(|k| k.parse().unwrap()).collect();
        assert_eq!(signers, expected);
        assert_eq!(
            keys.signers(&stored),
            expected,
            "the second time, from the kept ones"
        );
        assert_eq!(
            keys.parsed.lock().unwrap().len(),
            1,
            "only the Ed25519 key is kept"
        );
        assert_eq!(
            keys.signers(&["whsk_AAAA".into()]),
            [],
            "a bad key signs nothing"
        );
    }
}
