//! `GET /metrics`: no forbidden labels, main host only, the cardinality guard.
use std::collections::{BTreeMap, BTreeSet};

use crate::helpers::*;

/// Label names any series may carry.
const ALLOWED_LABELS: [&str; 8] = [
    "tenant",
    "tool",
    "reason",
    "route",
    "method",
    "status_code",
    "message",
    "le",
];

/// `(name, label names)` of a series key.
fn label_names(series: &str) -> (String, Vec<String>) {
    let Some((name, labels)) = series.split_once('{') else {
        return (series.to_owned(), Vec::new());
    };
    let labels = labels.trim_end_matches('}');
    let names = labels
        .split("\",")
        .filter(|p| !p.is_empty())
        .map(|p| p.split('=').next().unwrap().to_owned())
        .collect();
    (name.to_owned(), names)
}

#[actix_web::test]
async fn no_series_carries_a_user_a_borrow_id_or_a_raw_path() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let granted = app.borrow_ok(&t, ECU.name, "alice.secret-user").await;
    let id = granted["id"].as_str().unwrap().to_owned();
    app.heartbeat(&t, &id).await.expect(200);
    app.status_of(&t, "ECU%20Development%20Suite").await;
    let r = app
        .borrow(&t, "tool-of-bob.denied-user", "bob.denied-user")
        .await;
    assert_eq!(r.status.as_u16(), 404);
    app.call("GET", &t.host, "/no/such/route/xyz-raw", None, None)
        .await;
    app.return_ok(&t.host, &id).await;

    let text = scrape_text(&app).await;
    for secret in [
        "alice.secret-user",
        "bob.denied-user",
        id.as_str(),
        "xyz-raw",
        "ECU%20",
    ] {
        assert!(!text.contains(secret), "'{secret}' leaked into /metrics");
    }
    let mut routes = BTreeSet::new();
    for series in samples(&text).keys() {
        let (name, labels) = label_names(series);
        for l in &labels {
            assert!(ALLOWED_LABELS.contains(&l.as_str()), "{name} has label {l}");
        }
        if let Some(route) = series.split("route=\"").nth(1) {
            routes.insert(route.split('"').next().unwrap().to_owned());
        }
    }
    for expected in [
        "/licenses/borrow",
        "/licenses/{id}/heartbeat",
        "/licenses/{tool}/status",
        "/licenses/return",
        "unmatched",
    ] {
        assert!(routes.contains(expected), "{expected} not in {routes:?}");
    }
    // Every family of the contract is exposed.
    for family in [
        "license_borrow_attempts_total",
        "license_borrow_success_total",
        "license_borrow_failure_total",
        "license_borrow_duration_seconds",
        "licenses_borrowed",
        "licenses_total",
        "licenses_overage",
        "license_overage_checkouts_total",
        "license_http_requests_total",
        "license_http_request_duration_seconds",
        "permetrix_tenant_mailbox_depth",
        "permetrix_tenant_message_duration_seconds",
        "permetrix_tenant_actor_restarts_total",
        "permetrix_tenant_mailbox_rejections_total",
        "permetrix_storage_flush_duration_seconds",
        "permetrix_storage_flush_batch_size",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing"
        );
    }
    app.stop().await;
}

#[actix_web::test]
async fn metrics_live_on_the_main_host_only() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    for host in [t.host.as_str(), "vendor.localhost"] {
        let r = app
            .call("GET", host, "/metrics", Some(&t.admin_key), None)
            .await;
        assert_eq!(r.status.as_u16(), 404, "{host}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn beyond_the_tenant_limit_the_rest_is_summed_into_other() {
    let s = TestApp::builder()
        .config(|c| c.metrics_max_tenants = 2)
        .spawn()
        .await;
    let app = &s;
    let first = bootstrap(app, "vector", "t1", &ECU).await;
    let mut tenants = vec![first];
    for id in ["t2", "t3", "t4"] {
        let t = add_tenant(
            app,
            &tenants[0].vendor_key,
            &tenants[0].signing_secret,
            id,
            &ECU,
        )
        .await;
        tenants.push(t);
    }
    for (i, t) in tenants.iter().enumerate() {
        for u in 0..=i {
            app.borrow_ok(t, ECU.id, &format!("u{u}")).await;
        }
    }
    let m = scrape(app).await;
    let attempts: BTreeMap<String, f64> = m
        .iter()
        .filter(|(k, _)| k.starts_with("license_borrow_attempts_total{"))
        .map(|(k, v)| (k.split('"').nth(1).unwrap().to_owned(), *v))
        .collect();
    // Two tenants keep their label, the other two are summed: nothing is lost.
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert!(attempts.contains_key("_other"), "{attempts:?}");
    assert_eq!(attempts.values().sum::<f64>(), 10.0);
    let borrowed: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("licenses_borrowed{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(borrowed, 10.0);
    let depth_series = m
        .keys()
        .filter(|k| k.starts_with("permetrix_tenant_mailbox_depth{"))
        .count();
    assert_eq!(depth_series, 3);
    s.stop().await;
}
