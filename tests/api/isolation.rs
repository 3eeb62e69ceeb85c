//! Credentials are valid only in their own context.
use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn credentials_are_refused_outside_their_context() {
    let app = TestApp::builder().spawn().await;
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    let globex = add_tenant(&app, &acme.vendor_key, &acme.signing_secret, "globex", &ECU).await;

    // No key at all: 401 (and the error is JSON).
    let r = app
        .call(
            "POST",
            &acme.host,
            "/licenses/borrow",
            None,
            Some(borrow_body(ECU.name, "dev1")),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (401, "unauthorized"));
    assert!(r.headers.contains_key("www-authenticate"));

    // A tenant's key on another tenant's host: 403.
    let r = app
        .borrow_with(&globex.host, &acme.admin_key, ECU.name, "dev1")
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "forbidden"));

    // ... and the same 403 whether or not the other tenant exists.
    let r2 = app
        .borrow_with("nobody.localhost", &acme.admin_key, ECU.name, "dev1")
        .await;
    assert_eq!((r2.status.as_u16(), r2.body.clone()), (403, r.body));

    // A vendor key on a tenant host: 403.
    let r = app
        .borrow_with(&acme.host, &acme.vendor_key, ECU.name, "dev1")
        .await;
    assert_eq!(r.status.as_u16(), 403);
    // The operator token there, a tenant key on the vendor host and on the operator API,
    // and a vendor key on the operator API: 403 too.
    for (host, path, key) in [
        (
            acme.host.as_str(),
            "/licenses/status",
            app.admin_token.as_str(),
        ),
        (
            "vendor.localhost",
            "/api/vendor/customers",
            acme.admin_key.as_str(),
        ),
        ("localhost", "/api/admin/tenants", acme.admin_key.as_str()),
        ("localhost", "/api/admin/tenants", acme.vendor_key.as_str()),
    ] {
        let r = app.call("GET", host, path, Some(key), None).await;
        assert_eq!(r.status.as_u16(), 403, "{path} on {host}");
    }

    // Garbage keys: 401.
    for bad in ["pmx_t_acme_ffff_0000", "pmx_v_vector_0000", "nonsense"] {
        let r = app
            .call("GET", &acme.host, "/licenses/status", Some(bad), None)
            .await;
        assert_eq!(r.status.as_u16(), 401, "{bad}");
    }

    // A borrow-scope key cannot administer.
    let k = add_farm_key(&app, &acme).await;
    let farm = k["api_key"].as_str().unwrap();
    let r = app
        .call("GET", &acme.host, "/api/keys", Some(farm), None)
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "insufficient_scope"));

    // Revocation takes effect on the next request; listings never show secrets.
    let key_id = k["key_id"].as_str().unwrap();
    app.call("GET", &acme.host, "/licenses/status", Some(farm), None)
        .await
        .expect(200);
    app.call(
        "DELETE",
        &acme.host,
        &format!("/api/keys/{key_id}"),
        Some(&acme.admin_key),
        None,
    )
    .await
    .expect(200);
    let r = app
        .call("GET", &acme.host, "/licenses/status", Some(farm), None)
        .await;
    assert_eq!(r.status.as_u16(), 401);
    let list = app
        .call("GET", &acme.host, "/api/keys", Some(&acme.admin_key), None)
        .await
        .expect(200);
    let text = list.to_string();
    assert!(
        !text.contains(farm.rsplit('_').next().unwrap()),
        "secret leaked: {text}"
    );
    assert_eq!(list["keys"].as_array().unwrap().len(), 2);
    app.stop().await;
}

#[actix_web::test]
async fn a_vendor_sees_and_provisions_only_its_own_customers() {
    let app = TestApp::builder().spawn().await;
    let vector = bootstrap(&app, "vector", "acme", &ECU).await;
    let ghs = bootstrap(&app, "greenhills", "globex", &ECU).await;

    let mine = customers(&app, &vector.vendor_key).await;
    let ids: Vec<_> = mine["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["tenant_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("acme")]);

    // Provisioning another vendor's tenant looks exactly like an unknown tenant.
    let other = app
        .call(
            "POST",
            "vendor.localhost",
            "/api/vendor/provision",
            Some(&vector.vendor_key),
            Some(json!({"tenant_id": "globex", "product_id": "x", "product_name": "X", "total": 1, "commit_qty": 1, "max_overage": 0})),
        )
        .await;
    let none = app
        .call(
            "POST",
            "vendor.localhost",
            "/api/vendor/provision",
            Some(&vector.vendor_key),
            Some(json!({"tenant_id": "nobody", "product_id": "x", "product_name": "X", "total": 1, "commit_qty": 1, "max_overage": 0})),
        )
        .await;
    assert_eq!(other.status.as_u16(), 404);
    assert_eq!(other.code(), none.code());

    // Taking another vendor's tenant id: 409.
    let taken = app
        .call(
            "POST",
            "vendor.localhost",
            "/api/vendor/customers",
            Some(&vector.vendor_key),
            Some(json!({"tenant_id": "globex", "company_name": "Mine now"})),
        )
        .await;
    assert_eq!(taken.status.as_u16(), 409);
    drop(ghs);
    app.stop().await;
}

#[actix_web::test]
async fn hosts_route_to_their_context() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    // Case, port and one trailing dot do not matter.
    for host in [
        "ACME.localhost",
        "acme.localhost.",
        "acme.localhost:8000",
        "acme.permetrix.fly.dev",
    ] {
        app.call("GET", host, "/licenses/status", Some(&t.admin_key), None)
            .await
            .expect(200);
    }
    // Unknown tenant: 404 unknown_tenant; nothing is activated for it.
    let r = app
        .call("GET", "ghost.localhost", "/licenses/status", None, None)
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_tenant"));
    // Deeper and reserved names: 404.
    for host in ["a.acme.localhost", "www.localhost", "api.localhost"] {
        let r = app
            .call("GET", host, "/licenses/status", Some(&t.admin_key), None)
            .await;
        assert_eq!(r.status.as_u16(), 404, "{host}");
    }
    // Tenant routes do not exist on the main host, operator routes not on tenant hosts.
    let r = app
        .call(
            "GET",
            "localhost",
            "/licenses/status",
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"));
    // (IP literals are the main host.)
    for (host, status) in [(t.host.as_str(), 404), ("127.0.0.1", 200)] {
        let r = app
            .call(
                "GET",
                host,
                "/api/admin/tenants",
                Some(&app.admin_token),
                None,
            )
            .await;
        assert_eq!(r.status.as_u16(), status, "{host}");
    }
    app.stop().await;
}
