//! Brokers of one PostgreSQL store under faults (issue 18, "Tests"; `SCALE-OUT.md`): a
//! real PostgreSQL, three broker processes with distinct Fly machine ids and a short
//! lease, and the test proxy in front that honours `fly-replay` as Fly's does. Clients
//! borrow and return through the proxy (overage charges included) and retry every
//! operation with its idempotency key. Meanwhile the busiest owner is killed (-9), an
//! owner is stopped past its lease with a write in flight and woken, and one broker is
//! terminated. Throughout, no pool is ever over its seats; afterwards every acknowledged
//! borrow, return and charge is there and nothing else, every ledger verifies, the woken
//! broker answered nothing from memory and its late write was fenced, and after each
//! fault every tenant answered again within the lease TTL and a few seconds.
//!
//! The counts of faults and operations are printed (`cluster faults: …`); run with
//! `--nocapture` to see them.
mod checks;
mod cluster;
mod load;
mod proxy;
mod stop;

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;
use cluster::{Cluster, RECOVERY};
use load::Shared;

/// The pool the clients share: two seats in the commit, three more as overage, so that
/// six clients contend for it and book charges.
const POOL: Tool = Tool {
    name: "Farm Compiler",
    id: "farm-compiler",
    commit: 2,
    overage: 3,
    price: 40.0,
};

const TENANTS: [&str; 4] = ["acme", "globex", "initech", "umbrella"];
const CLIENTS: usize = 6;
/// Acknowledged operations the clients make between two faults.
const BETWEEN_FAULTS: u64 = 40;

/// Where the proxy listens: a free loopback port.
const LOOPBACK: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// A request sent through the proxy to machine `machine` (`fly-force-instance-id`).
pub async fn forced(
    via: &TestApp,
    machine: &str,
    method: &str,
    host: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let req = via
        .request(method, host, path, token)
        .insert_header((FORCE_INSTANCE, machine));
    send_request(req, body).await
}

/// The vendor and the tenants, tenant `n` created at broker `n mod 3` (which so owns
/// it); returns once every broker knows every tenant.
async fn setup(c: &Cluster, via: &TestApp) -> Vec<Tenant> {
    let first = c.brokers[0].app();
    let (key, secret) = create_vendor(&first, "vector").await;
    let (key, secret) = (key.as_str(), secret.as_str());
    for b in &c.brokers {
        let app = b.app();
        wait_until("every broker knows the vendor", || async {
            app.vendor(key, "GET", "/api/vendor/customers", None)
                .await
                .status
                .as_u16()
                == 200
        })
        .await;
    }
    let mut tenants = Vec::new();
    for (n, name) in TENANTS.iter().enumerate() {
        let app = c.brokers[n % c.brokers.len()].app();
        tenants.push(add_tenant(&app, key, secret, name, &POOL).await);
        provision(&app, key, name, &stop::SPARE).await;
    }
    for b in &c.brokers {
        for t in &tenants {
            wait_until("every broker knows every tenant", || async {
                let path = "/licenses/status";
                let reply = forced(via, &b.id, "GET", &t.host, path, Some(&t.admin_key), None);
                reply.await.status.as_u16() == 200
            })
            .await;
        }
    }
    tenants
}

/// Waits until every tenant answers through the proxy; the time since `fault`.
async fn all_answer(via: &TestApp, tenants: &[Tenant], fault: Instant) -> Duration {
    for t in tenants {
        wait_until(&format!("{} answers again", t.id), || async {
            via.tenant_get(t, "/licenses/status").await.status.as_u16() == 200
        })
        .await;
    }
    let took = fault.elapsed();
    assert!(
        took <= RECOVERY,
        "the tenants answered again after {took:?}, not within {RECOVERY:?}"
    );
    took
}

/// The sum of `series` over the running brokers' metrics.
async fn total(c: &Cluster, series: &str) -> f64 {
    let mut sum = 0.0;
    for id in c.running() {
        sum += at(&scrape(&c.broker(&id).app()).await, series);
    }
    sum
}

#[actix_rt::test]
async fn brokers_on_postgres_keep_every_promise_through_kill_stop_and_term() {
    let Some(mut c) = Cluster::start("cluster_faults").await else {
        return;
    };
    let via = c.via_proxy();
    let tenants = Rc::new(setup(&c, &via).await);
    let ledger = Shared::default();
    let stop = Rc::new(Cell::new(false));
    let clients = load::start_clients(CLIENTS, &via, &tenants, POOL.name, &ledger, &stop);
    let monitor = load::start_monitor(&via, &tenants, &stop);
    load::progress(&ledger, BETWEEN_FAULTS).await;

    // kill -9 the busiest owner; its tenants are taken over once its lease lapsed.
    let busiest = c.db.busiest().await.expect("an owner");
    let killed = Instant::now();
    c.take(&busiest).kill9();
    let after_kill = all_answer(&via, &tenants, killed).await;
    c.restart(&busiest);
    load::progress(&ledger, BETWEEN_FAULTS).await;

    // SIGSTOP an owner past its lease with a write in flight, then SIGCONT.
    let stopped = stop::stop_an_owner_past_its_lease(&c, &via, &tenants, &ledger).await;
    assert!(
        stopped.recovered_in <= RECOVERY,
        "{:?}",
        stopped.recovered_in
    );
    load::progress(&ledger, BETWEEN_FAULTS).await;

    // SIGTERM one: it hands its tenants over on the way out.
    let leaving = c.db.busiest().await.expect("an owner");
    let termed = Instant::now();
    let server = c.take(&leaving);
    server.signal(Signal::SIGTERM);
    let (status, log) = server.wait_exit();
    assert!(status.success(), "{status}:\n{}", log.join("\n"));
    let after_term = all_answer(&via, &tenants, termed).await;
    load::progress(&ledger, BETWEEN_FAULTS).await;

    stop.set(true);
    for client in clients {
        client.await.expect("a client ran to the end");
    }
    let watch = monitor.await.expect("the monitor ran to the end");
    assert!(
        watch.over.is_empty(),
        "pools over their seats: {:?}",
        watch.over
    );
    let ledger = ledger.take();
    let charges = checks::every_promise_kept(&via, &tenants, &POOL, &ledger).await;
    let fenced = total(&c, "permetrix_fenced_writes_total").await;
    let p = c.proxy.counts();
    let report = format!(
        "cluster faults: kills 1 ({busiest}), stops 1 ({}), terms 1 ({leaving}); fenced writes {fenced} \
         (woken broker {}, its lease losses {}); retries {}; acknowledged borrows {}, returns {}, \
         overage charges {charges}, refused (no seat) {}; status reads {}; proxy requests {}, \
         replays {}, refused connections {}, timeouts {}; every tenant answered again {after_kill:?} \
         after the kill, {:?} after the stop, {after_term:?} after the term (lease TTL {:?})",
        stopped.machine,
        stopped.fenced,
        stopped.lease_losses,
        ledger.retries,
        ledger.borrows,
        ledger.returns,
        ledger.refused,
        watch.reads,
        p.requests,
        p.replays,
        p.refused,
        p.timeouts,
        stopped.recovered_in,
        cluster::TTL,
    );
    eprintln!("{report}");
    // Test output is captured; CI shows the counts from here (see .ci/run).
    if let Some(dir) = std::env::var_os("PERMETRIX_TEST_REPORTS") {
        std::fs::write(
            std::path::Path::new(&dir).join("cluster-faults.txt"),
            report,
        )
        .expect("the report is written");
    }
}
