#![allow(clippy::unwrap_used)]
use std::time::{SystemTime, UNIX_EPOCH};

use super::*;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(exp: u64) -> Claims {
    Claims {
        iss: "https://vendor.permetrix.fly.dev".into(),
        sub: "ann".into(),
        vendor: "vector".into(),
        tenant: "acme".into(),
        tool: "ECU Suite".into(),
        product_id: "ecu".into(),
        borrow_id: "6f1d2c3b-4a59-4e68-b7c6-d5e4f3a2b1c0".into(),
        fingerprint: Some("laptop-7f3a".into()),
        iat: now() - 10,
        exp,
    }
}

fn key(kid: &str) -> SigningKey {
    SigningKey::from_pkcs8(kid, &generate_key().unwrap().pkcs8).unwrap()
}

fn set_of(keys: &[&SigningKey]) -> JwkSet {
    JwkSet {
        keys: keys.iter().map(|k| jwk(k.kid(), k.public_key())).collect(),
    }
}

fn part(token: &str, i: usize) -> serde_json::Value {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(i).unwrap())
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// `token` with its claims part replaced by `claims`, the signature kept.
fn with_claims(token: &str, claims: &serde_json::Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    format!("{}.{body}.{}", parts[0], parts[2])
}

#[test]
fn a_token_verifies_against_its_key_and_carries_the_claims() {
    let k = key("vector.a1");
    let c = claims(now() + 3_600);
    let token = k.sign(&c).unwrap();
    assert_eq!(
        part(&token, 0),
        serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": "vector.a1"})
    );
    assert_eq!(verify(&token, &set_of(&[&k]), None), Ok(c.clone()));
    assert_eq!(verify(&token, &set_of(&[&k]), Some("vector")), Ok(c));
    // Ed25519 is deterministic: the same claims give the same token.
    assert_eq!(token, k.sign(&claims_like(&token)).unwrap());
}

fn claims_like(token: &str) -> Claims {
    serde_json::from_value(part(token, 1)).unwrap()
}

#[test]
fn an_expired_token_is_refused() {
    let k = key("k");
    let exp = now() - 1;
    let token = k.sign(&claims(exp)).unwrap();
    assert_eq!(
        verify(&token, &set_of(&[&k]), None),
        Err(VerifyError::Expired { exp })
    );
}

#[test]
fn another_vendors_key_does_not_verify_the_token() {
    let ours = key("vector.a1");
    let theirs = key("other.b2");
    let token = ours.sign(&claims(now() + 60)).unwrap();
    assert_eq!(
        verify(&token, &set_of(&[&theirs]), None),
        Err(VerifyError::UnknownKey("vector.a1".into()))
    );
    // Even a set that reuses the kid for another key refuses it.
    let impostor = jwk("vector.a1", theirs.public_key());
    let set = JwkSet {
        keys: vec![impostor],
    };
    assert_eq!(verify(&token, &set, None), Err(VerifyError::BadSignature));
    assert_eq!(
        verify(&token, &set_of(&[&ours]), Some("other")),
        Err(VerifyError::WrongVendor {
            found: "vector".into(),
            expected: "other".into()
        })
    );
}

#[test]
fn a_changed_claim_breaks_the_signature() {
    let k = key("k");
    let token = k.sign(&claims(now() + 60)).unwrap();
    for (claim, value) in [
        ("sub", serde_json::json!("mallory")),
        ("exp", serde_json::json!(now() + 999_999)),
        ("tool", serde_json::json!("Other Tool")),
    ] {
        let mut c = part(&token, 1);
        c[claim] = value;
        assert_eq!(
            verify(&with_claims(&token, &c), &set_of(&[&k]), None),
            Err(VerifyError::BadSignature),
            "{claim}"
        );
    }
}

#[test]
fn tokens_of_other_algorithms_or_shapes_are_refused() {
    let k = key("k");
    let token = k.sign(&claims(now() + 60)).unwrap();
    let (_, rest) = token.split_once('.').unwrap();
    for header in [
        serde_json::json!({"alg": "none", "kid": "k"}),
        serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "k"}),
        serde_json::json!({"alg": "EdDSA", "typ": "JWT"}),
    ] {
        let forged = format!(
            "{}.{rest}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap())
        );
        assert!(
            matches!(
                verify(&forged, &set_of(&[&k]), None),
                Err(VerifyError::Malformed(_))
            ),
            "{header}"
        );
    }
    assert!(matches!(
        verify("not a token", &set_of(&[&k]), None),
        Err(VerifyError::Malformed(_))
    ));
    // A string `exp`, even correctly signed, is malformed, not absent (jsonwebtoken
    // before 10.3 skipped the expiry check of such a token).
    let mut c = part(&token, 1);
    c["exp"] = serde_json::json!("99999999999");
    let header = Header {
        kid: Some("k".into()),
        ..Header::new(Algorithm::EdDSA)
    };
    let signed = jsonwebtoken::encode(&header, &c, &k.key).unwrap();
    assert!(matches!(
        verify(&signed, &set_of(&[&k]), None),
        Err(VerifyError::Malformed(_))
    ));
}

#[test]
fn the_jwk_has_exactly_the_rfc_8037_fields() {
    let k = key("vector.a1");
    let value = serde_json::to_value(jwk(k.kid(), k.public_key())).unwrap();
    assert_eq!(
        value,
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(k.public_key()),
            "kid": "vector.a1",
            "alg": "EdDSA",
            "use": "sig",
        })
    );
    let parsed: JwkSet = serde_json::from_value(serde_json::json!({"keys": [value]})).unwrap();
    assert_eq!(parsed, set_of(&[&k]));
}

#[test]
fn malformed_key_material_is_refused() {
    assert!(matches!(
        SigningKey::from_pkcs8("k", b"not a key"),
        Err(KeyError::Malformed)
    ));
}

#[test]
fn verification_at_a_given_time_ends_at_exp_and_honours_nbf() {
    let k = key("k");
    let c = claims(2_000_000_000);
    let token = k.sign(&c).unwrap();
    let set = set_of(&[&k]);
    assert_eq!(verify_at(&token, &set, None, 1_999_999_999), Ok(c));
    assert_eq!(
        verify_at(&token, &set, None, 2_000_000_000),
        Err(VerifyError::Expired { exp: 2_000_000_000 })
    );
    // A token of another issuer that carries nbf is not valid before it.
    let mut with_nbf = part(&token, 1);
    with_nbf["nbf"] = serde_json::json!(1_900_000_000);
    let header = Header {
        kid: Some("k".into()),
        ..Header::new(Algorithm::EdDSA)
    };
    let signed = jsonwebtoken::encode(&header, &with_nbf, &k.key).unwrap();
    assert_eq!(
        verify_at(&signed, &set, None, 1_899_999_999),
        Err(VerifyError::NotYetValid)
    );
    assert!(verify_at(&signed, &set, None, 1_900_000_000).is_ok());
}
