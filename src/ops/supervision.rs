//! Supervision figures: how often each tenant's actor was restarted after a panic and
//! how many messages its full mailbox refused, with its current queue depth.
//!
//! [`SupervisionStats`] sits in front of another [`ActorMetrics`] (the Prometheus one,
//! or none) and counts on the way through, so the operator endpoint
//! `GET /api/admin/actors` works whatever exporter is configured.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{HttpResponse, web};
use dashmap::DashMap;
use permetrix_actors::domain::TenantState;
use permetrix_actors::metrics::{ActorMetrics, TenantMetrics};
use permetrix_storage::TenantId;
use serde_json::json;

use crate::auth::OperatorAuth;
use crate::error::Result;
use crate::state::AppState;

/// Counts restarts and refusals per tenant, then forwards to the next metrics sink.
pub struct SupervisionStats {
    next: Arc<dyn ActorMetrics>,
    tenants: DashMap<TenantId, Arc<Counts>>,
}

/// One tenant's figures, kept across activations.
#[derive(Default)]
struct Counts {
    restarts: AtomicU64,
    rejections: AtomicU64,
}

/// The handle one activation of a tenant reports to.
struct TenantCounts {
    counts: Arc<Counts>,
    next: Arc<dyn TenantMetrics>,
}

impl SupervisionStats {
    /// Counts, then forwards every hook to `next`.
    pub fn new(next: Arc<dyn ActorMetrics>) -> Self {
        SupervisionStats {
            next,
            tenants: DashMap::new(),
        }
    }

