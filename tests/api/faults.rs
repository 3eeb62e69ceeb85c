//! Fault isolation over HTTP, with faults injected through the test-only
//! `fault-injection` routes: a tenant actor that panics is restarted with its stored
//! state (the request that hit the fault gets 503, the queued ones are served by the
//! restarted actor), a stuck tenant's full mailbox answers 503 + Retry-After, and other
//! tenants are served meanwhile. Restarts and refusals are counted.
use futures_util::future::join_all;
use serde_json::Value;

use crate::helpers::*;

/// The operator's view of one tenant's actor.
async fn actor(app: &TestApp, tenant: &str) -> Value {
    let all = app.actors().await;
    all["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == tenant)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Polls (bounded) until `field` of the tenant's actor figures reaches `want`.
async fn until_actor(app: &TestApp, tenant: &str, field: &str, want: u64) {
    let what = format!("{tenant}: {field} reaches {want}");
    wait_until(&what, || async {
        let figures = actor(app, tenant).await;
        if figures[field].as_u64() == Some(want) {
            Ok(())
        } else {
            Err(figures)
        }
    })
    .await;
}

async fn borrowed(app: &TestApp, t: &Tenant) -> u64 {
    app.status_of(t, ECU.id).await["borrowed"].as_u64().unwrap()
}

/// A borrow of ECU by `user` at `t`, as a future to spawn.
fn borrow_req(
    app: &TestApp,
    t: &Tenant,
    user: &str,
) -> impl std::future::Future<Output = Reply> + 'static {
    app.borrow_task(t, borrow_body(ECU.id, user))
}

#[actix_web::test]
async fn a_panicking_actor_restarts_with_stored_state_and_queued_requests_are_served() {
    let app = TestApp::builder().spawn().await;
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    let globex = add_tenant(&app, &acme.vendor_key, &acme.signing_secret, "globex", &ECU).await;
    borrow_req(&app, &acme, "before").await.expect(200);
    borrow_req(&app, &globex, "other").await.expect(200);

    // Stall acme, then queue three borrows, the fault, and one more borrow, in order.
    inject(&app, &acme, "stall").await.expect(200);
    let mut queued = Vec::new();
    for (depth, user) in [(1, "q1"), (2, "q2"), (3, "q3")] {
        queued.push(actix_rt::spawn(borrow_req(&app, &acme, user)));
        until_actor(&app, "acme", "mailbox_depth", depth).await;
    }
    let fault = {
        let app = app.detached();
        let (host, key) = (acme.host.clone(), acme.admin_key.clone());
        actix_rt::spawn(async move {
            app.call("POST", &host, "/_faults/panic", Some(&key), None)
                .await
        })
    };
    until_actor(&app, "acme", "mailbox_depth", 4).await;
    queued.push(actix_rt::spawn(borrow_req(&app, &acme, "q4")));
    until_actor(&app, "acme", "mailbox_depth", 5).await;

    // Another tenant is served while acme is stuck.
    borrow_req(&app, &globex, "meanwhile").await.expect(200);

    inject(&app, &acme, "release").await.expect(200);
    let fault = fault.await.unwrap();
    assert_eq!(fault.status.as_u16(), 503, "{}", fault.body);
    assert_eq!(fault.code(), "tenant_unavailable");
    assert!(fault.headers.contains_key("retry-after"));
    for q in queued {
        q.await.unwrap().expect(200);
    }

    // The phantom borrow the panicking handler made in memory is gone; the durable ones
    // (before, q1..q3, q4) are all there.
    assert_eq!(borrowed(&app, &acme).await, 5);
    assert_eq!(borrowed(&app, &globex).await, 2);
    let a = actor(&app, "acme").await;
    assert_eq!(a["restarts"], 1, "{a}");
    assert_eq!(actor(&app, "globex").await["restarts"], 0);

    // A second fault, with nothing queued: 503 again, counted again, state intact.
    let r = inject(&app, &acme, "panic").await;
    assert_eq!(r.status.as_u16(), 503);
    assert_eq!(borrowed(&app, &acme).await, 5);
    let all = app.actors().await;
    assert_eq!(all["restarts_total"], 2, "{all}");
    app.stop().await;
}

#[actix_web::test]
async fn a_full_mailbox_answers_503_with_retry_after_while_other_tenants_are_served() {
    const CAPACITY: u64 = 4;
    const FLOOD: u64 = 40;
    let app = TestApp::builder()
        .config(|c| c.mailbox_capacity = CAPACITY as usize)
        .spawn()
        .await;
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    let globex = add_tenant(&app, &acme.vendor_key, &acme.signing_secret, "globex", &ECU).await;

    inject(&app, &acme, "stall").await.expect(200);
    let flood: Vec<_> = (0..FLOOD)
        .map(|i| actix_rt::spawn(borrow_req(&app, &acme, &format!("f{i}"))))
        .collect();
    // Everything beyond the capacity is refused at once; the rest waits in the mailbox.
    until_actor(&app, "acme", "mailbox_rejections", FLOOD - CAPACITY).await;
    until_actor(&app, "acme", "mailbox_depth", CAPACITY).await;

    // The stuck tenant's flood does not touch the others, nor the server's health.
    borrow_req(&app, &globex, "other").await.expect(200);
    app.call("GET", "localhost", "/health", None, None)
        .await
        .expect(200);

    inject(&app, &acme, "release").await.expect(200);
    let replies: Vec<Reply> = join_all(flood)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let refused: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status.as_u16() == 503)
        .collect();
    let granted = replies.iter().filter(|r| r.status.as_u16() == 200).count() as u64;
    // 20 seats: the four that waited all get one.
    assert_eq!(
        (refused.len() as u64, granted),
        (FLOOD - CAPACITY, CAPACITY)
    );
    for r in refused {
        assert_eq!(r.code(), "tenant_overloaded");
        assert_eq!(r.headers.get("retry-after").unwrap(), "1");
    }
    assert_eq!(actor(&app, "acme").await["mailbox_depth"], 0);
    assert_eq!(borrowed(&app, &acme).await, CAPACITY);
    app.stop().await;
}

