//! What the registry, the edge and a tenant's actor share about one tenant: its edge
//! view, its event channel, its webhook outbox's hooks, its overload bounds, its metrics,
//! whether its memory must be reloaded, and whether the actor must stop answering
//! (`SCALE-OUT.md`: fenced, lease lost, passivated).
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use actix::{Message, WeakRecipient};
use arc_swap::ArcSwap;
use permetrix_storage::{Epoch, StorageError, TenantId, Timestamp, VendorId};
use tokio::sync::{Notify, broadcast};

use crate::TenantError;
use crate::domain::{BorrowRequest, DomainError, TenantEvent, TenantState, WebhookEventKind};
use crate::metrics::{ActorMetrics, OwnershipEvent, TenantMetrics};
use crate::outbox::TenantOutbox;
use crate::overload::{Admission, Turns};
use crate::quarantine::{Quarantine, Supervision};
use crate::view::TenantView;

/// Events buffered per subscriber before a slow one starts losing them.
const EVENT_BUFFER: usize = 1024;

/// Why a tenant's actor stopped answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum StopReason {
    /// A write was fenced: another broker owns the tenant now.
    Fenced = 1,
    /// This broker could not prove its lease.
    LeaseLost = 2,
    /// The tenant was idle: its memory is freed, the next request activates it again.
    Passivated = 3,
    /// The server is stopping.
    Shutdown = 4,
}

impl StopReason {
    fn of(code: u8) -> Option<Self> {
        match code {
            1 => Some(StopReason::Fenced),
            2 => Some(StopReason::LeaseLost),
            3 => Some(StopReason::Passivated),
            4 => Some(StopReason::Shutdown),
            _ => None,
        }
    }

    /// What a request that reached the stopped actor is answered: every one of them
    /// may be retried, and a retry finds the tenant's current owner.
    pub(crate) fn error(self, tenant: &TenantId) -> TenantError {
        match self {
            StopReason::Fenced => TenantError::Storage(StorageError::Fenced {
                tenant: tenant.to_string(),
            }),
            StopReason::LeaseLost => TenantError::Unavailable(LEASE_LOST),
            StopReason::Passivated | StopReason::Shutdown => {
                TenantError::Unavailable("its actor stopped")
            }
        }
    }
}

/// Why requests are refused while this broker registers again.
pub(crate) const LEASE_LOST: &str = "this broker lost its lease and is registering again";

/// Tells a tenant's actor to drop its state and stop, after the messages queued before
/// it (a stop flag set first makes those answer nothing from memory).
pub(crate) struct Stop;

impl Message for Stop {
    type Result = ();
}

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
    /// Its restarts, and whether it is quarantined (checked at admission).
    pub(crate) quarantine: Quarantine,
    /// The webhook outbox's hooks.
    pub(crate) outbox: Arc<dyn TenantOutbox>,
    /// Where ownership events (a fenced write) are counted.
    ownership_metrics: Arc<dyn ActorMetrics>,
    /// A write of this tenant was not made durable: its memory may be ahead of the
    /// store, so the actor reloads before the next message.
    stale: AtomicBool,
    /// A [`StopReason`] once the actor must answer nothing more from memory; 0 while it
    /// serves. Set once, never cleared: a tenant activated again gets a new handle.
    stop: AtomicU8,
    /// The actor's mailbox, for [`TenantShared::stop_now`]; weak, so that the handle the
    /// actor itself holds does not keep its mailbox open.
    stopper: OnceLock<WeakRecipient<Stop>>,
    /// When the actor last handled a message (milliseconds of the registry's clock).
    last_active: AtomicI64,
    /// Whether the actor's memory holds something due later: an active lease (its
    /// expiry must run on time) or a waiting borrow. Such an actor is never passivated.
    holds_due: AtomicBool,
    /// Writes handed out and not yet settled (durable or failed).
    writes: AtomicUsize,
    /// Someone waits in [`TenantShared::writes_settled`].
    draining: AtomicBool,
    settled: Notify,
}