    /// `(tenant, restarts, rejections)` of every tenant activated since start.
    pub fn counts(&self) -> Vec<(TenantId, u64, u64)> {
        let mut out: Vec<_> = self
            .tenants
            .iter()
            .map(|e| {
                (
                    e.key().clone(),
                    e.value().restarts.load(Ordering::Relaxed),
                    e.value().rejections.load(Ordering::Relaxed),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

impl ActorMetrics for SupervisionStats {
    fn for_tenant(&self, tenant: &TenantId) -> Arc<dyn TenantMetrics> {
        // A tenant activated again (after a deactivation) keeps counting where it was,
        // but asks `next` for its handle again: `next` may have dropped the old one
        // (`tenant_removed`), and reporting to that would lose every figure.
        let counts = Arc::clone(self.tenants.entry(tenant.clone()).or_default().value());
        Arc::new(TenantCounts {
            counts,
            next: self.next.for_tenant(tenant),
        })
    }

    fn tenant_removed(&self, tenant: &TenantId) {
        self.next.tenant_removed(tenant);
    }
}

// Every hook is forwarded to `next`. A hook added to these traits later must be forwarded
// here as well: a default method would silently swallow it for the real exporter.
impl TenantMetrics for TenantCounts {
    fn message_handled(&self, kind: &'static str, elapsed: Duration) {
        self.next.message_handled(kind, elapsed);
    }

    fn restarted(&self) {
        self.counts.restarts.fetch_add(1, Ordering::Relaxed);
        self.next.restarted();
    }

    fn rejected(&self) {
        self.counts.rejections.fetch_add(1, Ordering::Relaxed);
        self.next.rejected();
    }

    fn levels(&self, state: &TenantState) {
        self.next.levels(state);
    }
}

/// Seconds between two panics reported with a backtrace.
const BACKTRACE_EVERY: u64 = 60;

/// Installs the server's panic hook. Every panic is one log line (message, location,
/// thread). A backtrace (when `RUST_BACKTRACE` asks for one) is captured at most once a
/// minute and resolved on a thread of its own: the default hook resolves it on the
/// panicking thread, and a tenant actor panicking on every request would then stall its
/// arbiter thread, and every tenant placed there, for hundreds of milliseconds per
/// request.
pub fn install_panic_hook() {
    static LAST_BACKTRACE: AtomicU64 = AtomicU64::new(0);
    let (tx, rx) = std::sync::mpsc::channel::<(String, std::backtrace::Backtrace)>();
    let reporter = std::thread::Builder::new()
        .name("permetrix-panic-report".into())
        .spawn(move || {
            for (what, backtrace) in rx {
                tracing::error!("backtrace of the panic {what}:\n{backtrace}");
            }
        });
    let tx = reporter.ok().map(|_| std::sync::Mutex::new(tx));
    std::panic::set_hook(Box::new(move |info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        tracing::error!(panic = %what, %location, %thread, "panic");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = LAST_BACKTRACE.load(Ordering::Relaxed);
        if now >= last + BACKTRACE_EVERY
            && LAST_BACKTRACE
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            && let Some(tx) = &tx
        {
            // Capturing is cheap (frame addresses); resolving them is not.
            let backtrace = std::backtrace::Backtrace::capture();
            if backtrace.status() == std::backtrace::BacktraceStatus::Captured
                && let Ok(tx) = tx.lock()
            {
                let _ = tx.send((format!("'{what}' at {location}"), backtrace));
            }
        }
    }));
}

/// Mounts `GET /api/admin/actors` (main host, operator token).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/admin/actors", web::get().to(actors));
}

/// Restarts, refusals and mailbox depth per tenant, and their totals.
async fn actors(
    state: web::Data<AppState>,
    stats: web::Data<SupervisionStats>,
    _: OperatorAuth,
) -> Result<HttpResponse> {
    let mailboxes: std::collections::HashMap<TenantId, (usize, usize)> = state
        .registry
        .mailboxes()
        .into_iter()
        .map(|m| (m.tenant, (m.depth, m.capacity)))
        .collect();
    let counts = stats.counts();
    let tenants: Vec<_> = counts
        .iter()
        .map(|(tenant, restarts, rejections)| {
            let mailbox = mailboxes.get(tenant);
            json!({
                "tenant": tenant.as_str(),
                "active": mailbox.is_some(),
                "restarts": restarts,
                "mailbox_rejections": rejections,
                "mailbox_depth": mailbox.map_or(0, |m| m.0),
                "mailbox_capacity": mailbox.map(|m| m.1),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "restarts_total": counts.iter().map(|c| c.1).sum::<u64>(),
        "mailbox_rejections_total": counts.iter().map(|c| c.2).sum::<u64>(),
        "tenants": tenants,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use permetrix_actors::metrics::NoMetrics;

    #[test]
    fn counts_survive_a_reactivation_and_are_kept_per_tenant() {
        let stats = SupervisionStats::new(Arc::new(NoMetrics));
        let acme = TenantId::parse("acme").unwrap();
        let globex = TenantId::parse("globex").unwrap();
        stats.for_tenant(&acme).restarted();
        stats.for_tenant(&acme).restarted();
        stats.for_tenant(&globex).rejected();
        assert_eq!(stats.counts(), vec![(acme, 2, 0), (globex, 0, 1)]);
    }

    /// Records which hooks reached it, per handle generation.
    #[derive(Default)]
    struct Recorder {
        calls: std::sync::Mutex<Vec<String>>,
        handles: AtomicU64,
    }

    struct RecorderTenant {
        generation: u64,
        parent: Arc<Recorder>,
    }

    impl Recorder {
        fn log(&self, what: String) {
            self.calls.lock().unwrap().push(what);
        }
    }

    struct Sink(Arc<Recorder>);

    impl ActorMetrics for Sink {
        fn for_tenant(&self, _: &TenantId) -> Arc<dyn TenantMetrics> {
            let generation = self.0.handles.fetch_add(1, Ordering::Relaxed);
            Arc::new(RecorderTenant {
                generation,
                parent: Arc::clone(&self.0),
            })
        }

        fn tenant_removed(&self, tenant: &TenantId) {
            self.0.log(format!("removed {tenant}"));
        }
    }

    impl TenantMetrics for RecorderTenant {
        fn message_handled(&self, kind: &'static str, _: Duration) {
            self.parent
                .log(format!("{} message {kind}", self.generation));
        }
        fn restarted(&self) {
            self.parent.log(format!("{} restarted", self.generation));
        }
        fn rejected(&self) {
            self.parent.log(format!("{} rejected", self.generation));
        }
        fn levels(&self, _: &TenantState) {
            self.parent.log(format!("{} levels", self.generation));
        }
    }

    #[test]
    fn every_hook_reaches_the_next_sink_and_a_reactivation_gets_a_fresh_handle() {
        let recorder = Arc::new(Recorder::default());
        let stats = SupervisionStats::new(Arc::new(Sink(Arc::clone(&recorder))));
        let acme = TenantId::parse("acme").unwrap();
        let first = stats.for_tenant(&acme);
        first.message_handled("borrow", Duration::from_millis(1));
        first.restarted();
        first.rejected();
        first.levels(&TenantState::new(acme.clone()));
        stats.tenant_removed(&acme);
        // Activated again: the next sink's series were dropped, so it needs a new handle.
        stats.for_tenant(&acme).restarted();
        assert_eq!(
            *recorder.calls.lock().unwrap(),
            [
                "0 message borrow",
                "0 restarted",
                "0 rejected",
                "0 levels",
                "removed acme",
                "1 restarted"
            ]
        );
        assert_eq!(stats.counts(), vec![(acme, 2, 1)]);
    }
}