async fn early_retries_held(app: &TestApp) -> f64 {
    let m = scrape(app).await;
    at(&m, "permetrix_early_retries_held_total")
}

#[actix_web::test]
async fn a_connection_that_retries_before_its_retry_after_is_held_until_then() {
    const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(3);
    let app = TestApp::builder()
        .config(|c| {
            c.mailbox_capacity = 1;
            c.overload_retry_after = RETRY_AFTER;
        })
        .spawn()
        .await;
    let acme = bootstrap(&app, "vector", "acme", &ECU).await;
    let globex = add_tenant(&app, &acme.vendor_key, &acme.signing_secret, "globex", &ECU).await;
    inject(&app, &acme, "stall").await.expect(200);
    let queued = actix_rt::spawn(borrow_req(&app, &acme, "queued"));
    until_actor(&app, "acme", "mailbox_depth", 1).await;

    let mut conn = RawConn::open(app.addr);
    let refused_at = std::time::Instant::now();
    conn.post_json(
        "/licenses/borrow",
        &acme.host,
        &acme.admin_key,
        &borrow_body(ECU.id, "early"),
    );
    let (status, retry_after, body) = conn.answer();
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("tenant_overloaded"))
    );
    assert_eq!(retry_after.as_deref(), Some("3"));

    // The same client asks again at once, on the same connection: held, not refused.
    conn.post_json(
        "/licenses/borrow",
        &acme.host,
        &acme.admin_key,
        &borrow_body(ECU.id, "early"),
    );
    wait_until("the early retry is held", || async {
        early_retries_held(&app).await == 1.0
    })
    .await;
    // Other connections and other tenants are not held.
    let r = borrow_req(&app, &acme, "other-client").await;
    assert_eq!((r.status.as_u16(), r.code()), (503, "tenant_overloaded"));
    borrow_req(&app, &globex, "neighbour").await.expect(200);
    assert_eq!(early_retries_held(&app).await, 1.0);

    // Once the tenant drains, the held retry runs as any request, after its Retry-After.
    inject(&app, &acme, "release").await.expect(200);
    queued.await.unwrap().expect(200);
    let (status, _, body) = conn.answer();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"], "early");
    assert!(refused_at.elapsed() >= RETRY_AFTER);
    app.stop().await;
}
