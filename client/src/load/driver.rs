//! Connections, request slots and the requests themselves.
//!
//! Each connection is a lane: it takes a slot, sends one request, records it, and takes
//! the next slot. In the open loop a ticker thread releases slots at the offered rate
//! (as permits of a semaphore, so exactly one idle lane wakes per slot); slot `i` is
//! intended to go out at `start + i / rate` and its latency is measured from then. In
//! the closed loop a slot is always available and its intended time is "now".
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use awc::Client;
use awc::http::header::{AUTHORIZATION, HOST, HeaderValue};
use awc::http::{Method, Uri};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::LoadArgs;
use super::pace::{OpenPace, Pace, Taken, ticker};
use super::report::{self, Kind, Recorder, RunInfo, Summary, progress_bar};
use super::setup::{Credentials, tool_name};
use crate::signing;

/// The HTTP client of a run: at most `connections` keep-alive connections.
pub(super) fn client(connections: usize) -> Client {
    let connector = awc::Connector::new()
        .limit(connections)
        .conn_keep_alive(Duration::from_secs(75))
        .timeout(Duration::from_secs(5));
    Client::builder()
        .connector(connector)
        .timeout(Duration::from_secs(30))
        .disable_redirects()
        .finish()
}

/// One tenant's request parts, built once.
struct Target {
    host: HeaderValue,
    auth: HeaderValue,
    key: String,
}

/// What every lane shares.
struct Plan {
    client: Client,
    borrow_uri: Uri,
    return_uri: Uri,
    health_uri: Uri,
    main_host: HeaderValue,
    targets: Vec<Target>,
    tools: Vec<String>,
    vendor_id: String,
    signing_secret: Vec<u8>,
    signed: bool,
    baseline: bool,
    /// Round-robin position over tenants and tools.
    cycle: Cell<usize>,
    rec: RefCell<Recorder>,
    /// Requests sent, measured or not (for the CPU figure).
    sent: Cell<u64>,
    /// Requests that complete within `[from, to)` are measured.
    window: Cell<(Instant, Instant)>,
}

#[derive(Deserialize)]
struct BorrowReply {
    id: String,
}

fn header(value: &str) -> anyhow::Result<HeaderValue> {
    HeaderValue::from_str(value).with_context(|| format!("'{value}' is not a valid header value"))
}

fn plan(client: &Client, args: &LoadArgs, creds: Option<&Credentials>) -> anyhow::Result<Plan> {
    let uri = |path: &str| -> anyhow::Result<Uri> {
        format!("http://{}{path}", args.server)
            .parse()
            .context("building the request URL")
    };
    let mut targets = Vec::new();
    let (mut vendor_id, mut signing_secret) = (String::new(), Vec::new());
    if let Some(c) = creds {
        for t in c.tenants.iter().skip(args.first_tenant).take(args.tenants) {
            targets.push(Target {
                host: header(&format!("{}.{}", t.id, args.base_domain))?,
                auth: header(&format!("Bearer {}", t.key))?,
                key: t.key.clone(),
            });
        }
        vendor_id = c.vendor_id.clone();
        signing_secret = c.signing_secret.as_bytes().to_vec();
    }
    Ok(Plan {
        client: client.clone(),
        borrow_uri: uri("/licenses/borrow")?,
        return_uri: uri("/licenses/return")?,
        health_uri: uri("/health")?,
        main_host: header(&args.base_domain)?,
        targets,
        tools: (0..args.tools).map(tool_name).collect(),
        vendor_id,
        signing_secret,
        signed: args.signed,
        baseline: args.baseline,
        cycle: Cell::new(0),
        rec: RefCell::new(Recorder::new()),
        sent: Cell::new(0),
        window: Cell::new((Instant::now(), Instant::now())),
    })
}

fn classify(e: &awc::error::SendRequestError) -> String {
    use awc::error::{ConnectError, SendRequestError as E};
    match e {
        E::Timeout => "timeout".into(),
        E::Connect(ConnectError::Timeout) => "connect timeout".into(),
        E::Connect(_) => "connect".into(),
        _ => "transport".into(),
    }
}

