//! Malformed input is a 4xx with a useful detail, never a 500.
use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn malformed_bodies_are_4xx_with_detail() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let key = Some(t.admin_key.as_str());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not json", b"{tool: nope".to_vec()),
        ("empty", Vec::new()),
        ("missing user", br#"{"tool":"x"}"#.to_vec()),
        ("wrong type", br#"{"tool":1,"user":"u"}"#.to_vec()),
        ("array", b"[]".to_vec()),
        ("null", b"null".to_vec()),
        (
            "negative lease",
            br#"{"tool":"x","user":"u","lease_seconds":-5}"#.to_vec(),
        ),
        (
            "lease too short",
            br#"{"tool":"x","user":"u","lease_seconds":5}"#.to_vec(),
        ),
        (
            "wait too long",
            br#"{"tool":"x","user":"u","wait_seconds":301}"#.to_vec(),
        ),
        ("empty tool", br#"{"tool":"","user":"u"}"#.to_vec()),
        (
            "control chars",
            b"{\"tool\":\"x\",\"user\":\"a\\u0000b\"}".to_vec(),
        ),
        (
            "invalid utf-8",
            b"{\"tool\":\"\xff\",\"user\":\"u\"}".to_vec(),
        ),
    ];
    for (what, body) in cases {
        let r = app
            .call_raw("POST", &t.host, "/licenses/borrow", key, body)
            .await;
        assert_eq!(r.status.as_u16(), 400, "{what}: {}", r.body);
        assert!(r.body["error"].is_string(), "{what}");
        assert!(
            r.body["detail"].as_str().is_some_and(|d| d.len() > 10),
            "{what}: {}",
            r.body
        );
    }

    // Oversized bodies: 413.
    let huge = format!(r#"{{"tool":"x","user":"{}"}}"#, "a".repeat(200_000));
    let r = app
        .call_raw("POST", &t.host, "/licenses/borrow", key, huge.into_bytes())
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (413, "payload_too_large"));
    let r = app
        .call_raw(
            "POST",
            "vendor.localhost",
            "/api/vendor/customers",
            Some(&t.vendor_key),
            vec![b' '; 200_000],
        )
        .await;
    assert_eq!(r.status.as_u16(), 413);

    // Provisioning arithmetic and signs.
    for body in [
        json!({"tenant_id": "acme", "product_id": "p", "product_name": "P", "total": 5, "commit_qty": 2, "max_overage": 2}),
        json!({"tenant_id": "acme", "product_id": "p", "product_name": "P", "total": -1, "commit_qty": -1, "max_overage": 0}),
        json!({"tenant_id": "acme", "product_id": "p", "product_name": "P", "total": 1, "commit_qty": 1, "max_overage": 0, "overage_price_per_license": -3}),
        json!({"tenant_id": "acme", "product_id": "p", "product_name": "P", "total": "1", "commit_qty": 1, "max_overage": 0}),
        json!({"tenant_id": "acme", "product_id": "p", "product_name": "P", "total": 1, "commit_qty": 1, "max_overage": 0, "valid_until": "soon"}),
    ] {
        let r = app
            .call(
                "POST",
                "vendor.localhost",
                "/api/vendor/provision",
                Some(&t.vendor_key),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status.as_u16(), 400, "{body}: {}", r.body);
    }
    let dup = app.call(
        "POST",
        "vendor.localhost",
        "/api/vendor/provision",
        Some(&t.vendor_key),
        Some(json!({"tenant_id": "acme", "product_id": ECU.id, "product_name": "Other", "total": 1, "commit_qty": 1, "max_overage": 0})),
    )
    .await;
    assert_eq!((dup.status.as_u16(), dup.code()), (409, "package_exists"));

    // Bad ids and settings.
    for id in ["Bad_Id", "www"] {
        let customer = Some(json!({"tenant_id": id, "company_name": "x"}));
        let r = app
            .vendor(&t.vendor_key, "POST", "/api/vendor/customers", customer)
            .await;
        assert_eq!(r.status.as_u16(), 400, "{id}: {}", r.body);
    }
    for (method, path, body) in [
        ("PUT", "/config/security", json!({"signature_policy": "v9"})),
        (
            "PUT",
            "/config/security",
            json!({"default_lease_seconds": 1}),
        ),
        ("POST", "/api/keys", json!({"name": "k", "scope": "root"})),
    ] {
        let r = app
            .call(method, &t.host, path, key, Some(body.clone()))
            .await;
        assert_eq!(r.status.as_u16(), 400, "{body}: {}", r.body);
    }

    // Unknown routes and methods: JSON 404.
    let r = app.call("GET", &t.host, "/no/such/route", key, None).await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"));
    let r = app.return_seat(&t.host, "not-a-uuid").await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_borrow"));

    // The server is still healthy.
    app.call("GET", "localhost", "/health", None, None)
        .await
        .expect(200);
    app.stop().await;
}
