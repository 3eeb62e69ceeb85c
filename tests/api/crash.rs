//! Crash consistency: the real binary under concurrent borrows and returns from many
//! clients of several tenants, killed with SIGKILL at random moments and restarted on
//! the same data directory, cycle after cycle.
//!
//! After every kill the store is read directly, and after every restart over HTTP:
//! every acknowledged borrow is there (unless its return was acknowledged), every
//! acknowledged return stays returned, the counters equal the active borrows, no tool is
//! above its limit, and the ledger holds a charge for every acknowledged overage borrow
//! (and for every stored overage lease, in an intact hash chain). Requests in flight at
//! the kill may go either way; whatever the store says about them is adopted.
//!
//! `PERMETRIX_CRASH_CYCLES` (default 3) and `PERMETRIX_CRASH_SEED` choose the run:
//! `PERMETRIX_CRASH_CYCLES=20 cargo test --test api crash -- --nocapture`.
//! `PERMETRIX_CRASH_SERVER_ARGS` adds server flags (e.g. `--durability relaxed`: a
//! SIGKILL does not lose what sled already handed to the kernel, so only a power loss,
//! which this test cannot cause, tells the two modes apart).
//!
//! It runs on both stores. On PostgreSQL the restarted server is a new broker: the
//! killed one's tenants are served again once its lease lapses (a short `--lease-ttl`).
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use awc::http::StatusCode;
use permetrix_actors::domain::{LedgerHead, month_of, verify_chain};
use permetrix_storage::{
    Ownership, PgConfig, PgStore, SledConfig, SledStore, Store, TenantId, Timestamp,
};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::helpers::*;

const TOKEN: &str = "crash-test-operator-token";
const TENANTS: [&str; 3] = ["crash-a", "crash-b", "crash-c"];
const CLIENTS_PER_TENANT: usize = 4;
/// A pool with overage (every borrow beyond 2 books a charge) and one without.
const TOOLS: [Tool; 2] = [
    Tool {
        name: "Bus Analyser",
        id: "bus",
        commit: 2,
        overage: 4,
        price: 100.0,
    },
    Tool {
        name: "Compiler",
        id: "cc",
        commit: 4,
        overage: 0,
        price: 0.0,
    },
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the clients were told, and what is still open.
#[derive(Default)]
struct Model {
    /// Per tenant: borrows believed live (acknowledged, or found in the store after a
    /// crash), as (id, tool id); clients return from here.
    held: HashMap<&'static str, Vec<(String, &'static str)>>,
    /// Acknowledged borrows whose return was not acknowledged.
    acked_live: HashSet<String>,
    /// Acknowledged returns.
    acked_returned: HashSet<String>,
    /// Acknowledged overage borrows (each must have a charge, forever).
    acked_overage: HashSet<String>,
    /// Returns sent in this cycle without an answer.
    returns_in_flight: HashSet<String>,
    /// Answered requests in this cycle (the kill comes after a random number of them).
    answered: u64,
    kill_at: u64,
    stop: bool,
    report: Report,
}

#[derive(Default, Debug)]
struct Report {
    cycles: u64,
    acked_borrows: u64,
    acked_overage_borrows: u64,
    acked_returns: u64,
    refused_no_seats: u64,
    undecided: u64,
    /// Checks made after kills (each acknowledged fact counted once per check).
    live_borrows_checked: u64,
    returns_checked: u64,
    charges_checked: u64,
}

