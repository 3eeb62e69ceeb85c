//! The web portals as HTTP sees them: pages on the right hosts, redirects to the login
//! page without a session, the session's CSRF token in the page, embedded assets with
//! caching headers and a strict Content-Security-Policy, and no API route shadowed.
//! (The pages' behaviour in a browser is tested by `tests/browser/`.)
use awc::http::StatusCode;
use permetrix_storage::Timestamp;
use serde_json::json;

use crate::helpers::*;

const PW: &str = "vendor-portal-pass";

/// A page: status, headers and the body as text. Redirects are not followed.
struct Page {
    status: StatusCode,
    headers: awc::http::header::HeaderMap,
    text: String,
}

impl Page {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

async fn get(app: &TestApp, host: &str, path: &str, headers: &[(&str, &str)]) -> Page {
    let client = awc::Client::builder().disable_redirects().finish();
    let mut req = client.get(app.url(path)).insert_header(("Host", host));
    for (n, v) in headers {
        req = req.insert_header((*n, *v));
    }
    let mut res = req.send().await.expect("request sent");
    let body = res.body().limit(4 * 1024 * 1024).await.expect("body read");
    Page {
        status: res.status(),
        headers: res.headers().clone(),
        text: String::from_utf8(body.to_vec()).expect("utf-8"),
    }
}

/// The value of `<meta name="NAME" content="...">` in a page.
fn meta(html: &str, name: &str) -> Option<String> {
    let open = format!("<meta name=\"{name}\" content=\"");
    let rest = &html[html.find(&open)? + open.len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

fn assert_strict_policy(p: &Page) {
    let csp = p.header("content-security-policy");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(p.header("x-content-type-options"), "nosniff");
}

#[actix_web::test]
async fn the_landing_page_is_on_the_apex_and_links_to_the_portals() {
    let app = TestApp::builder().spawn().await;
    let p = get(&app, "localhost:8000", "/", &[]).await;
    assert_eq!(p.status, 200);
    assert!(p.header("content-type").starts_with("text/html"));
    assert_strict_policy(&p);
    assert!(
        p.text.contains("href=\"//vendor.localhost:8000/\""),
        "{}",
        p.text
    );
    assert!(p.text.contains("&lt;tenant&gt;.localhost:8000"));
    // No inline script: every script is a file under /assets.
    assert!(!p.text.contains("<script>"));
    // The apex has no login page.
    assert_eq!(get(&app, "localhost", "/login", &[]).await.status, 404);
}

#[actix_web::test]
async fn portals_send_visitors_without_a_session_to_the_login_page() {
    let app = TestApp::builder()
        .manual_clock(Timestamp::now())
        .spawn()
        .await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    for host in ["vendor.localhost", "acme.localhost"] {
        let p = get(&app, host, "/", &[]).await;
        assert_eq!(p.status, 303, "{host}");
        assert_eq!(p.header("location"), "/login");
        let login = get(&app, host, "/login", &[]).await;
        assert_eq!(login.status, 200, "{host}");
        assert_strict_policy(&login);
        assert!(
            login
                .text
                .contains("<label for=\"password\">Password</label>")
        );
        assert!(login.text.contains("src=\"/assets/js/login.js?v="));
    }
    // An ended or forged session is no session.
    let forged = format!("pmx_session={}", "ab".repeat(32));
    let p = get(&app, &t.host, "/", &[("Cookie", &forged)]).await;
    assert_eq!(p.status, 303);
}

#[actix_web::test]
async fn the_host_of_no_tenant_serves_no_page_and_activates_nothing() {
    let s = TestApp::builder().spawn().await;
    for path in ["/", "/login", "/assets/app.css"] {
        let p = get(&s, "nobody.localhost", path, &[]).await;
        assert_eq!(p.status, 404, "{path}");
        assert!(p.text.contains("unknown_tenant"), "{path}: {}", p.text);
    }
    assert!(s.mailboxes().is_empty());
    s.stop().await;
}

#[actix_web::test]
async fn a_logged_in_vendor_gets_the_portal_with_the_sessions_csrf_token() {
    let app = TestApp::builder()
        .manual_clock(Timestamp::now())
        .spawn()
        .await;
    vendor_with_password(&app, "vector", PW).await;
    let session = portal(&app, "vendor.localhost", "vector", PW).await;
    let p = get(&app, "vendor.localhost", "/", &session.cookie_only()).await;
    assert_eq!(p.status, 200);
    assert_strict_policy(&p);
    assert_eq!(p.header("cache-control"), "no-store");
    assert_eq!(
        meta(&p.text, "csrf-token").as_deref(),
        Some(session.csrf.as_str())
    );
    assert!(p.text.contains("<strong id=\"who\">vector</strong>"));
    // The token in the page is the one the API takes for mutations.
    send(
        &app,
        "POST",
        "vendor.localhost",
        "/api/vendor/customers",
        &[
            ("Cookie", &session.cookie),
            ("X-CSRF-Token", &meta(&p.text, "csrf-token").unwrap()),
        ],
        Some(&json!({"tenant_id": "acme", "company_name": "ACME"})),
    )
    .await
    .expect(201);
    // Signed in already: the login page goes on to the portal.
    let login = get(&app, "vendor.localhost", "/login", &session.cookie_only()).await;
    assert_eq!(
        (login.status.as_u16(), login.header("location")),
        (303, "/")
    );
    // The vendor's cookie is no session on a tenant's host.
    let elsewhere = get(&app, "acme.localhost", "/", &session.cookie_only()).await;
    assert_eq!(elsewhere.status, 303);
}

#[actix_web::test]
async fn tenant_dashboards_show_admin_sections_to_admins_only() {
    let app = TestApp::builder()
        .manual_clock(Timestamp::now())
        .spawn()
        .await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    add_user(&app, &t, "alice", "alice-password", "admin").await;
    add_user(&app, &t, "victor", "victor-password", "viewer").await;

    let admin = portal(&app, &t.host, "alice", "alice-password").await;
    let p = get(&app, &t.host, "/", &admin.cookie_only()).await;
    assert_eq!(p.status, 200);
    assert_eq!(meta(&p.text, "portal-role").as_deref(), Some("admin"));
    assert!(
        p.text.contains("<title>acme Inc — license dashboard"),
        "{}",
        p.text
    );
    assert!(p.text.contains("id=\"keys-h\""));
    assert!(!p.text.contains("data-admin hidden") && !p.text.contains("hidden data-admin"));

    let viewer = portal(&app, &t.host, "victor", "victor-password").await;
    let p = get(&app, &t.host, "/", &viewer.cookie_only()).await;
    assert_eq!(p.status, 200);
    assert_eq!(meta(&p.text, "portal-role").as_deref(), Some("viewer"));
    assert!(
        p.text.contains("hidden data-admin"),
        "admin sections hidden"
    );
}

#[actix_web::test]
async fn assets_are_embedded_typed_and_cached_by_version() {
    let app = TestApp::builder().spawn().await;
    let page = get(&app, "localhost", "/", &[]).await;
    let css_link = page
        .text
        .split("href=\"")
        .find(|s| s.starts_with("/assets/app.css?v="))
        .and_then(|s| s.split('"').next())
        .expect("the page links its stylesheet with a version")
        .to_owned();

    let js = get(&app, "localhost", "/assets/js/api.js", &[]).await;
    assert_eq!(js.status, 200);
    assert_eq!(js.header("content-type"), "text/javascript; charset=utf-8");
    assert_eq!(js.header("cache-control"), "no-cache");
    assert!(js.text.contains("X-CSRF-Token"));
    let etag = js.header("etag").to_owned();
    assert!(etag.starts_with('"') && etag.len() == 66, "{etag}");
    let again = get(
        &app,
        "vendor.localhost",
        "/assets/js/api.js",
        &[("If-None-Match", &etag)],
    )
    .await;
    assert_eq!(again.status, 304);
    assert!(again.text.is_empty());

    let css = get(&app, "localhost", &css_link, &[]).await;
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), "text/css; charset=utf-8");
    assert_eq!(
        css.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    let chart = get(
        &app,
        "localhost",
        "/assets/vendor/uplot/uPlot.iife.min.js",
        &[],
    )
    .await;
    assert_eq!(chart.status, 200);
    assert!(
        chart
            .text
            .starts_with("/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
    );
    let licence = get(&app, "localhost", "/assets/vendor/uplot/LICENSE", &[]).await;
    assert!(licence.text.contains("MIT"));

    for missing in ["/assets/nope.js", "/assets/../Cargo.toml", "/assets/"] {
        let r = app.call("GET", "localhost", missing, None, None).await;
        assert_eq!(r.status, 404, "{missing}");
        assert_eq!(r.code(), "not_found");
    }
}

#[actix_web::test]
async fn pages_shadow_no_api_route() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    // The API on the same hosts still answers JSON.
    let status = app
        .call("GET", &t.host, "/licenses/status", Some(&t.admin_key), None)
        .await
        .expect(200);
    assert!(status.is_array());
    customers(&app, &t.vendor_key).await;
    // Other methods on page paths are the API's 404 JSON, not a page.
    let r = app.call("POST", &t.host, "/", None, Some(json!({}))).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "not_found");
    app.call("GET", "localhost", "/health", None, None)
        .await
        .expect(200);
}

/// A pool of one seat, so that a second borrow waits.
const ONE_SEAT: Tool = Tool {
    name: "Bus Analyser",
    id: "bus-analyser",
    commit: 1,
    overage: 0,
    price: 100.0,
};

/// The dashboard's wait queue is live: a borrow that waits is announced as a `queued`
/// event, and its grant as a `borrow` event.
#[actix_web::test]
async fn a_borrow_that_waits_is_announced_as_queued() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ONE_SEAT).await;
    let mut events = subscribe(&app, &t).await;
    let mut buffer = String::new();
    let first = app.borrow_ok(&t, ONE_SEAT.id, "holder").await;
    next_event(&mut events, &mut buffer, "borrow").await;

    let waiter = actix_rt::spawn(app.borrow_task(
        &t,
        json!({"tool": ONE_SEAT.id, "user": "waiter", "wait_seconds": 60}),
    ));
    let queued = next_event(&mut events, &mut buffer, "queued").await;
    assert_eq!(
        (queued["user"].as_str(), queued["tool"].as_str()),
        (Some("waiter"), Some(ONE_SEAT.name))
    );
    assert!(queued["at"].is_string());
    let listing = app
        .call(
            "GET",
            &t.host,
            "/licenses/bus-analyser/queue",
            Some(&t.admin_key),
            None,
        )
        .await
        .expect(200);
    assert_eq!(listing["waiting"], 1);

    app.return_ok(&t.host, &first["id"]).await;
    let granted = next_event(&mut events, &mut buffer, "borrow").await;
    assert_eq!(granted["user"], "waiter");
    assert_eq!(waiter.await.unwrap().status.as_u16(), 200);
}
