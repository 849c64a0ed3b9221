//! `v1a` against vectors computed by implementations nobody on herald wrote: RFC 8032's own, and
//! PyNaCl (libsodium) over the specification's example message.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::{Key, Secret, Signed};

/// RFC 8032, section 7.1, test 1.
const RFC_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const RFC_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const RFC_SIGNATURE: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

/// The same seed's keys and the `v1a` signature of the specification's example message (the
/// one whose `v1` vector `crate::tests` checks), as PyNaCl 1.6 (libsodium) writes them:
/// `nacl.signing.SigningKey(seed).sign(b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}")`.
const WHSK: &str =
    "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2DXWpgBgrEKt9VL/tPJZAc6DuFy89qmIyWvAhpo9wdRGg==";
const WHPK: &str = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
const V1A: &str =
    "v1a,fldxM4gAKugP6nnt1hdz3sgGfZ6d99nzrMFnZOELIxbzEHoVmAb2ADpkJK7zgPePmPsle0zV9jSeGlHFG2NVAw==";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TIMESTAMP: i64 = 1614265330;
const BODY: &[u8] = br#"{"test": 2432232314}"#;

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn seed() -> [u8; 32] {
    hex(RFC_SEED).try_into().unwrap()
}

fn received(signature: &str) -> Signed<'_> {
    Signed {
        id: ID,
        timestamp: "1614265330",
        signature,
        body: BODY,
    }
}

fn now() -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(1614265330 + 10)
}

#[test]
fn the_rfc_8032_vector_signs_as_published() {
    let key = SigningKey::from_seed(seed());
    assert_eq!(key.public_key().0.as_bytes().to_vec(), hex(RFC_PUBLIC));
    assert_eq!(key.0.sign(b"").to_bytes().to_vec(), hex(RFC_SIGNATURE));
}

#[test]
fn keys_and_signatures_match_pynacl() {
    let key = SigningKey::from_seed(seed());
    assert_eq!(key.expose(), WHSK);
    assert_eq!(key.public_key().expose(), WHPK);
    assert_eq!(key.sign(ID, TIMESTAMP, BODY), V1A);
    assert_eq!(WHSK.parse::<SigningKey>().unwrap(), key);
    let bare_seed = format!("whsk_{}", STANDARD.encode(seed()));
    assert_eq!(bare_seed.parse::<SigningKey>().unwrap(), key);
    assert_eq!(
        key.public_key().jwk_x(),
        "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    );
}

#[test]
fn the_thumbprint_is_rfc_8037s() {
    // RFC 8037, appendix A.3: the thumbprint of the same public key.
    let key = SigningKey::from_seed(seed()).public_key();
    assert_eq!(
        key.thumbprint(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
}

#[test]
fn a_sender_signs_with_whatever_its_key_is() {
    let keys: Vec<crate::Signer> = [WHSK, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
        .iter()
        .map(|k| k.parse().unwrap())
        .collect();
    assert_eq!(
        crate::signature_header(&keys, ID, TIMESTAMP, BODY),
        format!("{V1A} v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
    );
    assert_eq!(format!("{:?}", keys[0]), "Ed25519(SigningKey(<redacted>))");
    assert_eq!(
        "whsk_AAAA".parse::<crate::Signer>().unwrap_err().kind(),
        ErrorKind::InvalidKey
    );
}

#[test]
fn a_public_key_verifies_v1a_and_nothing_else_does() {
    let public: Key = WHPK.parse().unwrap();
    let secret: Key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
    let other = Key::Public(SigningKey::generate().unwrap().public_key());
    let v1 = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    let both = format!("{v1} {V1A}");
    let kind =
        |signed: Signed<'_>, keys: &[Key]| signed.verify_with(keys, now()).err().map(|e| e.kind());
    let refused = Some(ErrorKind::NoMatchingSignature);
    assert_eq!(kind(received(V1A), std::slice::from_ref(&public)), None);
    assert_eq!(
        kind(received(&both), std::slice::from_ref(&public)),
        None,
        "beside v1"
    );
    assert_eq!(
        kind(received(&both), std::slice::from_ref(&secret)),
        None,
        "v1 still works"
    );
    assert_eq!(
        kind(received(V1A), std::slice::from_ref(&other)),
        refused,
        "another key"
    );
    assert_eq!(
        kind(received(V1A), std::slice::from_ref(&secret)),
        refused,
        "a secret"
    );
    let secrets: Vec<Secret> = vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap()];
    assert_eq!(
        received(V1A).verify(&secrets, now()).unwrap_err().kind(),
        ErrorKind::NoMatchingSignature,
        "`verify` knows secrets only"
    );
    let tampered = Signed {
        body: br#"{"test": 2432232315}"#,
        ..received(V1A)
    };
    assert_eq!(
        kind(tampered, std::slice::from_ref(&public)),
        refused,
        "a changed body"
    );
    let later = Signed {
        timestamp: "1614265331",
        ..received(V1A)
    };
    assert_eq!(
        kind(later, std::slice::from_ref(&public)),
        refused,
        "a changed timestamp"
    );
    // A signature of the wrong length, or not base64, is no match rather than an error.
    assert_eq!(kind(received("v1a,AAAA v1a,%%%"), &[public]), refused);
}

#[test]
fn bad_keys_are_refused_and_signing_keys_never_printed() {
    let mismatched = {
        let mut pair = hex(RFC_SEED);
        pair.extend_from_slice(&[0u8; 32]);
        format!("whsk_{}", STANDARD.encode(pair))
    };
    for text in [
        "whsk_",
        "whsk_not base64!",
        "whsk_AAAA",
        mismatched.as_str(),
        "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2DXWpgBgrEKt9VL/tPJZAc6DuFy89qmIyWvAhpo9wdRGg==",
    ] {
        assert_eq!(
            text.parse::<SigningKey>().unwrap_err().kind(),
            ErrorKind::InvalidKey,
            "{text:?}"
        );
    }
    for text in ["whpk_", "whpk_AAAA", WHSK] {
        assert_eq!(
            text.parse::<PublicKey>().unwrap_err().kind(),
            ErrorKind::InvalidKey,
            "{text:?}"
        );
    }
    let key: SigningKey = WHSK.parse().unwrap();
    assert_eq!(format!("{key:?}"), "SigningKey(<redacted>)");
    let a = SigningKey::generate().unwrap();
    assert_ne!(a, SigningKey::generate().unwrap());
    assert_eq!(a.expose().parse::<SigningKey>().unwrap(), a);
}