impl Plan {
    async fn health(&self) -> Result<(), String> {
        let res = self
            .client
            .request(Method::GET, self.health_uri.clone())
            .insert_header((HOST, self.main_host.clone()))
            .send()
            .await;
        let mut res = res.map_err(|e| classify(&e))?;
        let status = res.status();
        // Read the body so the connection is reusable.
        res.body().await.map_err(|_| "body".to_owned())?;
        if status.as_u16() == 200 {
            Ok(())
        } else {
            Err(status.as_u16().to_string())
        }
    }

    async fn borrow(
        &self,
        t: &Target,
        tool: &str,
        user: &str,
        body: Bytes,
    ) -> Result<String, String> {
        let mut req = self
            .client
            .request(Method::POST, self.borrow_uri.clone())
            .insert_header((HOST, t.host.clone()))
            .insert_header((AUTHORIZATION, t.auth.clone()))
            .content_type("application/json");
        if self.signed {
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                .to_string();
            let sig = signing::sign(
                &self.signing_secret,
                &signing::v1_string(tool, user, &ts, &t.key),
            );
            req = req
                .insert_header(("X-Signature", sig))
                .insert_header(("X-Timestamp", ts))
                .insert_header(("X-Vendor-ID", self.vendor_id.clone()));
        }
        let mut res = req.send_body(body).await.map_err(|e| classify(&e))?;
        let status = res.status().as_u16();
        let bytes = res.body().await.map_err(|_| "body".to_owned())?;
        if status != 200 {
            return Err(status.to_string());
        }
        serde_json::from_slice::<BorrowReply>(&bytes)
            .map(|r| r.id)
            .map_err(|_| "bad borrow reply".to_owned())
    }

