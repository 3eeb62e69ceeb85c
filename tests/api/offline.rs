//! Offline checkout (issue 23): a borrow with `offline_hours` gets a token signed by its
//! vendor's Ed25519 key that verifies against the vendor host's JWKS; the seat is held
//! until the token's `exp` (the manual clock and the tenant's own expiry) or an early
//! return; the package's offline limits refuse beyond; a rotated key stays published
//! while its tokens are valid.
use std::time::Duration;

use permetrix_storage::Timestamp;
use serde_json::{Value, json};

use crate::helpers::offline_token::{self, Claims, JwkSet, VerifyError};
use crate::helpers::*;

fn secs(t: Timestamp) -> u64 {
    u64::try_from(t.secs()).unwrap()
}

async fn jwks(app: &TestApp, query: &str) -> JwkSet {
    serde_json::from_value(app.jwks(query).await).unwrap()
}

async fn setup() -> (TestApp, Tenant) {
    let app = TestApp::builder().manual_clock(START).spawn().await;
    let t = bootstrap(&app, "vector", "acme", &BUS).await;
    provision_offline(&app, &t, 72, 2).await;
    (app, t)
}

#[actix_web::test]
async fn an_offline_token_verifies_against_the_vendors_jwks_until_its_exp() {
    let (app, t) = setup().await;
    let b = app.checkout(&t, "ann", 48).await;
    assert_eq!(b["offline"], true);
    assert_eq!(b["is_overage"], false);
    let exp = START.plus(Duration::from_secs(48 * 3600));
    assert_eq!(millis(&b["lease_expires_at"]), exp.millis());

    // Verified without the broker: only the published keys and the claims.
    let keys = jwks(&app, "?vendor=vector").await;
    let claims =
        offline_token::verify_at(offline_token_of(&b), &keys, Some("vector"), secs(START)).unwrap();
    assert_eq!(
        claims,
        Claims {
            iss: "https://vendor.localhost".into(),
            sub: "ann".into(),
            vendor: "vector".into(),
            tenant: "acme".into(),
            tool: CAD.name.into(),
            product_id: CAD.id.into(),
            borrow_id: b["id"].as_str().unwrap().into(),
            fingerprint: Some("laptop-7f3a".into()),
            iat: secs(START),
            exp: secs(exp),
        }
    );
    // The whole set (every vendor's keys) has it too.
    assert!(
        offline_token::verify_at(
            offline_token_of(&b),
            &jwks(&app, "").await,
            None,
            secs(START)
        )
        .is_ok()
    );
    // One second before exp it holds; at exp it does not.
    assert!(offline_token::verify_at(offline_token_of(&b), &keys, None, secs(exp) - 1).is_ok());
    assert_eq!(
        offline_token::verify_at(offline_token_of(&b), &keys, None, secs(exp)),
        Err(VerifyError::Expired { exp: secs(exp) })
    );
}

