//! Tenants on their own domains: a custom host is tenant context for its tenant exactly
//! like `<tenant>.<base>` (same credentials, same portal, sessions bound to the host
//! that set them), belongs to one tenant, is never a platform host, stops routing with
//! the reply that removes it, and survives a restart.
use serde_json::{Value, json};

use crate::helpers::*;

const CUSTOM: &str = "licenses.acme.com";
const PW: &str = "portal-password-1";

/// Sets the custom hosts of `tenant` with `vendor_key`; the raw reply.
async fn set_hosts(app: &TestApp, vendor_key: &str, tenant: &str, hosts: &[&str]) -> Reply {
    let path = format!("/api/vendor/customers/{tenant}/hosts");
    let body = json!({ "custom_hosts": hosts });
    app.vendor(vendor_key, "PUT", &path, Some(body)).await
}

/// The custom hosts the vendor's customer list shows for `tenant`.
async fn listed_hosts(app: &TestApp, vendor_key: &str, tenant: &str) -> Value {
    let listed = customers(app, vendor_key).await;
    let customer = listed["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["tenant_id"] == tenant)
        .cloned()
        .expect("customer listed");
    customer["custom_hosts"].clone()
}

/// `GET /licenses/status` at `host` with `key`: the status code.
async fn status_code(app: &TestApp, host: &str, key: &str) -> u16 {
    let r = app
        .call("GET", host, "/licenses/status", Some(key), None)
        .await;
    r.status.as_u16()
}

#[actix_web::test]
async fn a_custom_host_is_its_tenant_with_the_same_credentials_and_nowhere_else() {
    let app = TestApp::builder().spawn().await;
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    let globex = add_tenant(&app, &acme.vendor_key, &acme.signing_secret, "globex", &ECU).await;

    // Case folded, one trailing dot dropped, duplicates counted once.
    let set = set_hosts(
        &app,
        &acme.vendor_key,
        "acme",
        &["Licenses.ACME.com.", CUSTOM],
    )
    .await;
    assert_eq!(
        set.expect(200),
        json!({"tenant_id": "acme", "custom_hosts": [CUSTOM]})
    );
    assert_eq!(
        listed_hosts(&app, &acme.vendor_key, "acme").await,
        json!([CUSTOM])
    );
    assert_eq!(
        listed_hosts(&app, &acme.vendor_key, "globex").await,
        json!([])
    );
    let admin = app
        .operator("GET", "/api/admin/tenants", None)
        .await
        .expect(200);
    let listed = admin["tenants"].as_array().unwrap();
    assert!(listed.iter().any(|t| t["custom_hosts"] == json!([CUSTOM])));

    // The tenant's key works on the custom host, with a port and in any case, on the
    // same pools as its subdomain.
    let on_custom = Tenant {
        host: CUSTOM.to_owned(),
        id: acme.id.clone(),
        admin_key: acme.admin_key.clone(),
        vendor_key: acme.vendor_key.clone(),
        signing_secret: acme.signing_secret.clone(),
    };
    let id = app.borrow_id(&on_custom, ECU.name, "dev1").await;
    assert_eq!(app.status_of(&acme, ECU.id).await["borrowed"], 1);
    for host in ["LICENSES.acme.com:8443", "licenses.acme.com."] {
        assert_eq!(
            status_code(&app, host, &acme.admin_key).await,
            200,
            "{host}"
        );
    }
    app.return_ok(CUSTOM, &id).await;
    assert_eq!(app.status_of(&on_custom, ECU.id).await["borrowed"], 0);

    // Nowhere else: not on another tenant's host, the vendor host or the main host ...
    let r = app
        .borrow_with(&globex.host, &acme.admin_key, ECU.name, "x")
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "forbidden"));
    for (host, path) in [
        ("vendor.localhost", "/api/vendor/customers"),
        ("localhost", "/api/admin/tenants"),
    ] {
        let r = app
            .call("GET", host, path, Some(&acme.admin_key), None)
            .await;
        assert_eq!(r.status.as_u16(), 403, "{host}");
    }
    // ... and no other tenant's or vendor's credential works on the custom host.
    let r = app
        .borrow_with(CUSTOM, &globex.admin_key, ECU.name, "x")
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "forbidden"));
    for key in [acme.vendor_key.as_str(), app.admin_token.as_str()] {
        assert_eq!(status_code(&app, CUSTOM, key).await, 403);
    }
    // A host nobody claimed is the main context, as any host under no base domain.
    assert_eq!(
        status_code(&app, "licenses.other.com", &acme.admin_key).await,
        404
    );
}

