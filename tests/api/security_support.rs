//! Helpers for the security suites: a server on a manual clock with its state in reach,
//! requests with arbitrary headers, portal logins, request signing.
#![allow(dead_code)]

use std::sync::Arc;

use actix_web::cookie::Cookie;
use actix_web::web;
use permetrix::server::state::AppState;
use permetrix::server::{ClockSource, ServeConfig};
use permetrix_actors::ManualClock;
use permetrix_client::signing;
use permetrix_storage::Timestamp;
use serde_json::{Value, json};

use crate::helpers::*;

/// A server whose clock only moves when a test moves it.
pub struct SecureApp {
    pub app: TestApp,
    pub state: web::Data<AppState>,
    pub clock: ManualClock,
    handle: actix_web::dev::ServerHandle,
    pub dir: tempfile::TempDir,
}

impl std::ops::Deref for SecureApp {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

pub async fn spawn_secure() -> SecureApp {
    spawn_secure_with(|_| {}).await
}

pub async fn spawn_secure_with(tweak: impl FnOnce(&mut ServeConfig)) -> SecureApp {
    let clock = ManualClock::new(Timestamp::now());
    let source = ClockSource(Arc::new(clock.clone()));
    let s = start(|config| {
        config.clock = Some(source);
        tweak(config);
    })
    .await;
    SecureApp {
        app: TestApp::new(s.addr, &s.admin_token),
        state: s.state,
        clock,
        handle: s.handle,
        dir: s.dir,
    }
}

impl SecureApp {
    /// Whether any file of the data directory contains `needle`.
    pub fn data_contains(&self, needle: &[u8]) -> bool {
        fn walk(dir: &std::path::Path, needle: &[u8]) -> bool {
            std::fs::read_dir(dir).unwrap().flatten().any(|e| {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, needle)
                } else {
                    std::fs::read(&p)
                        .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
                        .unwrap_or(false)
                }
            })
        }
        walk(self.dir.path(), needle)
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// Sends a request with arbitrary extra headers (`Host` first).
pub async fn send(
    app: &TestApp,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Reply {
    let method = awc::http::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app
        .client
        .request(method, app.url(path))
        .insert_header(("Host", host));
    for (name, value) in headers {
        req = req.insert_header((*name, *value));
    }
    let res = match body {
        Some(b) => req.send_body(serde_json::to_vec(b).unwrap()).await,
        None => req.send().await,
    };
    read(res.expect("request sent")).await
}

/// A logged-in portal session.
#[derive(Clone, Debug)]
pub struct Portal {
    pub host: String,
    pub cookie: String,
    pub csrf: String,
}

impl Portal {
    /// Headers authenticating with the cookie (and the CSRF token, for mutations).
    pub fn headers(&self) -> Vec<(&str, &str)> {
        vec![
            ("Cookie", self.cookie.as_str()),
            ("X-CSRF-Token", &self.csrf),
        ]
    }

    /// Only the cookie (no CSRF token).
    pub fn cookie_only(&self) -> Vec<(&str, &str)> {
        vec![("Cookie", self.cookie.as_str())]
    }

    /// A GET on the session's host with the cookie alone (reads need no CSRF token).
    pub async fn get(&self, app: &TestApp, path: &str) -> Reply {
        self.get_at(app, &self.host, path).await
    }

    /// A GET on `host` with the session's cookie alone.
    pub async fn get_at(&self, app: &TestApp, host: &str, path: &str) -> Reply {
        send(app, "GET", host, path, &self.cookie_only(), None).await
    }

    /// A mutation on the session's host with the cookie and the CSRF token.
    pub async fn mutate(
        &self,
        app: &TestApp,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Reply {
        send(app, method, &self.host, path, &self.headers(), body).await
    }
}

/// The session `Set-Cookie` of a reply.
pub fn session_cookie(reply: &Reply) -> Option<Cookie<'static>> {
    reply
        .headers
        .get_all("set-cookie")
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| Cookie::parse(v.to_owned()).ok())
        .find(|c| c.name() == "pmx_session")
}

pub async fn login(app: &TestApp, host: &str, username: &str, password: &str) -> Reply {
    send(
        app,
        "POST",
        host,
        "/api/auth/login",
        &[],
        Some(&json!({"username": username, "password": password})),
    )
    .await
}

/// Logs in and returns the session, asserting success.
pub async fn portal(app: &TestApp, host: &str, username: &str, password: &str) -> Portal {
    let r = login(app, host, username, password).await;
    let cookie = session_cookie(&r).expect("login sets the session cookie");
    let body = r.expect(200);
    Portal {
        host: host.to_owned(),
        cookie: format!("pmx_session={}", cookie.value()),
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
    }
}

/// Creates a vendor with a portal password; returns `(api_key, signing_secret)`.
pub async fn vendor_with_password(app: &TestApp, vendor: &str, password: &str) -> (String, String) {
    let v = app
        .operator(
            "POST",
            "/api/admin/vendors",
            Some(json!({"vendor_id": vendor, "vendor_name": vendor, "password": password})),
        )
        .await
        .expect(201);
    (
        v["api_key"].as_str().unwrap().to_owned(),
        v["signing_secret"].as_str().unwrap().to_owned(),
    )
}

/// Creates a tenant portal user with an admin key.
pub async fn add_user(app: &TestApp, t: &Tenant, username: &str, password: &str, role: &str) {
    app.call(
        "POST",
        &t.host,
        "/api/users",
        Some(&t.admin_key),
        Some(json!({"username": username, "password": password, "role": role})),
    )
    .await
    .expect(201);
}

/// Creates a borrow-scope API key named "farm" with the admin key; its reply
/// (`api_key`, `key_id`, `expires_at`).
pub async fn add_farm_key(app: &TestApp, t: &Tenant) -> Value {
    let body = json!({"name": "farm", "scope": "borrow"});
    app.call("POST", &t.host, "/api/keys", Some(&t.admin_key), Some(body))
        .await
        .expect(201)
}

/// Headers of a v1-signed borrow.
pub fn v1_headers(
    secret: &str,
    vendor: &str,
    tool: &str,
    user: &str,
    ts: i64,
    key: &str,
) -> Vec<(String, String)> {
    let ts = ts.to_string();
    let sig = signing::sign(secret.as_bytes(), &signing::v1_string(tool, user, &ts, key));
    vec![
        ("X-Signature".into(), sig),
        ("X-Timestamp".into(), ts),
        ("X-Vendor-ID".into(), vendor.into()),
    ]
}

/// Headers of a v2-signed request.
#[allow(clippy::too_many_arguments)]
pub fn v2_headers(
    secret: &str,
    vendor: &str,
    method: &str,
    path: &str,
    body: &[u8],
    ts: i64,
    nonce: &str,
    key: &str,
) -> Vec<(String, String)> {
    let ts = ts.to_string();
    let signed = signing::v2_string(method, path, &ts, nonce, body, key);
    vec![
        (
            "X-Signature".into(),
            signing::sign(secret.as_bytes(), &signed),
        ),
        ("X-Timestamp".into(), ts),
        ("X-Vendor-ID".into(), vendor.into()),
        ("X-Signature-Version".into(), "2".into()),
        ("X-Nonce".into(), nonce.into()),
    ]
}

/// Borrows with a bearer key, extra headers and the exact body bytes that were signed.
pub async fn signed_borrow(
    app: &TestApp,
    host: &str,
    key: &str,
    extra: &[(String, String)],
    body: &[u8],
) -> Reply {
    let mut req = app
        .client
        .post(app.url("/licenses/borrow"))
        .insert_header(("Host", host))
        .insert_header(("Authorization", format!("Bearer {key}")));
    for (n, v) in extra {
        req = req.insert_header((n.as_str(), v.as_str()));
    }
    read(req.send_body(body.to_vec()).await.expect("request sent")).await
}
