//! Routing across brokers (`SCALE-OUT.md`, "Routing"): two servers in this process act as
//! brokers of one cluster. Both serve copies of one store (restored from one backup, so
//! every credential works on both); broker `a` is told that `acme` is owned by broker
//! `b`. A request for acme at `a` is forwarded to `b` (`--peer-forwarding`) and `b`'s
//! answer relayed unchanged, a live event stream included; on Fly it is answered with
//! `fly-replay`; a request that was relayed once and still finds another owner gets one
//! fresh look-up, then `503` with `Retry-After` (no loops). Mutations from the vendor and
//! operator hosts reach the owner the same way.
use std::sync::Arc;

use serde_json::json;

use crate::helpers::*;

/// Two brokers: `b` owns acme (its own store says so), `a` places acme on `b`.
struct Cluster {
    a: TestApp,
    b: TestApp,
    acme: Tenant,
    /// acme's package of the one-seat tool.
    bus_package: String,
    /// Where `a` and `b` place tenants.
    placement_a: Arc<Placement>,
    placement_b: Arc<Placement>,
    _dirs: tempfile::TempDir,
}

/// Starts the two brokers; `a` is configured by `tweak`, and so is `b` when `both`.
async fn cluster(tweak: fn(&mut ServeConfig), both: bool) -> Cluster {
    let seed = TestApp::builder().spawn().await;
    let acme = bootstrap(&seed, "vector", "acme", &ECU).await;
    let bus = provision(&seed, &acme.vendor_key, "acme", &BUS).await;
    let bus_package = bus["package_id"].as_str().unwrap().to_owned();
    let (dirs, dir_a, dir_b) = two_copies(seed).await;
    let placement_b = Arc::new(Placement::default());
    let b = TestApp::builder()
        .placement(&placement_b)
        .config(move |c| {
            c.data_dir = dir_b;
            if both {
                tweak(c);
            }
        })
        .spawn()
        .await;
    let placement_a = Arc::new(Placement::default());
    placement_a.place("acme", broker_at(&b, "machine-b"));
    let a = TestApp::builder()
        .placement(&placement_a)
        .config(move |c| {
            c.data_dir = dir_a;
            tweak(c);
        })
        .spawn()
        .await;
    Cluster {
        a,
        b,
        acme,
        bus_package,
        placement_a,
        placement_b,
        _dirs: dirs,
    }
}

/// A tool acme does not have yet.
const CAN: Tool = Tool {
    name: "CAN Logger",
    id: "can-logger",
    commit: 2,
    overage: 0,
    price: 0.0,
};

fn forwarding(c: &mut ServeConfig) {
    c.peer_forwarding = true;
}

fn on_fly(c: &mut ServeConfig) {
    c.fly_machine_id = Some("machine-a".into());
}

async fn counter(app: &TestApp, name: &str) -> f64 {
    at(&scrape(app).await, name)
}

#[actix_rt::test]
async fn a_request_for_a_tenant_owned_by_another_broker_is_forwarded_and_the_answer_relayed() {
    let c = cluster(forwarding, false).await;
    let granted = c.a.borrow_ok(&c.acme, ECU.name, "alice").await;
    // The owner holds the seat; the forwarding broker never activated the tenant.
    let status = c.b.status_of(&c.acme, ECU.id).await;
    assert_eq!(status["borrowed"], 1, "{status}");
    assert_eq!(c.a.active_tenants(), 0);
    // Status, headers and body come back as the owner sent them: an idempotent replay
    // keeps its header, a refusal its status, code and challenge.
    let keyed = |app: &TestApp| {
        app.client
            .post(app.url("/licenses/borrow"))
            .insert_header(("Host", "acme.localhost"))
            .insert_header(("Authorization", format!("Bearer {}", c.acme.admin_key)))
            .insert_header(("Idempotency-Key", "build-7"))
            .send_json(&borrow_body(ECU.name, "bob"))
    };
    let first = read(keyed(&c.a).await.unwrap()).await;
    let replay = read(keyed(&c.a).await.unwrap()).await;
    assert_eq!(first.status.as_u16(), 200);
    assert_eq!(replay.status.as_u16(), 200);
    assert_eq!(replay.body["id"], first.body["id"]);
    assert_eq!(replay.headers.get("idempotent-replayed").unwrap(), "true");
    assert_ne!(first.body["id"], granted["id"]);
    let refused =
        c.a.call(
            "GET",
            "acme.localhost",
            "/licenses/status",
            Some("pmx_t_nope"),
            None,
        )
        .await;
    assert_eq!(
        (refused.status.as_u16(), refused.code()),
        (401, "unauthorized")
    );
    assert_eq!(refused.headers.get("www-authenticate").unwrap(), "Bearer");
    let m = scrape(&c.a).await;
    assert_eq!(at(&m, "permetrix_requests_forwarded_total"), 4.0);
    let forwarded_borrows =
        r#"license_http_requests_total{method="POST",route="/licenses/borrow",status_code="200"}"#;
    assert_eq!(
        at(&m, forwarded_borrows),
        3.0,
        "forwarded requests keep their route label"
    );
    assert_eq!(
        counter(&c.b, "permetrix_requests_forwarded_total").await,
        0.0
    );
    c.a.stop().await;
    c.b.stop().await;
}

