//! Bodies after the second hostile review (issue 22): unknown fields in every body that
//! changes state are refused with their name, and login takes JSON from the portal's
//! own page only.
use serde_json::{Value, json};

use crate::helpers::*;

/// Every endpoint whose body changes state, with a valid body: `(method, host, path,
/// credential, body)` for tenant `t` of `vendor` (whose portal password is
/// `<vendor>-password`; `t` has the portal user `alice`, password `alice-password`). The
/// credential is `admin` (t's admin key), `vendor`, `operator` or `none`.
fn mutating_bodies(
    t: &Tenant,
    vendor: &str,
    package: &str,
) -> Vec<(&'static str, String, String, &'static str, Value)> {
    let (tool, tenant, host) = (ECU.id, t.id.as_str(), t.host.clone());
    let vendor_host = "vendor.localhost".to_owned();
    let main = "localhost".to_owned();
    vec![
        (
            "POST",
            host.clone(),
            "/licenses/borrow".into(),
            "admin",
            json!({"tool": tool, "user": "dev1"}),
        ),
        (
            "POST",
            host.clone(),
            "/licenses/return".into(),
            "none",
            json!({"id": "6f0c5c9e-0d7e-4d5e-9a51-3c1f3f0e8a11"}),
        ),
        (
            "PUT",
            host.clone(),
            "/config/security".into(),
            "admin",
            json!({"anonymous_status": false}),
        ),
        (
            "POST",
            host.clone(),
            "/api/keys".into(),
            "admin",
            json!({"name": "k", "scope": "borrow"}),
        ),
        (
            "POST",
            host.clone(),
            "/api/users".into(),
            "admin",
            json!({"username": "u1", "password": "long-enough", "role": "viewer"}),
        ),
        (
            "PUT",
            host.clone(),
            "/config/limits".into(),
            "admin",
            json!({"tool": tool, "max_per_user": null}),
        ),
        (
            "PUT",
            host.clone(),
            "/config/budget".into(),
            "admin",
            json!({"tool": tool, "max_overage": null}),
        ),
        (
            "PUT",
            host.clone(),
            "/config/protection".into(),
            "admin",
            json!({"tool": tool, "max_spend": null}),
        ),
        (
            "POST",
            host.clone(),
            "/api/customer/request-more".into(),
            "admin",
            json!({"tool": tool, "requested_total": 40}),
        ),
        (
            "POST",
            host,
            "/api/auth/login".into(),
            "none",
            json!({"username": "alice", "password": "alice-password"}),
        ),
        (
            "POST",
            vendor_host.clone(),
            "/api/auth/login".into(),
            "none",
            json!({"username": vendor, "password": format!("{vendor}-password")}),
        ),
        (
            "POST",
            vendor_host.clone(),
            "/api/vendor/customers".into(),
            "vendor",
            json!({"tenant_id": "new-one", "company_name": "New"}),
        ),
        (
            "POST",
            vendor_host.clone(),
            "/api/vendor/provision".into(),
            "vendor",
            json!({"tenant_id": tenant, "product_id": "p2", "product_name": "P2", "total": 1, "commit_qty": 1, "max_overage": 0}),
        ),
        (
            "PATCH",
            vendor_host.clone(),
            format!("/api/vendor/packages/{package}"),
            "vendor",
            json!({"crm_opportunity_id": "opp-1"}),
        ),
        (
            "POST",
            vendor_host.clone(),
            format!("/api/vendor/requests/{tenant}.ffffffffffffffff/approve"),
            "vendor",
            json!({"note": "ok"}),
        ),
        (
            "POST",
            vendor_host,
            format!("/api/vendor/requests/{tenant}.ffffffffffffffff/reject"),
            "vendor",
            json!({"note": "no"}),
        ),
        (
            "POST",
            main.clone(),
            "/api/admin/vendors".into(),
            "operator",
            json!({"vendor_id": "v2", "vendor_name": "V2"}),
        ),
        (
            "POST",
            main,
            format!("/api/admin/vendors/{vendor}/rotate-signing-secret"),
            "operator",
            json!({"overlap_seconds": 60}),
        ),
    ]
}

/// Sends every state-changing body with one unknown field added; each must be refused
/// with `400 invalid_json` naming the field, and change nothing. Returns what was not.
pub async fn unknown_fields_refused(app: &TestApp, t: &Tenant, vendor: &str) -> Vec<String> {
    let package = package_id(app, t, ECU.id).await;
    let mut wrong = Vec::new();
    for (method, host, path, who, mut body) in mutating_bodies(t, vendor, &package) {
        body["bogus_field"] = json!(true);
        let token = match who {
            "admin" => Some(t.admin_key.clone()),
            "vendor" => Some(t.vendor_key.clone()),
            "operator" => Some(app.admin_token.clone()),
            _ => None,
        };
        let r = app
            .call(method, &host, &path, token.as_deref(), Some(body))
            .await;
        let named = r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("bogus_field"));
        if (r.status.as_u16(), r.code()) != (400, "invalid_json") || !named {
            wrong.push(format!("{method} {path}: {} {}", r.status, r.body));
        }
    }
    wrong
}

