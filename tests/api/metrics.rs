//! `GET /metrics`: exact counts, seat gauges, mailbox depth under a held actor.
use std::collections::BTreeMap;
use std::time::Duration;

use permetrix_actors::{Reply as TenantReply, TenantCx, TenantMessage};
use permetrix_storage::TenantId;

use crate::helpers::*;

/// The samples of an exposition: `name{labels}` → value.
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("sample line");
            (series.to_owned(), value.parse().expect("sample value"))
        })
        .collect()
}

pub async fn scrape_text(app: &TestApp) -> String {
    let res = app
        .client
        .get(app.url("/metrics"))
        .insert_header(("Host", "localhost"))
        .send()
        .await
        .expect("scrape sent");
    let mut res = res;
    assert_eq!(res.status().as_u16(), 200);
    let ct = res.headers().get("content-type").unwrap().to_str().unwrap();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let body = res.body().limit(64 * 1024 * 1024).await.expect("body");
    String::from_utf8(body.to_vec()).expect("utf-8")
}

pub async fn scrape(app: &TestApp) -> BTreeMap<String, f64> {
    samples(&scrape_text(app).await)
}

/// The value of one series, 0 if absent (a counter that never moved).
pub fn at(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

const CAN: Tool = Tool {
    name: "CAN Bus Analyzer",
    id: "can-analyzer",
    commit: 1,
    overage: 0,
    price: 0.0,
};

#[actix_web::test]
async fn counters_move_by_exactly_the_number_of_operations() {
    let app = spawn_app().await;
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

/// Blocks its tenant's actor until released (test-only), so messages queue up.
pub struct Hold(
    pub std::sync::mpsc::Receiver<()>,
    pub std::sync::mpsc::Sender<()>,
);

impl TenantMessage for Hold {
    type Reply = ();
    const KIND: &'static str = "hold";
    fn handle(self, _: &mut TenantCx<'_>) -> TenantReply<()> {
        let _ = self.1.send(());
        let _ = self.0.recv();
        TenantReply::ready(Ok(()))
    }
}

/// Polls `/metrics` until `series` has `value` (for at most 10 s), returns the last
/// value seen.
async fn wait_for(app: &TestApp, series: &str, value: f64) -> f64 {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen = at(&scrape(app).await, series);
        if seen == value || std::time::Instant::now() >= until {
            return seen;
        }
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
}

#[actix_web::test]
async fn mailbox_depth_rises_under_a_held_actor_and_returns_to_zero() {
    let s = spawn_stateful(|c| c.mailbox_capacity = 3).await;
    let app = &s.app;
    let t = bootstrap(app, "vector", "acme", &ECU).await;
    let acme = TenantId::parse("acme").unwrap();
    let depth = r#"permetrix_tenant_mailbox_depth{tenant="acme"}"#;

    let (release, gate) = std::sync::mpsc::channel();
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let registry = s.state.registry.clone();
    let holder = actix_rt::spawn(async move { registry.send(&acme, Hold(gate, entered_tx)).await });
    assert!(
        eventually(|| entered.try_recv().is_ok()).await,
        "the actor never picked up Hold"
    );
    // Hold itself was picked up: its permit is released.
    assert_eq!(wait_for(app, depth, 0.0).await, 0.0);

    let queued: Vec<_> = (0..3)
        .map(|i| actix_rt::spawn(app.borrow_task(&t, borrow_body(ECU.id, &format!("q{i}")))))
        .collect();
    assert_eq!(wait_for(app, depth, 3.0).await, 3.0);

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

    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    for q in queued {
        q.await.unwrap().expect(200);
    }
    // Every permit was released when the actor picked its message up, before replying.
    assert_eq!(at(&scrape(app).await, depth), 0.0);
    s.stop().await;
}
