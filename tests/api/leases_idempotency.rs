//! `Idempotency-Key` on borrow and return: a retry gets the original outcome and never
//! a second seat, also across a restart; a reused key with another body is refused;
//! refusals are not remembered; keys are forgotten after 24 hours.
use serde_json::{Value, json};

use crate::helpers::*;

async fn keyed(app: &TestApp, t: &Tenant, path: &str, key: &str, body: Value) -> Reply {
    let res = app
        .client
        .post(app.url(path))
        .insert_header(("Host", t.host.as_str()))
        .insert_header(("Authorization", format!("Bearer {}", t.admin_key)))
        .insert_header(("Idempotency-Key", key))
        .send_json(&body)
        .await
        .expect("request sent");
    read(res).await
}

/// A borrow of `tool` for `user` under the `Idempotency-Key` `key`.
async fn keyed_borrow(app: &TestApp, t: &Tenant, key: &str, tool: &str, user: &str) -> Reply {
    keyed(app, t, "/licenses/borrow", key, borrow_body(tool, user)).await
}

fn replayed(r: &Reply) -> bool {
    r.headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

#[actix_web::test]
async fn a_retried_borrow_gets_the_original_seat_and_never_a_second() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let first = keyed_borrow(&app, &t, "job-4711", ECU.id, "ci-agent-7").await;
    assert!(!replayed(&first));
    let first = first.expect(200);
    let retry = keyed_borrow(&app, &t, "job-4711", ECU.id, "ci-agent-7").await;
    assert!(replayed(&retry));
    assert_eq!(retry.expect(200), first);
    assert_eq!(app.status_of(&t, ECU.id).await["borrowed"], 1);

    // Same key, different request: 422, nothing borrowed.
    let other = keyed_borrow(&app, &t, "job-4711", ECU.id, "someone-else").await;
    assert_eq!(
        (other.status.as_u16(), other.code()),
        (422, "idempotency_key_reused")
    );
    assert_eq!(app.status_of(&t, ECU.id).await["borrowed"], 1);

    // A malformed key is refused before anything happens.
    let bad = keyed_borrow(&app, &t, "has space", ECU.id, "x").await;
    assert_eq!(bad.status.as_u16(), 400);

    // Returns: with a key the retry answers the original 200; without one it is 404.
    let ret = json!({"id": first["id"]});
    let r1 = keyed(&app, &t, "/licenses/return", "ret-1", ret.clone()).await;
    assert!(!replayed(&r1));
    assert_eq!(r1.expect(200)["tool"], ECU.name);
    let r2 = keyed(&app, &t, "/licenses/return", "ret-1", ret.clone()).await;
    assert!(replayed(&r2));
    assert_eq!(r2.expect(200), json!({"status": "ok", "tool": ECU.name}));
    let r3 = app
        .call("POST", &t.host, "/licenses/return", None, Some(ret))
        .await;
    assert_eq!(r3.status.as_u16(), 404);
}

#[actix_web::test]
async fn refusals_are_not_remembered_and_keys_are_forgotten_after_a_day() {
    let app = TestApp::builder().manual_clock(START).spawn().await;
    let t = bootstrap(&app, "vector", "acme", &BUS).await;
    let held = app.borrow_ok(&t, "bus", "holder").await;
    let refused = keyed_borrow(&app, &t, "k", "bus", "dev").await;
    assert_eq!(refused.status.as_u16(), 409);
    app.return_ok(&t.host, &held["id"]).await;
    // The refusal took nothing, so the retry is a new attempt, and it succeeds.
    let granted = keyed_borrow(&app, &t, "k", "bus", "dev").await;
    assert!(!replayed(&granted));
    let granted = granted.expect(200);

    // 24 h (and the pruning slack) later the key is gone from memory and storage.
    let report = app.advance("acme", 24 * 3600 + 120).await;
    assert_eq!(report.forgotten_keys, 1);
    let again = keyed_borrow(&app, &t, "k", "bus", "dev").await;
    assert!(!replayed(&again));
    assert_ne!(again.expect(200)["id"], granted["id"]);
}

#[actix_web::test]
async fn a_retry_after_a_crash_finds_the_original_borrow() {
    let dir = tempfile::tempdir().unwrap();
    let token = "idempotency-restart-token";
    let server = TestApp::builder().data_dir(dir.path()).token(token);
    let first = server.process();
    let app = first.app();
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let original = keyed_borrow(&app, &t, "nightly-42", ECU.id, "ci")
        .await
        .expect(200);
    app.call(
        "PUT",
        &t.host,
        "/config/limits",
        Some(&t.admin_key),
        Some(json!({"tool": ECU.id, "max_per_user": 3})),
    )
    .await
    .expect(200);
    // The response may have been lost: the server dies, the client retries.
    first.kill9();

    let second = server.process();
    let app = second.app();
    let retry = keyed_borrow(&app, &t, "nightly-42", ECU.id, "ci").await;
    assert!(replayed(&retry));
    assert_eq!(retry.expect(200), original);
    assert_eq!(app.status_of(&t, ECU.id).await["borrowed"], 1);
    // The per-user limit survived too.
    let limit = app
        .call(
            "GET",
            &t.host,
            &format!("/config/limits?tool={}", ECU.id),
            Some(&t.admin_key),
            None,
        )
        .await
        .expect(200);
    assert_eq!(limit["max_per_user"], 3);
    second.kill9();
}
