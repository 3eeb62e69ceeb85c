//! `GET /metrics`: exact counts, seat gauges, mailbox depth under a held actor.
use permetrix_storage::TenantId;

use crate::helpers::*;

const CAN: Tool = Tool {
    name: "CAN Bus Analyzer",
    id: "can-analyzer",
    commit: 1,
    overage: 0,
    price: 0.0,
};

#[actix_web::test]
async fn counters_move_by_exactly_the_number_of_operations() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    provision(&app, &t.vendor_key, "acme", &CAN).await;
    let before = scrape(&app).await;

    // 7 ECU borrows (the last 2 beyond the commit of 5), 1 + 3 refused CAN borrows,
    // 2 borrows of a tool nobody provisioned, 2 returns.
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(app.borrow_id(&t, ECU.name, &format!("u{i}")).await);
    }
    app.borrow_ok(&t, CAN.id, "c0").await;
    for i in 1..4 {
        let r = app.borrow(&t, CAN.name, &format!("c{i}")).await;
        assert_eq!((r.status.as_u16(), r.code()), (409, "no_seats"));
    }
    for _ in 0..2 {
        let r = app.borrow(&t, "Nothing Such", "x").await;
        assert_eq!(r.code(), "unknown_tool");
    }
    for id in &ids[..2] {
        app.return_ok(&t.host, id).await;
    }

    let after = scrape(&app).await;
    let moved = |series: &str| at(&after, series) - at(&before, series);
    let ecu = r#"tenant="acme",tool="ECU Development Suite""#;
    let can = r#"tenant="acme",tool="CAN Bus Analyzer""#;
    let unknown = r#"tenant="acme",tool="_unknown""#;
    assert_eq!(
        moved(&format!("license_borrow_attempts_total{{{ecu}}}")),
        7.0
    );
    assert_eq!(
        moved(&format!("license_borrow_success_total{{{ecu}}}")),
        7.0
    );
    assert_eq!(
        moved(&format!("license_overage_checkouts_total{{{ecu}}}")),
        2.0
    );
    assert_eq!(
        moved(&format!("license_borrow_attempts_total{{{can}}}")),
        4.0
    );
    assert_eq!(
        moved(&format!("license_borrow_success_total{{{can}}}")),
        1.0
    );
    assert_eq!(
        moved(&format!(
            r#"license_borrow_failure_total{{{can},reason="no_seats"}}"#
        )),
        3.0
    );
    assert_eq!(
        moved(&format!("license_borrow_attempts_total{{{unknown}}}")),
        2.0
    );
    assert_eq!(
        moved(&format!(
            r#"license_borrow_failure_total{{{unknown},reason="unknown_tool"}}"#
        )),
        2.0
    );
    assert_eq!(
        moved(r#"license_borrow_duration_seconds_count{tenant="acme"}"#),
        13.0
    );
    // Every borrow reached the actor, and so did both returns.
    assert_eq!(
        moved(r#"permetrix_tenant_message_duration_seconds_count{tenant="acme",message="borrow"}"#),
        13.0
    );
    assert_eq!(
        moved(r#"permetrix_tenant_message_duration_seconds_count{tenant="acme",message="return"}"#),
        2.0
    );
    // (The registry orders a vector's labels by name.)
    let http = |status: &str| {
        moved(&format!(
            r#"license_http_requests_total{{method="POST",route="/licenses/borrow",status_code="{status}"}}"#
        ))
    };
    assert_eq!((http("200"), http("409"), http("404")), (8.0, 3.0, 2.0));
    assert_eq!(
        moved(
            r#"license_http_requests_total{method="POST",route="/licenses/return",status_code="200"}"#
        ),
        2.0
    );
    assert_eq!(
        moved(
            r#"license_http_request_duration_seconds_count{method="POST",route="/licenses/borrow"}"#
        ),
        13.0
    );

    // Gauges: what the actor holds now.
    assert_eq!(at(&after, &format!("licenses_borrowed{{{ecu}}}")), 5.0);
    assert_eq!(at(&after, &format!("licenses_total{{{ecu}}}")), 20.0);
    assert_eq!(at(&after, &format!("licenses_overage{{{ecu}}}")), 0.0);
    assert_eq!(at(&after, &format!("licenses_borrowed{{{can}}}")), 1.0);
    assert_eq!(at(&after, &format!("licenses_total{{{can}}}")), 1.0);
    assert_eq!(
        at(&after, r#"permetrix_tenant_mailbox_depth{tenant="acme"}"#),
        0.0
    );
    assert_eq!(
        at(
            &after,
            r#"permetrix_tenant_actor_restarts_total{tenant="acme"}"#
        ),
        0.0
    );
    // Every acknowledged write went through a flush.
    assert!(moved("permetrix_storage_flush_duration_seconds_count") >= 1.0);
    assert!(moved("permetrix_storage_flush_batch_size_sum") >= 1.0);

    // Scraping changes nothing but the scrape's own HTTP counters.
    let again = scrape(&app).await;
    assert_eq!(
        at(&again, &format!("license_borrow_attempts_total{{{ecu}}}")),
        at(&after, &format!("license_borrow_attempts_total{{{ecu}}}"))
    );
    app.stop().await;
}

/// Whether `series` has `value` now (what it has instead, if not).
async fn has_value(app: &TestApp, series: &str, value: f64) -> Result<(), f64> {
    let seen = at(&scrape(app).await, series);
    if seen == value { Ok(()) } else { Err(seen) }
}

#[actix_web::test]
async fn mailbox_depth_rises_under_a_held_actor_and_returns_to_zero() {
    let s = TestApp::builder()
        .config(|c| c.mailbox_capacity = 3)
        .spawn()
        .await;
    let app = &s;
    let t = bootstrap(app, "vector", "acme", &ECU).await;
    let acme = TenantId::parse("acme").unwrap();
    let depth = r#"permetrix_tenant_mailbox_depth{tenant="acme"}"#;

    let held = s.hold_actor(&acme).await;
    // Hold itself was picked up: its permit is released.
    wait_until("the mailbox is empty", || has_value(app, depth, 0.0)).await;

    let queued: Vec<_> = (0..3)
        .map(|i| actix_rt::spawn(app.borrow_task(&t, borrow_body(ECU.id, &format!("q{i}")))))
        .collect();
    wait_until("three borrows wait in the mailbox", || {
        has_value(app, depth, 3.0)
    })
    .await;

    // Full: the next one is refused at once, and counted.
    let refused = app.borrow(&t, ECU.id, "late").await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (503, "tenant_overloaded")
    );
    let m = scrape(app).await;
    assert_eq!(at(&m, depth), 3.0);
    assert_eq!(
        at(
            &m,
            r#"permetrix_tenant_mailbox_rejections_total{tenant="acme"}"#
        ),
        1.0
    );
    assert_eq!(
        at(
            &m,
            r#"license_borrow_failure_total{tenant="acme",tool="ECU Development Suite",reason="tenant_overloaded"}"#
        ),
        1.0
    );

    held.release().await;
    for q in queued {
        q.await.unwrap().expect(200);
    }
    // Every permit was released when the actor picked its message up, before replying.
    assert_eq!(at(&scrape(app).await, depth), 0.0);
    s.stop().await;
}