#[actix_rt::test]
async fn a_forwarded_event_stream_is_relayed_as_a_stream() {
    let c = cluster(forwarding, false).await;
    let mut events = subscribe(&c.a, &c.acme).await;
    assert_eq!(events.status().as_u16(), 200);
    assert_eq!(
        events.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let mut buffer = String::new();
    until_subscribed(&mut events, &mut buffer).await;
    // A borrow at the owner reaches the subscriber through the forwarding broker.
    c.b.borrow_ok(&c.acme, ECU.name, "carol").await;
    let event = next_event(&mut events, &mut buffer, "borrow").await;
    assert_eq!(event["user"], "carol");
    drop(events);
    c.a.stop().await;
    c.b.stop().await;
}

#[actix_rt::test]
async fn on_fly_a_request_for_a_tenant_owned_elsewhere_is_answered_with_fly_replay() {
    let c = cluster(on_fly, false).await;
    let res = c.a.borrow(&c.acme, ECU.name, "alice").await;
    assert_eq!(res.status.as_u16(), 503, "{}", res.body);
    assert_eq!(res.headers.get("fly-replay").unwrap(), "instance=machine-b");
    assert_eq!(res.headers.get("retry-after").unwrap(), "1");
    assert_eq!(
        counter(&c.a, "permetrix_requests_replayed_total").await,
        1.0
    );
    // Fly's proxy replays it at the owner, which serves it.
    let replayed =
        c.b.client
            .post(c.b.url("/licenses/borrow"))
            .insert_header(("Host", "acme.localhost"))
            .insert_header(("Authorization", format!("Bearer {}", c.acme.admin_key)))
            .insert_header(("fly-replay-src", "instance=machine-a;region=ams;t=1"))
            .send_json(&borrow_body(ECU.name, "alice"))
            .await
            .unwrap();
    assert_eq!(replayed.status().as_u16(), 200);
    c.a.stop().await;
    c.b.stop().await;
}

#[actix_rt::test]
async fn a_replayed_request_that_still_finds_another_owner_gets_one_look_up_then_503() {
    let c = cluster(on_fly, false).await;
    let before = c.placement_a.locates();
    let res =
        c.a.client
            .get(c.a.url("/licenses/status"))
            .insert_header(("Host", "acme.localhost"))
            .insert_header(("Authorization", format!("Bearer {}", c.acme.admin_key)))
            .insert_header(("fly-replay-src", "instance=machine-b;region=ams;t=1"))
            .send()
            .await
            .unwrap();
    let res = read(res).await;
    assert_eq!((res.status.as_u16(), res.code()), (503, "tenant_elsewhere"));
    assert_eq!(res.headers.get("retry-after").unwrap(), "1");
    assert!(res.headers.get("fly-replay").is_none(), "no second replay");
    assert_eq!(c.placement_a.locates() - before, 1, "one fresh look-up");
    assert_eq!(
        counter(&c.a, "permetrix_requests_unrouted_total").await,
        1.0
    );
    c.a.stop().await;
    c.b.stop().await;
}

#[actix_rt::test]
async fn brokers_that_each_place_a_tenant_on_the_other_do_not_forward_in_a_loop() {
    let c = cluster(forwarding, true).await;
    c.placement_b.place("acme", broker_at(&c.a, "machine-a"));
    let res = c.a.tenant_get(&c.acme, "/licenses/status").await;
    assert_eq!((res.status.as_u16(), res.code()), (503, "tenant_elsewhere"));
    assert_eq!(res.headers.get("retry-after").unwrap(), "1");
    assert_eq!(
        counter(&c.a, "permetrix_requests_forwarded_total").await,
        1.0
    );
    assert_eq!(
        counter(&c.b, "permetrix_requests_forwarded_total").await,
        0.0
    );
    assert_eq!(
        counter(&c.b, "permetrix_requests_unrouted_total").await,
        1.0
    );
    assert_eq!(c.placement_b.locates(), 1, "one fresh look-up at b");
    assert_eq!((c.a.active_tenants(), c.b.active_tenants()), (0, 0));
    c.a.stop().await;
    c.b.stop().await;
}

#[actix_rt::test]
async fn without_forwarding_off_fly_a_request_for_a_tenant_owned_elsewhere_is_503() {
    let c = cluster(|_| {}, false).await;
    let res = c.a.borrow(&c.acme, ECU.name, "alice").await;
    assert_eq!((res.status.as_u16(), res.code()), (503, "tenant_elsewhere"));
    assert_eq!(res.headers.get("retry-after").unwrap(), "1");
    // The client's retry at the owner succeeds.
    c.b.borrow_ok(&c.acme, ECU.name, "alice").await;
    c.a.stop().await;
    c.b.stop().await;
}

#[actix_rt::test]
async fn vendor_and_operator_changes_of_a_tenant_owned_elsewhere_are_made_by_its_owner() {
    let c = cluster(forwarding, false).await;
    let key = c.acme.vendor_key.clone();
    // Provisioning, through broker a, lands at the owner.
    let can =
        c.a.vendor(
            &key,
            "POST",
            "/api/vendor/provision",
            Some(json!({
                "tenant_id": "acme", "product_id": CAN.id, "product_name": CAN.name,
                "total": CAN.commit, "commit_qty": CAN.commit, "max_overage": 0,
            })),
        )
        .await
        .expect(201);
    assert_eq!(can["product_id"], CAN.id);
    let tools =
        c.b.tenant_get(&c.acme, "/licenses/status")
            .await
            .expect(200);
    assert_eq!(tools.as_array().unwrap().len(), 3, "{tools}");
    // So does a package patch (the owner answers with the package as it is now)...
    let patched =
        c.a.vendor(
            &key,
            "PATCH",
            &format!("/api/vendor/packages/{}", c.bus_package),
            Some(json!({"status": "suspended"})),
        )
        .await
        .expect(200);
    assert_eq!(patched["status"], "suspended", "{patched}");
    let bus =
        c.b.tenant_get(&c.acme, &format!("/licenses/{}/status", BUS.id))
            .await
            .expect(200);
    assert_eq!(bus["status"], "suspended", "{bus}");
    // ...and the operator's deletion: the owner stops its actor.
    let deleted =
        c.a.operator("DELETE", "/api/admin/tenants/acme", None)
            .await
            .expect(200);
    assert_eq!(deleted["status"], "deleted");
    let gone = c.b.tenant_get(&c.acme, "/licenses/status").await;
    assert_eq!((gone.status.as_u16(), gone.code()), (404, "unknown_tenant"));
    assert_eq!(c.a.active_tenants(), 0);
    assert_eq!(
        counter(&c.a, "permetrix_requests_forwarded_total").await,
        3.0
    );
    c.a.stop().await;
    c.b.stop().await;
}

#[actix_rt::test]
async fn a_stopping_broker_leaves_the_cluster() {
    let placement = Arc::new(Placement::default());
    let app = TestApp::builder().placement(&placement).spawn().await;
    let t = bootstrap(&app, "vector", "acme", &ECU).await;
    app.borrow_ok(&t, ECU.name, "alice").await;
    assert_eq!(placement.leaves(), 0);
    app.stop().await;
    wait_until("the stopped server left the cluster", || async {
        placement.leaves() == 1
    })
    .await;
}
