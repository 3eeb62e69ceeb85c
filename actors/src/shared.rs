//! What the registry, the edge and a tenant's actor share about one tenant: its edge
//! view, its event channel, its overload bounds, its metrics and whether its memory
//! must be reloaded.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use permetrix_storage::{Epoch, TenantId, VendorId};
use tokio::sync::broadcast;

use crate::domain::{TenantEvent, TenantState};
use crate::metrics::TenantMetrics;
use crate::overload::{Admission, Turns};
use crate::view::TenantView;

/// Events buffered per subscriber before a slow one starts losing them.
const EVENT_BUFFER: usize = 1024;

/// One tenant's shared handle; the actor and every request of the tenant hold it.
pub(crate) struct TenantShared {
    tenant: TenantId,
    /// The ownership epoch this actor writes under; a newer owner fences its writes.
    epoch: Epoch,
    vendor_id: VendorId,
    /// Edge view; replaced (never mutated) by the actor.
    pub(crate) view: ArcSwap<TenantView>,
    /// Created on the first subscription: a broadcast channel allocates its whole ring
    /// up front (~120 KiB for 1024 events), which 100,000 idle tenants cannot afford.
    events: OnceLock<broadcast::Sender<TenantEvent>>,
    /// Admission: one permit per queued message. Permits in use = mailbox depth.
    pub(crate) admission: Admission,
    /// Requests of this tenant in progress (actor and flush) while other tenants are
    /// active; a request holds a turn from its admission until its write is durable.
    pub(crate) turns: Turns,
    pub(crate) metrics: Arc<dyn TenantMetrics>,
    /// A write of this tenant was not made durable: its memory may be ahead of the
    /// store, so the actor reloads before the next message.
    stale: AtomicBool,
}

impl TenantShared {
    pub(crate) fn new(
        state: &TenantState,
        epoch: Epoch,
        vendor_id: VendorId,
        capacity: usize,
        concurrency: usize,
        metrics: Arc<dyn TenantMetrics>,
    ) -> Self {
        metrics.levels(state);
        TenantShared {
            tenant: state.tenant().clone(),
            epoch,
            view: ArcSwap::from_pointee(TenantView::of(vendor_id.clone(), state)),
            vendor_id,
            events: OnceLock::new(),
            admission: Admission::new(capacity),
            turns: Turns::new(concurrency),
            metrics,
            stale: AtomicBool::new(false),
        }
    }

    pub(crate) fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub(crate) fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Marks the actor's state as possibly ahead of the store (a write failed after the
    /// actor had moved on).
    pub(crate) fn mark_stale(&self) {
        self.stale.store(true, Ordering::Release);
    }

    /// Whether a write failed since the last call (consumes the mark).
    pub(crate) fn take_stale(&self) -> bool {
        self.stale.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn publish(&self, event: TenantEvent) {
        if let Some(events) = self.events.get()
            && events.receiver_count() > 0
        {
            // Err only means every subscriber left meanwhile.
            let _ = events.send(event);
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<TenantEvent> {
        self.events
            .get_or_init(|| broadcast::channel(EVENT_BUFFER).0)
            .subscribe()
    }

    pub(crate) fn publish_view(&self, state: &TenantState) {
        self.view
            .store(Arc::new(TenantView::of(self.vendor_id.clone(), state)));
    }
}
