//! The edge after the second hostile review (issue 22): Host values that are no host,
//! the headers of API responses, `HEAD` and 405 on the health endpoints, and v1
//! timestamps. Bodies and login are in `security_bodies`.
use serde_json::json;

use crate::helpers::*;

/// Host values that are not a `host[:port]`: each must be refused with 400, never
/// served in the main (operator) context.
pub const MALFORMED_HOSTS: &[&str] = &[
    "globex.localhost:x",
    "globex.localhost:80:80",
    "vendor.localhost:-1",
    "localhost:99999",
    "globex.localhost/",
    "acme.localhost%2e",
    "acme.localhost#",
    "acme.localhost?x",
    "acme;x.localhost",
    "user@localhost",
    "[::1",
    "[localhost]",
    "[::1]:x",
    // A Cyrillic "а" in front of "cme".
    "\u{0430}cme.localhost",
    "localhost\u{e9}",
];

#[actix_web::test]
async fn hosts_that_are_no_host_are_refused_and_never_reach_the_operator() {
    let app = TestApp::builder().spawn().await;
    let token = format!("Bearer {}", app.admin_token);
    for host in MALFORMED_HOSTS {
        for path in ["/api/admin/vendors", "/metrics", "/", "/health"] {
            let r = send(&app, "GET", host, path, &[("Authorization", &token)], None).await;
            assert_eq!(
                (r.status.as_u16(), r.code()),
                (400, "invalid_host"),
                "GET {path} with Host {host:?}: {}",
                r.body
            );
        }
    }
    // Exact matching is unchanged: port, case and one trailing dot do not matter.
    for host in [
        "LOCALHOST.:8000",
        "localhost:",
        "127.0.0.1:8000",
        "[::1]:8000",
    ] {
        let r = send(
            &app,
            "GET",
            host,
            "/api/admin/vendors",
            &[("Authorization", &token)],
            None,
        )
        .await;
        assert_eq!(r.status.as_u16(), 200, "{host}: {}", r.body);
    }
    app.stop().await;
}

#[actix_web::test]
async fn api_responses_are_not_sniffed_and_one_time_secrets_are_not_stored() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let nosniff = |r: &Reply| {
        r.headers
            .get("x-content-type-options")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let no_store = |r: &Reply| {
        r.headers
            .get("cache-control")
            .is_some_and(|v| v.to_str().unwrap().contains("no-store"))
    };
    // API answers, errors included, are never sniffed.
    for r in [
        app.call("GET", "localhost", "/health", None, None).await,
        app.tenant_get(&t, "/licenses/status").await,
        app.call("GET", &t.host, "/licenses/status", None, None)
            .await,
        app.call("GET", "nobody.localhost", "/nothing", None, None)
            .await,
    ] {
        assert_eq!(nosniff(&r).as_deref(), Some("nosniff"), "{}", r.body);
    }
    // Every answer that shows a secret once must not be kept by a cache.
    let vendor = app
        .operator(
            "POST",
            "/api/admin/vendors",
            Some(json!({"vendor_id": "dspace", "vendor_name": "dSPACE"})),
        )
        .await;
    assert!(no_store(&vendor) && vendor.status.as_u16() == 201);
    let rotated = app
        .operator(
            "POST",
            "/api/admin/vendors/dspace/rotate-signing-secret",
            None,
        )
        .await;
    assert!(
        no_store(&rotated) && rotated.status.as_u16() == 200,
        "{}",
        rotated.body
    );
    let tenant = app
        .vendor(
            &t.vendor_key,
            "POST",
            "/api/vendor/customers",
            Some(json!({"tenant_id": "initech", "company_name": "Initech"})),
        )
        .await;
    assert!(no_store(&tenant) && tenant.status.as_u16() == 201);
    let key = app
        .call(
            "POST",
            &t.host,
            "/api/keys",
            Some(&t.admin_key),
            Some(json!({"name": "farm", "scope": "borrow"})),
        )
        .await;
    assert!(no_store(&key) && key.status.as_u16() == 201);
    app.stop().await;
}

#[actix_web::test]
async fn health_answers_head_and_a_wrong_method_is_405_with_allow() {
    let app = TestApp::builder().spawn().await;
    for path in ["/health", "/ready", "/version"] {
        let r = app.call("HEAD", "localhost", path, None, None).await;
        assert_eq!(r.status.as_u16(), 200, "HEAD {path}");
        for method in ["POST", "PUT", "DELETE"] {
            let r = app.call(method, "localhost", path, None, None).await;
            assert_eq!(
                (r.status.as_u16(), r.code()),
                (405, "method_not_allowed"),
                "{method} {path}"
            );
            assert_eq!(
                r.headers.get("allow").unwrap(),
                "GET, HEAD",
                "{method} {path}"
            );
        }
    }
    app.stop().await;
}

#[actix_web::test]
async fn v1_timestamps_are_plain_digits() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    app.tenant_put(&t, "/config/security", json!({"signature_policy": "v1"}))
        .await
        .expect(200);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = serde_json::to_vec(&borrow_body(ECU.name, "dev1")).unwrap();
    for ts in [format!("+{now}"), format!("{now}.0"), format!("0x{now:x}")] {
        let sig = signing::sign(
            t.signing_secret.as_bytes(),
            &signing::v1_string(ECU.name, "dev1", &ts, &t.admin_key),
        );
        let headers = vec![
            ("X-Signature".to_owned(), sig),
            ("X-Timestamp".to_owned(), ts.clone()),
            ("X-Vendor-ID".to_owned(), "vector".to_owned()),
        ];
        let r = signed_borrow(&app, &t.host, &t.admin_key, &headers, &body).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (401, "bad_signature"),
            "{ts:?}: {}",
            r.body
        );
    }
    let ts = now.to_string();
    let sig = signing::sign(
        t.signing_secret.as_bytes(),
        &signing::v1_string(ECU.name, "dev1", &ts, &t.admin_key),
    );
    let headers = vec![
        ("X-Signature".to_owned(), sig),
        ("X-Timestamp".to_owned(), ts),
        ("X-Vendor-ID".to_owned(), "vector".to_owned()),
    ];
    signed_borrow(&app, &t.host, &t.admin_key, &headers, &body)
        .await
        .expect(200);
    app.stop().await;
}
