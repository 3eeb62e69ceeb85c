//! Webhooks: events reach a receiver on loopback signed, in order per tenant, each once
//! after de-duplication, also when the receiver fails at first and across a kill -9 of
//! the server; private addresses are refused without `--webhooks-allow-private`.
use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

/// An in-process server that may deliver to loopback and retries after milliseconds.
async fn app_delivering_to_loopback() -> TestApp {
    TestApp::builder()
        .config(|c| {
            c.webhooks.allow_private = true;
            c.webhooks.retry_base = Duration::from_millis(5);
        })
        .spawn()
        .await
}

/// Registers an endpoint at `url` for `events`; its id and secret.
async fn register(app: &TestApp, vendor_key: &str, url: &str, events: &[&str]) -> (String, String) {
    let created = app
        .vendor(
            vendor_key,
            "POST",
            "/api/vendor/webhooks",
            Some(json!({"url": url, "events": events})),
        )
        .await
        .expect(201);
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    (created["id"].as_str().unwrap().to_owned(), secret)
}

/// Tries to register an endpoint at `url` for `overage.charged`; the raw reply.
async fn try_register(app: &TestApp, vendor_key: &str, url: &str) -> Reply {
    app.vendor(
        vendor_key,
        "POST",
        "/api/vendor/webhooks",
        Some(json!({"url": url, "events": ["overage.charged"]})),
    )
    .await
}

/// The newest delivery listed at `path` if `ready` says it is as expected, else what
/// was listed.
async fn delivery_of(
    app: &TestApp,
    vendor_key: &str,
    path: &str,
    ready: impl Fn(&Value) -> bool,
) -> Result<Value, Value> {
    let listed = app.vendor(vendor_key, "GET", path, None).await.expect(200);
    let newest = listed["deliveries"][0].clone();
    if ready(&newest) {
        Ok(newest)
    } else {
        Err(listed)
    }
}

/// The events of one tenant, in the order accepted.
fn of_tenant<'a>(events: &'a [Value], tenant: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["tenant"] == tenant).collect()
}

