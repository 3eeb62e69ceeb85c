//! Overload and fault isolation, measured on the real binary: the latency one tenant
//! ("calm") sees while another ("hot") is flooded, stuck, or crashing, against the same
//! probe on an idle server; the flooded tenant's answers; the server's memory.
//!
//! ```sh
//! cargo bench --bench overload
//! PERMETRIX_OVERLOAD_SECS=10 PERMETRIX_OVERLOAD_RATE=4000 cargo bench --bench overload
//! PERMETRIX_TENANT_CONCURRENCY=4 cargo bench --bench overload   # the server reads its env
//! ```
//!
//! The probe is open-loop: a `GET /licenses/status` of the calm tenant every 5 ms, each
//! timed on its own, so a slow answer cannot hide the ones queued behind it. Scenarios:
//!
//! - `idle` — the probe alone (the baseline of every ratio).
//! - `stuck+flood` — the hot tenant's actor is stalled (fault injection) and borrows
//!   arrive for it open-loop at `PERMETRIX_OVERLOAD_RATE` per second (default 2000) on
//!   many connections: its mailbox (capacity 64) fills and the rest is refused with
//!   503 + Retry-After.
//! - `saturating flood` — the hot tenant is healthy and 64 connections borrow and return
//!   as fast as they can: the server's CPUs are the limit (the client runs on the same
//!   machine).
//! - `overflowing flood` — the same with 256 connections: the hot tenant's mailbox
//!   overflows, and the client retries every 503 at once instead of waiting for
//!   `Retry-After` (an abusive client; the server holds such a retry until its
//!   `Retry-After`).
//! - `panic storm` — the hot tenant's actor panics 100 times a second and is restarted
//!   each time.
//!
//! Without `--bench` (as under `cargo test --benches`) it runs each scenario briefly.
// A benchmark stops at the first thing that goes wrong, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use awc::Client;
use serde_json::{Value, json};

