//! One tenant cannot crowd out the others (issue 22): key and user management is
//! rate-limited per tenant as well as per credential, keys and users per tenant are
//! capped, and the password-hashing slots are shared fairly between tenants.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use permetrix_storage::Timestamp;
use serde_json::json;

use crate::helpers::*;

/// Key-management requests one tenant may make at once, whichever of its keys makes
/// them (docs/decisions.md).
const TENANT_BURST: usize = 60;

#[actix_web::test]
async fn new_admin_keys_cannot_multiply_a_tenants_allowance() {
    // A clock that stands still: no allowance is earned back during the test.
    let app = TestApp::builder()
        .manual_clock(Timestamp::now())
        .spawn()
        .await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let other = bootstrap(&app, "greenhills", "globex", &ECU).await;
    let mut admins = vec![t.admin_key.clone()];
    let (mut created, mut refused) = (0, None);
    // Each new admin key mints keys with an allowance of its own (30 → 900 → …) unless
    // the tenant's allowance caps them all.
    for n in 0..400 {
        let key = admins[n % admins.len()].clone();
        let r = app
            .call(
                "POST",
                &t.host,
                "/api/keys",
                Some(&key),
                Some(json!({"name": format!("k{n}"), "scope": "admin"})),
            )
            .await;
        match r.status.as_u16() {
            201 => {
                created += 1;
                admins.push(r.body["api_key"].as_str().unwrap().to_owned());
            }
            429 => {
                assert_eq!(r.code(), "rate_limited");
                refused = Some(n);
                break;
            }
            other => panic!("{other}: {}", r.body),
        }
    }
    assert!(
        refused.is_some(),
        "400 key creations by fresh admin keys were never limited"
    );
    assert!(
        created <= TENANT_BURST,
        "{created} keys created before the tenant was limited"
    );
    // Listing users counts against the same allowance; another tenant keeps its own.
    let r = app
        .call("GET", &t.host, "/api/users", Some(&admins[1]), None)
        .await;
    assert_eq!(r.status.as_u16(), 429);
    app.call(
        "POST",
        &other.host,
        "/api/keys",
        Some(&other.admin_key),
        Some(json!({"name": "farm", "scope": "borrow"})),
    )
    .await
    .expect(201);
    app.stop().await;
}

#[actix_web::test]
async fn keys_and_users_per_tenant_are_capped() {
    let app = TestApp::builder()
        .config(|c| {
            c.limits.max_keys_per_tenant = 3;
            c.limits.max_users_per_tenant = 2;
        })
        .spawn()
        .await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    // The tenant's first admin key counts: two more make three.
    let first = add_farm_key(&app, &t).await;
    add_farm_key(&app, &t).await;
    let r = app
        .call(
            "POST",
            &t.host,
            "/api/keys",
            Some(&t.admin_key),
            Some(json!({"name": "one too many", "scope": "borrow"})),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (409, "too_many_keys"),
        "{}",
        r.body
    );
    // A revoked key no longer counts.
    let path = format!("/api/keys/{}", first["key_id"].as_str().unwrap());
    app.call("DELETE", &t.host, &path, Some(&t.admin_key), None)
        .await
        .expect(200);
    add_farm_key(&app, &t).await;

    add_user(&app, &t, "alice", "alice-password", "admin").await;
    add_user(&app, &t, "bob", "bob-password", "viewer").await;
    let r = app
        .call(
            "POST",
            &t.host,
            "/api/users",
            Some(&t.admin_key),
            Some(json!({"username": "carol", "password": "carol-password", "role": "viewer"})),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (409, "too_many_users"),
        "{}",
        r.body
    );
    app.call(
        "DELETE",
        &t.host,
        "/api/users/bob",
        Some(&t.admin_key),
        None,
    )
    .await
    .expect(200);
    add_user(&app, &t, "carol", "carol-password", "viewer").await;
    app.stop().await;
}

#[actix_web::test]
async fn one_tenants_flood_of_password_work_does_not_starve_another_tenants_login() {
    let app = TestApp::builder().spawn().await;
    let a = bootstrap(&app, "vector", "acme", &ECU).await;
    let b = add_tenant(&app, &a.vendor_key, &a.signing_secret, "globex", &ECU).await;
    add_user(&app, &b, "bea", "bea-password", "admin").await;

    // Tenant A saturates the hashing slots and queues more work behind them.
    const FLOOD: usize = 16;
    let done = Arc::new(AtomicUsize::new(0));
    let mut flood = Vec::new();
    for i in 0..FLOOD {
        let (client, host, key, done) = (
            app.detached(),
            a.host.clone(),
            a.admin_key.clone(),
            Arc::clone(&done),
        );
        flood.push(actix_rt::spawn(async move {
            let body = json!({"username": format!("user{i}"), "password": "long-enough-pw", "role": "viewer"});
            let r = client.call("POST", &host, "/api/users", Some(&key), Some(body)).await;
            done.fetch_add(1, Ordering::SeqCst);
            r.status.as_u16()
        }));
    }
    wait_until(
        "tenant A's password work queues behind the busy slots",
        || async { app.password_work_waiting() >= FLOOD - 4 },
    )
    .await;

    // B's login is served before A's queued work, not after it.
    let r = login(&app, &b.host, "bea", "bea-password").await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    let still_queued = app.password_work_waiting();
    assert!(
        still_queued > 0,
        "B's login waited until all of A's queued work had started ({} of A's requests done)",
        done.load(Ordering::SeqCst)
    );
    for f in flood {
        assert_eq!(f.await.unwrap(), 201);
    }
    app.stop().await;
}
