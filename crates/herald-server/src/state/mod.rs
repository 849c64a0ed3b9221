//! What every handler shares, and the extractors that check who is calling ([`extract`]).
//!
//! The store is private to this module: tenant-owned data is reached only through the
//! [`Scope`] extractor (which checks the caller may act for the tenant, and that it exists),
//! the rest of the store through [`Admin`], so a handler that skips the check has no store to
//! call.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use herald_delivery::metrics::Metrics;
use herald_delivery::target::TargetPolicy;
use herald_store::{Clock, Store, Upkeep};

use crate::auth::Credentials;
use crate::event_types::EventTypes;
use crate::problem::Problem;

mod extract;

pub(crate) use extract::{Admin, ApiJson, ApiQuery, CredentialScope, OptionalJson, Scope};

/// The tenants known to exist, at most this many (then the cache starts again).
const KNOWN_TENANTS: usize = 100_000;

/// The state of herald's routes.
#[derive(Clone)]
pub(crate) struct AppState {
    store: Arc<dyn Store>,
    /// Tenants seen to exist. herald never deletes a tenant, so a tenant once found stays
    /// found; asking the database once per tenant keeps it off every request's path.
    known_tenants: Arc<Mutex<HashSet<String>>>,
    /// The declared webhooks.
    pub(crate) event_types: Arc<EventTypes>,
    /// How presented tokens are checked.
    pub(crate) credentials: Credentials,
    /// Which addresses endpoints may point at.
    pub(crate) policy: Arc<TargetPolicy>,
    /// The longest a delivery attempt takes.
    pub(crate) attempt_timeout: Duration,
    /// What `/metrics` shows.
    pub(crate) metrics: Arc<Metrics>,
    /// Public halves of Ed25519 keys, derived once each.
    pub(crate) public_keys: Arc<PublicKeys>,
}

/// How many public keys are kept; past it the lot is dropped and derived again as asked, so a
/// key that stopped signing does not stay in memory for long.
const KEPT_PUBLIC_KEYS: usize = 4_096;

/// The public halves of signing keys, by key. Deriving one is a scalar multiplication (about
/// 40 µs); the JWKS document needs no credential and lists every key of a tenant, so deriving
/// them per request would let anyone make herald spend milliseconds per request.
#[derive(Default)]
pub(crate) struct PublicKeys {
    derived: Mutex<HashMap<String, herald_signature::PublicKey>>,
}

impl PublicKeys {
    /// The public half of the stored signing key `secret` (`whsk_…`).
    pub(crate) fn of(&self, secret: &str) -> Result<herald_signature::PublicKey, Problem> {
        let derived = || self.derived.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(public) = derived().get(secret) {
            return Ok(*public);
        }
        let signing: herald_signature::SigningKey =
            secret.parse().map_err(|e| Problem::internal(&e))?;
        let public = signing.public_key();
        let mut derived = derived();
        if derived.len() >= KEPT_PUBLIC_KEYS {
            derived.clear();
        }
        derived.insert(secret.to_owned(), public);
        Ok(public)
    }

    /// How many are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.derived
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl AppState {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        event_types: Arc<EventTypes>,
        credentials: Credentials,
        policy: Arc<TargetPolicy>,
        attempt_timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> AppState {
        AppState {
            store,
            known_tenants: Arc::default(),
            event_types,
            credentials,
            policy,
            attempt_timeout,
            metrics,
            public_keys: Arc::default(),
        }
    }

    /// The store's operational side: readiness and the queue's figures.
    pub(crate) fn upkeep(&self) -> &dyn Upkeep {
        &*self.store
    }

    /// The store's clock.
    pub(crate) fn clock(&self) -> &dyn Clock {
        &**self.store.clock()
    }

    /// The Ed25519 keys that sign for the tenant's endpoints now, for the one route that needs
    /// no credential: the JWKS document, which publishes only their public halves.
    pub(crate) async fn tenant_signing_keys(
        &self,
        tenant: &str,
    ) -> Result<Vec<herald_store::EndpointSecret>, herald_store::Error> {
        self.store.tenant_signing_keys(tenant).await
    }

    /// The whole store; for the extractors, which check the caller first.
    fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Succeeds when tenant `id` exists; the 404 otherwise.
    async fn existing_tenant(&self, id: &str) -> Result<(), Problem> {
        if self.known().contains(id) {
            return Ok(());
        }
        if self.store.tenant(id).await?.is_none() {
            return Err(Problem::not_found(format!("no tenant `{id}`")));
        }
        let mut known = self.known();
        if known.len() >= KNOWN_TENANTS {
            known.clear();
        }
        known.insert(id.to_owned());
        Ok(())
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A panic while holding the lock leaves a set that is still a set.
        self.known_tenants
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_key_is_derived_once_and_is_the_keys_own() {
        let keys = PublicKeys::default();
        let secret = herald_signature::SigningKey::generate().unwrap().expose();
        let first = keys.of(&secret).unwrap();
        assert!(keys.of(&secret).unwrap() == first);
        assert_eq!(keys.len(), 1, "kept once");
        let signing: herald_signature::SigningKey = secret.parse().unwrap();
        assert!(signing.public_key() == first);
        assert!(keys.of("whsk_not-a-key").is_err());
        assert_eq!(keys.len(), 1, "nothing kept for a key that does not parse");
    }
}
