//! Portal sessions: login, cookies bound to their host, CSRF, roles, users, expiry,
//! and failed logins slowed down per user and per address.
use std::time::Duration;

use actix_web::cookie::SameSite;
use permetrix_storage::Timestamp;
use serde_json::json;

use crate::helpers::*;

const PW: &str = "vendor-portal-pass";

#[actix_web::test]
async fn vendors_log_in_with_a_host_bound_cookie_and_csrf_token() {
    let app = TestApp::builder()
        .manual_clock(Timestamp::now())
        .spawn()
        .await;
    let (_, _) = vendor_with_password(&app, "vector", PW).await;
    let host = "vendor.localhost";

    // Wrong password and unknown user look the same.
    let bad = login(&app, host, "vector", "wrong-password").await;
    let unknown = login(&app, host, "nobody", "wrong-password").await;
    assert_eq!(
        (bad.status.as_u16(), bad.code()),
        (401, "invalid_credentials")
    );
    assert_eq!(bad.body, unknown.body);
    assert!(session_cookie(&bad).is_none());
    // Login does not exist on the main host.
    assert_eq!(
        login(&app, "localhost", "vector", PW).await.status.as_u16(),
        404
    );

    let r = login(&app, host, "vector", PW).await;
    let cookie = session_cookie(&r).expect("a session cookie");
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
    let body = r.expect(200);
    assert_eq!(
        (body["username"].as_str(), body["role"].as_str()),
        (Some("vector"), Some("vendor"))
    );
    assert!(cookie.http_only().unwrap_or(false));
    assert_eq!(cookie.same_site(), Some(SameSite::Strict));
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(cookie.domain(), None, "host-only cookie");
    assert!(!cookie.secure().unwrap_or(false), "plain HTTP: not Secure");
    assert_eq!(cookie.value().len(), 64);
    // Only a digest is stored: the token is nowhere in the data directory.
    assert!(!app.data_contains(cookie.value().as_bytes()));
    let p = Portal {
        host: host.into(),
        cookie: format!("pmx_session={}", cookie.value()),
        csrf: body["csrf_token"].as_str().unwrap().into(),
    };

    // The cookie works for reads on the vendor host ...
    let me = p.get(&app, "/api/auth/me").await.expect(200);
    assert_eq!(me["vendor_id"], "vector");
    p.get(&app, "/api/vendor/customers").await.expect(200);
    // ... mutations need the CSRF token ...
    let customer = json!({"tenant_id": "acme", "company_name": "ACME"});
    let r = send(
        &app,
        "POST",
        host,
        "/api/vendor/customers",
        &p.cookie_only(),
        Some(&customer),
    )
    .await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "csrf_token_invalid"));
    let wrong = [("Cookie", p.cookie.as_str()), ("X-CSRF-Token", "0000")];
    let r = send(
        &app,
        "POST",
        host,
        "/api/vendor/customers",
        &wrong,
        Some(&customer),
    )
    .await;
    assert_eq!(r.status.as_u16(), 403);
    p.mutate(&app, "POST", "/api/vendor/customers", Some(&customer))
        .await
        .expect(201);

    // ... and nowhere else: not under another name of the vendor host, not on a tenant
    // host (existing or not, the same answer), not as an operator credential.
    let r = p
        .get_at(&app, "vendor.permetrix.fly.dev", "/api/vendor/customers")
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "forbidden"));
    let on_acme = p.get_at(&app, "acme.localhost", "/licenses/status").await;
    let on_ghost = p.get_at(&app, "ghost.localhost", "/licenses/status").await;
    assert_eq!(on_acme.status.as_u16(), 403);
    assert_eq!(
        (on_acme.status, &on_acme.body),
        (on_ghost.status, &on_ghost.body)
    );
    let r = p.get_at(&app, "localhost", "/api/admin/tenants").await;
    assert_eq!(r.status.as_u16(), 401);

    // Logout needs the CSRF token, ends the session and clears the cookie.
    let r = send(
        &app,
        "POST",
        host,
        "/api/auth/logout",
        &p.cookie_only(),
        None,
    )
    .await;
    assert_eq!(r.status.as_u16(), 403);
    let r = p.mutate(&app, "POST", "/api/auth/logout", None).await;
    let removal = session_cookie(&r).expect("removal cookie");
    assert_eq!(removal.value(), "");
    assert_eq!(
        removal.max_age(),
        Some(actix_web::cookie::time::Duration::ZERO)
    );
    r.expect(200);
    let r = p.get(&app, "/api/vendor/customers").await;
    assert_eq!((r.status.as_u16(), r.code()), (401, "invalid_session"));
    app.stop().await;
}

