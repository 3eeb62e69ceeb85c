//! Request signatures end to end over HTTP: v1, v2, replays, the v2-only policy, the
//! reason codes, no exemption for browser-looking requests, and secret rotation.
use std::time::Duration;

use permetrix_storage::Timestamp;
use serde_json::json;

use crate::helpers::*;
use permetrix_actors::Clock as _;

async fn set_policy(app: &TestApp, t: &Tenant, policy: &str) {
    let r = app
        .call(
            "PUT",
            &t.host,
            "/config/security",
            Some(&t.admin_key),
            Some(json!({"signature_policy": policy})),
        )
        .await
        .expect(200);
    assert_eq!(r["signature_policy"], policy);
}

/// Headers of a v2-signed borrow by acme's vendor.
fn v2_borrow(secret: &str, body: &[u8], ts: i64, nonce: &str, key: &str) -> Vec<(String, String)> {
    v2_headers(
        secret,
        "vector",
        "POST",
        "/licenses/borrow",
        body,
        ts,
        nonce,
        key,
    )
}

fn body(user: &str) -> Vec<u8> {
    serde_json::to_vec(&borrow_body(ECU.name, user)).unwrap()
}

#[actix_web::test]
async fn v1_and_v2_signatures_verify_and_refusals_carry_reason_codes() {
    let app = TestApp::builder()
        .manual_clock(Timestamp::now())
        .spawn()
        .await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let other = bootstrap(&app, "greenhills", "globex", &ECU).await;
    set_policy(&app, &t, "v1").await;
    let now = app.clock().now().secs();
    let key = t.admin_key.as_str();
    let secret = t.signing_secret.as_str();

    // v1: the signed string covers tool, user, timestamp and the bearer key.
    let h = v1_headers(secret, "vector", ECU.name, "dev1", now, key);
    signed_borrow(&app, &t.host, key, &h, &body("dev1"))
        .await
        .expect(200);
    // X-Vendor-ID may be omitted: the tool's vendor is implied.
    let no_vendor: Vec<_> = h
        .iter()
        .filter(|(n, _)| n != "X-Vendor-ID")
        .cloned()
        .collect();
    signed_borrow(&app, &t.host, key, &no_vendor, &body("dev1"))
        .await
        .expect(200);

    // v2 under the v1 policy: accepted.
    let b = body("dev2");
    let h2 = v2_borrow(secret, &b, now, "n-1", key);
    signed_borrow(&app, &t.host, key, &h2, &b).await.expect(200);

    // Each refusal: 401 with its code.
    let refused = |r: Reply, code: &str| {
        assert_eq!((r.status.as_u16(), r.code()), (401, code), "{}", r.body);
        assert!(r.body["detail"].as_str().unwrap().len() > 20);
    };
    for (headers, code) in [
        (vec![], "missing_signature"),
        // Signed for another user.
        (
            v1_headers(secret, "vector", ECU.name, "mallory", now, key),
            "bad_signature",
        ),
        // Outside the five-minute window, either way.
        (
            v1_headers(secret, "vector", ECU.name, "dev1", now - 301, key),
            "stale_timestamp",
        ),
        (
            v1_headers(secret, "vector", ECU.name, "dev1", now + 301, key),
            "stale_timestamp",
        ),
        // Another vendor's secret, claiming to be that vendor: wrong_vendor.
        (
            v1_headers(
                &other.signing_secret,
                "greenhills",
                ECU.name,
                "dev1",
                now,
                key,
            ),
            "wrong_vendor",
        ),
        // Another vendor's secret, claiming to be the right vendor: bad_signature.
        (
            v1_headers(&other.signing_secret, "vector", ECU.name, "dev1", now, key),
            "bad_signature",
        ),
    ] {
        refused(
            signed_borrow(&app, &t.host, key, &headers, &body("dev1")).await,
            code,
        );
    }
    // A signature over another bearer key does not carry over.
    let k2 = add_farm_key(&app, &t).await;
    let farm = k2["api_key"].as_str().unwrap();
    refused(
        signed_borrow(&app, &t.host, farm, &h, &body("dev1")).await,
        "bad_signature",
    );

    // v2 covers method, path and body: a changed body is refused.
    let b = body("dev3");
    let h3 = v2_borrow(secret, &b, now, "n-2", key);
    refused(
        signed_borrow(&app, &t.host, key, &h3, &body("dev4")).await,
        "bad_signature",
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_v2_replay_is_refused_and_the_v2_policy_refuses_v1() {
    let app = TestApp::builder()
        .manual_clock(Timestamp::now())
        .spawn()
        .await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    set_policy(&app, &t, "v2").await;
    let now = app.clock().now().secs();
    let (key, secret) = (t.admin_key.as_str(), t.signing_secret.as_str());
    let b = body("dev1");
    let h = v2_borrow(secret, &b, now, "abc123", key);
    signed_borrow(&app, &t.host, key, &h, &b).await.expect(200);

    // The identical request again, a minute later, inside the window: replayed_nonce.
    app.clock().advance(Duration::from_secs(60));
    let r = signed_borrow(&app, &t.host, key, &h, &b).await;
    assert_eq!((r.status.as_u16(), r.code()), (401, "replayed_nonce"));

    // After the window, the timestamp itself is stale.
    app.clock().advance(Duration::from_secs(300));
    let r = signed_borrow(&app, &t.host, key, &h, &b).await;
    assert_eq!((r.status.as_u16(), r.code()), (401, "stale_timestamp"));

    // A fresh nonce works; a v1 signature does not under the v2 policy.
    let now = app.clock().now().secs();
    let h = v2_borrow(secret, &b, now, "fresh", key);
    signed_borrow(&app, &t.host, key, &h, &b).await.expect(200);
    let v1 = v1_headers(secret, "vector", ECU.name, "dev1", now, key);
    let r = signed_borrow(&app, &t.host, key, &v1, &b).await;
    assert_eq!((r.status.as_u16(), r.code()), (401, "missing_signature"));
    assert!(r.body["detail"].as_str().unwrap().contains("v2"));
    // v2 without a nonce is no v2 signature.
    let no_nonce: Vec<_> = h.iter().filter(|(n, _)| n != "X-Nonce").cloned().collect();
    let r = signed_borrow(&app, &t.host, key, &no_nonce, &b).await;
    assert_eq!((r.status.as_u16(), r.code()), (401, "missing_signature"));

    // Policy off: no signature needed.
    set_policy(&app, &t, "off").await;
    signed_borrow(&app, &t.host, key, &[], &b).await.expect(200);
    app.stop().await;
}

#[actix_web::test]
async fn browser_looking_requests_get_no_exemption() {
    let app = TestApp::builder()
        .manual_clock(Timestamp::now())
        .spawn()
        .await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    set_policy(&app, &t, "v1").await;
    let browser = [
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0",
        ),
        ("Origin", "https://acme.permetrix.fly.dev"),
        ("Referer", "https://acme.permetrix.fly.dev/portal"),
        ("Sec-Fetch-Site", "same-origin"),
        ("Authorization", &format!("Bearer {}", t.admin_key)),
    ];
    let r = send(
        &app,
        "POST",
        &t.host,
        "/licenses/borrow",
        &browser,
        Some(&borrow_body(ECU.name, "dev1")),
    )
    .await;
    assert_eq!((r.status.as_u16(), r.code()), (401, "missing_signature"));

    // A portal session (an admin user, with its CSRF token) needs a signature too.
    add_user(&app, &t, "alice", "correct horse battery", "admin").await;
    let p = portal(&app, &t.host, "alice", "correct horse battery").await;
    let mut h = p.headers();
    h.extend_from_slice(&browser[..4]);
    let r = send(
        &app,
        "POST",
        &t.host,
        "/licenses/borrow",
        &h,
        Some(&borrow_body(ECU.name, "dev1")),
    )
    .await;
    assert_eq!((r.status.as_u16(), r.code()), (401, "missing_signature"));
    app.stop().await;
}

#[actix_web::test]
async fn rotated_signing_secrets_overlap_then_only_the_new_one_verifies() {
    let app = TestApp::builder()
        .manual_clock(Timestamp::now())
        .spawn()
        .await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    set_policy(&app, &t, "v1").await;
    let key = t.admin_key.as_str();
    let old = t.signing_secret.clone();
    let borrow_with = |secret: String| {
        let app = &app;
        let host = t.host.clone();
        async move {
            let now = app.clock().now().secs();
            let h = v1_headers(&secret, "vector", ECU.name, "dev1", now, key);
            signed_borrow(app, &host, key, &h, &body("dev1")).await
        }
    };
    borrow_with(old.clone()).await.expect(200);

    // Only the operator rotates, on the main host.
    let path = "/api/admin/vendors/vector/rotate-signing-secret";
    let r = app
        .call("POST", "localhost", path, Some(&t.vendor_key), None)
        .await;
    assert_eq!(r.status.as_u16(), 403);
    let r = app
        .call(
            "POST",
            "vendor.localhost",
            path,
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status.as_u16(), 404);
    let r = app
        .operator("POST", path, Some(json!({"overlap_seconds": 3600})))
        .await
        .expect(200);
    let new = r["signing_secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(new.len() >= 32);
    assert!(r["previous_valid_until"].is_string());

    // During the overlap both verify; after it only the new one.
    borrow_with(new.clone()).await.expect(200);
    borrow_with(old.clone()).await.expect(200);
    app.clock().advance(Duration::from_secs(3601));
    borrow_with(new.clone()).await.expect(200);
    let r = borrow_with(old.clone()).await;
    assert_eq!((r.status.as_u16(), r.code()), (401, "bad_signature"));

    // Without overlap the previous secret stops at once; an imported secret is used.
    let imported = "imported-signing-secret-0123456789abcdef";
    let r = app
        .operator(
            "POST",
            path,
            Some(json!({"overlap_seconds": 0, "signing_secret": imported})),
        )
        .await
        .expect(200);
    assert_eq!(r["signing_secret"], imported);
    assert!(r["previous_valid_until"].is_null());
    let r = borrow_with(new.clone()).await;
    assert_eq!(r.code(), "bad_signature");
    borrow_with(imported.to_owned()).await.expect(200);

    // The secrets are sealed at rest: no file of the data directory contains them
    // (the writes above were acknowledged, so they are on disk).
    assert!(!app.data_contains(imported.as_bytes()));
    assert!(!app.data_contains(new.as_bytes()));
    assert!(!app.data_contains(old.as_bytes()));
    // Control: plain fields of the same record are found, so the scan does see them.
    assert!(app.data_contains(b"vector GmbH"));

    // Bad requests: too long an overlap, a short secret, an unknown vendor.
    for (body, status) in [
        (json!({"overlap_seconds": 8 * 24 * 3600}), 400),
        (json!({"signing_secret": "short"}), 400),
        (json!({"overlap": 5}), 400),
    ] {
        let r = app.operator("POST", path, Some(body)).await;
        assert_eq!(r.status.as_u16(), status, "{}", r.body);
    }
    let r = app
        .operator(
            "POST",
            "/api/admin/vendors/nobody/rotate-signing-secret",
            None,
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_vendor"));
    app.stop().await;
}