impl TenantShared {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        state: &TenantState,
        epoch: Epoch,
        vendor_id: VendorId,
        capacity: usize,
        concurrency: usize,
        metrics: Arc<dyn TenantMetrics>,
        supervision: Arc<Supervision>,
        outbox: Arc<dyn TenantOutbox>,
        ownership_metrics: Arc<dyn ActorMetrics>,
        now: Timestamp,
    ) -> Self {
        metrics.levels(state);
        outbox.loaded(state.outbox_head());
        TenantShared {
            tenant: state.tenant().clone(),
            epoch,
            view: ArcSwap::from_pointee(TenantView::of(vendor_id.clone(), state)),
            vendor_id,
            events: OnceLock::new(),
            admission: Admission::new(capacity),
            turns: Turns::new(concurrency),
            metrics,
            quarantine: Quarantine::new(supervision),
            outbox,
            ownership_metrics,
            stale: AtomicBool::new(false),
            stop: AtomicU8::new(0),
            stopper: OnceLock::new(),
            last_active: AtomicI64::new(now.millis()),
            holds_due: AtomicBool::new(holds_due(state)),
            writes: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            settled: Notify::new(),
        }
    }

    pub(crate) fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub(crate) fn vendor_id(&self) -> &VendorId {
        &self.vendor_id
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

    /// Gives the handle its actor's mailbox (once, when the actor starts).
    pub(crate) fn set_stopper(&self, stopper: WeakRecipient<Stop>) {
        // Set once by the registry right after the start; nothing else sets it.
        let _ = self.stopper.set(stopper);
    }

    /// From now on the actor answers nothing from memory: every message gets `why`'s
    /// error, and the actor drops its state and stops. The first reason wins.
    pub(crate) fn stop_now(&self, why: StopReason) {
        if self
            .stop
            .compare_exchange(0, why as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        if let Some(actor) = self.stopper.get().and_then(WeakRecipient::upgrade) {
            actor.do_send(Stop);
        }
    }

    /// Why the actor stopped answering, if it did.
    pub(crate) fn stopped(&self) -> Option<StopReason> {
        StopReason::of(self.stop.load(Ordering::Acquire))
    }

    /// A write of this tenant was fenced: another broker owns it now. Counted, and the
    /// actor stops (its memory may be behind what the new owner wrote). Counted also
    /// when the actor had stopped already: a broker that wakes up past its lease stops
    /// every actor at once, before its queued writes reach the database and are fenced.
    pub(crate) fn fenced(&self) {
        self.ownership_metrics.ownership(OwnershipEvent::Fenced);
        if self.stopped().is_none() {
            tracing::warn!(tenant = %self.tenant, epoch = %self.epoch, "a write was fenced: another broker owns this tenant now; stopping its actor");
        }
        self.stop_now(StopReason::Fenced);
    }

    /// Records that the actor handled a message at `now`, and whether its memory now
    /// holds something due later.
    pub(crate) fn handled(&self, now: Timestamp, state: Option<&TenantState>) {
        self.last_active.store(now.millis(), Ordering::Relaxed);
        let due = state.is_some_and(holds_due);
        self.holds_due.store(due, Ordering::Relaxed);
    }

    /// Whether the actor may be passivated at `now`: idle for `idle` (no message, no
    /// queued one), nothing due in its memory, no live-event subscriber. Called under
    /// the registry's write lock of the tenant, where no request can be admitted.
    pub(crate) fn idle_since(&self, now: Timestamp, idle: std::time::Duration) -> bool {
        let since = Timestamp::from_millis(self.last_active.load(Ordering::Relaxed));
        since.until(now) >= idle
            && self.admission.depth() == 0
            && !self.holds_due.load(Ordering::Relaxed)
            && self.subscribers() == 0
            && self.writes.load(Ordering::Acquire) == 0
    }

    /// A write was handed out; [`TenantShared::write_settled`] follows exactly once.
    pub(crate) fn write_started(&self) {
        self.writes.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn write_settled(&self) {
        if self.writes.fetch_sub(1, Ordering::AcqRel) == 1 && self.draining.load(Ordering::SeqCst) {
            self.settled.notify_waiters();
        }
    }

    /// Waits until every write handed out so far is settled (durable or failed).
    pub(crate) async fn writes_settled(&self) {
        self.draining.store(true, Ordering::SeqCst);
        loop {
            let mut notified = pin!(self.settled.notified());
            // Registered before the look, so that a settle in between is not missed.
            notified.as_mut().enable();
            if self.writes.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn publish(&self, event: TenantEvent) {
        if let Some(events) = self.events.get()
            && events.receiver_count() > 0
        {
            // Err only means every subscriber left meanwhile.
            let _ = events.send(event);
        }
    }

    /// A borrow was refused: its live `denied` event now, and a note for the vendor's
    /// `borrow.denied` webhook if the vendor receives it.
    pub(crate) fn denied(
        &self,
        state: &mut TenantState,
        req: &BorrowRequest,
        error: &DomainError,
        now: Timestamp,
    ) {
        self.publish(state.denied_event(req, error.code(), now));
        if self
            .outbox
            .wanted()
            .contains(WebhookEventKind::BorrowDenied)
        {
            state.note_denial(req, error, now);
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<TenantEvent> {
        self.events
            .get_or_init(|| broadcast::channel(EVENT_BUFFER).0)
            .subscribe()
    }

    fn subscribers(&self) -> usize {
        self.events
            .get()
            .map_or(0, broadcast::Sender::receiver_count)
    }

    pub(crate) fn publish_view(&self, state: &TenantState) {
        self.view
            .store(Arc::new(TenantView::of(self.vendor_id.clone(), state)));
    }
}

/// Whether `state` holds something due that only a running actor does on time: a lease
/// to expire or a waiter to answer. Idempotency keys to forget are not: a key is
/// promised for at least its retention, and it is forgotten at the next activation.
fn holds_due(state: &TenantState) -> bool {
    state.next_expiry().is_some() || state.has_waiters()
}
