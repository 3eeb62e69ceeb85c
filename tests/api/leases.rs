//! Leases over HTTP: length, heartbeats, expiry by the tenant actor's timer (driven
//! here by a manual clock and the same `ExpireDue` message the timer sends), and the
//! answers for expired borrows.
use std::time::Duration;

use permetrix_actors::domain::TenantEventKind;
use permetrix_storage::TenantId;
use serde_json::json;

use crate::helpers::*;

crate::on_both_stores!(
    leases_default_to_the_tenant_setting_and_are_range_checked,
    heartbeats_extend_the_lease_from_now,
    an_unrenewed_lease_expires_frees_its_seat_and_late_calls_are_told_so
);

async fn leases_default_to_the_tenant_setting_and_are_range_checked(store: TestStore) {
    let app = TestApp::builder()
        .store(&store)
        .manual_clock(START)
        .spawn()
        .await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let b = app.borrow_ok(&t, ECU.id, "dev").await;
    assert_eq!(
        millis(&b["lease_expires_at"]) - millis(&b["borrowed_at"]),
        3_600_000
    );
    for bad in [29, 86_401] {
        let r = app.borrow_json(&t, lease_body(ECU.id, "dev", bad)).await;
        assert_eq!(r.status.as_u16(), 400, "{}", r.body);
    }
    app.call(
        "PUT",
        &t.host,
        "/config/security",
        Some(&t.admin_key),
        Some(json!({"default_lease_seconds": 120})),
    )
    .await
    .expect(200);
    let b = app.borrow_ok(&t, ECU.id, "dev").await;
    assert_eq!(
        millis(&b["lease_expires_at"]) - millis(&b["borrowed_at"]),
        120_000
    );
    let b = app
        .borrow_json(&t, lease_body(ECU.id, "dev", 30))
        .await
        .expect(200);
    assert_eq!(
        millis(&b["lease_expires_at"]) - millis(&b["borrowed_at"]),
        30_000
    );
}

async fn heartbeats_extend_the_lease_from_now(store: TestStore) {
    let app = TestApp::builder()
        .store(&store)
        .manual_clock(START)
        .spawn()
        .await;
    let t = bootstrap(&app, "vector", "acme", &BUS).await;
    let b = app
        .borrow_json(&t, lease_body("bus", "dev", 60))
        .await
        .expect(200);
    let id = b["id"].as_str().unwrap();
    app.clock().advance(Duration::from_secs(50));
    let hb = app.heartbeat(&t, id).await.expect(200);
    assert_eq!(hb["id"], id);
    assert_eq!(millis(&hb["lease_expires_at"]), START.millis() + 110_000);
    // Past the first deadline, before the new one: still held.
    assert_eq!(app.advance("acme", 40).await.expired, 0);
    assert_eq!(app.status_of(&t, "bus").await["borrowed"], 1);
    let listed = app
        .call("GET", &t.host, "/borrows", Some(&t.admin_key), None)
        .await
        .expect(200);
    assert_eq!(
        millis(&listed[0]["lease_expires_at"]),
        START.millis() + 110_000
    );
    app.return_ok(&t.host, id).await;
}

async fn an_unrenewed_lease_expires_frees_its_seat_and_late_calls_are_told_so(store: TestStore) {
    let app = TestApp::builder()
        .store(&store)
        .manual_clock(START)
        .spawn()
        .await;
    let t = bootstrap(&app, "vector", "acme", &BUS).await;
    let mut events = app
        .subscribe_directly(&TenantId::parse("acme").unwrap())
        .await;
    let b = app
        .borrow_json(&t, lease_body("bus", "dev", 30))
        .await
        .expect(200);
    let id = b["id"].as_str().unwrap().to_owned();
    assert_eq!(app.advance("acme", 29).await.expired, 0);
    assert_eq!(app.advance("acme", 1).await.expired, 1);
    let s = app.status_of(&t, "bus").await;
    assert_eq!(
        (s["borrowed"].as_u64(), s["available"].as_u64()),
        (Some(0), Some(1))
    );

    let borrow_event = events.recv().await.unwrap();
    assert_eq!(borrow_event.kind, TenantEventKind::Borrow);
    let expire_event = events.recv().await.unwrap();
    assert_eq!(expire_event.kind, TenantEventKind::Expire);
    assert_eq!(expire_event.id.map(|i| i.to_string()), Some(id.clone()));

    // Heartbeat and return of the expired borrow: 404 with a code that says why.
    let hb = app.heartbeat(&t, &id).await;
    assert_eq!(
        (hb.status.as_u16(), hb.code()),
        (404, "lease_expired"),
        "{}",
        hb.body
    );
    assert!(hb.body["detail"].as_str().unwrap().contains("borrow again"));
    let r = app.return_seat(&t.host, id).await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "lease_expired"));
    // An id that never existed stays unknown_borrow.
    let r = app
        .return_seat(&t.host, "00000000-0000-4000-8000-000000000000")
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (404, "unknown_borrow"));
    // The seat is free for someone else.
    app.borrow_ok(&t, "bus", "next").await;
}
