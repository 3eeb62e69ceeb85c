//! Passivation (`--idle-passivate`) on the embedded store, with a manual clock: an idle
//! tenant's actor stops once nothing is due in its memory, its memory is freed, and the
//! next request activates it again with its state intact. A held lease or a live event
//! stream keeps the actor (its expiry runs on time; its subscriber keeps listening).
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

const IDLE: Duration = Duration::from_secs(300);

async fn app() -> TestApp {
    TestApp::builder()
        .manual_clock(START)
        .config(|c| c.idle_passivate = Some(IDLE))
        .spawn()
        .await
}

/// Passivates what is idle now (the periodic sweep may have been first) and waits until
/// `tenants` actors run.
async fn passivated_down_to(app: &TestApp, tenants: usize) {
    app.passivate_idle().await;
    wait_until("the idle actors are passivated", || async {
        app.active_tenants() == tenants
    })
    .await;
}

#[actix_rt::test]
async fn an_idle_tenant_is_passivated_and_served_again_with_its_state() {
    let app = app().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    // Six seats on 60 s leases: the sixth is overage and books a charge.
    for i in 0..6 {
        let body = json!({"tool": ECU.id, "user": format!("dev{i}"), "lease_seconds": 60});
        app.borrow_json(&t, body).await.expect(200);
    }
    let keyed = || {
        app.client
            .post(app.url("/licenses/borrow"))
            .insert_header(("Host", t.host.as_str()))
            .insert_header(("Authorization", format!("Bearer {}", t.admin_key)))
            .insert_header(("Idempotency-Key", "nightly-build-1"))
            .send_json(&json!({"tool": ECU.id, "user": "ci", "lease_seconds": 60}))
    };
    let original = read(keyed().await.unwrap()).await;
    assert_eq!(original.status.as_u16(), 200, "{}", original.body);
    let report = app.advance("acme", 120).await;
    assert_eq!(report.expired, 7, "every lease expired on time");
    let charges = app.tenant_get(&t, "/overage-charges").await.expect(200);
    assert_eq!(charges["charges"].as_array().unwrap().len(), 2);
    assert_eq!(app.active_tenants(), 1);

    app.clock().advance(IDLE);
    passivated_down_to(&app, 0).await;
    let m = scrape(&app).await;
    assert_eq!(at(&m, "permetrix_tenant_passivations_total"), 1.0);
    assert_eq!(at(&m, "permetrix_tenant_releases_total"), 1.0);
    assert_eq!(at(&m, "permetrix_tenants_owned"), 0.0);

    // The next request activates it again, from what is stored.
    let status = app.status_of(&t, ECU.id).await;
    assert_eq!(
        (status["borrowed"].clone(), status["total"].clone()),
        (json!(0), json!(20))
    );
    assert_eq!(app.active_tenants(), 1);
    assert_eq!(
        app.tenant_get(&t, "/overage-charges").await.expect(200),
        charges
    );
    let verified = app
        .tenant_get(&t, "/overage-charges/verify")
        .await
        .expect(200);
    assert_eq!(verified["valid"], true, "{verified}");
    let retried = read(keyed().await.unwrap()).await;
    assert_eq!(retried.status.as_u16(), 200);
    assert_eq!(retried.body["id"], original.body["id"]);
    assert_eq!(retried.headers.get("idempotent-replayed").unwrap(), "true");
    let m = scrape(&app).await;
    assert_eq!(at(&m, "permetrix_tenant_acquisitions_total"), 2.0);
    assert_eq!(at(&m, "permetrix_tenants_owned"), 1.0);
    app.stop().await;
}

#[actix_rt::test]
async fn a_held_lease_or_a_live_event_stream_keeps_the_actor() {
    let app = app().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let id = app.borrow_id(&t, ECU.id, "alice").await;
    app.clock().advance(IDLE * 2);
    assert_eq!(
        app.passivate_idle().await,
        0,
        "a held lease keeps the actor"
    );
    assert_eq!(app.active_tenants(), 1);

    let mut events = subscribe(&app, &t).await;
    let mut buffer = String::new();
    until_subscribed(&mut events, &mut buffer).await;
    app.return_ok(&t.host, &id).await;
    app.clock().advance(IDLE * 2);
    assert_eq!(
        app.passivate_idle().await,
        0,
        "a subscriber keeps the actor"
    );
    // It still hears the tenant's events.
    app.borrow_ok(&t, ECU.id, "bob").await;
    let event = next_event(&mut events, &mut buffer, "borrow").await;
    assert_eq!(event["user"], "bob");
    app.advance("acme", 3600).await;
    drop(events);
    app.clock().advance(IDLE);
    // Once the stream has gone (the server notices its client left), the actor goes.
    wait_until(
        "the actor is passivated once its subscriber left",
        || async {
            app.passivate_idle().await;
            app.active_tenants() == 0
        },
    )
    .await;
    app.stop().await;
}
