//! How endpoints sign: secrets and Ed25519 keys, rotating them, and changing from one to the
//! other.

use crate::timed::Timed;
use herald_store::{EndpointPatch, NewEvent, Signature, SignatureChange};

use super::{SECRET, T0, tenant_with_endpoint};

/// Ed25519 signing keys as herald stores them (`whsk_` and base64; the store never parses
/// them, it only tells them from secrets by their prefix).
const KEY_A: &str = "whsk_a2V5LWEtZm9yLXRlc3RzLWtleS1hLWZvci10ZXN0cw==";
const KEY_B: &str = "whsk_a2V5LWItZm9yLXRlc3RzLWtleS1iLWZvci10ZXN0cw==";
const OTHER_SECRET: &str = "whsec_b3RoZXItc2VjcmV0LWZvci10ZXN0cw==";

pub(crate) async fn rotated_secrets_sign_beside_the_new_one_until_they_expire(store: &Timed) {
    let endpoint = tenant_with_endpoint(store, "acme").await;
    store.create_tenant("umbrella", T0).await.unwrap();
    let new = "whsec_bmV3LXNlY3JldC1mb3ItdGVzdHM=";
    assert_eq!(
        store
            .rotate_secret("umbrella", &endpoint, new, T0 + 1000, T0)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.secrets("umbrella", &endpoint, T0).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .rotate_secret("acme", &endpoint, new, T0 + 1000, T0 + 10)
            .await
            .unwrap(),
        Some(Signature::Hmac)
    );
    let both = store
        .secrets("acme", &endpoint, T0 + 20)
        .await
        .unwrap()
        .unwrap();
    let names: Vec<_> = both.iter().map(|s| s.secret.as_str()).collect();
    assert_eq!(names, [new, SECRET], "the new secret first");
    assert_eq!(both[1].expires_at, Some(T0 + 1000));

    store
        .accept_event(NewEvent::new("acme", "t", "{}"), T0 + 20)
        .await
        .unwrap();
    let claimed = store
        .claim_due("w", 10, T0 + 60_000, T0 + 30)
        .await
        .unwrap();
    assert_eq!(claimed[0].secrets.len(), 2, "both sign while rotating");

    let after = store
        .secrets("acme", &endpoint, T0 + 1000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.len(), 1, "the old secret has expired");
    assert_eq!(after[0].secret, new);
}

/// The keys that sign for `endpoint` at `now`, newest first.
async fn signing(store: &Timed, endpoint: &str, now: i64) -> Vec<String> {
    let keys = store.secrets("acme", endpoint, now).await.unwrap().unwrap();
    keys.into_iter().map(|k| k.secret).collect()
}

fn change(signature: Signature) -> EndpointPatch {
    EndpointPatch {
        signature: Some(SignatureChange {
            signature,
            fresh_keys: vec![OTHER_SECRET.into(), KEY_B.into()],
        }),
        ..EndpointPatch::default()
    }
}

pub(crate) async fn a_change_of_signature_adds_and_drops_keys_by_kind(store: &Timed) {
    let endpoint = tenant_with_endpoint(store, "acme").await;
    store.create_tenant("umbrella", T0).await.unwrap();
    let both = EndpointPatch {
        signature: Some(SignatureChange {
            signature: Signature::Both,
            fresh_keys: vec![OTHER_SECRET.into(), KEY_A.into()],
        }),
        ..EndpointPatch::default()
    };
    let updated = store
        .update_endpoint("acme", &endpoint, both, T0 + 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.signature, Signature::Both);
    assert_eq!(
        store
            .endpoint("acme", &endpoint)
            .await
            .unwrap()
            .unwrap()
            .signature,
        Signature::Both
    );
    let mut keys = signing(store, &endpoint, T0 + 20).await;
    keys.sort();
    assert_eq!(
        keys,
        [SECRET, KEY_A],
        "the secret it had stays, the key is added; the fresh secret is not needed"
    );
    store
        .accept_event(NewEvent::new("acme", "t", "{}"), T0 + 20)
        .await
        .unwrap();
    let claimed = store
        .claim_due("w", 10, T0 + 60_000, T0 + 30)
        .await
        .unwrap();
    let mut claimed_keys = claimed[0].secrets.clone();
    claimed_keys.sort();
    assert_eq!(
        claimed_keys,
        [SECRET, KEY_A],
        "a delivery is signed both ways"
    );

    // Ed25519 only: the secret stops signing at once; the key it has stays.
    store
        .update_endpoint("acme", &endpoint, change(Signature::Ed25519), T0 + 40)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(signing(store, &endpoint, T0 + 40).await, [KEY_A]);

    // A secret cannot be rotated in for an endpoint that does not sign with secrets.
    assert_eq!(
        store
            .rotate_secret("acme", &endpoint, OTHER_SECRET, T0 + 1000, T0 + 50)
            .await
            .unwrap(),
        Some(Signature::Ed25519)
    );
    assert_eq!(
        signing(store, &endpoint, T0 + 50).await,
        [KEY_A],
        "unchanged"
    );

    // Rotating the key: both sign until the old one expires; only keys of its kind expire.
    assert_eq!(
        store
            .rotate_secret("acme", &endpoint, KEY_B, T0 + 1000, T0 + 60)
            .await
            .unwrap(),
        Some(Signature::Ed25519)
    );
    assert_eq!(signing(store, &endpoint, T0 + 70).await, [KEY_B, KEY_A]);
    let published = store.tenant_signing_keys("acme", T0 + 70).await.unwrap();
    let published: Vec<_> = published.iter().map(|k| k.secret.as_str()).collect();
    assert_eq!(published, [KEY_A, KEY_B], "the tenant's keys, oldest first");
    assert!(
        store
            .tenant_signing_keys("umbrella", T0 + 70)
            .await
            .unwrap()
            .is_empty(),
        "another tenant's keys are not its"
    );
    assert!(
        store
            .tenant_signing_keys("nobody", T0 + 70)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        signing(store, &endpoint, T0 + 1000).await,
        [KEY_B],
        "expired"
    );
    let published = store.tenant_signing_keys("acme", T0 + 1000).await.unwrap();
    assert_eq!(published.len(), 1, "an expired key is no longer published");

    // Back to HMAC: a fresh secret (the old one was deleted), and no key is left to publish.
    store
        .update_endpoint("acme", &endpoint, change(Signature::Hmac), T0 + 1100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(signing(store, &endpoint, T0 + 1100).await, [OTHER_SECRET]);
    assert!(
        store
            .tenant_signing_keys("acme", T0 + 1100)
            .await
            .unwrap()
            .is_empty()
    );
}
