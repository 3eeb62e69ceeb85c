//! Live event streams and the credentials behind them (issue 22): a stream ends as soon
//! as its key is revoked, its user deleted or its session logged out; streams are capped
//! per credential and per tenant; viewers change nothing and are shown no borrow ids.
use serde_json::json;

use crate::helpers::*;

/// Streams one credential may hold open at once by default (docs/decisions.md).
pub const STREAMS_PER_CREDENTIAL: usize = 16;

/// A stream of `host` opened with `headers` must be let in and greet.
async fn open(
    app: &TestApp,
    host: &str,
    headers: &[(&str, &str)],
) -> (
    impl futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>
    + Unpin
    + use<>,
    String,
) {
    let mut stream = subscribe_with(app, host, headers).await;
    assert_eq!(stream.status().as_u16(), 200);
    let mut buffer = String::new();
    until_subscribed(&mut stream, &mut buffer).await;
    buffer.clear();
    (stream, buffer)
}

#[actix_web::test]
async fn streams_end_when_their_key_is_revoked_their_user_deleted_or_their_session_ends() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;

    // A revoked key.
    let farm = add_farm_key(&app, &t).await;
    let bearer = format!("Bearer {}", farm["api_key"].as_str().unwrap());
    let (mut stream, mut seen) = open(&app, &t.host, &[("Authorization", &bearer)]).await;
    let path = format!("/api/keys/{}", farm["key_id"].as_str().unwrap());
    app.call("DELETE", &t.host, &path, Some(&t.admin_key), None)
        .await
        .expect(200);
    let after = app.borrow_id(&t, ECU.id, "dev1").await;
    until_end(&mut stream, &mut seen).await;
    assert!(
        !seen.contains("event: borrow") && !seen.contains(&after),
        "{seen:?}"
    );

    // A deleted user.
    add_user(&app, &t, "alice", "alice-password", "admin").await;
    let alice = portal(&app, &t.host, "alice", "alice-password").await;
    let (mut stream, mut seen) = open(&app, &t.host, &alice.cookie_only()).await;
    app.call(
        "DELETE",
        &t.host,
        "/api/users/alice",
        Some(&t.admin_key),
        None,
    )
    .await
    .expect(200);
    let after = app.borrow_id(&t, ECU.id, "dev2").await;
    until_end(&mut stream, &mut seen).await;
    assert!(
        !seen.contains("event: borrow") && !seen.contains(&after),
        "{seen:?}"
    );

    // A session that logged out (another session of the same user goes on).
    add_user(&app, &t, "bob", "bob-password", "viewer").await;
    let bob = portal(&app, &t.host, "bob", "bob-password").await;
    let bob_elsewhere = portal(&app, &t.host, "bob", "bob-password").await;
    let (mut stream, mut seen) = open(&app, &t.host, &bob.cookie_only()).await;
    let (mut other, mut other_seen) = open(&app, &t.host, &bob_elsewhere.cookie_only()).await;
    bob.mutate(&app, "POST", "/api/auth/logout", None)
        .await
        .expect(200);
    let after = app.borrow_id(&t, ECU.id, "dev3").await;
    until_end(&mut stream, &mut seen).await;
    assert!(
        !seen.contains("event: borrow") && !seen.contains(&after),
        "{seen:?}"
    );
    let e = next_event(&mut other, &mut other_seen, "borrow").await;
    assert_eq!(e["user"], "dev3");
    app.stop().await;
}

#[actix_web::test]
async fn one_credential_may_hold_only_so_many_streams() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let bearer = format!("Bearer {}", t.admin_key);
    let mut held = Vec::new();
    for _ in 0..STREAMS_PER_CREDENTIAL {
        held.push(open(&app, &t.host, &[("Authorization", &bearer)]).await);
    }
    let refused = subscribe_with(&app, &t.host, &[("Authorization", &bearer)]).await;
    assert_eq!(refused.status().as_u16(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let r = read(refused).await;
    assert_eq!(r.code(), "too_many_streams", "{}", r.body);
    // Another credential of the tenant still gets one.
    let farm = add_farm_key(&app, &t).await;
    let other = format!("Bearer {}", farm["api_key"].as_str().unwrap());
    let _kept = open(&app, &t.host, &[("Authorization", &other)]).await;
    // A stream that closes frees its place.
    drop(held.pop());
    wait_until("a closed stream frees its place", || async {
        let res = subscribe_with(&app, &t.host, &[("Authorization", &bearer)]).await;
        res.status().as_u16() == 200
    })
    .await;
    app.stop().await;
}

#[actix_web::test]
async fn a_tenant_may_hold_only_so_many_streams() {
    let app = TestApp::builder()
        .config(|c| c.streams.per_tenant = 3)
        .spawn()
        .await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let other = bootstrap(&app, "greenhills", "globex", &ECU).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let key = add_farm_key(&app, &t).await;
        let bearer = format!("Bearer {}", key["api_key"].as_str().unwrap());
        held.push(open(&app, &t.host, &[("Authorization", &bearer)]).await);
    }
    let key = add_farm_key(&app, &t).await;
    let bearer = format!("Bearer {}", key["api_key"].as_str().unwrap());
    let refused = subscribe_with(&app, &t.host, &[("Authorization", &bearer)]).await;
    assert_eq!(refused.status().as_u16(), 429);
    assert_eq!(read(refused).await.code(), "too_many_streams");
    // Other tenants are not affected.
    let bearer = format!("Bearer {}", other.admin_key);
    let _kept = open(&app, &other.host, &[("Authorization", &bearer)]).await;
    app.stop().await;
}

#[actix_web::test]
async fn viewers_change_nothing_and_see_no_borrow_ids() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    add_user(&app, &t, "bob", "bob-password", "viewer").await;
    add_user(&app, &t, "alice", "alice-password", "admin").await;
    let bob = portal(&app, &t.host, "bob", "bob-password").await;
    let alice = portal(&app, &t.host, "alice", "alice-password").await;
    let (mut events, mut seen) = open(&app, &t.host, &bob.cookie_only()).await;
    // Six borrows: the sixth is an overage charge with its borrow id.
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(app.borrow_id(&t, ECU.id, &format!("dev{i}")).await);
    }
    for _ in 0..6 {
        let e = next_event(&mut events, &mut seen, "borrow").await;
        assert!(e["id"].is_null(), "{e}");
    }

    // The viewer's session may not force a return, even with its CSRF token.
    let r = bob
        .mutate(
            &app,
            "POST",
            "/licenses/return",
            Some(&json!({"id": ids[0]})),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (403, "insufficient_scope"),
        "{}",
        r.body
    );
    assert_eq!(app.borrow_ids(&t).await.len(), 6);

    // Nor is it shown an id that would let it return the seat another way.
    let listed = bob.get(&app, "/borrows").await.expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 6);
    assert!(
        listed.as_array().unwrap().iter().all(|b| b["id"].is_null()),
        "{listed}"
    );
    let charges = bob.get(&app, "/overage-charges").await.expect(200);
    let charges = charges["charges"].as_array().unwrap();
    assert_eq!(charges.len(), 1);
    assert!(charges[0]["borrow_id"].is_null(), "{charges:?}");
    for id in &ids {
        assert!(!seen.contains(id.as_str()), "{seen:?}");
    }

    // An admin's session sees the ids and may return.
    let listed = alice.get(&app, "/borrows").await.expect(200);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["id"].is_string())
    );
    alice
        .mutate(
            &app,
            "POST",
            "/licenses/return",
            Some(&json!({"id": ids[0]})),
        )
        .await
        .expect(200);
    app.stop().await;
}
