//! Per-tenant series: created when a tenant's actor is activated, updated by the actor
//! (through [`TenantMetrics`]) and by the HTTP edge (borrow outcomes), read at scrape
//! time by the collector.
//!
//! Every handle a hot path touches is resolved once: the actor holds its tenant's
//! series; the edge finds it with one sharded-map lookup and the tool's counters with
//! a scan of a few entries under that tenant's own lock. No lock is shared between
//! tenants.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use permetrix_actors::domain::TenantState;
use permetrix_actors::metrics::{ActorMetrics, NoMetrics, OwnershipEvent, TenantMetrics};
use permetrix_storage::TenantId;
use prometheus::{Histogram, HistogramOpts};

use super::cluster::ClusterMetrics;
use super::names;

/// Borrow latency buckets (seconds): a borrow waits for one group commit.
pub(crate) const BORROW_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Actor message buckets (seconds): handlers are microseconds unless something is wrong.
pub(crate) const MESSAGE_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1,
    0.5, 1.0,
];

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain counters behind: usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn histogram(name: &str, help: &str, buckets: &[f64]) -> prometheus::Result<Histogram> {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
}

/// Seat levels of one pool, as the actor last published them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Level {
    pub(crate) tool: String,
    pub(crate) borrowed: u32,
    pub(crate) total: u32,
    pub(crate) overage: u32,
}

