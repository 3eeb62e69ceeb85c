//! The smaller findings of issue 22: exact money, `/metrics` behind a credential (and
//! on a private listener), distinct demo passwords, a private data directory, and user
//! names that cannot escape a per-user limit by their case.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;

use crate::helpers::*;

fn package(price: f64, max_overage: u32) -> serde_json::Value {
    json!({
        "tenant_id": "acme",
        "product_id": format!("p-{price}-{max_overage}"),
        "product_name": format!("P {price} {max_overage}"),
        "total": max_overage + 1,
        "commit_qty": 1,
        "max_overage": max_overage,
        "overage_price_per_license": price,
    })
}

/// Provisions [`package`] to acme with the vendor key; the raw reply.
async fn provision_priced(app: &TestApp, key: &str, price: f64, max_overage: u32) -> Reply {
    app.vendor(
        key,
        "POST",
        "/api/vendor/provision",
        Some(package(price, max_overage)),
    )
    .await
}

/// `r` is a `400 invalid_request` whose detail says `what`.
#[track_caller]
fn refused_for(r: &Reply, what: &str) {
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (400, "invalid_request"),
        "{}",
        r.body
    );
    assert!(
        r.body["detail"].as_str().unwrap().contains(what),
        "{}",
        r.body
    );
}

#[actix_web::test]
async fn amounts_with_more_than_two_decimals_are_refused_and_exposure_is_bounded() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let key = t.vendor_key.as_str();
    for price in [0.001, 12.345, 0.105, 1e12 + 0.125] {
        refused_for(&provision_priced(&app, key, price, 1).await, "two decimals");
    }
    for price in [0.1, 0.29, 12.34, 19.99, 1e9] {
        let p = provision_priced(&app, key, price, 1).await.expect(201);
        assert_eq!(p["overage_price_per_license"], json!(price));
    }
    let ecu = format!(
        "/api/vendor/packages/{}",
        package_id(&app, &t, ECU.id).await
    );
    let patch = |body: serde_json::Value| app.vendor(key, "PATCH", &ecu, Some(body));
    refused_for(
        &patch(json!({"commit_price": 99.999})).await,
        "two decimals",
    );
    let r = app
        .tenant_put(
            &t,
            "/config/protection",
            json!({"tool": ECU.id, "max_spend": 0.001}),
        )
        .await;
    refused_for(&r, "two decimals");

    // What a pool's overage seats can cost at once is bounded, so that sums of charges
    // stay far from the limits of the integers that hold them.
    refused_for(
        &provision_priced(&app, key, 1e12, 999_999).await,
        "max_overage",
    );
    provision_priced(&app, key, 1e6, 999_999).await.expect(201);
    refused_for(
        &patch(json!({"overage_price_per_license": 1e12})).await,
        "max_overage",
    );
    app.stop().await;
}

#[actix_web::test]
async fn metrics_need_the_operator_token_on_the_public_port() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let r = app.call("GET", "localhost", "/metrics", None, None).await;
    assert_eq!(r.status.as_u16(), 401);
    let r = app
        .call("GET", "127.0.0.1", "/metrics", Some("not-the-token"), None)
        .await;
    assert_eq!(r.status.as_u16(), 401);
    let r = app
        .call("GET", "localhost", "/metrics", Some(&t.admin_key), None)
        .await;
    assert_eq!(r.status.as_u16(), 403);
    let text = scrape_text(&app).await;
    assert!(text.contains("tenant=\"acme\""));
    app.stop().await;
}