enum Op {
    Borrow(&'static Tool),
    Return(String, &'static str),
}

/// POST that reports a failed exchange (the server died) as `None` instead of panicking.
async fn post(
    app: &TestApp,
    host: &str,
    path: &str,
    token: &str,
    body: Value,
) -> Option<(StatusCode, Value)> {
    let mut res = app
        .client
        .post(app.url(path))
        .insert_header(("Host", host))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send_json(&body)
        .await
        .ok()?;
    let bytes = res.body().await.ok()?;
    Some((
        res.status(),
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// One client: borrows and returns on one tenant until the server dies.
async fn client(
    app: TestApp,
    tenant: &'static str,
    key: String,
    user: String,
    mut rng: fastrand::Rng,
    model: Rc<RefCell<Model>>,
    kill: Rc<Notify>,
) {
    let host = format!("{tenant}.localhost");
    loop {
        let op = {
            let mut m = model.borrow_mut();
            if m.stop {
                return;
            }
            let held = m.held.entry(tenant).or_default();
            if !held.is_empty() && rng.bool() {
                let (id, tool) = held.swap_remove(rng.usize(..held.len()));
                Op::Return(id, tool)
            } else {
                Op::Borrow(&TOOLS[rng.usize(..TOOLS.len())])
            }
        };
        match op {
            Op::Borrow(tool) => {
                let body = json!({"tool": tool.id, "user": user});
                let answer = post(&app, &host, "/licenses/borrow", &key, body).await;
                let mut m = model.borrow_mut();
                match answer {
                    Some((s, b)) if s == StatusCode::OK => {
                        let id = b["id"].as_str().unwrap().to_owned();
                        m.report.acked_borrows += 1;
                        if b["is_overage"].as_bool().unwrap() {
                            m.report.acked_overage_borrows += 1;
                            m.acked_overage.insert(id.clone());
                        }
                        m.acked_live.insert(id.clone());
                        m.held.entry(tenant).or_default().push((id, tool.id));
                    }
                    Some((s, b)) if s == StatusCode::CONFLICT => {
                        assert!(
                            ["no_seats", "max_overage_reached"]
                                .contains(&b["error"].as_str().unwrap()),
                            "{b}"
                        );
                        m.report.refused_no_seats += 1;
                    }
                    Some((s, b)) => panic!("borrow answered {s}: {b}"),
                    None => {
                        m.report.undecided += 1;
                        return;
                    }
                }
            }
            Op::Return(id, tool) => {
                let answer = post(&app, &host, "/licenses/return", &key, json!({"id": id})).await;
                let mut m = model.borrow_mut();
                match answer {
                    Some((s, b)) if s == StatusCode::OK => {
                        assert_eq!(
                            b["tool"].as_str(),
                            TOOLS.iter().find(|t| t.id == tool).map(|t| t.name)
                        );
                        m.report.acked_returns += 1;
                        m.acked_live.remove(&id);
                        m.acked_returned.insert(id);
                    }
                    Some((s, b)) => panic!("return of a held borrow answered {s}: {b}"),
                    None => {
                        m.report.undecided += 1;
                        m.returns_in_flight.insert(id);
                        return;
                    }
                }
            }
        }
        let mut m = model.borrow_mut();
        m.answered += 1;
        if m.answered == m.kill_at {
            kill.notify_one();
        }
    }
}

/// What the store holds for one tenant.
struct Stored {
    /// Lease id → (tool id, is_overage).
    leases: HashMap<String, (String, bool)>,
    /// Borrow ids charged.
    charged: HashSet<String>,
    /// Charges of this month per tool id.
    month_charges: HashMap<String, u64>,
}

/// The lease time of the PostgreSQL brokers: how long the killed one's tenants wait.
const LEASE_TTL: &str = "3";

/// Reads every tenant straight from the store of the killed server and checks what
/// needs no model: limits, an intact ledger, a charge for every overage lease.
fn read_store(kind: &TestStore, dir: &Path) -> HashMap<&'static str, Stored> {
    match kind.url() {
        None => {
            let store =
                SledStore::open(SledConfig::new(dir)).expect("the store opens after a kill");
            let stored = check_store(&store);
            store.shutdown().unwrap();
            stored
        }
        Some(url) => {
            let store = PgStore::connect(url, PgConfig::new("crash-reader:0")).unwrap();
            let stored = check_store(&store);
            store.leave().unwrap();
            stored
        }
    }
}

fn check_store(store: &dyn Store) -> HashMap<&'static str, Stored> {
    let month = month_of(Timestamp::now());
    let mut out = HashMap::new();
    for tenant in TENANTS {
        let id = TenantId::parse(tenant).unwrap();
        let records = store.load_tenant(&id).unwrap();
        let charges = store.charges(&id, 0, usize::MAX).unwrap();
        verify_chain(&id, LedgerHead::default(), &charges)
            .unwrap_or_else(|seq| panic!("{tenant}: the ledger chain breaks at charge {seq}"));
        let charged: HashSet<String> = charges.iter().map(|c| c.borrow_id.to_string()).collect();
        assert_eq!(
            charged.len(),
            charges.len(),
            "{tenant}: a borrow was charged twice"
        );
        let mut month_charges = HashMap::new();
        for c in charges.iter().filter(|c| month_of(c.charged_at) == month) {
            *month_charges.entry(c.product_id.clone()).or_insert(0) += 1;
        }
        let leases: HashMap<String, (String, bool)> = records
            .leases
            .iter()
            .map(|l| (l.id.to_string(), (l.product_id.clone(), l.is_overage)))
            .collect();
        for tool in &TOOLS {
            let n = leases.values().filter(|(t, _)| t == tool.id).count() as u32;
            assert!(
                n <= tool.commit + tool.overage,
                "{tenant}: {n} leases of {} above its limit",
                tool.id
            );
            // The usage history ends where the leases are: a seat change the kill cut
            // in half (event written, lease change not) was rolled back on load.
            let later = Timestamp::now().plus(Duration::from_secs(86_400));
            let newest = store.usage_before(&id, tool.id, later).unwrap();
            assert_eq!(
                newest.map_or(0, |e| e.in_use),
                n,
                "{tenant}/{}: the usage history disagrees with the leases",
                tool.id
            );
        }
        for (lease, (_, overage)) in &leases {
            assert!(
                !overage || charged.contains(lease),
                "{tenant}: overage lease {lease} has no charge"
            );
        }
        out.insert(
            tenant,
            Stored {
                leases,
                charged,
                month_charges,
            },
        );
    }
    out
}

/// Checks the acknowledged facts against the store, then adopts the store's truth for
/// what was undecided.
fn check_and_adopt(model: &mut Model, stored: &HashMap<&'static str, Stored>) {
    let live: HashSet<&String> = stored.values().flat_map(|s| s.leases.keys()).collect();
    let charged: HashSet<&String> = stored.values().flat_map(|s| s.charged.iter()).collect();
    for id in &model.acked_live {
        assert!(
            live.contains(id) || model.returns_in_flight.contains(id),
            "acknowledged borrow {id} was lost"
        );
    }
    for id in &model.acked_returned {
        assert!(!live.contains(id), "acknowledged return of {id} was undone");
    }
    for id in &model.acked_overage {
        assert!(
            charged.contains(id),
            "acknowledged overage borrow {id} has no charge"
        );
    }
    model.report.live_borrows_checked += model.acked_live.len() as u64;
    model.report.returns_checked += model.acked_returned.len() as u64;
    model.report.charges_checked += model.acked_overage.len() as u64;

    // A return in flight that took effect is a return (unacknowledged); one that did
    // not leaves the borrow live.
    let in_flight = std::mem::take(&mut model.returns_in_flight);
    model
        .acked_live
        .retain(|id| live.contains(id) || !in_flight.contains(id));
    for (tenant, s) in stored {
        let held = s
            .leases
            .iter()
            .map(|(id, (tool, _))| {
                let tool = TOOLS.iter().find(|t| t.id == tool).unwrap().id;
                (id.clone(), tool)
            })
            .collect();
        model.held.insert(tenant, held);
    }
}

/// The restarted server agrees with the store: readiness, counters, borrow lists.
async fn check_http(
    app: &TestApp,
    keys: &HashMap<&'static str, String>,
    stored: &HashMap<&'static str, Stored>,
) {
    let ready = app
        .call("GET", "localhost", "/ready", None, None)
        .await
        .expect(200);
    assert_eq!(ready["status"], "ready");
    for tenant in TENANTS {
        let host = format!("{tenant}.localhost");
        let key = keys[tenant].as_str();
        let s = &stored[tenant];
        // On PostgreSQL the tenant is free once the killed broker's lease has lapsed.
        let status = wait_until(&format!("{tenant} is served again"), || async {
            let r = app
                .call("GET", &host, "/licenses/status", Some(key), None)
                .await;
            if r.status == StatusCode::OK {
                Ok(r.body)
            } else {
                Err((r.status, r.body))
            }
        })
        .await;
        for st in status.as_array().unwrap() {
            let tool = TOOLS.iter().find(|t| t.id == st["product_id"]).unwrap();
            let held = s.leases.values().filter(|(t, _)| t == tool.id).count() as u64;
            let total = (tool.commit + tool.overage) as u64;
            assert_eq!(
                st["borrowed"].as_u64(),
                Some(held),
                "{tenant}/{}: {st}",
                tool.id
            );
            assert_eq!(st["total"].as_u64(), Some(total), "{st}");
            assert_eq!(st["available"].as_u64(), Some(total - held), "{st}");
            assert_eq!(
                st["overage"].as_u64(),
                Some(held.saturating_sub(tool.commit as u64)),
                "{st}"
            );
            let charges = s.month_charges.get(tool.id).copied().unwrap_or(0);
            assert_eq!(
                st["current_overage_cost"].as_f64(),
                Some(charges as f64 * tool.price),
                "{tenant}/{}: the spend counter disagrees with the ledger: {st}",
                tool.id
            );
        }
        let listed = app
            .call("GET", &host, "/borrows", Some(key), None)
            .await
            .expect(200);
        let listed: HashSet<String> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().to_owned())
            .collect();
        let expected: HashSet<String> = s.leases.keys().cloned().collect();
        assert_eq!(
            listed, expected,
            "{tenant}: /borrows disagrees with the store"
        );
    }
}

crate::on_both_stores!(acknowledged_operations_survive_repeated_sigkill_under_load);

async fn acknowledged_operations_survive_repeated_sigkill_under_load(store: TestStore) {
    let cycles = env_u64("PERMETRIX_CRASH_CYCLES", 3);
    let seed = env_u64("PERMETRIX_CRASH_SEED", 0x5eed_2026);
    let extra = std::env::var("PERMETRIX_CRASH_SERVER_ARGS").unwrap_or_default();
    let mut extra: Vec<&str> = extra.split_whitespace().collect();
    if store.url().is_some() {
        extra.extend(["--lease-ttl", LEASE_TTL]);
    }
    let dir = tempfile::tempdir().unwrap();
    let server = TestApp::builder()
        .data_dir(dir.path())
        .store(&store)
        .token(TOKEN)
        .args(&extra);
    let mut proc = server.process();

    let app = proc.app();
    let first = bootstrap(&app, "crashvendor", TENANTS[0], &TOOLS[0]).await;
    let mut keys = HashMap::new();
    keys.insert(TENANTS[0], first.admin_key.clone());
    provision(&app, &first.vendor_key, TENANTS[0], &TOOLS[1]).await;
    for tenant in &TENANTS[1..] {
        let t = add_tenant(
            &app,
            &first.vendor_key,
            &first.signing_secret,
            tenant,
            &TOOLS[0],
        )
        .await;
        provision(&app, &first.vendor_key, tenant, &TOOLS[1]).await;
        keys.insert(*tenant, t.admin_key);
    }

    let model = Rc::new(RefCell::new(Model::default()));
    let mut rng = fastrand::Rng::with_seed(seed);
    for cycle in 0..cycles {
        let kill = Rc::new(Notify::new());
        {
            let mut m = model.borrow_mut();
            m.answered = 0;
            m.stop = false;
            m.kill_at = rng.u64(20..300);
        }
        let mut clients = Vec::new();
        for (t, tenant) in TENANTS.iter().enumerate() {
            for c in 0..CLIENTS_PER_TENANT {
                clients.push(actix_rt::spawn(client(
                    proc.app(),
                    tenant,
                    keys[tenant].clone(),
                    format!("user-{t}-{c}"),
                    fastrand::Rng::with_seed(rng.u64(..)),
                    Rc::clone(&model),
                    Rc::clone(&kill),
                )));
            }
        }
        tokio::time::timeout(Duration::from_secs(120), kill.notified())
            .await
            .expect("the load reached the kill point");
        // SIGKILL while every client has a request in flight.
        proc.kill9();
        model.borrow_mut().stop = true;
        for c in clients {
            c.await.expect("a client task panicked");
        }

        let stored = read_store(&store, dir.path());
        check_and_adopt(&mut model.borrow_mut(), &stored);

        proc = server.process();
        check_http(&proc.app(), &keys, &stored).await;
        model.borrow_mut().report.cycles = cycle + 1;
    }
    proc.kill9();

    let m = model.borrow();
    let r = &m.report;
    println!(
        "crash consistency (seed {seed:#x}): {} SIGKILL cycles; {} borrows acknowledged ({} overage), \
         {} returns acknowledged, {} refused for no seats, {} requests in flight at kills; \
         checked after kills: {} live acknowledged borrows, {} acknowledged returns, {} charges of \
         acknowledged overage borrows",
        r.cycles,
        r.acked_borrows,
        r.acked_overage_borrows,
        r.acked_returns,
        r.refused_no_seats,
        r.undecided,
        r.live_borrows_checked,
        r.returns_checked,
        r.charges_checked
    );
    assert_eq!(r.cycles, cycles);
    assert!(r.acked_overage_borrows > 0 && r.acked_returns > 0, "{r:?}");
}