#[actix_web::test]
async fn tenant_users_have_roles_and_die_with_their_account() {
    let app = TestApp::builder()
        .manual_clock(Timestamp::now())
        .spawn()
        .await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let g = add_tenant(&app, &t.vendor_key, &t.signing_secret, "globex", &ECU).await;
    add_user(&app, &t, "Alice@ACME.com", "alice-password", "admin").await;
    add_user(&app, &t, "bob", "bob-password", "viewer").await;

    // Validation and duplicates.
    for (body, status) in [
        (
            json!({"username": "alice@acme.com", "password": "another-pw", "role": "admin"}),
            409,
        ),
        (
            json!({"username": "carol", "password": "short", "role": "admin"}),
            400,
        ),
        (
            json!({"username": "carol", "password": "long-enough", "role": "owner"}),
            400,
        ),
        (
            json!({"username": "a/b", "password": "long-enough", "role": "viewer"}),
            400,
        ),
        (json!({"username": "carol"}), 400),
    ] {
        let r = app
            .call(
                "POST",
                &t.host,
                "/api/users",
                Some(&t.admin_key),
                Some(body),
            )
            .await;
        assert_eq!(r.status.as_u16(), status, "{}", r.body);
    }
    // Only admins manage users; the list shows no password hashes.
    let k = add_farm_key(&app, &t).await;
    let farm = k["api_key"].as_str().unwrap();
    let r = app
        .call("GET", &t.host, "/api/users", Some(farm), None)
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "insufficient_scope"));
    let list = app
        .call("GET", &t.host, "/api/users", Some(&t.admin_key), None)
        .await
        .expect(200);
    assert_eq!(list["users"].as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains("argon2"));

    // A tenant user logs in on its own tenant's host only.
    assert_eq!(
        login(&app, &g.host, "bob", "bob-password")
            .await
            .status
            .as_u16(),
        401
    );
    assert_eq!(
        login(&app, "vendor.localhost", "bob", "bob-password")
            .await
            .status
            .as_u16(),
        401
    );
    assert_eq!(
        login(&app, "ghost.localhost", "bob", "bob-password")
            .await
            .code(),
        "unknown_tenant"
    );
    let viewer = portal(&app, &t.host, "bob", "bob-password").await;
    let admin = portal(&app, &t.host, "ALICE@acme.com", "alice-password").await;
    let me = admin.get(&app, "/api/auth/me").await.expect(200);
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some("alice@acme.com"), Some("admin"))
    );

    // Viewer: reads borrow-scope endpoints; no mutations, no admin endpoints.
    for path in ["/licenses/status", "/borrows", "/api/auth/me"] {
        viewer.get(&app, path).await.expect(200);
    }
    let borrow = borrow_body(ECU.name, "dev1");
    let r = viewer
        .mutate(&app, "POST", "/licenses/borrow", Some(&borrow))
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "insufficient_scope"));
    for path in ["/config/security", "/api/keys", "/api/users"] {
        let r = viewer.get(&app, path).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (403, "insufficient_scope"),
            "{path}"
        );
    }

    // Admin: everything an admin key may, mutations with the CSRF token.
    admin.get(&app, "/api/keys").await.expect(200);
    let r = send(
        &app,
        "PUT",
        &t.host,
        "/config/security",
        &admin.cookie_only(),
        Some(&json!({"anonymous_status": true})),
    )
    .await;
    assert_eq!((r.status.as_u16(), r.code()), (403, "csrf_token_invalid"));
    admin
        .mutate(
            &app,
            "PUT",
            "/config/security",
            Some(&json!({"anonymous_status": true})),
        )
        .await
        .expect(200);
    admin
        .mutate(&app, "POST", "/licenses/borrow", Some(&borrow))
        .await
        .expect(200);
    admin
        .mutate(
            &app,
            "POST",
            "/api/keys",
            Some(&json!({"name": "ui", "scope": "borrow"})),
        )
        .await
        .expect(201);

    // An acme session on globex's host is refused like on a host with no tenant.
    let on_globex = admin.get_at(&app, &g.host, "/api/keys").await;
    let on_ghost = admin.get_at(&app, "ghost.localhost", "/api/keys").await;
    assert_eq!(on_globex.status.as_u16(), 403);
    assert_eq!(
        (on_globex.status, &on_globex.body),
        (on_ghost.status, &on_ghost.body)
    );

    // A bearer key takes precedence over a cookie (and needs no CSRF token).
    let mut h = viewer.cookie_only();
    let bearer = format!("Bearer {}", t.admin_key);
    h.push(("Authorization", &bearer));
    send(
        &app,
        "PUT",
        &t.host,
        "/config/security",
        &h,
        Some(&json!({"anonymous_status": false})),
    )
    .await
    .expect(200);

    // Deleting a user ends their sessions at once, even if the name is taken again.
    app.call(
        "DELETE",
        &t.host,
        "/api/users/bob",
        Some(&t.admin_key),
        None,
    )
    .await
    .expect(200);
    let r = viewer.get(&app, "/borrows").await;
    assert_eq!((r.status.as_u16(), r.code()), (401, "invalid_session"));
    add_user(&app, &t, "bob", "bob-password", "viewer").await;
    let r = viewer.get(&app, "/licenses/status").await;
    assert_eq!(r.status.as_u16(), 401);
    let r = app
        .call(
            "DELETE",
            &t.host,
            "/api/users/nobody",
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_user"));

    // Sessions end after their lifetime, and expired ones are purged from the store.
    admin.get(&app, "/api/keys").await.expect(200);
    app.clock().advance(Duration::from_secs(12 * 3600 + 1));
    let r = admin.get(&app, "/api/keys").await;
    assert_eq!((r.status.as_u16(), r.code()), (401, "invalid_session"));
    let purged = app.purge_expired_sessions().await;
    assert_eq!(purged, 2, "alice's and bob's sessions");
    assert!(app.stored_sessions().is_empty());
    app.stop().await;
}