/// Borrow counters of one tool of one tenant.
#[derive(Default)]
pub(crate) struct ToolSeries {
    pub(crate) attempts: AtomicU64,
    pub(crate) success: AtomicU64,
    pub(crate) overage_checkouts: AtomicU64,
    /// `(reason, count)`; reasons are error codes, a bounded set.
    pub(crate) failures: Mutex<Vec<(&'static str, u64)>>,
}

impl ToolSeries {
    pub(crate) fn failures(&self) -> Vec<(&'static str, u64)> {
        lock(&self.failures).clone()
    }
}

/// Everything recorded about one tenant.
pub(crate) struct TenantSeries {
    tenant: TenantId,
    /// Start of the activity clock (shared by every tenant).
    origin: Instant,
    /// Milliseconds since `origin` of the last message or borrow: the cardinality guard
    /// keeps the most recently active tenants.
    last_active: AtomicU64,
    pub(crate) restarts: AtomicU64,
    pub(crate) rejections: AtomicU64,
    /// Whether the tenant is quarantined now.
    pub(crate) quarantined: AtomicBool,
    pub(crate) quarantines: AtomicU64,
    pub(crate) borrow_duration: Histogram,
    messages: Mutex<Vec<(&'static str, Histogram)>>,
    tools: RwLock<Vec<(String, Arc<ToolSeries>)>>,
    levels: Mutex<Vec<Level>>,
}

impl TenantSeries {
    fn new(tenant: TenantId, origin: Instant) -> prometheus::Result<Self> {
        Ok(TenantSeries {
            tenant,
            origin,
            last_active: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            rejections: AtomicU64::new(0),
            quarantined: AtomicBool::new(false),
            quarantines: AtomicU64::new(0),
            borrow_duration: histogram(names::BORROW_DURATION, "borrow latency", BORROW_BUCKETS)?,
            messages: Mutex::new(Vec::new()),
            tools: RwLock::new(Vec::new()),
            levels: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub(crate) fn is_quarantined(&self) -> bool {
        self.quarantined.load(Ordering::Relaxed)
    }

    pub(crate) fn last_active(&self) -> u64 {
        self.last_active.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub(crate) fn set_last_active(&self, ms: u64) {
        self.last_active.store(ms, Ordering::Relaxed);
    }

    fn touch(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active.store(ms, Ordering::Relaxed);
    }

    /// The borrow counters of `tool`, created on first use.
    pub(crate) fn tool(&self, tool: &str) -> Arc<ToolSeries> {
        {
            let tools = self.tools.read().unwrap_or_else(PoisonError::into_inner);
            if let Some((_, s)) = tools.iter().find(|(name, _)| name == tool) {
                return Arc::clone(s);
            }
        }
        let mut tools = self.tools.write().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, s)) = tools.iter().find(|(name, _)| name == tool) {
            return Arc::clone(s);
        }
        let series = Arc::new(ToolSeries::default());
        tools.push((tool.to_owned(), Arc::clone(&series)));
        series
    }

    pub(crate) fn tools(&self) -> Vec<(String, Arc<ToolSeries>)> {
        self.tools
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn messages(&self) -> Vec<(&'static str, Histogram)> {
        lock(&self.messages).clone()
    }

    pub(crate) fn levels(&self) -> Vec<Level> {
        lock(&self.levels).clone()
    }
}

impl TenantMetrics for TenantSeries {
    fn message_handled(&self, kind: &'static str, elapsed: Duration) {
        self.touch();
        let mut messages = lock(&self.messages);
        if let Some((_, h)) = messages.iter().find(|(k, _)| *k == kind) {
            h.observe(elapsed.as_secs_f64());
            return;
        }
        match histogram(names::MESSAGE_DURATION, "message latency", MESSAGE_BUCKETS) {
            Ok(h) => {
                h.observe(elapsed.as_secs_f64());
                messages.push((kind, h));
            }
            Err(e) => tracing::error!(error = %e, "cannot create a message histogram"),
        }
    }

    fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    fn rejected(&self) {
        self.touch();
        self.rejections.fetch_add(1, Ordering::Relaxed);
    }

    fn quarantine_changed(&self, quarantined: bool) {
        self.touch();
        if quarantined {
            self.quarantines.fetch_add(1, Ordering::Relaxed);
        }
        self.quarantined.store(quarantined, Ordering::Relaxed);
    }

    fn levels(&self, state: &TenantState) {
        let mut levels = lock(&self.levels);
        let pools = state.pools();
        levels.truncate(pools.len());
        for (i, pool) in pools.iter().enumerate() {
            let borrowed = pool.borrowed();
            let next = (pool.limits().total, pool.overage_in_use());
            match levels.get_mut(i) {
                // The usual case (a borrow or return): update in place, no allocation.
                Some(l) if l.tool == pool.name() => {
                    (l.borrowed, l.total, l.overage) = (borrowed, next.0, next.1);
                }
                slot => {
                    let level = Level {
                        tool: pool.name().to_owned(),
                        borrowed,
                        total: next.0,
                        overage: next.1,
                    };
                    match slot {
                        Some(l) => *l = level,
                        None => levels.push(level),
                    }
                }
            }
        }
    }
}

/// The series of every tenant activated since start, by tenant.
pub(crate) struct TenantSeriesMap {
    map: DashMap<TenantId, Arc<TenantSeries>>,
    origin: Instant,
}

impl TenantSeriesMap {
    pub(crate) fn new() -> Self {
        TenantSeriesMap {
            map: DashMap::new(),
            origin: Instant::now(),
        }
    }

    pub(crate) fn get(&self, tenant: &TenantId) -> Option<Arc<TenantSeries>> {
        self.map.get(tenant).map(|s| Arc::clone(s.value()))
    }

    pub(crate) fn all(&self) -> Vec<Arc<TenantSeries>> {
        self.map.iter().map(|e| Arc::clone(e.value())).collect()
    }

    /// Checks that series can be built (at start-up, so that activation never fails).
    pub(crate) fn probe(&self) -> prometheus::Result<()> {
        let probe = TenantSeries::new(
            TenantId::parse("probe")
                .map_err(|e| prometheus::Error::Msg(format!("probe tenant id: {e}")))?,
            self.origin,
        )?;
        histogram(names::MESSAGE_DURATION, "probe", MESSAGE_BUCKETS)?;
        drop(probe);
        Ok(())
    }
}

/// The actor layer's hooks, backed by the series map.
pub(crate) struct ActorHooks {
    pub(crate) tenants: Arc<TenantSeriesMap>,
    pub(crate) cluster: Arc<ClusterMetrics>,
}

impl ActorMetrics for ActorHooks {
    fn for_tenant(&self, tenant: &TenantId) -> Arc<dyn TenantMetrics> {
        if let Some(existing) = self.tenants.get(tenant) {
            return existing;
        }
        match TenantSeries::new(tenant.clone(), self.tenants.origin) {
            Ok(series) => {
                let series = Arc::new(series);
                series.touch();
                Arc::clone(
                    self.tenants
                        .map
                        .entry(tenant.clone())
                        .or_insert(series)
                        .value(),
                ) as Arc<dyn TenantMetrics>
            }
            Err(e) => {
                // Cannot happen once `probe` passed at start-up; the tenant still works.
                tracing::error!(tenant = %tenant, error = %e, "cannot create tenant metrics");
                Arc::new(NoMetrics)
            }
        }
    }

    fn tenant_removed(&self, tenant: &TenantId) {
        self.tenants.map.remove(tenant);
    }

    fn ownership(&self, event: OwnershipEvent) {
        self.cluster.ownership(event);
    }
}

/// One borrow request, from its arrival at the tenant to its answer. Finishing it
/// counts the attempt and exactly one outcome, so `attempts = success + Σ failures`
/// at rest; a request dropped unanswered (the client left) counts as [`names::CANCELLED`].
pub struct BorrowAttempt {
    target: Option<(Arc<TenantSeries>, Arc<ToolSeries>)>,
    started: Instant,
    finished: bool,
}

impl BorrowAttempt {
    pub(crate) fn new(series: Option<Arc<TenantSeries>>, tool: Option<&str>) -> Self {
        let target = series.map(|s| {
            s.touch();
            let tool = s.tool(tool.unwrap_or(names::UNKNOWN_TOOL));
            // Counted on arrival: a scrape never sees more outcomes than attempts.
            tool.attempts.fetch_add(1, Ordering::Relaxed);
            (s, tool)
        });
        BorrowAttempt {
            target,
            started: Instant::now(),
            finished: false,
        }
    }

    /// Records the outcome: `Ok(is_overage)` for a granted seat, `Err(code)` otherwise.
    pub fn finish(mut self, outcome: Result<bool, &'static str>) {
        self.record(outcome);
    }

    fn record(&mut self, outcome: Result<bool, &'static str>) {
        self.finished = true;
        let Some((tenant, tool)) = &self.target else {
            return;
        };
        match outcome {
            Ok(is_overage) => {
                tool.success.fetch_add(1, Ordering::Relaxed);
                if is_overage {
                    tool.overage_checkouts.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(reason) => {
                let mut failures = lock(&tool.failures);
                match failures.iter_mut().find(|(r, _)| *r == reason) {
                    Some((_, n)) => *n += 1,
                    None => failures.push((reason, 1)),
                }
            }
        }
        tenant
            .borrow_duration
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for BorrowAttempt {
    fn drop(&mut self) {
        if !self.finished {
            self.record(Err(names::CANCELLED));
        }
    }
}