/// How many events of each type a list holds.
fn by_type(events: &[&Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in events {
        *counts
            .entry(e["type"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    counts
}

#[actix_web::test]
async fn a_failing_receiver_gets_every_event_once_in_order_and_signed() {
    let app = app_delivering_to_loopback().await;
    let receiver = Receiver::start();
    receiver.fail_first(3);
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    provision(&app, &acme.vendor_key, "acme", &BUS).await;
    let globex = add_tenant(&app, &acme.vendor_key, &acme.signing_secret, "globex", &ECU).await;
    let all = [
        "overage.charged",
        "pool.exhausted",
        "borrow.denied",
        "request.created",
        "spend_cap.reached",
    ];
    let (_, secret) = register(&app, &acme.vendor_key, &receiver.url(), &all).await;

    // acme: two overage charges, an exhausted pool, three refusals of it.
    for i in 0..7 {
        app.borrow_ok(&acme, ECU.id, &format!("dev{i}")).await;
    }
    app.borrow_ok(&acme, BUS.id, "dev0").await;
    for user in ["dev1", "dev2", "dev1"] {
        assert_eq!(app.borrow(&acme, BUS.id, user).await.status.as_u16(), 409);
    }
    // globex: one overage charge and a request for more seats.
    for i in 0..6 {
        app.borrow_ok(&globex, ECU.id, &format!("eng{i}")).await;
    }
    app.call(
        "POST",
        &globex.host,
        "/api/customer/request-more",
        Some(&globex.admin_key),
        Some(json!({"tool": ECU.id, "requested_total": 40})),
    )
    .await
    .expect(201);

    let events = wait_until("the receiver has all 6 events", || async {
        let events = receiver.events();
        if events.len() >= 6 {
            Ok(events)
        } else {
            Err(events)
        }
    })
    .await;
    assert_eq!(
        events.len(),
        6,
        "no event beyond the expected ones: {events:?}"
    );
    let acme_events = of_tenant(&events, "acme");
    let want_acme = BTreeMap::from([
        ("borrow.denied".to_owned(), 1),
        ("overage.charged".to_owned(), 2),
        ("pool.exhausted".to_owned(), 1),
    ]);
    assert_eq!(by_type(&acme_events), want_acme);
    let want_globex = BTreeMap::from([
        ("overage.charged".to_owned(), 1),
        ("request.created".to_owned(), 1),
    ]);
    assert_eq!(by_type(&of_tenant(&events, "globex")), want_globex);
    let denied = acme_events
        .iter()
        .find(|e| e["type"] == "borrow.denied")
        .unwrap();
    assert_eq!(denied["data"]["count"], 3);
    assert_eq!(denied["data"]["reason"], "no_seats");
    assert_eq!(denied["data"]["users"], json!(["dev1", "dev2"]));

    // In order per tenant: every accepted delivery of a tenant comes after the ones
    // before it in the outbox, retries included.
    for tenant in ["acme", "globex"] {
        let sequences: Vec<u64> = receiver
            .accepted()
            .iter()
            .map(Delivery::json)
            .filter(|e| e["tenant"] == tenant)
            .map(|e| e["sequence"].as_u64().unwrap())
            .collect();
        assert!(
            sequences.windows(2).all(|w| w[0] < w[1]),
            "{tenant}: {sequences:?}"
        );
    }
    let deliveries = receiver.deliveries();
    assert!(
        deliveries.iter().filter(|d| d.answered == 503).count() == 3,
        "the first three failed and were retried"
    );
    assert!(deliveries.iter().all(|d| d.signed_with(&secret)));
    assert!(!deliveries[0].signed_with("whsec_another"));
    for e in &events {
        assert!(e["id"].as_str().unwrap().starts_with("evt_"));
        assert!(e["created_at"].as_str().is_some() && e["data"].is_object());
    }
    // Counted once the receiver's answer is in (just after it recorded the request).
    let delivered = r#"permetrix_webhook_deliveries_total{outcome="delivered"}"#;
    let metrics = wait_until("six deliveries are counted", || async {
        let metrics = scrape(&app).await;
        if at(&metrics, delivered) == 6.0 {
            Ok(metrics)
        } else {
            Err(at(&metrics, delivered))
        }
    })
    .await;
    let failed = r#"permetrix_webhook_deliveries_total{outcome="http_error"}"#;
    assert_eq!(at(&metrics, failed), 3.0);
    app.stop().await;
}

#[actix_web::test]
async fn undelivered_events_are_delivered_after_a_kill_9() {
    let receiver = Receiver::start();
    receiver.set_failing(true);
    let dir = tempfile::tempdir().unwrap();
    let server = TestApp::builder().data_dir(dir.path()).args(&[
        "--webhooks-allow-private",
        "--webhooks-retry-base-ms",
        "20",
    ]);
    let first = server.process();
    let app = first.app();
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    let (_, secret) = register(&app, &t.vendor_key, &receiver.url(), &["overage.charged"]).await;
    for i in 0..8 {
        app.borrow_ok(&t, ECU.id, &format!("dev{i}")).await;
    }
    // Three acknowledged charges; the receiver refuses them.
    let charges = app.tenant_get(&t, "/overage-charges").await.expect(200);
    let mut charged: Vec<String> = charges["charges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    charged.sort();
    assert_eq!(charged.len(), 3);
    wait_until("a delivery was attempted and refused", || async {
        !receiver.deliveries().is_empty()
    })
    .await;
    first.kill9();

    receiver.set_failing(false);
    let second = server.process();
    let app = second.app();
    let events = wait_until("the three charges arrive after the restart", || async {
        let events = receiver.events();
        if events.len() >= 3 {
            Ok(events)
        } else {
            Err(events.len())
        }
    })
    .await;
    let mut delivered: Vec<String> = events
        .iter()
        .map(|e| e["data"]["charge_id"].as_str().unwrap().to_owned())
        .collect();
    delivered.sort();
    assert_eq!(delivered, charged);
    assert!(receiver.accepted().iter().all(|d| d.signed_with(&secret)));
    // Found in storage: the tenant's actor was not activated to deliver them.
    let actors = app.actors().await;
    let active = actors["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["tenant"] == "acme" && a["active"] == true);
    assert!(!active, "{actors}");
    second.kill9();
}

#[actix_web::test]
async fn private_addresses_are_refused_without_the_flag() {
    let app = TestApp::builder().spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/hook",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::]/hook",
    ] {
        let refused = try_register(&app, &t.vendor_key, url).await;
        assert_eq!(
            (refused.status.as_u16(), refused.code()),
            (400, "private_address"),
            "{url}: {}",
            refused.body
        );
    }
    for url in [
        "ftp://203.0.113.10/hook",
        "https://user:pw@203.0.113.10/",
        "hook",
    ] {
        let refused = try_register(&app, &t.vendor_key, url).await;
        assert_eq!(
            (refused.status.as_u16(), refused.code()),
            (400, "invalid_url"),
            "{url}"
        );
    }
    // A public address is accepted (no delivery is made to it here).
    register(
        &app,
        &t.vendor_key,
        "https://203.0.113.10/hook",
        &["pool.exhausted"],
    )
    .await;
    let listed = app
        .vendor(&t.vendor_key, "GET", "/api/vendor/webhooks", None)
        .await
        .expect(200);
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[actix_web::test]
async fn endpoints_are_listed_deleted_and_kept_from_other_vendors_and_deliveries_resent() {
    let app = app_delivering_to_loopback().await;
    let receiver = Receiver::start();
    let t = bootstrap(&app, "vector", "acme", &BUS).await;
    let other = bootstrap(&app, "elsewhere", "globex", &BUS).await;
    let bad = |body: Value| {
        let app = &app;
        let key = t.vendor_key.clone();
        async move {
            app.vendor(&key, "POST", "/api/vendor/webhooks", Some(body))
                .await
        }
    };
    let url = receiver.url();
    for body in [
        json!({"url": url, "events": []}),
        json!({"url": url, "events": ["borrow.granted"]}),
        json!({"url": url, "events": ["pool.exhausted"], "secret": "mine"}),
        json!({"events": ["pool.exhausted"]}),
    ] {
        let reply = bad(body.clone()).await;
        assert_eq!(reply.status.as_u16(), 400, "{body}: {}", reply.body);
    }
    let (id, secret) = register(
        &app,
        &t.vendor_key,
        &url,
        &["pool.exhausted", "pool.exhausted"],
    )
    .await;
    let listed = app
        .vendor(&t.vendor_key, "GET", "/api/vendor/webhooks", None)
        .await
        .expect(200);
    let endpoint = &listed["webhooks"][0];
    assert_eq!(endpoint["events"], json!(["pool.exhausted"]));
    assert_eq!(endpoint["status"], "active");
    assert!(endpoint.get("secret").is_none(), "the secret is shown once");
    assert!(
        !app.data_contains(secret.as_bytes()),
        "the secret is stored sealed"
    );

    app.borrow_ok(&t, BUS.id, "dev0").await;
    let first = wait_until("the exhausted pool is delivered", || async {
        receiver.events().pop().ok_or("nothing yet")
    })
    .await;
    let path = format!("/api/vendor/webhooks/{id}/deliveries");
    // Recorded once the receiver's answer is in.
    let delivery = wait_until("the delivery is recorded", || async {
        delivery_of(&app, &t.vendor_key, &path, |d| d["status"] == "delivered").await
    })
    .await;
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["event_id"], first["id"]);
    let resend = format!("{path}/{}/resend", delivery["id"].as_str().unwrap());
    let queued = app
        .vendor(&t.vendor_key, "POST", &resend, None)
        .await
        .expect(202);
    assert_eq!(queued["status"], "queued");
    wait_until("the resent delivery arrives with the same id", || async {
        receiver.accepted().len() == 2
    })
    .await;
    let again = receiver.accepted()[1].json();
    assert_eq!(
        (again["id"].clone(), again["sequence"].clone()),
        (first["id"].clone(), first["sequence"].clone())
    );
    wait_until("the resend is recorded", || async {
        delivery_of(&app, &t.vendor_key, &path, |d| d["attempts"] == 2).await
    })
    .await;

    // Another vendor sees none of it.
    let theirs = [
        ("GET", path.clone()),
        ("POST", resend.clone()),
        ("DELETE", format!("/api/vendor/webhooks/{id}")),
        ("POST", format!("/api/vendor/webhooks/{id}/enable")),
    ];
    for (method, p) in &theirs {
        let reply = app.vendor(&other.vendor_key, method, p, None).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (404, "unknown_webhook"),
            "{method} {p}"
        );
    }
    let unknown = app
        .vendor(
            &t.vendor_key,
            "POST",
            &format!("{path}/acme.999/resend"),
            None,
        )
        .await;
    assert_eq!(unknown.code(), "unknown_delivery");

    app.vendor(
        &t.vendor_key,
        "DELETE",
        &format!("/api/vendor/webhooks/{id}"),
        None,
    )
    .await
    .expect(200);
    assert_eq!(
        app.vendor(&t.vendor_key, "GET", &path, None)
            .await
            .status
            .as_u16(),
        404
    );
    let listed = app
        .vendor(&t.vendor_key, "GET", "/api/vendor/webhooks", None)
        .await
        .expect(200);
    assert_eq!(listed["webhooks"], json!([]));
    app.stop().await;
}

#[actix_web::test]
async fn an_endpoint_failing_for_a_day_is_disabled_until_enabled_again() {
    let app = TestApp::builder()
        .manual_clock(START)
        .config(|c| c.webhooks.allow_private = true)
        .spawn()
        .await;
    let receiver = Receiver::start();
    receiver.set_failing(true);
    let t = bootstrap(&app, "vector", "acme", &BUS).await;
    let (id, _) = register(&app, &t.vendor_key, &receiver.url(), &["pool.exhausted"]).await;
    app.borrow_ok(&t, BUS.id, "dev0").await;
    wait_until("the first attempt fails", || async {
        receiver.deliveries().len() == 1
    })
    .await;
    let path = format!("/api/vendor/webhooks/{id}/deliveries");
    let pending = wait_until("the failure is recorded", || async {
        delivery_of(&app, &t.vendor_key, &path, |d| {
            d["next_attempt_at"].is_string()
        })
        .await
    })
    .await;
    assert_eq!(pending["status"], "pending");
    assert_eq!(
        (
            pending["attempts"].clone(),
            pending["response_status"].clone()
        ),
        (json!(1), json!(503))
    );

    // A day later the next attempt fails too: the endpoint is disabled, and says why.
    app.clock().advance(Duration::from_secs(25 * 3600));
    app.kick_webhooks();
    let disabled = wait_until("the endpoint is disabled", || async {
        let listed = app
            .vendor(&t.vendor_key, "GET", "/api/vendor/webhooks", None)
            .await
            .expect(200);
        let e = listed["webhooks"][0].clone();
        if e["status"] == "disabled" {
            Ok(e)
        } else {
            Err(e)
        }
    })
    .await;
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("24 hours"),
        "{disabled}"
    );
    let listed = app
        .vendor(&t.vendor_key, "GET", &path, None)
        .await
        .expect(200);
    assert_eq!(listed["deliveries"][0]["status"], "failed");
    assert_eq!(listed["deliveries"][0]["attempts"], 2);

    // Enabled again, it delivers the event it gave up on.
    receiver.set_failing(false);
    let enabled = app
        .vendor(
            &t.vendor_key,
            "POST",
            &format!("/api/vendor/webhooks/{id}/enable"),
            None,
        )
        .await
        .expect(200);
    assert_eq!(enabled["status"], "active");
    let event = wait_until("the event arrives", || async {
        receiver.events().pop().ok_or("nothing yet")
    })
    .await;
    assert_eq!(event["type"], "pool.exhausted");
    app.stop().await;
}

#[actix_web::test]
async fn a_deleted_vendor_is_sent_nothing_more() {
    // One delivery at a time: the worker takes lanes in the order their events came.
    let app = TestApp::builder()
        .config(|c| {
            c.webhooks.allow_private = true;
            c.webhooks.concurrency = 1;
        })
        .spawn()
        .await;
    let (gone, kept) = (Receiver::start(), Receiver::start());
    let t = bootstrap(&app, "vector", "acme", &BUS).await;
    let other = bootstrap(&app, "elsewhere", "globex", &BUS).await;
    register(&app, &t.vendor_key, &gone.url(), &["pool.exhausted"]).await;
    register(&app, &other.vendor_key, &kept.url(), &["pool.exhausted"]).await;
    app.operator("DELETE", "/api/admin/vendors/vector", None)
        .await
        .expect(200);

    // acme's pool is exhausted before globex's: had acme's lane survived the vendor,
    // its delivery would have been made before globex's.
    app.borrow_ok(&t, BUS.id, "dev0").await;
    app.borrow_ok(&other, BUS.id, "dev0").await;
    wait_until("globex's event arrives", || async {
        kept.events().len() == 1
    })
    .await;
    assert!(gone.deliveries().is_empty(), "{:?}", gone.events());
    app.stop().await;
}

#[actix_web::test]
async fn a_full_outbox_keeps_its_newest_events_and_metrics_say_so() {
    let app = TestApp::builder()
        .config(|c| {
            c.webhooks.allow_private = true;
            c.webhooks.outbox_capacity = 3;
            // The first failure is not retried within the test.
            c.webhooks.retry_base = Duration::from_secs(3600);
        })
        .spawn()
        .await;
    let receiver = Receiver::start();
    receiver.set_failing(true);
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    register(&app, &t.vendor_key, &receiver.url(), &["overage.charged"]).await;
    // Five overage charges for an outbox of three.
    for i in 0..10 {
        app.borrow_ok(&t, ECU.id, &format!("dev{i}")).await;
    }
    let (depth, dropped) = (
        "permetrix_webhook_outbox_depth",
        "permetrix_webhook_events_dropped_total",
    );
    wait_until("the outbox is reported full", || async {
        let metrics = scrape(&app).await;
        let seen = (at(&metrics, depth), at(&metrics, dropped));
        if seen == (3.0, 2.0) {
            Ok(())
        } else {
            Err(seen)
        }
    })
    .await;
    app.stop().await;
}