#[actix_web::test]
async fn a_host_belongs_to_one_tenant_and_is_never_a_platform_host() {
    let app = TestApp::builder().spawn().await;
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    add_tenant(&app, &acme.vendor_key, &acme.signing_secret, "globex", &ECU).await;
    set_hosts(&app, &acme.vendor_key, "acme", &[CUSTOM])
        .await
        .expect(200);

    // A second tenant cannot claim it, by update or at creation; nothing of either lands.
    let r = set_hosts(&app, &acme.vendor_key, "globex", &["lm.globex.com", CUSTOM]).await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "host_taken"));
    assert_eq!(
        listed_hosts(&app, &acme.vendor_key, "globex").await,
        json!([])
    );
    assert_eq!(
        status_code(&app, "lm.globex.com", &acme.admin_key).await,
        404
    );
    let newco = json!({"tenant_id": "newco", "company_name": "NewCo", "custom_hosts": [CUSTOM]});
    let r = app
        .vendor(
            &acme.vendor_key,
            "POST",
            "/api/vendor/customers",
            Some(newco),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "host_taken"));
    let r = app
        .call("GET", "newco.localhost", "/licenses/status", None, None)
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_tenant"));
    assert_eq!(status_code(&app, CUSTOM, &acme.admin_key).await, 200);

    // Without hosts (absent or null) a customer has none.
    let plain = json!({"tenant_id": "plain", "company_name": "Plain", "custom_hosts": null});
    app.vendor(
        &acme.vendor_key,
        "POST",
        "/api/vendor/customers",
        Some(plain),
    )
    .await
    .expect(201);
    assert_eq!(
        listed_hosts(&app, &acme.vendor_key, "plain").await,
        json!([])
    );

    // At creation a free host routes at once.
    let newco = json!({"tenant_id": "newco", "company_name": "NewCo",
                       "custom_hosts": ["licenses.newco.example"]});
    let created = app
        .vendor(
            &acme.vendor_key,
            "POST",
            "/api/vendor/customers",
            Some(newco),
        )
        .await
        .expect(201);
    let key = created["admin_api_key"].as_str().unwrap();
    assert_eq!(status_code(&app, "licenses.newco.example", key).await, 200);

    // Base domains, names under or above them (the vendor and operator hosts among
    // them) are reserved; malformed names, IP addresses and wildcards are invalid.
    for (host, code) in [
        ("permetrix.fly.dev", "reserved_host"),
        ("vendor.permetrix.fly.dev", "reserved_host"),
        ("vendor.localhost", "reserved_host"),
        ("globex.localhost", "reserved_host"),
        ("fly.dev", "reserved_host"),
        ("localhost", "invalid_host"),
        ("127.0.0.1", "invalid_host"),
        ("*.acme.com", "invalid_host"),
        ("licenses..acme.com", "invalid_host"),
    ] {
        let r = set_hosts(&app, &acme.vendor_key, "acme", &[host]).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, code), "{host}");
    }
    let eleven: Vec<String> = (0..11).map(|i| format!("h{i}.acme.com")).collect();
    let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
    let r = set_hosts(&app, &acme.vendor_key, "acme", &eleven).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "too_many_hosts"));
    let r = app
        .vendor(
            &acme.vendor_key,
            "PUT",
            "/api/vendor/customers/acme/hosts",
            Some(json!({"custom_host": [CUSTOM]})),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, "invalid_json"));
    // Refusals changed nothing.
    assert_eq!(
        listed_hosts(&app, &acme.vendor_key, "acme").await,
        json!([CUSTOM])
    );

    // Another vendor's customer is unknown to a vendor.
    let other = app
        .operator(
            "POST",
            "/api/admin/vendors",
            Some(json!({"vendor_id": "other", "vendor_name": "Other"})),
        )
        .await
        .expect(201);
    let other_key = other["api_key"].as_str().unwrap();
    let r = set_hosts(&app, other_key, "acme", &[]).await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_tenant"));
    assert_eq!(status_code(&app, CUSTOM, &acme.admin_key).await, 200);
}

