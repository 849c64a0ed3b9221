//! Endpoints signed with Ed25519 (`v1a`): their public keys through the API and in the tenant's
//! JWKS document (no credential), moving between HMAC and Ed25519 through `both`, rotation.

use std::time::{Duration, SystemTime};

use herald_signature::{Key, PublicKey, Secret, Signed};
use serde_json::{Value, json};

use crate::support::{ADMIN, Answer, Server, TestReceiver, databases, drop_database};

fn event() -> Value {
    json!({
        "event_type": "new-subscription",
        "payload": { "username": "rick", "monthly_fee": 5.0, "start_date": "2026-11-22T00:00:00Z" },
    })
}

/// Sends an event and waits for its delivery; the signature header it came with, and whether
/// `keys` verify it.
async fn delivered_with(
    server: &Server,
    receiver: &TestReceiver,
    keys: &[Key],
) -> (String, Result<(), herald_signature::ErrorKind>) {
    let (status, accepted) = server
        .call(
            "POST",
            "/api/v1/tenants/acme/events",
            Some(ADMIN),
            Some(event()),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let arrival = loop {
        if let Some(a) = receiver.arrivals().into_iter().find(|a| a.webhook_id == id) {
            break a;
        }
        assert!(std::time::Instant::now() < deadline, "{id} never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let signed = Signed {
        id: &arrival.webhook_id,
        timestamp: &arrival.timestamp,
        signature: &arrival.signature,
        body: arrival.body.as_bytes(),
    };
    let verified = signed
        .verify_with(keys, SystemTime::now())
        .map_err(|e| e.kind());
    (arrival.signature, verified)
}

/// The tenant's JWKS document, fetched with no credential, as `whpk_` keys.
async fn published(server: &Server, tenant: &str) -> (Vec<Key>, Value) {
    let response = reqwest::get(format!("{}/api/v1/tenants/{tenant}/jwks.json", server.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/jwk-set+json"
    );
    assert!(response.headers().contains_key("cache-control"));
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|jwk| {
            assert_eq!(jwk["kty"], "OKP");
            assert_eq!(jwk["crv"], "Ed25519");
            assert_eq!(jwk["alg"], "EdDSA");
            assert_eq!(jwk["use"], "sig");
            use base64::Engine;
            let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(jwk["x"].as_str().unwrap())
                .unwrap();
            let whpk = format!(
                "whpk_{}",
                base64::engine::general_purpose::STANDARD.encode(x)
            );
            let key: PublicKey = whpk.parse().unwrap();
            assert_eq!(jwk["kid"], key.thumbprint());
            Key::Public(key)
        })
        .collect();
    (keys, jwks)
}

/// The versions of the signatures in a header, sorted.
fn parts(signature: &str) -> Vec<&str> {
    let mut versions: Vec<&str> = signature
        .split_whitespace()
        .map(|p| p.split_once(',').unwrap().0)
        .collect();
    versions.sort_unstable();
    versions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ed25519_endpoints_sign_v1a_and_publish_their_keys() {
    for (url, admin) in databases("signing").await {
        let server = Server::start(&url).await;
        let receiver = TestReceiver::start(Answer::Ok).await;
        for tenant in ["acme", "umbrella"] {
            let (status, _) = server
                .call(
                    "POST",
                    "/api/v1/tenants",
                    Some(ADMIN),
                    Some(json!({ "id": tenant })),
                )
                .await;
            assert_eq!(status, 201);
        }
        let endpoints = "/api/v1/tenants/acme/endpoints";
        let (status, problem) = server
            .call(
                "POST",
                endpoints,
                Some(ADMIN),
                Some(json!({ "url": receiver.url, "signature": "rsa" })),
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        let (status, created) = server
            .call(
                "POST",
                endpoints,
                Some(ADMIN),
                Some(json!({ "url": receiver.url, "signature": "ed25519" })),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["signature"], "ed25519");
        assert!(created.get("secret").is_none(), "{created}");
        let public_key = created["public_key"].as_str().unwrap().to_owned();
        assert!(public_key.starts_with("whpk_"), "{created}");
        let e = format!("{endpoints}/{}", created["id"].as_str().unwrap());

        // The key is published with no credential, and listed for the tenant.
        let (keys, jwks) = published(&server, "acme").await;
        assert_eq!(keys, [Key::Public(public_key.parse().unwrap())]);
        let (status, listed) = server
            .call("GET", &format!("{e}/keys"), Some(ADMIN), None)
            .await;
        assert_eq!(status, 200, "{listed}");
        assert_eq!(listed["keys"][0]["public_key"], public_key.as_str());
        assert_eq!(listed["keys"][0]["kid"], jwks["keys"][0]["kid"]);
        assert_eq!(listed["jwks"], "/api/v1/tenants/acme/jwks.json");
        assert_eq!(
            published(&server, "umbrella").await.0,
            [],
            "not another tenant's"
        );
        assert_eq!(
            published(&server, "nobody").await.0,
            [],
            "nor a tenant that is not"
        );
        for (method, path) in [("GET", "secret"), ("POST", "secret/rotate")] {
            let (status, problem) = server
                .call(method, &format!("{e}/{path}"), Some(ADMIN), None)
                .await;
            assert_eq!(
                status, 409,
                "{path}: no secret to read or rotate: {problem}"
            );
        }

        // A delivery carries one v1a signature, which the published key verifies.
        let (signature, verified) = delivered_with(&server, &receiver, &keys).await;
        assert_eq!(parts(&signature), ["v1a"]);
        assert_eq!(verified, Ok(()));

        // Both: a secret is added beside the key, and each verifies on its own.
        let (status, updated) = server
            .call(
                "PATCH",
                &e,
                Some(ADMIN),
                Some(json!({ "signature": "both" })),
            )
            .await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["signature"], "both");
        let (status, secret) = server
            .call("GET", &format!("{e}/secret"), Some(ADMIN), None)
            .await;
        assert_eq!(status, 200, "{secret}");
        let secret: Secret = secret["secret"].as_str().unwrap().parse().unwrap();
        let (signature, verified) =
            delivered_with(&server, &receiver, &[Key::Secret(secret.clone())]).await;
        assert_eq!(parts(&signature), ["v1", "v1a"]);
        assert_eq!(verified, Ok(()), "the secret alone");
        let (_, verified) = delivered_with(&server, &receiver, &keys).await;
        assert_eq!(verified, Ok(()), "the public key alone");

        // Rotating the key: both are published and both sign while the old one lasts.
        let (status, rotated) = server
            .call("POST", &format!("{e}/keys/rotate"), Some(ADMIN), None)
            .await;
        assert_eq!(status, 200, "{rotated}");
        assert_eq!(rotated["keys"].as_array().unwrap().len(), 2, "{rotated}");
        assert_eq!(
            rotated["keys"][1]["public_key"],
            public_key.as_str(),
            "old last"
        );
        assert!(rotated["keys"][1]["expires_at"].is_string());
        let (both_keys, _) = published(&server, "acme").await;
        assert_eq!(both_keys.len(), 2);
        let newest: Key = rotated["keys"][0]["public_key"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let (signature, verified) = delivered_with(&server, &receiver, &[newest]).await;
        assert_eq!(parts(&signature), ["v1", "v1a", "v1a"]);
        assert_eq!(verified, Ok(()), "the new key alone");

        // Back to HMAC: no key signs or is published; the secret goes on signing.
        let (status, _) = server
            .call(
                "PATCH",
                &e,
                Some(ADMIN),
                Some(json!({ "signature": "hmac" })),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(published(&server, "acme").await.0, []);
        let (_, listed) = server
            .call("GET", &format!("{e}/keys"), Some(ADMIN), None)
            .await;
        assert_eq!(listed["keys"], json!([]));
        let (status, problem) = server
            .call("POST", &format!("{e}/keys/rotate"), Some(ADMIN), None)
            .await;
        assert_eq!(status, 409, "{problem}");
        let (signature, verified) =
            delivered_with(&server, &receiver, &[Key::Secret(secret)]).await;
        assert_eq!(parts(&signature), ["v1"]);
        assert_eq!(verified, Ok(()));
        let (_, verified) = delivered_with(&server, &receiver, &keys).await;
        assert_eq!(
            verified,
            Err(herald_signature::ErrorKind::NoMatchingSignature),
            "an old public key no longer verifies anything"
        );
        drop(server);
        drop_database(&url, admin).await;
    }
}