#[actix_web::test]
async fn cookies_are_secure_behind_https() {
    let app = TestApp::builder()
        .manual_clock(Timestamp::now())
        .spawn()
        .await;
    vendor_with_password(&app, "vector", PW).await;
    let body = json!({"username": "vector", "password": PW});
    let proxied = send(
        &app,
        "POST",
        "vendor.localhost",
        "/api/auth/login",
        &[("X-Forwarded-Proto", "https")],
        Some(&body),
    )
    .await;
    assert_eq!(session_cookie(&proxied).unwrap().secure(), Some(true));
    app.stop().await;

    let always = TestApp::builder()
        .manual_clock(Timestamp::now())
        .config(|c| c.sessions.secure = CookieSecurity::Always)
        .spawn()
        .await;
    vendor_with_password(&always, "vector", PW).await;
    let r = login(&always, "vendor.localhost", "vector", PW).await;
    assert_eq!(session_cookie(&r).unwrap().secure(), Some(true));
    always.stop().await;
}

#[actix_web::test]
async fn failed_logins_are_slowed_per_user_and_per_address() {
    let app = TestApp::builder()
        .manual_clock(Timestamp::now())
        .config(|c| {
            c.sessions.client_ip_header = Some("fly-client-ip".parse().unwrap());
        })
        .spawn()
        .await;
    vendor_with_password(&app, "vector", PW).await;
    let host = "vendor.localhost";
    let from = |ip: &'static str, user: &str, pw: &str| {
        let body = json!({"username": user, "password": pw});
        let app = &app;
        async move {
            send(
                app,
                "POST",
                host,
                "/api/auth/login",
                &[("Fly-Client-IP", ip)],
                Some(&body),
            )
            .await
        }
    };

    // Five failures for one user; then even the right password waits.
    for _ in 0..5 {
        let r = from("198.51.100.1", "vector", "guess").await;
        assert_eq!(r.status.as_u16(), 401);
    }
    let r = from("198.51.100.2", "vector", PW).await;
    assert_eq!((r.status.as_u16(), r.code()), (429, "login_throttled"));
    assert_eq!(r.headers.get("retry-after").unwrap(), "1");
    assert!(r.body["detail"].as_str().unwrap().contains("retry in"));
    // Waiting out the block lets the right password in, and clears the user's record.
    app.clock().advance(Duration::from_secs(1));
    from("198.51.100.2", "vector", PW).await.expect(200);
    from("198.51.100.2", "vector", "guess").await.expect(401);
    from("198.51.100.2", "vector", PW).await.expect(200);

    // An unknown user is throttled exactly like a known one.
    for _ in 0..5 {
        from("198.51.100.3", "nobody", "guess").await.expect(401);
    }
    assert_eq!(
        from("198.51.100.3", "nobody", "guess").await.code(),
        "login_throttled"
    );

    // One address guessing at many users is blocked after 20 failures, for every user;
    // other addresses are not.
    app.clock().advance(Duration::from_secs(3600));
    for i in 0..20 {
        from("203.0.113.7", &format!("user{i}"), "guess")
            .await
            .expect(401);
    }
    let r = from("203.0.113.7", "vector", PW).await;
    assert_eq!((r.status.as_u16(), r.code()), (429, "login_throttled"));
    from("203.0.113.8", "vector", PW).await.expect(200);

    // Blocks double with each further failure.
    app.clock().advance(Duration::from_secs(1));
    from("203.0.113.7", "user0", "guess").await.expect(401);
    let r = from("203.0.113.7", "vector", PW).await;
    assert_eq!(r.headers.get("retry-after").unwrap(), "2");
    app.stop().await;
}
