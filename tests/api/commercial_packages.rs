//! The package lifecycle over HTTP: the vendor changes limits, prices, validity and
//! status; inactive packages refuse borrows while running leases run out.
use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn suspended_and_expired_packages_refuse_borrows_while_leases_run_out() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let pkg = package_id(&app, &t, ECU.id).await;
    let path = format!("/api/vendor/packages/{pkg}");
    let patch = |body: serde_json::Value| app.vendor(&t.vendor_key, "PATCH", &path, Some(body));
    let held = app.borrow_id(&t, ECU.id, "running").await;

    let p = patch(json!({"status": "suspended"})).await.expect(200);
    assert_eq!(
        (&p["status"], &p["package_id"]),
        (&json!("suspended"), &json!(pkg))
    );
    let r = app.borrow(&t, ECU.id, "new").await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "package_inactive"));
    let s = app.status_of(&t, ECU.id).await;
    assert_eq!(
        (&s["status"], &s["borrowed"], &s["available"]),
        (&json!("suspended"), &json!(1), &json!(0))
    );
    app.return_ok(&t.host, &held).await;

    // Active again, but past its validity window.
    let p = patch(json!({"status": "active", "valid_until": "2020-01-01"}))
        .await
        .expect(200);
    assert_eq!(p["valid_until"], "2020-01-01T00:00:00.000+00:00");
    let r = app.borrow(&t, ECU.id, "new").await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "package_inactive"));
    assert!(
        r.body["detail"].as_str().unwrap().contains("expired"),
        "{}",
        r.body
    );
    let p = patch(json!({"valid_until": null, "valid_from": "2100-01-01T00:00:00Z"}))
        .await
        .expect(200);
    assert_eq!(p["valid_until"], serde_json::Value::Null);
    let r = app.borrow(&t, ECU.id, "new").await;
    assert!(
        r.body["detail"].as_str().unwrap().contains("not valid yet"),
        "{}",
        r.body
    );
    patch(json!({"valid_from": null})).await.expect(200);
    let b = app.borrow_id(&t, ECU.id, "new").await;
    app.return_ok(&t.host, &b).await;

    // Limits keep total = commit + overage; prices change for later borrows.
    let p = patch(json!({"total": 8})).await.expect(200);
    assert_eq!(
        (&p["total"], &p["commit_qty"], &p["max_overage"]),
        (&json!(8), &json!(5), &json!(3))
    );
    let p = patch(json!({"commit_qty": 2, "max_overage": 1, "overage_price_per_license": 750.0}))
        .await
        .expect(200);
    assert_eq!(
        (&p["total"], &p["overage_price_per_license"]),
        (&json!(3), &json!(750.0))
    );
    for bad in [
        json!({"total": 9, "commit_qty": 4, "max_overage": 4}),
        json!({"total": 1, "commit_qty": 2}),
        json!({"status": "paused"}),
        json!({"total": -1}),
        json!({"valid_from": "2030-01-02", "valid_until": "2030-01-01"}),
    ] {
        let r = patch(bad.clone()).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (400, "invalid_request"),
            "{bad}"
        );
    }
    // A misspelt field is refused rather than silently ignored.
    let r = patch(json!({"overage_price": 1.0})).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_json"));
    assert!(r.body["detail"].as_str().unwrap().contains("overage_price"));

    // Only the provisioning vendor sees the package; others get the 404 of an unknown id.
    let other = bootstrap(&app, "dspace", "initech", &ECU).await;
    let r = app
        .vendor(
            &other.vendor_key,
            "PATCH",
            &path,
            Some(json!({"status": "revoked"})),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_package"));
    let r = patch_unknown(&app, &t).await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_package"));

    // Revoked is final for the package; provisioning the product again replaces it.
    patch(json!({"status": "revoked"})).await.expect(200);
    let r = patch(json!({"status": "active"})).await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "package_revoked"));
    let r = app.borrow(&t, ECU.id, "new").await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "package_inactive"));
    let fresh = provision(&app, &t.vendor_key, &t.id, &ECU).await;
    assert_ne!(fresh["package_id"], json!(pkg));
    app.borrow_ok(&t, ECU.id, "new").await;
    app.stop().await;
}

async fn patch_unknown(app: &TestApp, t: &Tenant) -> Reply {
    app.vendor(
        &t.vendor_key,
        "PATCH",
        "/api/vendor/packages/pkg-nope",
        Some(json!({"total": 1})),
    )
    .await
}