#[actix_web::test]
async fn a_metrics_token_and_a_private_metrics_listener() {
    let server = TestApp::builder()
        .env("PERMETRIX_METRICS_TOKEN", "scrape-token-0123456789")
        .args(&["--metrics-bind", "127.0.0.1:0"])
        .process();
    let app = server.app();
    bootstrap(&app, "vector", "acme", &ECU).await;
    let r = app
        .call(
            "GET",
            "localhost",
            "/metrics",
            Some("scrape-token-0123456789"),
            None,
        )
        .await;
    assert_eq!(r.status.as_u16(), 200);
    let r = app
        .call(
            "GET",
            "localhost",
            "/api/admin/vendors",
            Some("scrape-token-0123456789"),
            None,
        )
        .await;
    assert_eq!(
        r.status.as_u16(),
        401,
        "the metrics token is no operator token"
    );

    let line = server.wait_for_log("serving /metrics without credentials on ");
    let addr: std::net::SocketAddr = line
        .split("serving /metrics without credentials on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let private = TestApp::at(addr);
    let text = private
        .call("GET", "10.0.0.7:9091", "/metrics", None, None)
        .await;
    assert_eq!(text.status.as_u16(), 200);
    let r = private
        .call(
            "GET",
            "localhost",
            "/api/admin/vendors",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_eq!(r.status.as_u16(), 404, "only /metrics is served there");
}

#[actix_web::test]
async fn demo_tenants_get_passwords_of_their_own() {
    let app = TestApp::builder().config(|c| c.demo = true).spawn().await;
    let banner = app.demo_banner().expect("demo data was seeded");
    let passwords: Vec<(String, String)> = banner
        .lines()
        .filter(|l| l.trim_start().starts_with("dashboard"))
        .map(|l| {
            let host = l
                .split("http://")
                .nth(1)
                .unwrap()
                .split(':')
                .next()
                .unwrap()
                .to_owned();
            let password = l.rsplit(' ').next().unwrap().to_owned();
            (host, password)
        })
        .collect();
    assert_eq!(passwords.len(), 2, "{banner}");
    assert_ne!(passwords[0].1, passwords[1].1, "{banner}");
    // Each works on its own dashboard only.
    for (i, (host, password)) in passwords.iter().enumerate() {
        portal(&app, host, "admin", password).await;
        let (other_host, _) = &passwords[1 - i];
        let r = login(&app, other_host, "admin", password).await;
        assert_eq!(r.status.as_u16(), 401);
    }
    app.stop().await;
}

/// Every directory under `dir` (itself included) is 0700 and every file 0600.
fn loose_modes(dir: &Path) -> Vec<String> {
    let mut loose = Vec::new();
    let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
    if mode != 0o700 {
        loose.push(format!("{} is {mode:o}", dir.display()));
    }
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            loose.extend(loose_modes(&entry.path()));
        } else if meta.is_file() && meta.permissions().mode() & 0o777 != 0o600 {
            loose.push(format!(
                "{} is {:o}",
                entry.path().display(),
                meta.permissions().mode() & 0o777
            ));
        }
    }
    loose
}

#[actix_web::test]
async fn the_data_directory_is_private() {
    let root = tempfile::tempdir().unwrap();
    // One directory the server creates, one an operator created with a loose mode.
    let fresh = root.path().join("fresh");
    let existing = root.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o755)).unwrap();
    for dir in [&fresh, &existing] {
        let builder = TestApp::builder().data_dir(dir);
        let server = builder.process();
        let app = server.app();
        let t = bootstrap(&app, "vector", "acme", &ECU).await;
        for i in 0..20 {
            let id = app.borrow_id(&t, ECU.id, &format!("dev{i}")).await;
            app.return_ok(&t.host, &id).await;
        }
        server.signal(Signal::SIGTERM);
        let (exit, _) = server.wait_exit();
        assert!(exit.success());
        let loose = loose_modes(dir);
        assert!(loose.is_empty(), "{loose:#?}");
    }
}

#[actix_web::test]
async fn user_names_are_folded_so_the_per_user_limit_holds_whatever_the_case() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    app.tenant_put(
        &t,
        "/config/limits",
        json!({"tool": ECU.id, "max_per_user": 1}),
    )
    .await
    .expect(200);
    let granted = app.borrow_ok(&t, ECU.id, "SameUser").await;
    assert_eq!(granted["user"], "sameuser");
    for spelling in ["sameuser", "SAMEUSER", "sameUser"] {
        let r = app.borrow(&t, ECU.id, spelling).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (409, "user_limit_reached"),
            "{spelling}"
        );
    }
    let mine = app
        .call(
            "GET",
            &t.host,
            "/borrows?user=SAMEUSER",
            Some(&t.admin_key),
            None,
        )
        .await
        .expect(200);
    assert_eq!(mine.as_array().unwrap().len(), 1);
    app.stop().await;
}
