//! The specification's own vector, and every way a message can fail to verify.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, UNIX_EPOCH};

use super::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TIMESTAMP: i64 = 1614265330;
const BODY: &[u8] = br#"{"test": 2432232314}"#;
const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn at(seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds as u64)
}

#[test]
fn the_specification_vector_signs_as_published() {
    let secret: Secret = SECRET.parse().unwrap();
    assert_eq!(secret.sign(ID, TIMESTAMP, BODY), EXPECTED);
    let unprefixed: Secret = SECRET.trim_start_matches("whsec_").parse().unwrap();
    assert_eq!(unprefixed, secret);
    assert_eq!(secret.expose(), SECRET);
}

#[test]
fn one_signature_per_secret_space_separated() {
    let old: Secret = SECRET.parse().unwrap();
    let new = Secret::generate().unwrap();
    let header = signature_header([&old, &new], ID, TIMESTAMP, BODY);
    let parts: Vec<&str> = header.split(' ').collect();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0], EXPECTED);
    // A receiver holding either secret accepts it.
    for secret in [old, new] {
        let signed = Signed {
            id: ID,
            timestamp: "1614265330",
            signature: &header,
            body: BODY,
        };
        signed.verify(&[secret], at(TIMESTAMP)).unwrap();
    }
}

/// A case: its name, the message, the receiver's secrets, the receiver's clock, the outcome.
type Case<'a> = (&'a str, Signed<'a>, Vec<Secret>, i64, Option<ErrorKind>);

#[test]
fn verification_outcomes() {
    let secret: Secret = SECRET.parse().unwrap();
    let other = Secret::generate().unwrap();
    let truncated = &EXPECTED[..EXPECTED.len() - 4];
    let ts = "1614265330";
    let among_others = format!("v1,bm9wZQ== {EXPECTED} v2,xyz");
    let other_version = EXPECTED.replace("v1,", "v2,");
    let cases: Vec<Case<'_>> = vec![
        (
            "valid",
            Signed {
                id: ID,
                timestamp: ts,
                signature: EXPECTED,
                body: BODY,
            },
            vec![secret.clone()],
            TIMESTAMP,
            None,
        ),
        (
            "valid among others",
            Signed {
                id: ID,
                timestamp: ts,
                signature: &among_others,
                body: BODY,
            },
            vec![secret.clone()],
            TIMESTAMP,
            None,
        ),
        (
            "second secret matches",
            Signed {
                id: ID,
                timestamp: ts,
                signature: EXPECTED,
                body: BODY,
            },
            vec![other.clone(), secret.clone()],
            TIMESTAMP,
            None,
        ),
        (
            "just inside tolerance",
            Signed {
                id: ID,
                timestamp: ts,
                signature: EXPECTED,
                body: BODY,
            },
            vec![secret.clone()],
            TIMESTAMP + 300,
            None,
        ),
        (
            "wrong secret",
            Signed {
                id: ID,
                timestamp: ts,
                signature: EXPECTED,
                body: BODY,
            },
            vec![other.clone()],
            TIMESTAMP,
            Some(ErrorKind::NoMatchingSignature),
        ),
        (
            "body changed",
            Signed {
                id: ID,
                timestamp: ts,
                signature: EXPECTED,
                body: br#"{"test": 2432232315}"#,
            },
            vec![secret.clone()],
            TIMESTAMP,
            Some(ErrorKind::NoMatchingSignature),
        ),
        (
            "id changed",
            Signed {
                id: "msg_other",
                timestamp: ts,
                signature: EXPECTED,
                body: BODY,
            },
            vec![secret.clone()],
            TIMESTAMP,
            Some(ErrorKind::NoMatchingSignature),
        ),
        (
            "truncated signature",
            Signed {
                id: ID,
                timestamp: ts,
                signature: truncated,
                body: BODY,
            },
            vec![secret.clone()],
            TIMESTAMP,
            Some(ErrorKind::NoMatchingSignature),
        ),
        (
            "wrong version",
            Signed {
                id: ID,
                timestamp: ts,
                signature: &other_version,
                body: BODY,
            },
            vec![secret.clone()],
            TIMESTAMP,
            Some(ErrorKind::NoMatchingSignature),
        ),
        (
            "stale",
            Signed {
                id: ID,
                timestamp: ts,
                signature: EXPECTED,
                body: BODY,
            },
            vec![secret.clone()],
            TIMESTAMP + 301,
            Some(ErrorKind::TimestampTooOld),
        ),
        (
            "future",
            Signed {
                id: ID,
                timestamp: ts,
                signature: EXPECTED,
                body: BODY,
            },
            vec![secret.clone()],
            TIMESTAMP - 301,
            Some(ErrorKind::TimestampTooNew),
        ),
        (
            "timestamp not a number",
            Signed {
                id: ID,
                timestamp: "soon",
                signature: EXPECTED,
                body: BODY,
            },
            vec![secret.clone()],
            TIMESTAMP,
            Some(ErrorKind::InvalidTimestamp),
        ),
        (
            "missing id",
            Signed {
                id: "",
                timestamp: ts,
                signature: EXPECTED,
                body: BODY,
            },
            vec![secret.clone()],
            TIMESTAMP,
            Some(ErrorKind::MissingHeader),
        ),
        (
            "missing signature",
            Signed {
                id: ID,
                timestamp: ts,
                signature: " ",
                body: BODY,
            },
            vec![secret.clone()],
            TIMESTAMP,
            Some(ErrorKind::MissingHeader),
        ),
        (
            "missing timestamp",
            Signed {
                id: ID,
                timestamp: "",
                signature: EXPECTED,
                body: BODY,
            },
            vec![secret.clone()],
            TIMESTAMP,
            Some(ErrorKind::MissingHeader),
        ),
    ];
    for (name, signed, secrets, now, expected) in cases {
        let outcome = signed.verify(&secrets, at(now)).err().map(|e| e.kind());
        assert_eq!(outcome, expected, "{name}");
    }
}

#[test]
fn bad_secrets_are_refused_and_never_printed() {
    for text in ["whsec_", "whsec_not base64!", ""] {
        assert_eq!(
            text.parse::<Secret>().unwrap_err().kind(),
            ErrorKind::InvalidSecret,
            "{text:?}"
        );
    }
    let secret: Secret = SECRET.parse().unwrap();
    assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
}

#[test]
fn generated_secrets_differ_and_round_trip() {
    let a = Secret::generate().unwrap();
    let b = Secret::generate().unwrap();
    assert_ne!(a, b);
    assert_eq!(a.expose().parse::<Secret>().unwrap(), a);
    assert_eq!(a.expose().len(), "whsec_".len() + 32);
}
