//! Replay protection that survives a restart (issue 22): a v2 nonce is stored with the
//! borrow it signed, so the same signed request is refused after the server restarts
//! on the same data, even after a crash.
use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn a_signed_borrow_is_not_granted_again_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let builder = TestApp::builder().data_dir(dir.path());
    let server = builder.process();
    let app = server.app();
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    app.tenant_put(&t, "/config/security", json!({"signature_policy": "v2"}))
        .await
        .expect(200);
    let body = serde_json::to_vec(&borrow_body(ECU.name, "dev1")).unwrap();
    let signed = |nonce: &str| v2_borrow_headers(&t, "vector", &body, nonce);
    let first = signed("3f1c9a0e5b7d");
    signed_borrow(&app, &t.host, &t.admin_key, &first, &body)
        .await
        .expect(200);
    let r = signed_borrow(&app, &t.host, &t.admin_key, &first, &body).await;
    assert_eq!((r.status.as_u16(), r.code()), (401, "replayed_nonce"));

    // The acknowledged borrow, and the nonce written with it, survive a crash.
    server.kill9();
    let server = builder.process();
    let app = server.app();
    let r = signed_borrow(&app, &t.host, &t.admin_key, &first, &body).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (401, "replayed_nonce"),
        "{}",
        r.body
    );
    // A fresh nonce is a new request.
    signed_borrow(&app, &t.host, &t.admin_key, &signed("9a8b7c6d5e4f"), &body)
        .await
        .expect(200);
    assert_eq!(app.status_of(&t, ECU.id).await["borrowed"], 2);
}