    async fn give_back(&self, t: &Target, id: &str) -> Result<(), String> {
        let body = format!(r#"{{"id":{}}}"#, json_text(id));
        let mut res = self
            .client
            .request(Method::POST, self.return_uri.clone())
            .insert_header((HOST, t.host.clone()))
            .insert_header((AUTHORIZATION, t.auth.clone()))
            .content_type("application/json")
            .send_body(Bytes::from(body))
            .await
            .map_err(|e| classify(&e))?;
        let status = res.status().as_u16();
        res.body().await.map_err(|_| "body".to_owned())?;
        if status == 200 {
            Ok(())
        } else {
            Err(status.to_string())
        }
    }

    /// Next tenant and tool, round robin (tenants first, so every tenant is hit early).
    fn next_target(&self) -> (usize, usize) {
        let c = self.cycle.get();
        self.cycle.set(c.wrapping_add(1));
        let n = self.targets.len().max(1);
        (c % n, (c / n) % self.tools.len().max(1))
    }

    fn record(&self, kind: Kind, intended: Instant, sent: Instant, outcome: Result<(), String>) {
        let now = Instant::now();
        self.sent.set(self.sent.get() + 1);
        let (from, to) = self.window.get();
        self.rec.borrow_mut().record(
            kind,
            from <= now && now < to,
            now.saturating_duration_since(intended),
            sent.saturating_duration_since(intended),
            outcome,
        );
    }
}

/// A JSON string literal.
fn json_text(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// One connection's loop.
async fn lane(plan: Rc<Plan>, pace: Rc<Pace>, taken: Rc<Taken>, lane_no: usize) {
    let user = format!("load-user-{lane_no}");
    // Borrow bodies are the same for every request of this lane and tool: build them
    // once, so the tool's own cost per request stays small.
    let bodies: Vec<Bytes> = plan
        .tools
        .iter()
        .map(|tool| {
            let body = format!(
                r#"{{"tool":{},"user":{}}}"#,
                json_text(tool),
                json_text(&user)
            );
            Bytes::from(body)
        })
        .collect();
    // A borrow this lane holds: (tenant index, borrow id).
    let mut held: Option<(usize, String)> = None;
    while let Some(intended) = pace.next(&taken).await {
        let sent = Instant::now();
        if plan.baseline {
            let r = plan.health().await;
            plan.record(Kind::Health, intended, sent, r);
            continue;
        }
        match held.take() {
            Some((t, id)) => {
                let r = plan.give_back(&plan.targets[t], &id).await;
                plan.record(Kind::Return, intended, sent, r);
            }
            None => {
                let (t, tool) = plan.next_target();
                let r = plan
                    .borrow(
                        &plan.targets[t],
                        &plan.tools[tool],
                        &user,
                        bodies[tool].clone(),
                    )
                    .await;
                let outcome = r.map(|id| held = Some((t, id)));
                plan.record(Kind::Borrow, intended, sent, outcome);
            }
        }
    }
    // Leave the pools as we found them (not measured).
    if let Some((t, id)) = held {
        let _ = plan.give_back(&plan.targets[t], &id).await;
    }
}

/// Live rate and p99 on the progress bar, and the start of the measured window.
async fn progress(plan: Rc<Plan>, args: LoadArgs, start: Instant, done: Rc<Cell<bool>>) {
    let warmup = args.warmup();
    let total = warmup + args.duration();
    let bar = progress_bar(&args, total.as_millis() as u64, "load");
    let mut last = Instant::now();
    let mut tick = actix_rt::time::interval(Duration::from_millis(250));
    while !done.get() {
        tick.tick().await;
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(start);
        {
            let mut rec = plan.rec.borrow_mut();
            if now.duration_since(last) >= Duration::from_secs(1) {
                let secs = now.duration_since(last).as_secs_f64();
                let rate = rec.window_count as f64 / secs;
                let p99 = rec.window.value_at_quantile(0.99) as f64 / 1000.0;
                let phase = if elapsed >= warmup { "" } else { " (warm-up)" };
                let errors: u64 = rec.errors.values().sum();
                bar.set_message(format!(
                    "{rate:.0} req/s, p99 {p99:.2} ms, {errors} errors{phase}"
                ));
                rec.window.reset();
                rec.window_count = 0;
                last = now;
            }
        }
        bar.set_position((elapsed.min(total)).as_millis() as u64);
    }
    bar.finish_and_clear();
}

/// Runs the measurement and returns its summary.
pub(super) async fn drive(
    client: &Client,
    args: &LoadArgs,
    creds: Option<&Credentials>,
) -> anyhow::Result<Summary> {
    let plan = Rc::new(plan(client, args, creds)?);
    if !args.baseline && plan.targets.is_empty() {
        anyhow::bail!("no tenants to drive; run with --setup");
    }
    let cpu_before = report::process_cpu();
    let start = Instant::now();
    let end = start + args.warmup() + args.duration();
    plan.window.set((start + args.warmup(), end));
    let (pace, ticker_thread) = match args.rate {
        None => (
            Pace::Closed {
                end,
                max: args.requests,
            },
            None,
        ),
        Some(rate) => {
            let open = Arc::new(OpenPace {
                start,
                rate,
                permits: Semaphore::new(0),
                released: AtomicU64::new(0),
                max: args.requests,
            });
            let handle = ticker(Arc::clone(&open), end);
            (Pace::Open(open), Some(handle))
        }
    };
    let pace = Rc::new(pace);
    let taken = Rc::new(Taken(Cell::new(0)));
    let done = Rc::new(Cell::new(false));
    let progress_task = actix_rt::spawn(progress(
        Rc::clone(&plan),
        args.clone(),
        start,
        Rc::clone(&done),
    ));
    let lanes = (0..args.connections)
        .map(|i| lane(Rc::clone(&plan), Rc::clone(&pace), Rc::clone(&taken), i));
    futures_util::future::join_all(lanes).await;
    let measured = Instant::now()
        .min(end)
        .saturating_duration_since(start + args.warmup());
    done.set(true);
    let _ = progress_task.await;
    if let Some(handle) = ticker_thread {
        let _ = handle.join();
    }
    let unsent = match &*pace {
        Pace::Open(p) => p
            .released
            .load(Ordering::Acquire)
            .saturating_sub(taken.0.get()),
        Pace::Closed { .. } => 0,
    };
    let client_cpu = match (cpu_before, report::process_cpu()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let rec = plan.rec.borrow();
    Ok(report::finish(
        args,
        &rec,
        RunInfo {
            unsent,
            client_cpu,
            total_requests: plan.sent.get(),
            measured,
        },
    ))
}
