//! Promises of the contract that had no test (issue 22, item 15): a new tenant's
//! default signature policy, `anonymous_status`, and what the operator's soft deletes
//! do to a tenant's host and a vendor's key and signing secret.
use permetrix_storage::Timestamp;
use serde_json::json;

use crate::helpers::*;
use permetrix_actors::Clock as _;

fn body(user: &str) -> Vec<u8> {
    serde_json::to_vec(&borrow_body(ECU.id, user)).unwrap()
}

/// A vendor and a customer of it with `ECU`, signature policy left as created.
async fn fresh_customer(app: &TestApp) -> Tenant {
    let (vendor_key, signing_secret) = create_vendor(app, "vector").await;
    let admin_key = create_customer(app, &vendor_key, "acme").await;
    provision(app, &vendor_key, "acme", &ECU).await;
    Tenant {
        id: "acme".into(),
        host: "acme.localhost".into(),
        admin_key,
        vendor_key,
        signing_secret,
    }
}

#[actix_web::test]
async fn a_new_tenant_requires_v1_signatures_until_its_admin_says_otherwise() {
    let app = TestApp::builder()
        .manual_clock(Timestamp::now())
        .spawn()
        .await;
    let t = fresh_customer(&app).await;
    let security = app.tenant_get(&t, "/config/security").await.expect(200);
    assert_eq!(security["signature_policy"], "v1", "{security}");
    assert_eq!(security["anonymous_status"], false, "{security}");

    let key = t.admin_key.as_str();
    let unsigned = signed_borrow(&app, &t.host, key, &[], &body("dev1")).await;
    assert_eq!(
        (unsigned.status.as_u16(), unsigned.code()),
        (401, "missing_signature"),
        "{}",
        unsigned.body
    );
    let now = app.clock().now().secs();
    let h = v1_headers(&t.signing_secret, "vector", ECU.id, "dev1", now, key);
    signed_borrow(&app, &t.host, key, &h, &body("dev1"))
        .await
        .expect(200);
}

#[actix_web::test]
async fn anonymous_status_opens_the_two_status_endpoints_and_nothing_else() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let status_path = format!("/licenses/{}/status", ECU.id);
    let anonymous = |path: &'static str| app.call("GET", &t.host, path, None, None);

    // Off by default: a client without a credential reads nothing.
    for path in ["/licenses/status", "/borrows"] {
        assert_eq!(anonymous(path).await.status.as_u16(), 401, "{path}");
    }
    let r = app.call("GET", &t.host, &status_path, None, None).await;
    assert_eq!(r.status.as_u16(), 401);

    app.tenant_put(&t, "/config/security", json!({"anonymous_status": true}))
        .await
        .expect(200);
    app.borrow_ok(&t, ECU.id, "dev1").await;
    let all = anonymous("/licenses/status").await.expect(200);
    assert_eq!(all[0]["borrowed"], 1, "{all}");
    let one = app
        .call("GET", &t.host, &status_path, None, None)
        .await
        .expect(200);
    assert_eq!(one["product_id"], ECU.id);
    // Still closed: borrows (their ids return seats), events, a borrow.
    for path in ["/borrows", "/config/security", "/api/keys"] {
        assert_eq!(anonymous(path).await.status.as_u16(), 401, "{path}");
    }
    let r = app
        .call(
            "POST",
            &t.host,
            "/licenses/borrow",
            None,
            Some(borrow_body(ECU.id, "anon")),
        )
        .await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.body);

    // And off again when turned off.
    app.tenant_put(&t, "/config/security", json!({"anonymous_status": false}))
        .await
        .expect(200);
    assert_eq!(anonymous("/licenses/status").await.status.as_u16(), 401);
}

#[actix_web::test]
async fn a_deleted_tenant_is_an_unknown_host_and_a_deleted_vendor_loses_its_key_and_secret() {
    let app = TestApp::builder()
        .manual_clock(Timestamp::now())
        .spawn()
        .await;
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    let globex = add_tenant(&app, &acme.vendor_key, &acme.signing_secret, "globex", &ECU).await;
    let held = app.borrow_id(&acme, ECU.id, "dev1").await;

    app.operator("DELETE", "/api/admin/tenants/acme", None)
        .await
        .expect(200);
    for r in [
        app.tenant_get(&acme, "/licenses/status").await,
        app.borrow(&acme, ECU.id, "dev2").await,
        app.call("GET", &acme.host, "/licenses/status", None, None)
            .await,
        app.return_seat(&acme.host, &held).await,
    ] {
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (404, "unknown_tenant"),
            "{}",
            r.body
        );
    }
    // Gone from the vendor's customers; the sibling is untouched.
    let listed = customers(&app, &acme.vendor_key).await;
    let ids: Vec<_> = listed["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["tenant_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["globex"]);
    app.borrow_ok(&globex, ECU.id, "dev1").await;

    // The vendor's signing secret verifies globex's borrows until the vendor is deleted.
    app.tenant_put(
        &globex,
        "/config/security",
        json!({"signature_policy": "v1"}),
    )
    .await
    .expect(200);
    let key = globex.admin_key.as_str();
    let now = app.clock().now().secs();
    let h = v1_headers(&globex.signing_secret, "vector", ECU.id, "dev2", now, key);
    signed_borrow(&app, &globex.host, key, &h, &body("dev2"))
        .await
        .expect(200);
    app.operator("DELETE", "/api/admin/vendors/vector", None)
        .await
        .expect(200);
    let r = customers_reply(&app, &acme.vendor_key).await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.body);
    let h = v1_headers(&globex.signing_secret, "vector", ECU.id, "dev3", now, key);
    let r = signed_borrow(&app, &globex.host, key, &h, &body("dev3")).await;
    assert_eq!(r.status.as_u16(), 401, "{}", r.body);
}

/// `GET /api/vendor/customers` with `key`, the raw reply.
async fn customers_reply(app: &TestApp, key: &str) -> Reply {
    app.vendor(key, "GET", "/api/vendor/customers", None).await
}