const TOKEN: &str = "overload-bench-operator-token";
const PROBE_EVERY: Duration = Duration::from_millis(5);

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(dir: &std::path::Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_permetrix"))
            .args(["serve", "--bind", "127.0.0.1:0", "--mailbox-capacity", "64"])
            .arg("--data-dir")
            .arg(dir)
            .env("PERMETRIX_ADMIN_TOKEN", TOKEN)
            .env("RUST_LOG", "warn,permetrix::server=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the server starts");
        let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let addr = loop {
            let line = lines.next().expect("ready line").expect("stderr");
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .expect("addr")
                    .parse()
                    .expect("addr");
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Server { child, addr }
    }

    fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

fn client() -> Client {
    Client::builder()
        .connector(awc::Connector::new().limit(0))
        .timeout(Duration::from_secs(30))
        .finish()
}

/// One request; the answer's status, JSON body (`null` if none) and whether it carried
/// `Retry-After`.
async fn call(
    c: &Client,
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, bool) {
    let mut req = c
        .request(
            method.parse().expect("method"),
            format!("http://{addr}{path}"),
        )
        .insert_header(("Host", host));
    if let Some(t) = token {
        req = req.insert_header(("Authorization", format!("Bearer {t}")));
    }
    let res = match body {
        Some(b) => req.send_json(&b).await,
        None => req.send().await,
    };
    match res {
        Ok(mut r) => {
            let bytes = r.body().await.unwrap_or_default();
            (
                r.status().as_u16(),
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                r.headers().contains_key("retry-after"),
            )
        }
        Err(_) => (0, Value::Null, false),
    }
}

struct Keys {
    hot: String,
    calm: String,
}

async fn setup(addr: SocketAddr) -> Keys {
    let c = client();
    let (s, v, _) = call(
        &c,
        addr,
        "POST",
        "localhost",
        "/api/admin/vendors",
        Some(TOKEN),
        Some(json!({"vendor_id": "vector", "vendor_name": "Vector"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let vendor = v["api_key"].as_str().expect("vendor key").to_owned();
    let mut keys = Vec::new();
    for t in ["hot", "calm"] {
        let (s, v, _) = call(
            &c,
            addr,
            "POST",
            "vendor.localhost",
            "/api/vendor/customers",
            Some(&vendor),
            Some(json!({"tenant_id": t, "company_name": t})),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        let key = v["admin_api_key"].as_str().expect("key").to_owned();
        let (s, v, _) = call(
            &c,
            addr,
            "POST",
            "vendor.localhost",
            "/api/vendor/provision",
            Some(&vendor),
            Some(json!({
                "tenant_id": t, "product_id": "ecu", "product_name": "ECU",
                "total": 100000, "commit_qty": 100000, "max_overage": 0
            })),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        let (s, v, _) = call(
            &c,
            addr,
            "PUT",
            &format!("{t}.localhost"),
            "/config/security",
            Some(&key),
            Some(json!({"signature_policy": "off"})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        keys.push(key);
    }
    let calm = keys.pop().expect("calm");
    let hot = keys.pop().expect("hot");
    Keys { hot, calm }
}

/// Open-loop probe of the calm tenant; latencies in microseconds.
async fn probe(addr: SocketAddr, key: String, length: Duration) -> Vec<u64> {
    let c = Rc::new(client());
    let key = Rc::new(key);
    let out = Rc::new(RefCell::new(Vec::new()));
    let mut tasks = Vec::new();
    let mut tick = actix_rt::time::interval(PROBE_EVERY);
    let end = Instant::now() + length;
    while Instant::now() < end {
        tick.tick().await;
        let (c, key, out) = (Rc::clone(&c), Rc::clone(&key), Rc::clone(&out));
        tasks.push(actix_rt::spawn(async move {
            let started = Instant::now();
            let (s, _, _) = call(
                &c,
                addr,
                "GET",
                "calm.localhost",
                "/licenses/status",
                Some(&key),
                None,
            )
            .await;
            assert_eq!(s, 200, "the calm tenant's probe failed");
            out.borrow_mut().push(started.elapsed().as_micros() as u64);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Rc::try_unwrap(out)
        .map(RefCell::into_inner)
        .unwrap_or_default()
}

#[derive(Default, Debug)]
struct Answers {
    ok: u64,
    refused_503: u64,
    with_retry_after: u64,
    other: u64,
}

#[derive(Clone, Copy)]
enum Load {
    None,
    /// The hot tenant's actor stalled for the duration, and open-loop borrows for it at
    /// this rate.
    StuckFlood(u64),
    /// Closed-loop borrow + return on this many connections.
    Saturate(usize),
    /// Panics of the hot actor per second.
    Panics(u64),
}

async fn load(addr: SocketAddr, key: String, kind: Load, length: Duration) -> Answers {
    let answers = Rc::new(RefCell::new(Answers::default()));
    let key = Rc::new(key);
    let end = Instant::now() + length;
    let c = Rc::new(client());
    let record = |answers: &RefCell<Answers>, status: u16, retry: bool| {
        let mut a = answers.borrow_mut();
        match status {
            200 => a.ok += 1,
            503 => {
                a.refused_503 += 1;
                if retry {
                    a.with_retry_after += 1;
                }
            }
            _ => a.other += 1,
        }
    };
    match kind {
        Load::None => {}
        Load::StuckFlood(rate) | Load::Panics(rate) => {
            let panics = matches!(kind, Load::Panics(_));
            let stuck = matches!(kind, Load::StuckFlood(_));
            if stuck {
                let (s, v, _) = call(
                    &c,
                    addr,
                    "POST",
                    "hot.localhost",
                    "/_faults/stall",
                    Some(&key),
                    None,
                )
                .await;
                assert_eq!(s, 200, "stall: {v}");
            }
            let mut tick = actix_rt::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
            let mut tasks = Vec::new();
            while Instant::now() < end {
                tick.tick().await;
                let (c, key, answers) = (Rc::clone(&c), Rc::clone(&key), Rc::clone(&answers));
                tasks.push(actix_rt::spawn(async move {
                    let path = if panics {
                        "/_faults/panic"
                    } else {
                        "/licenses/borrow"
                    };
                    let body = (!panics).then(|| json!({"tool": "ecu", "user": "flood"}));
                    let mut req = c
                        .post(format!("http://{addr}{path}"))
                        .insert_header(("Host", "hot.localhost"))
                        .insert_header(("Authorization", format!("Bearer {key}")));
                    if body.is_none() {
                        req = req.insert_header(("Content-Length", "0"));
                    }
                    let res = match body {
                        Some(b) => req.send_json(&b).await,
                        None => req.send().await,
                    };
                    match res {
                        Ok(mut r) => {
                            let _ = r.body().await;
                            record(
                                &answers,
                                r.status().as_u16(),
                                r.headers().contains_key("retry-after"),
                            );
                        }
                        Err(_) => record(&answers, 0, false),
                    }
                }));
            }
            if stuck {
                // The queued borrows are answered once the actor moves again.
                let (s, v, _) = call(
                    &c,
                    addr,
                    "POST",
                    "hot.localhost",
                    "/_faults/release",
                    Some(&key),
                    None,
                )
                .await;
                assert_eq!(s, 200, "release: {v}");
            }
            for t in tasks {
                let _ = t.await;
            }
        }
        Load::Saturate(connections) => {
            let workers: Vec<_> = (0..connections)
                .map(|_| {
                    let (key, answers) = (Rc::clone(&key), Rc::clone(&answers));
                    actix_rt::spawn(async move {
                        let c = client();
                        while Instant::now() < end {
                            let (s, v, retry) = call(
                                &c,
                                addr,
                                "POST",
                                "hot.localhost",
                                "/licenses/borrow",
                                Some(&key),
                                Some(json!({"tool": "ecu", "user": "flood"})),
                            )
                            .await;
                            record(&answers, s, retry);
                            if let Some(id) = v["id"].as_str() {
                                let (s, _, retry) = call(
                                    &c,
                                    addr,
                                    "POST",
                                    "hot.localhost",
                                    "/licenses/return",
                                    None,
                                    Some(json!({"id": id})),
                                )
                                .await;
                                record(&answers, s, retry);
                            }
                        }
                    })
                })
                .collect();
            for w in workers {
                let _ = w.await;
            }
        }
    }
    Rc::try_unwrap(answers)
        .map(RefCell::into_inner)
        .unwrap_or_default()
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Row {
    name: &'static str,
    p50: u64,
    p99: u64,
    max: u64,
    samples: usize,
    answers: Answers,
    rss_kib: u64,
}

fn scenario(server: &Server, keys: &Keys, name: &'static str, kind: Load, length: Duration) -> Row {
    let (addr, hot) = (server.addr, keys.hot.clone());
    let loader =
        std::thread::spawn(move || actix_rt::System::new().block_on(load(addr, hot, kind, length)));
    // Let the load reach its steady state before measuring.
    std::thread::sleep(Duration::from_millis(300));
    let mut lat = actix_rt::System::new().block_on(probe(
        server.addr,
        keys.calm.clone(),
        length.saturating_sub(Duration::from_millis(600)),
    ));
    let answers = loader.join().expect("load thread");
    lat.sort_unstable();
    Row {
        name,
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        max: lat.last().copied().unwrap_or(0),
        samples: lat.len(),
        answers,
        rss_kib: server.memory_kib().0,
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let secs: u64 = std::env::var("PERMETRIX_OVERLOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full { 6 } else { 1 });
    let rate: u64 = std::env::var("PERMETRIX_OVERLOAD_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let length = Duration::from_secs(secs);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start(dir.path());
    let keys = actix_rt::System::new().block_on(setup(server.addr));

    let mut rows = vec![scenario(&server, &keys, "idle", Load::None, length)];
    rows.push(scenario(
        &server,
        &keys,
        "stuck+flood",
        Load::StuckFlood(rate),
        length,
    ));
    rows.push(scenario(
        &server,
        &keys,
        "saturating flood",
        Load::Saturate(64),
        length,
    ));
    rows.push(scenario(
        &server,
        &keys,
        "panic storm",
        Load::Panics(100),
        length,
    ));
    rows.push(scenario(
        &server,
        &keys,
        "overflowing flood",
        Load::Saturate(256),
        length,
    ));
    let (_, hwm) = server.memory_kib();

    let idle_p50 = rows[0].p50.max(1) as f64;
    let idle_p99 = rows[0].p99.max(1) as f64;
    println!(
        "calm tenant's GET /licenses/status every {PROBE_EVERY:?}, {secs} s per scenario (µs):"
    );
    println!(
        "{:<18} {:>7} {:>8} {:>8} {:>8} {:>9} {:>9} | hot tenant: 200 / 503 (Retry-After) / other | server RSS",
        "scenario", "samples", "p50", "p99", "max", "p50/idle", "p99/idle"
    );
    for r in &rows {
        println!(
            "{:<18} {:>7} {:>8} {:>8} {:>8} {:>8.2}x {:>8.2}x | {} / {} ({}) / {} | {} MiB",
            r.name,
            r.samples,
            r.p50,
            r.p99,
            r.max,
            r.p50 as f64 / idle_p50,
            r.p99 as f64 / idle_p99,
            r.answers.ok,
            r.answers.refused_503,
            r.answers.with_retry_after,
            r.answers.other,
            r.rss_kib / 1024
        );
    }
    println!("server peak RSS over the run: {} MiB", hwm / 1024);
    let _ = server.child.kill();
    let _ = server.child.wait();
}
