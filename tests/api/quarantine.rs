//! Crash-loop quarantine of the real binary (issue 22, item 13): a tenant whose actor
//! panics more often than `--quarantine-restarts` within `--quarantine-period` is
//! quarantined (503 `tenant_unavailable` with `Retry-After`, a log line, a gauge and a
//! counter, a signed `tenant.quarantined` webhook to its vendor), other tenants are
//! served, and the operator's resume brings it back with its stored state.
use serde_json::{Value, json};

use crate::helpers::*;

const QUARANTINED: &str = r#"permetrix_tenant_quarantined{tenant="acme"}"#;
const QUARANTINES: &str = r#"permetrix_tenant_quarantines_total{tenant="acme"}"#;

#[actix_web::test]
async fn a_crash_loop_quarantines_the_tenant_until_the_operator_resumes_it() {
    let server = TestApp::builder()
        .args(&[
            "--quarantine-restarts",
            "2",
            "--quarantine-period",
            "3600",
            "--webhooks-allow-private",
        ])
        .process();
    let app = server.app();
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    let receiver = Receiver::start();
    let endpoint = app
        .vendor(
            &acme.vendor_key,
            "POST",
            "/api/vendor/webhooks",
            Some(json!({"url": receiver.url(), "events": ["tenant.quarantined"]})),
        )
        .await
        .expect(201);
    let secret = endpoint["secret"].as_str().unwrap();
    let globex = add_tenant(&app, &acme.vendor_key, &acme.signing_secret, "globex", &ECU).await;
    let held = app.borrow_ok(&acme, ECU.id, "before").await;

    // Two panics are tolerated (each answered 503, the tenant restarted from storage);
    // the third within the hour quarantines the tenant.
    for _ in 0..3 {
        let r = inject(&app, &acme, "panic").await;
        assert_eq!((r.status.as_u16(), r.code()), (503, "tenant_unavailable"));
    }
    server.wait_for_log("tenant quarantined");

    let refused = app.tenant_get(&acme, "/licenses/status").await;
    assert_eq!(refused.status.as_u16(), 503, "{}", refused.body);
    assert_eq!(refused.code(), "tenant_unavailable");
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(detail.contains("quarantined"), "{detail}");
    assert!(detail.contains("3 times within 3600 s"), "{detail}");
    assert_eq!(refused.headers.get("retry-after").unwrap(), "60");
    let borrow = app.borrow(&acme, ECU.id, "during").await;
    assert_eq!(
        (borrow.status.as_u16(), borrow.code()),
        (503, "tenant_unavailable")
    );

    // The vendor is told, once, signed.
    let told = wait_until("the vendor's receiver has the quarantine", || async {
        let events = receiver.events();
        if events.is_empty() {
            Err(events)
        } else {
            Ok(events)
        }
    })
    .await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["type"], "tenant.quarantined");
    assert_eq!(told[0]["tenant"], "acme");
    assert_eq!(told[0]["data"]["restarts"], 3);
    assert_eq!(told[0]["data"]["until"], Value::Null);
    let reason = told[0]["data"]["reason"].as_str().unwrap();
    assert!(reason.contains("3 times within 3600 s"), "{reason}");
    assert!(receiver.accepted()[0].signed_with(secret));

    // The neighbour is untouched.
    app.borrow_ok(&globex, ECU.id, "neighbour").await;

    let seen = scrape(&app).await;
    assert_eq!(at(&seen, QUARANTINED), 1.0);
    assert_eq!(at(&seen, QUARANTINES), 1.0);
    assert_eq!(
        at(&seen, r#"permetrix_tenant_quarantined{tenant="globex"}"#),
        0.0
    );
    let actors = app.actors().await;
    assert_eq!(actors["quarantined"], json!(["acme"]));

    // Resumed: served again from the stored state (the phantom borrows of the panics
    // never were), and the gauge is back to 0; a second resume finds nothing to lift.
    let resumed = app
        .operator("POST", "/api/admin/tenants/acme/resume", None)
        .await
        .expect(200);
    assert_eq!(resumed["resumed"], true);
    let ids = app.borrow_ids(&acme).await;
    assert_eq!(ids, [held["id"].as_str().unwrap()]);
    app.borrow_ok(&acme, ECU.id, "after").await;
    let seen = scrape(&app).await;
    assert_eq!(at(&seen, QUARANTINED), 0.0);
    assert_eq!(at(&seen, QUARANTINES), 1.0);
    let again = app
        .operator("POST", "/api/admin/tenants/acme/resume", None)
        .await
        .expect(200);
    assert_eq!(again["resumed"], false);
    let nobody = app
        .operator("POST", "/api/admin/tenants/nobody/resume", None)
        .await;
    assert_eq!(
        (nobody.status.as_u16(), nobody.code()),
        (404, "unknown_tenant")
    );
    server.kill9();
}
