//! Metrics and live events of what issues 4 and 8 added: actor restarts after an
//! injected panic (`/_faults/panic`, test builds only), lease expiry driven by a manual
//! clock, and queued borrows.
use serde_json::json;

use crate::helpers::*;

fn series(name: &str, labels: &str) -> String {
    format!("{name}{{{labels}}}")
}

#[actix_web::test]
async fn a_panic_moves_the_restart_counter_by_exactly_one() {
    let app = TestApp::builder().spawn().await;
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    let globex = add_tenant(&app, &acme.vendor_key, &acme.signing_secret, "globex", &ECU).await;
    for t in [&acme, &globex] {
        app.borrow_ok(t, ECU.name, "before").await;
    }
    let restarts = |tenant: &str| {
        series(
            "permetrix_tenant_actor_restarts_total",
            &format!("tenant=\"{tenant}\""),
        )
    };
    let borrowed = series(
        "licenses_borrowed",
        &format!("tenant=\"acme\",tool=\"{}\"", ECU.name),
    );
    let before = scrape(&app).await;
    assert_eq!(at(&before, &restarts("acme")), 0.0);
    assert_eq!(at(&before, &borrowed), 1.0);

    let r = inject(&app, &acme, "panic").await;
    assert_eq!(r.status.as_u16(), 503, "{}", r.body);
    // Served by the restarted actor: the restart has happened by now.
    app.borrow_ok(&acme, ECU.name, "after").await;

    let after = scrape(&app).await;
    assert_eq!(at(&after, &restarts("acme")), 1.0);
    assert_eq!(at(&after, &restarts("globex")), 0.0);
    // The gauges were published again from the reloaded state.
    assert_eq!(at(&after, &borrowed), 2.0);
    // The operator's view counts the same restart (one sink behind the other).
    let actors = app.actors().await;
    assert_eq!(actors["restarts_total"], 1, "{actors}");
    app.stop().await;
}

#[actix_web::test]
async fn an_expired_lease_is_an_expire_event_and_frees_its_seat_in_the_gauges() {
    let app = TestApp::builder().manual_clock(START).spawn().await;
    let t = bootstrap(&app, "vector", "acme", &BUS).await;
    let res = subscribe(&app, &t).await;
    assert_eq!(res.status().as_u16(), 200);
    let mut stream = res;
    let mut buffer = String::new();

    let granted = app
        .borrow_json(&t, lease_body(BUS.id, "ci", 60))
        .await
        .expect(200);
    assert_eq!(
        next_event(&mut stream, &mut buffer, "borrow").await["id"],
        granted["id"]
    );
    let borrowed = series(
        "licenses_borrowed",
        &format!("tenant=\"acme\",tool=\"{}\"", BUS.name),
    );
    let expiries = series(
        "permetrix_tenant_message_duration_seconds_count",
        "tenant=\"acme\",message=\"expire_due\"",
    );
    let before = scrape(&app).await;
    assert_eq!(at(&before, &borrowed), 1.0);

    app.advance("acme", 61).await;
    let e = next_event(&mut stream, &mut buffer, "expire").await;
    assert_eq!(e["id"], granted["id"]);
    assert_eq!(e["tool"], BUS.name);
    assert_eq!(e["user"], "ci");

    let after = scrape(&app).await;
    assert_eq!(at(&after, &borrowed), 0.0);
    assert_eq!(at(&after, &expiries) - at(&before, &expiries), 1.0);
    app.stop().await;
}

#[actix_web::test]
async fn a_queued_borrow_that_times_out_is_one_attempt_and_one_failure() {
    let app = TestApp::builder().manual_clock(START).spawn().await;
    let t = bootstrap(&app, "vector", "acme", &BUS).await;
    app.borrow_ok(&t, BUS.id, "first").await;
    let labels = format!("tenant=\"acme\",tool=\"{}\"", BUS.name);
    let attempts = series("license_borrow_attempts_total", &labels);
    let success = series("license_borrow_success_total", &labels);
    let no_seats = series(
        "license_borrow_failure_total",
        &format!("{labels},reason=\"no_seats\""),
    );
    let before = scrape(&app).await;

    // The only seat is taken: this borrow waits in the queue until its wait lapses.
    let waiter = app.borrow_json(
        &t,
        json!({"tool": BUS.id, "user": "patient", "wait_seconds": 5}),
    );
    let driver = async {
        wait_until("queued", || async {
            app.status_of(&t, BUS.id).await["waiting"] == 1
        })
        .await;
        // Waiting: counted as an attempt, with no outcome yet.
        let mid = scrape(&app).await;
        assert_eq!(at(&mid, &attempts) - at(&before, &attempts), 1.0);
        assert_eq!(at(&mid, &no_seats), at(&before, &no_seats));
        app.advance("acme", 5).await;
    };
    let (r, ()) = tokio::join!(waiter, driver);
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (409, "no_seats"),
        "{}",
        r.body
    );

    let after = scrape(&app).await;
    assert_eq!(at(&after, &attempts) - at(&before, &attempts), 1.0);
    assert_eq!(at(&after, &success), at(&before, &success));
    assert_eq!(at(&after, &no_seats) - at(&before, &no_seats), 1.0);
    app.stop().await;
}
