//! Every way a request can reach a handler or be refused before it.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap should panic loudly

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use herald_signature::Secret;
use tower::ServiceExt;

use super::*;

#[derive(serde::Deserialize)]
struct Subscription {
    username: String,
    monthly_fee: f64,
}

async fn handler(Verified { id, body, .. }: Verified<Subscription>) -> String {
    format!("{id}: {} pays {}", body.username, body.monthly_fee)
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OLD: &str = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24=";
const BODY: &str = r#"{"username":"rick","monthly_fee":9.99}"#;

fn now() -> i64 {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(seconds.as_secs()).unwrap()
}

async fn send(
    secrets: &str,
    id: Option<&str>,
    timestamp: i64,
    signature: Option<String>,
    body: &str,
) -> (StatusCode, String) {
    let app = Router::new()
        .route("/hook", post(handler))
        .with_state(secrets.parse::<Secrets>().unwrap());
    let mut request = Request::post("/hook").header("content-type", "application/json");
    if let Some(id) = id {
        request = request.header("webhook-id", id);
    }
    request = request.header("webhook-timestamp", timestamp.to_string());
    if let Some(signature) = signature {
        request = request.header("webhook-signature", signature);
    }
    let response = app
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

fn sign(secret: &str, id: &str, at: i64, body: &str) -> String {
    secret
        .parse::<Secret>()
        .unwrap()
        .sign(id, at, body.as_bytes())
}

/// One request: who signed what, and what the receiver should answer.
struct Case {
    name: &'static str,
    /// What the receiver accepts (`BOTH`: the current and the old secret).
    accepts: &'static str,
    id: Option<&'static str>,
    at: i64,
    signature: Option<String>,
    body: &'static str,
    status: StatusCode,
    says: &'static str,
}

const BOTH: &str = "both";

#[tokio::test]
async fn genuine_webhooks_reach_the_handler_and_others_are_refused() {
    let t = now();
    let good = sign(SECRET, "msg_1", t, BODY);
    let case = |name, accepts, signature: Option<String>, status, says| Case {
        name,
        accepts,
        id: Some("msg_1"),
        at: t,
        signature,
        body: BODY,
        status,
        says,
    };
    let not_json = "{";
    let not_the_type = r#"{"username":1}"#;
    let cases = [
        case(
            "signed",
            SECRET,
            Some(good.clone()),
            StatusCode::OK,
            "msg_1: rick pays 9.99",
        ),
        case(
            "the old secret during a rotation",
            BOTH,
            Some(sign(OLD, "msg_1", t, BODY)),
            StatusCode::OK,
            "rick",
        ),
        case(
            "no signature",
            SECRET,
            None,
            StatusCode::UNAUTHORIZED,
            "`webhook-signature` header is missing",
        ),
        Case {
            id: None,
            ..case(
                "no id",
                SECRET,
                Some(good.clone()),
                StatusCode::UNAUTHORIZED,
                "`webhook-id` header is missing",
            )
        },
        case(
            "wrong secret",
            OLD,
            Some(good.clone()),
            StatusCode::UNAUTHORIZED,
            "no signature matches",
        ),
        Case {
            body: r#"{"username":"morty","monthly_fee":9.99}"#,
            ..case(
                "body changed",
                SECRET,
                Some(good.clone()),
                StatusCode::UNAUTHORIZED,
                "no signature matches",
            )
        },
        Case {
            at: t - 600,
            ..case(
                "stale",
                SECRET,
                Some(sign(SECRET, "msg_1", t - 600, BODY)),
                StatusCode::UNAUTHORIZED,
                "ago",
            )
        },
        Case {
            body: not_json,
            ..case(
                "signed but not JSON",
                SECRET,
                Some(sign(SECRET, "msg_1", t, not_json)),
                StatusCode::BAD_REQUEST,
                "EOF",
            )
        },
        Case {
            body: not_the_type,
            ..case(
                "signed but not the type",
                SECRET,
                Some(sign(SECRET, "msg_1", t, not_the_type)),
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid type",
            )
        },
    ];
    for c in cases {
        let accepts = if c.accepts == BOTH {
            format!("{SECRET} {OLD}")
        } else {
            c.accepts.to_owned()
        };
        let (got, text) = send(&accepts, c.id, c.at, c.signature, c.body).await;
        assert_eq!(got, c.status, "{}: {text}", c.name);
        assert!(
            text.contains(c.says),
            "{}: {text:?} should say {:?}",
            c.name,
            c.says
        );
    }
}

#[test]
fn secrets_parse_one_or_several_and_never_print() {
    let secrets: Secrets = format!("{SECRET}, {OLD}").parse().unwrap();
    assert_eq!(format!("{secrets:?}"), "Secrets(2 redacted)");
    assert!("whsec_!!".parse::<Secrets>().is_err());
}

/// A receiver that holds only the sender's public key (`whpk_…`) verifies `v1a` signatures,
/// and refuses those of another key, a changed body, and `v1` signatures it has no secret for.
#[tokio::test]
async fn a_public_key_verifies_asymmetric_signatures() {
    use herald_signature::SigningKey;
    let key = SigningKey::generate().unwrap();
    let other = SigningKey::generate().unwrap();
    let public = key.public_key().expose();
    let at = now();
    let v1a = |key: &SigningKey, body: &str| Some(key.sign("msg_1", at, body.as_bytes()));
    let cases = [
        ("its key", v1a(&key, BODY), BODY, StatusCode::OK),
        (
            "another key",
            v1a(&other, BODY),
            BODY,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "a changed body",
            v1a(&key, BODY),
            r#"{"username":"morty","monthly_fee":9.99}"#,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "v1 beside it",
            Some(format!(
                "{} {}",
                sign(SECRET, "msg_1", at, BODY),
                key.sign("msg_1", at, BODY.as_bytes())
            )),
            BODY,
            StatusCode::OK,
        ),
        (
            "v1 alone",
            Some(sign(SECRET, "msg_1", at, BODY)),
            BODY,
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (name, signature, body, expected) in cases {
        let (status, text) = send(&public, Some("msg_1"), at, signature, body).await;
        assert_eq!(status, expected, "{name}: {text}");
    }
    // Both kinds at once: a receiver moving from a secret to a public key.
    let both = format!("{SECRET} {public}");
    let (status, _) = send(&both, Some("msg_1"), at, v1a(&key, BODY), BODY).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_version_of_a_versioned_webhook_is_read_from_its_header() {
    async fn version(Verified { version, .. }: Verified<Subscription>) -> String {
        format!("{version:?}")
    }
    let app = Router::new()
        .route("/hook", post(version))
        .with_state(SECRET.parse::<Secrets>().unwrap());
    for (header, expected) in [
        (Some("2026-01-01"), r#"Some("2026-01-01")"#),
        (None, "None"),
    ] {
        let at = now();
        let mut request = Request::post("/hook")
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", at.to_string())
            .header("webhook-signature", sign(SECRET, "msg_1", at, BODY));
        if let Some(header) = header {
            request = request.header("herald-event-version", header);
        }
        let response = app
            .clone()
            .oneshot(request.body(Body::from(BODY)).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(String::from_utf8(bytes.to_vec()).unwrap(), expected);
    }
}
