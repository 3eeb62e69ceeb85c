//! Per-user limits: `GET/PUT /config/limits`.
use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn a_user_at_the_limit_is_refused_until_the_limit_is_cleared() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let all = app
        .call("GET", &t.host, "/config/limits", Some(&t.admin_key), None)
        .await
        .expect(200);
    assert_eq!(
        all,
        json!({"tools": [{"tool": ECU.name, "product_id": ECU.id, "max_per_user": null}]})
    );
    let set = app
        .call(
            "PUT",
            &t.host,
            "/config/limits",
            Some(&t.admin_key),
            Some(json!({"tool": ECU.name, "max_per_user": 2})),
        )
        .await
        .expect(200);
    assert_eq!(set["max_per_user"], 2);
    assert_eq!(set["product_id"], ECU.id);

    app.borrow_ok(&t, ECU.id, "alice").await;
    app.borrow_ok(&t, ECU.id, "alice").await;
    let third = app.borrow(&t, ECU.id, "alice").await;
    assert_eq!(
        (third.status.as_u16(), third.code()),
        (409, "user_limit_reached")
    );
    assert!(third.body["detail"].as_str().unwrap().contains("alice"));
    // A per-user refusal does not queue: no freed seat would cure it.
    let waited = app
        .borrow_json(
            &t,
            json!({"tool": ECU.id, "user": "alice", "wait_seconds": 30}),
        )
        .await;
    assert_eq!(
        (waited.status.as_u16(), waited.code()),
        (409, "user_limit_reached")
    );
    app.borrow_ok(&t, ECU.id, "bob").await;

    let cleared = app
        .call(
            "PUT",
            &t.host,
            "/config/limits",
            Some(&t.admin_key),
            Some(json!({"tool": ECU.id, "max_per_user": null})),
        )
        .await
        .expect(200);
    assert_eq!(cleared["max_per_user"], serde_json::Value::Null);
    app.borrow_ok(&t, ECU.id, "alice").await;
    assert_eq!(app.status_of(&t, ECU.id).await["borrowed"], 4);
}

#[actix_web::test]
async fn limits_need_the_admin_scope_and_valid_input() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let key = app
        .call(
            "POST",
            &t.host,
            "/api/keys",
            Some(&t.admin_key),
            Some(json!({"name": "farm", "scope": "borrow"})),
        )
        .await;
    let borrow_key = key.body["api_key"].as_str().unwrap().to_owned();
    let r = app
        .call(
            "PUT",
            &t.host,
            "/config/limits",
            Some(&borrow_key),
            Some(json!({"tool": ECU.id, "max_per_user": 1})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 403);
    let r = app
        .call("GET", &t.host, "/config/limits", Some(&borrow_key), None)
        .await;
    assert_eq!(r.status.as_u16(), 403);
    for (body, status) in [
        (json!({"tool": ECU.id}), 400),
        (json!({"tool": ECU.id, "max_per_user": 0}), 400),
        (json!({"tool": ECU.id, "max_per_user": -1}), 400),
        (json!({"tool": "", "max_per_user": 1}), 400),
        (json!({"tool": "no-such-tool", "max_per_user": 1}), 404),
    ] {
        let r = app
            .call(
                "PUT",
                &t.host,
                "/config/limits",
                Some(&t.admin_key),
                Some(body.clone()),
            )
            .await;
        assert_eq!(r.status.as_u16(), status, "{body}: {}", r.body);
        assert!(r.body["detail"].is_string());
    }
    let r = app
        .call(
            "GET",
            &t.host,
            "/config/limits?tool=nope",
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_tool"));
}