#[actix_web::test]
async fn misspelt_fields_are_refused_with_their_name_in_every_body_that_changes_state() {
    let app = TestApp::builder().spawn().await;
    let (vendor_key, secret) = vendor_with_password(&app, "vector", "vector-password").await;
    let t = add_tenant(&app, &vendor_key, &secret, "acme", &ECU).await;
    add_user(&app, &t, "alice", "alice-password", "admin").await;

    // The cases of the report, each silently ignored before.
    // (method, host, path, credential, body, the misspelt field)
    type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Value, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "PUT",
            t.host.as_str(),
            "/config/security",
            Some(t.admin_key.as_str()),
            json!({"signature_polcy": "v2"}),
            "signature_polcy",
        ),
        (
            "POST",
            t.host.as_str(),
            "/api/keys",
            Some(t.admin_key.as_str()),
            json!({"name": "k", "scope": "borrow", "expires": "2030-01-01"}),
            "expires",
        ),
        (
            "POST",
            "vendor.localhost",
            "/api/vendor/provision",
            Some(vendor_key.as_str()),
            json!({"tenant_id": "acme", "product_id": "p9", "product_name": "P9", "total": 2, "commit_qty": 1, "max_overage": 1, "overage_price_per_licence": 12.5}),
            "overage_price_per_licence",
        ),
        (
            "POST",
            "localhost",
            "/api/admin/vendors",
            Some(app.admin_token.as_str()),
            json!({"vendor_id": "dspace", "vendor_name": "dSPACE", "pasword": "long-enough"}),
            "pasword",
        ),
        (
            "POST",
            t.host.as_str(),
            "/api/users",
            Some(t.admin_key.as_str()),
            json!({"username": "bob", "password": "long-enough", "rol": "admin"}),
            "rol",
        ),
    ];
    for (method, host, path, token, body, field) in cases {
        let r = app.call(method, host, path, token, Some(body)).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (400, "invalid_json"),
            "{path}: {}",
            r.body
        );
        assert!(
            r.body["detail"].as_str().unwrap().contains(field),
            "{path}: {}",
            r.body
        );
    }
    // Nothing was changed by them.
    let security = app.tenant_get(&t, "/config/security").await.expect(200);
    assert_eq!(security["signature_policy"], "off");
    let vendors = app
        .operator("GET", "/api/admin/vendors", None)
        .await
        .expect(200);
    assert_eq!(vendors["vendors"].as_array().unwrap().len(), 1);

    let wrong = unknown_fields_refused(&app, &t, "vector").await;
    assert!(wrong.is_empty(), "{wrong:#?}");
    app.stop().await;
}

#[actix_web::test]
async fn login_needs_a_json_body_from_the_portals_own_origin() {
    let app = TestApp::builder().spawn().await;
    vendor_with_password(&app, "vector", "vector-password").await;
    let host = "vendor.localhost";
    let body = json!({"username": "vector", "password": "vector-password"});
    let try_login = |headers: Vec<(&'static str, &'static str)>| {
        let (app, body) = (&app, &body);
        async move { send(app, "POST", host, "/api/auth/login", &headers, Some(body)).await }
    };

    // A form a foreign page can post without a preflight: refused.
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let r = try_login(vec![("Content-Type", ct)]).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (415, "unsupported_media_type"),
            "{ct}"
        );
        assert!(session_cookie(&r).is_none());
    }
    // A cross-site page, by Origin or by Fetch Metadata: refused.
    for headers in [
        vec![
            ("Content-Type", "application/json"),
            ("Origin", "https://evil.example"),
        ],
        vec![
            ("Content-Type", "application/json"),
            ("Origin", "http://acme.localhost"),
        ],
        vec![("Content-Type", "application/json"), ("Origin", "null")],
        vec![
            ("Content-Type", "application/json"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        vec![
            ("Content-Type", "application/json"),
            ("Sec-Fetch-Site", "same-site"),
        ],
    ] {
        let r = try_login(headers.clone()).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (403, "cross_site_request"),
            "{headers:?}"
        );
        assert!(session_cookie(&r).is_none());
    }
    // The portal's own page, and API clients that send no Origin, log in.
    let port = app.addr.port().to_string();
    let own = format!("http://vendor.localhost:{port}");
    for headers in [
        vec![("Content-Type", "application/json")],
        vec![
            ("Content-Type", "application/json; charset=utf-8"),
            ("Sec-Fetch-Site", "same-origin"),
        ],
    ] {
        try_login(headers).await.expect(200);
    }
    let r = send(
        &app,
        "POST",
        &format!("vendor.localhost:{port}"),
        "/api/auth/login",
        &[("Content-Type", "application/json"), ("Origin", &own)],
        Some(&body),
    )
    .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    app.stop().await;
}
