//! API key lifecycle: scopes, expiry, `last_used_at` without a write per request,
//! revocation on the next request, listings without secrets, and the per-credential
//! rate limit of key management.
use std::time::Duration;

use permetrix_actors::domain::rfc3339;
use permetrix_storage::{TenantId, Timestamp};
use serde_json::{Value, json};

use crate::helpers::*;
use permetrix_actors::Clock as _;

fn key_info<'a>(list: &'a Value, key_id: &str) -> &'a Value {
    list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == key_id)
        .unwrap()
}

#[actix_web::test]
async fn keys_expire_record_their_last_use_and_are_revoked_at_once() {
    let app = TestApp::builder()
        .manual_clock(Timestamp::now())
        .spawn()
        .await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let admin = Some(t.admin_key.as_str());

    // A key that expires in an hour.
    let expires = rfc3339(app.clock().now().plus(Duration::from_secs(3600)));
    let k = app
        .call(
            "POST",
            &t.host,
            "/api/keys",
            admin,
            Some(json!({"name": "ci", "scope": "borrow", "expires_at": expires})),
        )
        .await
        .expect(201);
    let (ci, ci_id) = (
        k["api_key"].as_str().unwrap().to_owned(),
        k["key_id"].as_str().unwrap().to_owned(),
    );
    assert_eq!(k["expires_at"], expires.as_str());
    // Expiry in the past, or not a time: 400.
    for bad in ["2001-01-01", "tomorrow"] {
        let r = app
            .call(
                "POST",
                &t.host,
                "/api/keys",
                admin,
                Some(json!({"name": "x", "scope": "borrow", "expires_at": bad})),
            )
            .await;
        assert_eq!(r.status.as_u16(), 400, "{bad}");
    }

    // Unused so far.
    let list = app
        .call("GET", &t.host, "/api/keys", admin, None)
        .await
        .expect(200);
    assert!(key_info(&list, &ci_id)["last_used_at"].is_null());
    assert_eq!(key_info(&list, &ci_id)["expired"], false);

    // 50 uses: the listing shows the latest at once, but nothing was written per request.
    for _ in 0..50 {
        app.call("GET", &t.host, "/licenses/status", Some(&ci), None)
            .await
            .expect(200);
    }
    let used_at = rfc3339(app.clock().now());
    let list = app
        .call("GET", &t.host, "/api/keys", admin, None)
        .await
        .expect(200);
    assert_eq!(key_info(&list, &ci_id)["last_used_at"], used_at.as_str());
    let acme = TenantId::parse("acme").unwrap();
    assert_eq!(app.stored_key_usage(&acme, &ci_id), None);
    // The periodic flush writes every pending key in one batch.
    let written = app.flush_key_usage().await;
    assert_eq!(written, 2, "the ci key and the admin key");
    let stored = app.stored_key_usage(&acme, &ci_id).unwrap();
    assert_eq!(rfc3339(stored.last_used_at), used_at);
    assert_eq!(app.pending_key_usage(), 0);

    // After its expiry the key is refused; the listing says so.
    app.clock().advance(Duration::from_secs(3600));
    let r = app
        .call("GET", &t.host, "/licenses/status", Some(&ci), None)
        .await;
    assert_eq!(r.status.as_u16(), 401);
    assert!(r.body["detail"].as_str().unwrap().contains("expired"));
    let list = app
        .call("GET", &t.host, "/api/keys", admin, None)
        .await
        .expect(200);
    assert_eq!(key_info(&list, &ci_id)["expired"], true);
    // The refused use did not count as a use.
    assert_eq!(key_info(&list, &ci_id)["last_used_at"], used_at.as_str());

    // Revocation is effective on the very next request, and survives a usage flush.
    let k = add_farm_key(&app, &t).await;
    let (farm, farm_id) = (
        k["api_key"].as_str().unwrap(),
        k["key_id"].as_str().unwrap(),
    );
    assert!(k["expires_at"].is_null());
    app.call("GET", &t.host, "/licenses/status", Some(farm), None)
        .await
        .expect(200);
    app.call(
        "DELETE",
        &t.host,
        &format!("/api/keys/{farm_id}"),
        admin,
        None,
    )
    .await
    .expect(200);
    let r = app
        .call("GET", &t.host, "/licenses/status", Some(farm), None)
        .await;
    assert_eq!(r.status.as_u16(), 401);
    app.flush_key_usage().await;
    let r = app
        .call("GET", &t.host, "/licenses/status", Some(farm), None)
        .await;
    assert_eq!(r.status.as_u16(), 401);
    let r = app
        .call("DELETE", &t.host, "/api/keys/0000000000000000", admin, None)
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_key"));

    // Listings never show a secret or a digest.
    let list = app
        .call("GET", &t.host, "/api/keys", admin, None)
        .await
        .expect(200);
    let text = list.to_string();
    for key in [&t.admin_key, &ci, &farm.to_owned()] {
        assert!(
            !text.contains(key.rsplit('_').next().unwrap()),
            "secret in {text}"
        );
    }
    for k in list["keys"].as_array().unwrap() {
        let fields: Vec<_> = k.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            fields,
            [
                "created_at",
                "expired",
                "expires_at",
                "key_id",
                "last_used_at",
                "name",
                "revoked",
                "revoked_at",
                "scope"
            ]
        );
    }
    app.stop().await;
}

