//! Portal sessions and signed requests: requests with arbitrary headers, logins,
//! request signing.
use actix_web::cookie::Cookie;
use serde_json::{Value, json};

use super::app::{Reply, TestApp, read};
use super::inside::signing;

/// Sends a request with arbitrary extra headers (`Host` first); a body goes as JSON
/// (`Content-Type: application/json` unless the headers name another type).
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
    if body.is_some() {
        req = req.insert_header(("Content-Type", "application/json"));
    }
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

/// The system clock in Unix seconds, as a signing client reads it.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
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

/// Headers of a borrow by `t`'s admin key, v2-signed now with `t`'s vendor secret.
pub fn v2_borrow_headers(
    t: &super::accounts::Tenant,
    vendor: &str,
    body: &[u8],
    nonce: &str,
) -> Vec<(String, String)> {
    v2_headers(
        &t.signing_secret,
        vendor,
        "POST",
        "/licenses/borrow",
        body,
        unix_now(),
        nonce,
        &t.admin_key,
    )
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