#[actix_web::test]
async fn a_changed_claim_or_another_vendors_key_does_not_verify() {
    let (app, t) = setup().await;
    let ours = app.checkout(&t, "ann", 24).await;
    let other = bootstrap(&app, "elektra", "globex", &BUS).await;
    provision_offline(&app, &other, 24, 1).await;
    let theirs = app.checkout(&other, "bob", 24).await;
    let at = secs(START);

    // A claim changed (a longer checkout, another user): the signature fails.
    let (head, rest) = offline_token_of(&ours).split_once('.').unwrap();
    let (body, sig) = rest.split_once('.').unwrap();
    for (claim, value) in [("exp", json!(at + 365 * 86_400)), ("sub", json!("mallory"))] {
        let mut c: Value = serde_json::from_slice(&b64(body)).unwrap();
        c[claim] = value;
        let forged = format!(
            "{head}.{}.{sig}",
            b64_encode(&serde_json::to_vec(&c).unwrap())
        );
        let keys = jwks(&app, "?vendor=vector").await;
        assert_eq!(
            offline_token::verify_at(&forged, &keys, None, at),
            Err(VerifyError::BadSignature),
            "{claim}"
        );
    }
    // Another vendor's token against this vendor's keys: no such key.
    let vector_keys = jwks(&app, "?vendor=vector").await;
    assert!(matches!(
        offline_token::verify_at(offline_token_of(&theirs), &vector_keys, None, at),
        Err(VerifyError::UnknownKey(kid)) if kid.starts_with("elektra.")
    ));
    // Against every vendor's keys it verifies, but names its own vendor.
    let all = jwks(&app, "").await;
    assert_eq!(all.keys.len(), 2);
    assert!(matches!(
        offline_token::verify_at(offline_token_of(&theirs), &all, Some("vector"), at),
        Err(VerifyError::WrongVendor { .. })
    ));
    // The JWKS is public: no credential, the RFC 8037 shape.
    let raw = app
        .call(
            "GET",
            "vendor.localhost",
            "/.well-known/jwks.json?vendor=vector",
            None,
            None,
        )
        .await
        .expect(200);
    let key = &raw["keys"][0];
    assert_eq!(
        (&key["kty"], &key["crv"], &key["alg"]),
        (&json!("OKP"), &json!("Ed25519"), &json!("EdDSA"))
    );
    assert!(key["kid"].as_str().unwrap().starts_with("vector."));
    assert!(key.get("d").is_none(), "no private half");
}

fn b64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn b64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[actix_web::test]
async fn the_seat_is_held_until_exp_by_the_tenants_own_timer() {
    let (app, t) = setup().await;
    let b = app.checkout(&t, "ann", 2).await;
    let id = b["id"].as_str().unwrap();
    assert_eq!(app.status_of(&t, CAD.id).await["borrowed"], 1);

    // No heartbeat is needed, and one does not move the end.
    app.clock().advance(Duration::from_secs(3600));
    let hb = app.heartbeat(&t, id).await.expect(200);
    assert_eq!(hb["lease_expires_at"], b["lease_expires_at"]);
    assert_eq!(hb["offline"], true);

    // An hour later less a second it is still held; at its end the timer frees it.
    assert_eq!(app.advance("acme", 3599).await.expired, 0);
    assert_eq!(app.status_of(&t, CAD.id).await["borrowed"], 1);
    assert_eq!(app.advance("acme", 1).await.expired, 1);
    assert_eq!(app.status_of(&t, CAD.id).await["borrowed"], 0);
    let r = app.return_seat(&t.host, id).await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "lease_expired"));
}

#[actix_web::test]
async fn an_early_return_frees_the_seat_and_its_offline_slot() {
    let (app, t) = setup().await;
    let a = app.checkout(&t, "ann", 72).await;
    app.checkout(&t, "bob", 72).await;
    let full = app.borrow_json(&t, offline_body("cy", 1)).await;
    assert_eq!(
        (full.status.as_u16(), full.code()),
        (409, "offline_limit_reached")
    );
    // The third seat is still there for an online borrow.
    app.borrow_ok(&t, CAD.id, "dora").await;

    app.return_ok(&t.host, &a["id"]).await;
    assert_eq!(app.status_of(&t, CAD.id).await["borrowed"], 2);
    app.checkout(&t, "cy", 1).await;
}

