//! The test proxy itself, in front of two brokers in this process (no database), both
//! serving copies of one seed store: broker `m-a` places acme and globex on `m-b`, so
//! its answers carry `fly-replay: instance=m-b`, which the proxy follows once; `m-b`
//! serves acme, and places globex back on `m-a`: that replayed request gets `m-b`'s 503
//! and no second replay.
use std::sync::Arc;
use std::time::Duration;

use super::{LOOPBACK, forced};
use crate::helpers::*;

/// A broker on Fly machine `machine` serving a copy of the seed in `dir`.
async fn broker(placement: &Arc<Placement>, dir: std::path::PathBuf, machine: &str) -> TestApp {
    let machine = machine.to_owned();
    TestApp::builder()
        .placement(placement)
        .config(move |c| {
            c.data_dir = dir;
            c.fly_machine_id = Some(machine);
        })
        .spawn()
        .await
}

#[actix_rt::test]
async fn the_proxy_replays_a_request_once_at_the_machine_fly_replay_names() {
    let seed = TestApp::builder().spawn().await;
    let acme = bootstrap(&seed, "vector", "acme", &ECU).await;
    let globex = add_tenant(
        &seed,
        &acme.vendor_key,
        &acme.signing_secret,
        "globex",
        &ECU,
    )
    .await;
    let (_dirs, dir_a, dir_b) = two_copies(seed).await;
    let (placed_a, placed_b) = (
        Arc::new(Placement::default()),
        Arc::new(Placement::default()),
    );
    let b = broker(&placed_b, dir_b, "m-b").await;
    let a = broker(&placed_a, dir_a, "m-a").await;
    placed_a.place("acme", broker_at(&b, "m-b"));
    placed_a.place("globex", broker_at(&b, "m-b"));
    placed_b.place("globex", broker_at(&a, "m-a"));
    let machines = [("m-a".to_owned(), a.addr), ("m-b".to_owned(), b.addr)];
    let proxy = FlyProxy::start(LOOPBACK, &machines, Duration::from_secs(10)).unwrap();
    let via = TestApp::remote(proxy.addr, &a.admin_token);

    let body = Some(borrow_body(ECU.id, "alice"));
    let path = "/licenses/borrow";
    let granted = forced(
        &via,
        "m-a",
        "POST",
        &acme.host,
        path,
        Some(&acme.admin_key),
        body,
    )
    .await;
    assert_eq!(granted.status.as_u16(), 200, "{}", granted.body);
    assert!(
        granted.headers.get(REPLAY).is_none(),
        "the proxy keeps fly-replay to itself"
    );
    assert_eq!(b.status_of(&acme, ECU.id).await["borrowed"], 1);
    assert_eq!(a.active_tenants(), 0);
    assert_eq!(
        at(&scrape(&a).await, "permetrix_requests_replayed_total"),
        1.0
    );
    assert_eq!((proxy.counts().requests, proxy.counts().replays), (1, 1));

    let path = "/licenses/status";
    let token = Some(globex.admin_key.as_str());
    let looped = forced(&via, "m-a", "GET", &globex.host, path, token, None).await;
    assert_eq!(
        (looped.status.as_u16(), looped.code()),
        (503, "tenant_elsewhere")
    );
    assert!(looped.headers.get(REPLAY).is_none());
    let counts = proxy.counts();
    assert_eq!(
        (counts.replays, counts.second_replays),
        (2, 0),
        "{counts:?}"
    );
    assert_eq!(
        at(&scrape(&b).await, "permetrix_requests_unrouted_total"),
        1.0
    );

    // Without a forced machine the proxy takes turns; both brokers answer for themselves.
    for _ in 0..2 {
        via.call("GET", "localhost", "/health", None, None)
            .await
            .expect(200);
    }
    assert_eq!(proxy.counts().requests, 4);
    drop(proxy);
    a.stop().await;
    b.stop().await;
}