#[actix_web::test]
async fn a_removed_host_stops_routing_with_the_reply_and_is_free_again() {
    let app = TestApp::builder().spawn().await;
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    let globex = add_tenant(&app, &acme.vendor_key, &acme.signing_secret, "globex", &ECU).await;
    set_hosts(&app, &acme.vendor_key, "acme", &[CUSTOM, "lm.acme.com"])
        .await
        .expect(200);
    assert_eq!(status_code(&app, CUSTOM, &acme.admin_key).await, 200);

    let kept = set_hosts(&app, &acme.vendor_key, "acme", &["lm.acme.com"]).await;
    assert_eq!(kept.expect(200)["custom_hosts"], json!(["lm.acme.com"]));
    // The very next request: the removed host matches no base domain and no tenant, so
    // it is the main context, where tenant routes do not exist and the operator API
    // still needs the operator token.
    let r = app
        .call(
            "GET",
            CUSTOM,
            "/licenses/status",
            Some(&acme.admin_key),
            None,
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "not_found"));
    let r = app
        .call("GET", CUSTOM, "/api/admin/tenants", None, None)
        .await;
    assert_eq!(r.status.as_u16(), 401);
    let r = app
        .call(
            "GET",
            CUSTOM,
            "/api/admin/tenants",
            Some(&acme.admin_key),
            None,
        )
        .await;
    assert_eq!(r.status.as_u16(), 403);
    assert_eq!(status_code(&app, "lm.acme.com", &acme.admin_key).await, 200);

    // Another tenant may claim it now, and it routes there.
    set_hosts(&app, &acme.vendor_key, "globex", &[CUSTOM])
        .await
        .expect(200);
    assert_eq!(status_code(&app, CUSTOM, &globex.admin_key).await, 200);
    assert_eq!(status_code(&app, CUSTOM, &acme.admin_key).await, 403);

    // Deleting a tenant releases its hosts at once.
    app.operator("DELETE", "/api/admin/tenants/globex", None)
        .await
        .expect(200);
    assert_eq!(status_code(&app, CUSTOM, &globex.admin_key).await, 404);
    set_hosts(&app, &acme.vendor_key, "acme", &[CUSTOM])
        .await
        .expect(200);
    assert_eq!(status_code(&app, CUSTOM, &acme.admin_key).await, 200);
    assert_eq!(status_code(&app, "lm.acme.com", &acme.admin_key).await, 404);
}

#[actix_web::test]
async fn the_portal_works_on_the_custom_host_with_a_session_bound_to_it() {
    let app = TestApp::builder().spawn().await;
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    add_user(&app, &acme, "ann", PW, "admin").await;
    set_hosts(&app, &acme.vendor_key, "acme", &[CUSTOM])
        .await
        .expect(200);

    // The portal's pages and login are there.
    let page = send(&app, "GET", CUSTOM, "/login", &[], None).await;
    assert_eq!(page.status.as_u16(), 200);
    let custom = portal(&app, CUSTOM, "ann", PW).await;
    let me = custom.get(&app, "/api/auth/me").await.expect(200);
    assert_eq!(me["tenant_id"], "acme");
    let dashboard = send(&app, "GET", CUSTOM, "/", &custom.cookie_only(), None).await;
    assert_eq!(dashboard.status.as_u16(), 200);
    let ct = dashboard
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(ct.starts_with("text/html"), "{ct}");
    let key = json!({"name": "from the custom host", "scope": "borrow"});
    custom
        .mutate(&app, "POST", "/api/keys", Some(&key))
        .await
        .expect(201);

    // A session works only on the host that set it, either way round.
    let sub = portal(&app, &acme.host, "ann", PW).await;
    sub.get(&app, "/api/auth/me").await.expect(200);
    let r = custom.get_at(&app, &acme.host, "/api/auth/me").await;
    assert_eq!(r.status.as_u16(), 403);
    let r = sub.get_at(&app, CUSTOM, "/api/auth/me").await;
    assert_eq!(r.status.as_u16(), 403);
    let r = send(
        &app,
        "POST",
        &acme.host,
        "/api/keys",
        &custom.headers(),
        Some(&key),
    )
    .await;
    assert_eq!(r.status.as_u16(), 403);

    // Removing the host ends what its sessions can reach.
    set_hosts(&app, &acme.vendor_key, "acme", &[])
        .await
        .expect(200);
    let r = custom.get(&app, "/api/auth/me").await;
    assert_eq!(r.status.as_u16(), 404);
}

#[actix_web::test]
async fn custom_hosts_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestApp::builder()
        .data_dir(dir.path())
        .token("custom-hosts-operator-token");
    let first = server.process();
    let app = first.app();
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    add_tenant(&app, &acme.vendor_key, &acme.signing_secret, "globex", &ECU).await;
    set_hosts(&app, &acme.vendor_key, "acme", &[CUSTOM])
        .await
        .expect(200);
    first.kill9();

    let second = server.process();
    let app = second.app();
    assert_eq!(status_code(&app, CUSTOM, &acme.admin_key).await, 200);
    assert_eq!(
        listed_hosts(&app, &acme.vendor_key, "acme").await,
        json!([CUSTOM])
    );
    let r = set_hosts(&app, &acme.vendor_key, "globex", &[CUSTOM]).await;
    assert_eq!((r.status.as_u16(), r.code()), (409, "host_taken"));
    second.kill9();
}