#[actix_web::test]
async fn offline_limits_refuse_beyond_and_the_vendor_can_change_them() {
    let (app, t) = setup().await;
    let refused = |r: Reply| (r.status.as_u16(), r.code().to_owned());

    // A package without offline limits (the default) allows none.
    let none = json!({"tool": "bus", "user": "ann", "offline_hours": 1});
    assert_eq!(
        refused(app.borrow_json(&t, none).await),
        (409, "offline_limit_reached".into())
    );
    // Longer than the package allows.
    let long = app.borrow_json(&t, offline_body("ann", 73)).await;
    assert_eq!(long.status.as_u16(), 409);
    assert!(
        long.body["detail"].as_str().unwrap().contains("72"),
        "{}",
        long.body
    );
    // Malformed: no hours, both lengths, a fingerprint alone, a year and a day.
    for body in [
        json!({"tool": CAD.id, "user": "ann", "offline_hours": 0}),
        json!({"tool": CAD.id, "user": "ann", "offline_hours": 2, "lease_seconds": 60}),
        json!({"tool": CAD.id, "user": "ann", "fingerprint": "x"}),
        json!({"tool": CAD.id, "user": "ann", "offline_hours": 8761}),
        json!({"tool": CAD.id, "user": "ann", "offline_hours": "2"}),
    ] {
        assert_eq!(
            app.borrow_json(&t, body.clone()).await.status.as_u16(),
            400,
            "{body}"
        );
    }
    assert_eq!(app.status_of(&t, CAD.id).await["borrowed"], 0);

    // The vendor allows longer and more; its customer view shows limits and use.
    app.checkout(&t, "ann", 72).await;
    app.checkout(&t, "bob", 72).await;
    let package = package_id(&app, &t, CAD.id).await;
    let path = format!("/api/vendor/packages/{package}");
    let patch = json!({"max_offline_hours": 168, "max_offline_seats": 3});
    app.vendor(&t.vendor_key, "PATCH", &path, Some(patch))
        .await
        .expect(200);
    app.checkout(&t, "cy", 168).await;
    let listed = customers(&app, &t.vendor_key).await;
    let cad = listed["customers"][0]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["product_id"] == CAD.id)
        .unwrap()
        .clone();
    assert_eq!(
        (
            &cad["max_offline_hours"],
            &cad["max_offline_seats"],
            &cad["offline"]
        ),
        (&json!(168), &json!(3), &json!(3))
    );
    // Limits out of range are refused.
    for bad in [
        json!({"max_offline_hours": 8761}),
        json!({"max_offline_seats": -1}),
    ] {
        let r = app
            .vendor(&t.vendor_key, "PATCH", &path, Some(bad.clone()))
            .await;
        assert_eq!(r.status.as_u16(), 400, "{bad}");
    }
}

#[actix_web::test]
async fn a_rotated_key_stays_published_until_its_last_token_expires() {
    let (app, t) = setup().await;
    let old = app.checkout(&t, "ann", 24).await;
    let old_kid = kid_of(offline_token_of(&old));

    let rotated = app
        .vendor(
            &t.vendor_key,
            "POST",
            "/api/vendor/offline-keys/rotate",
            None,
        )
        .await
        .expect(200);
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    assert_eq!(rotated["previous_kid"], old_kid.as_str());
    let old_exp = START.plus(Duration::from_secs(24 * 3600));
    assert!(millis(&rotated["previous_published_until"]) >= old_exp.millis());

    // Both keys are published; the old token verifies; new tokens use the new key.
    let keys = jwks(&app, "?vendor=vector").await;
    assert_eq!(kids(&keys), [old_kid.clone(), new_kid.clone()]);
    assert!(
        offline_token::verify_at(offline_token_of(&old), &keys, Some("vector"), secs(START))
            .is_ok()
    );
    let new = app.checkout(&t, "bob", 24).await;
    assert_eq!(kid_of(offline_token_of(&new)), new_kid);
    assert!(
        offline_token::verify_at(offline_token_of(&new), &keys, Some("vector"), secs(START))
            .is_ok()
    );

    // Once every token of the old key has expired, it is no longer published.
    app.clock().advance(Duration::from_secs(3 * 24 * 3600));
    assert_eq!(kids(&jwks(&app, "?vendor=vector").await), [new_kid]);
    let listed = app
        .vendor(&t.vendor_key, "GET", "/api/vendor/offline-keys", None)
        .await
        .expect(200);
    assert_eq!(listed["keys"][0]["published"], false);
    assert_eq!(listed["keys"][1]["signing"], true);
}

fn kids(keys: &JwkSet) -> Vec<String> {
    keys.keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect()
}

fn kid_of(token: &str) -> String {
    let header: Value = serde_json::from_slice(&b64(token.split('.').next().unwrap())).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}
