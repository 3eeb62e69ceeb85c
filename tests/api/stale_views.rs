//! Views of idle tenants after their leases lapsed (issue 22, item 14): after a
//! restart every tenant is idle and vendor and operator views read it from storage,
//! where a lease that lapsed while the server was down is still held. Those views must
//! not count its seat, and must not activate the tenant to find out.
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

fn acme_of(customers: &serde_json::Value) -> &serde_json::Value {
    customers["customers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["tenant_id"] == "acme")
        .unwrap()
}

#[actix_web::test]
async fn vendor_and_operator_views_expire_the_lapsed_leases_of_idle_tenants() {
    let app = TestApp::builder().manual_clock(START).spawn().await;
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    app.borrow_json(
        &acme,
        json!({"tool": ECU.id, "user": "short", "lease_seconds": 60}),
    )
    .await
    .expect(200);
    app.borrow_json(
        &acme,
        json!({"tool": ECU.id, "user": "long", "lease_seconds": 600}),
    )
    .await
    .expect(200);
    // As after a restart: no actor, both leases only in storage.
    app.make_idle("acme");
    let body = customers(&app, &acme.vendor_key).await;
    assert_eq!(acme_of(&body)["usage"]["borrowed"], 2, "{body}");

    // The short lease lapses while nobody asks the tenant anything.
    app.clock().advance(Duration::from_secs(61));
    let body = customers(&app, &acme.vendor_key).await;
    assert_eq!(acme_of(&body)["usage"]["borrowed"], 1, "{body}");
    let stats = app
        .operator("GET", "/api/admin/stats", None)
        .await
        .expect(200);
    assert_eq!(stats["usage"]["borrowed"], 1, "{stats}");
    assert_eq!(stats["active_actors"], 0, "a view activated the tenant");

    // Asked again from the cache, later still: the long one has lapsed too.
    app.clock().advance(Duration::from_secs(540));
    let body = customers(&app, &acme.vendor_key).await;
    assert_eq!(acme_of(&body)["usage"]["borrowed"], 0, "{body}");
    let stats = app
        .operator("GET", "/api/admin/stats", None)
        .await
        .expect(200);
    assert_eq!(stats["usage"]["borrowed"], 0, "{stats}");

    // The tenant itself agrees once activated and caught up.
    app.advance("acme", 0).await;
    let status = app.status_of(&acme, ECU.id).await;
    assert_eq!(status["borrowed"], 0, "{status}");
}
