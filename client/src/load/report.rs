//! Histograms, the printed report and the JSON summary of a load run.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::LoadArgs;

/// Microsecond latencies from 1 µs to 60 s at 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3)
        .unwrap_or_else(|_| unreachable!("1..60e6 at 3 digits are valid bounds"))
}

/// What one request was, for the per-kind histograms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Borrow,
    Return,
    Health,
}

/// Everything recorded during a run (single-threaded: the load tool runs on one
/// thread, so this lives in a `RefCell`).
pub(super) struct Recorder {
    pub(super) all: Histogram<u64>,
    borrow: Histogram<u64>,
    ret: Histogram<u64>,
    /// Actual send time minus intended send time (open loop): the client's own delay.
    lag: Histogram<u64>,
    /// Since the last progress tick (live p99).
    pub(super) window: Histogram<u64>,
    pub(super) window_count: u64,
    pub(super) ok: u64,
    pub(super) errors: BTreeMap<String, u64>,
}

impl Recorder {
    pub(super) fn new() -> Self {
        Recorder {
            all: histogram(),
            borrow: histogram(),
            ret: histogram(),
            lag: histogram(),
            window: histogram(),
            window_count: 0,
            ok: 0,
            errors: BTreeMap::new(),
        }
    }

    /// Records a request that completed; `latency` runs from its intended send time.
    /// Only `measured` requests (completed within the measured window) count in the
    /// results; every request counts in the live figures.
    pub(super) fn record(
        &mut self,
        kind: Kind,
        measured: bool,
        latency: Duration,
        lag: Duration,
        outcome: Result<(), String>,
    ) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.window.saturating_record(us);
        self.window_count += 1;
        if !measured {
            return;
        }
        self.all.saturating_record(us);
        match kind {
            Kind::Borrow => self.borrow.saturating_record(us),
            Kind::Return => self.ret.saturating_record(us),
            Kind::Health => {}
        }
        let lag_us = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX).max(1);
        self.lag.saturating_record(lag_us);
        match outcome {
            Ok(()) => self.ok += 1,
            Err(what) => *self.errors.entry(what).or_default() += 1,
        }
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// Requests in the histogram.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Latency {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        })
    }
}

/// The result of a run (`--json FILE` writes it).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// `borrow_return` or `health`.
    pub workload: &'static str,
    /// Whether borrows were signed (v1).
    pub signed: bool,
    /// `open` (with `offered_rate`) or `closed`.
    pub loop_kind: &'static str,
    /// Offered requests per second (open loop).
    pub offered_rate: Option<f64>,
    /// Requests per second answered within the measured time.
    pub achieved_rate: f64,
    /// Connections.
    pub connections: usize,
    /// Tenants the cycles were spread over.
    pub tenants: usize,
    /// Tools per tenant.
    pub tools: usize,
    /// Measured seconds (`--duration`, or less if the run stopped at `--requests`).
    pub duration_s: f64,
    /// Warm-up seconds (not measured).
    pub warmup_s: f64,
    /// Requests answered within the measured time.
    pub requests: u64,
    /// Of those, answered with the expected status (200).
    pub ok: u64,
    /// The others, by status code (or transport error).
    pub errors: BTreeMap<String, u64>,
    /// Open-loop slots that were due but never sent before the end (the server was
    /// too slow to take them): a sign that the offered rate exceeds capacity.
    pub unsent: u64,
    /// Every request, from its intended send time.
    pub latency: Option<Latency>,
    /// Borrows only.
    pub borrow: Option<Latency>,
    /// Returns only.
    pub ret: Option<Latency>,
    /// The load tool's own delay between a slot's intended and actual send time.
    pub send_lag: Option<Latency>,
    /// CPU time (user + system) of the load tool per request, in microseconds.
    pub client_cpu_us_per_request: Option<f64>,
}

/// Run shape, for [`finish`].
pub(super) struct RunInfo {
    pub(super) unsent: u64,
    pub(super) client_cpu: Option<Duration>,
    pub(super) total_requests: u64,
    /// The measured window as it happened (shorter than `--duration` if the run
    /// stopped at `--requests`).
    pub(super) measured: Duration,
}

pub(super) fn finish(args: &LoadArgs, rec: &Recorder, info: RunInfo) -> Summary {
    let requests = rec.ok + rec.errors.values().sum::<u64>();
    let secs = info.measured.as_secs_f64().max(1e-3);
    Summary {
        workload: if args.baseline {
            "health"
        } else {
            "borrow_return"
        },
        signed: args.signed && !args.baseline,
        loop_kind: if args.rate.is_some() {
            "open"
        } else {
            "closed"
        },
        offered_rate: args.rate,
        achieved_rate: requests as f64 / secs,
        connections: args.connections,
        tenants: args.tenants,
        tools: args.tools,
        duration_s: secs,
        warmup_s: args.warmup,
        requests,
        ok: rec.ok,
        errors: rec.errors.clone(),
        unsent: info.unsent,
        latency: Latency::of(&rec.all),
        borrow: Latency::of(&rec.borrow),
        ret: Latency::of(&rec.ret),
        send_lag: if args.rate.is_some() {
            Latency::of(&rec.lag)
        } else {
            None
        },
        client_cpu_us_per_request: info
            .client_cpu
            .filter(|_| info.total_requests > 0)
            .map(|cpu| cpu.as_secs_f64() * 1e6 / info.total_requests as f64),
    }
}

impl Summary {
    /// The human-readable report.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let shape = match self.offered_rate {
            Some(r) => format!("open loop, {r:.0} req/s offered"),
            None => "closed loop".to_owned(),
        };
        let _ = writeln!(
            s,
            "workload {}{}: {shape}, {} connections, {} tenants x {} tools, {:.1} s (+{:.1} s warm-up)",
            self.workload,
            if self.signed { " (signed v1)" } else { "" },
            self.connections,
            self.tenants,
            self.tools,
            self.duration_s,
            self.warmup_s
        );
        let offered = self
            .offered_rate
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.1}"));
        let _ = writeln!(
            s,
            "requests {} ({} ok, {} errors, {} unsent); offered {offered} req/s, achieved {:.1} req/s",
            self.requests,
            self.ok,
            self.requests - self.ok,
            self.unsent,
            self.achieved_rate
        );
        let _ = writeln!(
            s,
            "{:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "latency ms", "p50", "p90", "p99", "p99.9", "max", "mean"
        );
        for (name, l) in [
            ("all", &self.latency),
            ("borrow", &self.borrow),
            ("return", &self.ret),
            ("send lag", &self.send_lag),
        ] {
            if let Some(l) = l {
                let _ = writeln!(
                    s,
                    "{name:<10} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                    l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms
                );
            }
        }
        if !self.errors.is_empty() {
            let list: Vec<String> = self
                .errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            let _ = writeln!(s, "errors by status: {}", list.join(", "));
        }
        if let Some(cpu) = self.client_cpu_us_per_request {
            let _ = write!(s, "load tool CPU: {cpu:.1} µs per request");
        }
        s
    }
}

/// A progress bar on stderr (hidden with `--quiet` or when stderr is no terminal).
pub(super) fn progress_bar(args: &LoadArgs, len: u64, prefix: &'static str) -> ProgressBar {
    if args.quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{prefix:>7} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
    {
        bar.set_style(style);
    }
    bar.set_prefix(prefix);
    bar
}

/// CPU time (user + system) this process has used, from `/proc/self/stat` (Linux).
pub(super) fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at ") ".
    let rest = stat.rsplit_once(") ")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux configuration we run on.
    Some(Duration::from_millis(ticks * 10))
}
