//! Supervision figures: how often each tenant's actor was restarted after a panic and
//! how many messages its full mailbox refused, with its current queue depth.
//!
//! [`SupervisionStats`] sits in front of another [`ActorMetrics`] (the Prometheus one,
//! or none) and counts on the way through, so the operator endpoint
//! `GET /api/admin/actors` works whatever exporter is configured.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use permetrix_actors::domain::TenantState;
use permetrix_actors::metrics::{ActorMetrics, OwnershipEvent, TenantMetrics};
use permetrix_storage::TenantId;

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

    fn ownership(&self, event: OwnershipEvent) {
        self.next.ownership(event);
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

    fn quarantine_changed(&self, quarantined: bool) {
        self.next.quarantine_changed(quarantined);
    }

    fn levels(&self, state: &TenantState) {
        self.next.levels(state);
    }
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
        fn quarantine_changed(&self, on: bool) {
            self.parent
                .log(format!("{} quarantined {on}", self.generation));
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
        first.quarantine_changed(true);
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
                "0 quarantined true",
                "removed acme",
                "1 restarted"
            ]
        );
        assert_eq!(stats.counts(), vec![(acme, 2, 1)]);
    }
}
