//! The actor layer's metric hooks. The HTTP crate implements them with Prometheus;
//! this crate only calls them, so it stays free of any metrics library.
use std::sync::Arc;
use std::time::Duration;

use permetrix_storage::TenantId;

use crate::domain::TenantState;

/// Creates the per-tenant metric handles when a tenant is activated, so that the hot
/// path never looks up labels.
pub trait ActorMetrics: Send + Sync + 'static {
    /// Handles for one tenant.
    fn for_tenant(&self, tenant: &TenantId) -> Arc<dyn TenantMetrics>;

    /// The tenant was removed (soft delete): its series must not outlive it.
    fn tenant_removed(&self, _tenant: &TenantId) {}

    /// This broker's ownership of a tenant changed, or its lease was lost.
    fn ownership(&self, _event: OwnershipEvent) {}
}

/// A change in what this broker owns (`SCALE-OUT.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnershipEvent {
    /// A tenant was acquired (on its activation).
    Acquired,
    /// A tenant was released (passivation, deletion).
    Released,
    /// A write was fenced: another broker owns its tenant now, whose actor stopped.
    Fenced,
    /// An idle tenant's actor stopped and freed its memory.
    Passivated,
    /// This broker could not prove its lease: every tenant's actor stopped.
    LeaseLost,
}

/// One tenant's metric handles.
pub trait TenantMetrics: Send + Sync + 'static {
    /// A message of `kind` was handled in `elapsed` (actor time, excluding the wait
    /// for durability).
    fn message_handled(&self, kind: &'static str, elapsed: Duration);
    /// The actor was restarted by its supervisor.
    fn restarted(&self);
    /// A message was refused because the mailbox was full.
    fn rejected(&self);
    /// The tenant was quarantined (`true`) or resumed (`false`); see
    /// [`crate::quarantine`].
    fn quarantine_changed(&self, _quarantined: bool) {}
    /// The tenant's pools as they are now: called at activation, after every committed
    /// change and after a reload, so that seat gauges are never stale. Runs on the
    /// actor's thread; keep it cheap.
    fn levels(&self, _state: &TenantState) {}
}

/// Metrics that go nowhere (tests, tools).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMetrics;

impl ActorMetrics for NoMetrics {
    fn for_tenant(&self, _: &TenantId) -> Arc<dyn TenantMetrics> {
        Arc::new(NoMetrics)
    }
}

impl TenantMetrics for NoMetrics {
    fn message_handled(&self, _: &'static str, _: Duration) {}
    fn restarted(&self) {}
    fn rejected(&self) {}
}