#[actix_web::test]
async fn key_management_is_rate_limited_per_credential() {
    let app = TestApp::builder()
        .manual_clock(Timestamp::now())
        .spawn()
        .await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let other = app
        .call(
            "POST",
            &t.host,
            "/api/keys",
            Some(&t.admin_key),
            Some(json!({"name": "second admin", "scope": "admin"})),
        )
        .await
        .expect(201);
    let other = other["api_key"].as_str().unwrap();
    // The burst: 30 requests in all (one was the creation above).
    let list_keys = || app.call("GET", &t.host, "/api/keys", Some(&t.admin_key), None);
    for _ in 0..29 {
        list_keys().await.expect(200);
    }
    let r = list_keys().await;
    assert_eq!((r.status.as_u16(), r.code()), (429, "rate_limited"));
    assert_eq!(r.headers.get("retry-after").unwrap(), "1");
    // Another credential has its own allowance; borrowing is not limited.
    app.call("GET", &t.host, "/api/keys", Some(other), None)
        .await
        .expect(200);
    app.call("GET", &t.host, "/licenses/status", Some(&t.admin_key), None)
        .await
        .expect(200);
    // The allowance refills with time.
    app.clock().advance(Duration::from_secs(1));
    list_keys().await.expect(200);
    let r = list_keys().await;
    assert_eq!(r.status.as_u16(), 429);
    app.stop().await;
}

/// Keys that verified once are checked from memory afterwards; a rotation or a soft
/// delete still refuses them on the very next request.
#[actix_web::test]
async fn keys_used_before_stop_working_at_once_after_rotation_and_soft_deletes() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let status = |key: String| {
        let (app, host) = (&app, t.host.clone());
        async move {
            app.call("GET", &host, "/licenses/status", Some(&key), None)
                .await
                .status
                .as_u16()
        }
    };

    // A rotated key, used twice before (the second use from memory).
    let farm = add_farm_key(&app, &t).await;
    let (old, old_id) = (
        farm["api_key"].as_str().unwrap().to_owned(),
        farm["key_id"].as_str().unwrap().to_owned(),
    );
    assert_eq!(status(old.clone()).await, 200);
    assert_eq!(status(old.clone()).await, 200);
    let rotated = app
        .call(
            "POST",
            &t.host,
            &format!("/api/keys/{old_id}/rotate"),
            Some(&t.admin_key),
            None,
        )
        .await
        .expect(201);
    let new = rotated["api_key"].as_str().unwrap().to_owned();
    assert_eq!(status(old.clone()).await, 401);
    assert_eq!(status(new.clone()).await, 200);

    // A soft-deleted vendor's key, used before.
    customers(&app, &t.vendor_key).await;
    customers(&app, &t.vendor_key).await;
    app.operator("DELETE", "/api/admin/vendors/vector", None)
        .await
        .expect(200);
    let r = app
        .vendor(&t.vendor_key, "GET", "/api/vendor/customers", None)
        .await;
    assert_eq!(r.status.as_u16(), 401);

    // A soft-deleted tenant's keys, used before: its host is gone.
    assert_eq!(status(new.clone()).await, 200);
    app.operator("DELETE", "/api/admin/tenants/acme", None)
        .await
        .expect(200);
    assert_eq!(status(new).await, 404);
    app.stop().await;
}
