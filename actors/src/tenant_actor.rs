//! The tenant actor: a thin shell around [`TenantState`].
//!
//! Message in → domain operation → write (non-blocking) → reply once durable. The
//! actor is supervised: a panic in a handler is caught at the handler boundary, the
//! actor stops, and [`Supervised::restarting`] reloads its state from storage. Messages
//! queued meanwhile stay in the mailbox and are served by the restarted actor.
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use actix::{
    Actor, ActorContext, AsyncContext, Context, Handler, Message, Response, SpawnHandle,
    Supervised, WeakAddr,
};
use arc_swap::ArcSwap;
use permetrix_storage::{StorageError, Store, TenantId, Timestamp, VendorId};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

use crate::TenantError;
use crate::clock::Clock;
use crate::domain::{TenantEvent, TenantState};
use crate::messages::{Answer, ExpireDue, TenantCx, TenantMessage};
use crate::metrics::TenantMetrics;
use crate::view::TenantView;
use crate::waiters::WaiterSlots;

/// Events buffered per subscriber before a slow one starts losing them.
const EVENT_BUFFER: usize = 1024;

/// Messages a tenant actor handles in a row before it lets the other actors on its
/// arbiter run. actix drains a mailbox to the end in one go, and admission refills a
/// flooded tenant's mailbox while it drains, so without a turn limit one busy tenant
/// holds its arbiter thread for as long as the flood lasts and every tenant placed
/// beside it waits (BENCHMARKS.md, "fair turns").
pub(crate) const FAIR_TURN: u32 = 4;

/// What the registry and the edge share with one tenant's actor.
pub(crate) struct TenantShared {
    tenant: TenantId,
    vendor_id: VendorId,
    /// Edge view; replaced (never mutated) by the actor.
    pub(crate) view: ArcSwap<TenantView>,
    /// Created on the first subscription: a broadcast channel allocates its whole ring
    /// up front (~120 KiB for 1024 events), which 100,000 idle tenants cannot afford.
    events: OnceLock<broadcast::Sender<TenantEvent>>,
    /// Admission: one permit per queued message. Permits in use = mailbox depth.
    pub(crate) admission: Arc<Semaphore>,
    pub(crate) capacity: usize,
    /// Requests of this tenant in progress (actor and flush); a request holds a turn
    /// from its admission until its write is durable. Fair: turns go in arrival order.
    pub(crate) turns: Semaphore,
    pub(crate) metrics: Arc<dyn TenantMetrics>,
    /// A write of this tenant was not made durable: its memory may be ahead of the
    /// store, so the actor reloads before the next message.
    stale: AtomicBool,
}

impl TenantShared {
    pub(crate) fn new(
        state: &TenantState,
        vendor_id: VendorId,
        capacity: usize,
        concurrency: usize,
        metrics: Arc<dyn TenantMetrics>,
    ) -> Self {
        metrics.levels(state);
        TenantShared {
            tenant: state.tenant().clone(),
            view: ArcSwap::from_pointee(TenantView::of(vendor_id.clone(), state)),
            vendor_id,
            events: OnceLock::new(),
            admission: Arc::new(Semaphore::new(capacity)),
            capacity,
            turns: Semaphore::new(concurrency.clamp(1, Semaphore::MAX_PERMITS)),
            metrics,
            stale: AtomicBool::new(false),
        }
    }

    pub(crate) fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Marks the actor's state as possibly ahead of the store (a write failed after the
    /// actor had moved on).
    pub(crate) fn mark_stale(&self) {
        self.stale.store(true, Ordering::Release);
    }

    fn take_stale(&self) -> bool {
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

    /// Messages admitted and not yet picked up by the actor.
    pub(crate) fn depth(&self) -> usize {
        self.capacity
            .saturating_sub(self.admission.available_permits())
    }
}

pub(crate) struct TenantActor {
    shared: Arc<TenantShared>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// `None` after a failed reload; every message retries the load.
    state: Option<TenantState>,
    /// Reply channels of queued borrows.
    waiters: WaiterSlots,
    /// This actor's own address, weak (set when started).
    me: Option<WeakAddr<TenantActor>>,
    /// The armed due-timer: when it fires, and its handle.
    timer: Option<(Timestamp, SpawnHandle)>,
    /// The store's incarnation the state was loaded under; a reopened store means
    /// writes may have been lost, so the state is reloaded.
    incarnation: u64,
    /// Messages handled since the actor last yielded its arbiter ([`FAIR_TURN`]).
    turn: u32,
}

impl TenantActor {
    pub(crate) fn new(
        shared: Arc<TenantShared>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        state: TenantState,
        incarnation: u64,
    ) -> Self {
        TenantActor {
            shared,
            store,
            clock,
            state: Some(state),
            waiters: WaiterSlots::default(),
            me: None,
            timer: None,
            incarnation,
            turn: 0,
        }
    }

    /// Arms the actor's own timer for the next due instant (lease expiry, waiter
    /// deadline, idempotency keys to forget): when it fires, the actor sends itself
    /// [`ExpireDue`], the same message tests send after moving a manual clock.
    fn arm_timer(&mut self, ctx: &mut Context<Self>) {
        let next = self.state.as_ref().and_then(TenantState::next_due);
        if next == self.timer.as_ref().map(|(at, _)| *at) {
            return;
        }
        if let Some((_, handle)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        if let Some(at) = next {
            // tokio timers fire at or after the deadline; one extra millisecond covers
            // the rounding of `Timestamp` to whole milliseconds.
            let delay = self.clock.now().until(at) + std::time::Duration::from_millis(1);
            let handle = ctx.run_later(delay, |act, ctx| {
                act.timer = None;
                ctx.notify(Admitted {
                    msg: ExpireDue,
                    permit: None,
                });
            });
            self.timer = Some((at, handle));
        }
    }

    fn reload(&mut self) -> Result<(), StorageError> {
        let tenant = self.shared.tenant().clone();
        let incarnation = self.store.incarnation();
        match self.store.load_tenant(&tenant) {
            Ok(records) => {
                let state = TenantState::from_records(tenant, records);
                self.shared.publish_view(&state);
                self.shared.metrics.levels(&state);
                self.state = Some(state);
                self.incarnation = incarnation;
                Ok(())
            }
            Err(e) => {
                tracing::error!(tenant = %tenant, error = %e, "reloading tenant state failed; will retry on the next message");
                self.state = None;
                Err(e)
            }
        }
    }

    /// Counts this message against the actor's turn; at the end of a turn, pauses the
    /// mailbox (after this message) until the arbiter has run its other ready tasks once.
    /// An actor alone on its arbiter resumes at once.
    fn take_turn(&mut self, ctx: &mut Context<Self>) {
        self.turn += 1;
        if self.turn >= FAIR_TURN {
            self.turn = 0;
            ctx.wait(actix::fut::wrap_future(tokio::task::yield_now()));
        }
    }

    /// Forgets what only lived in memory beside the state (the queue's reply channels,
    /// the armed timer) before the state is reloaded: waiting requests fail and may be
    /// retried.
    fn forget_memory(&mut self, ctx: &mut Context<Self>) {
        self.waiters.clear();
        if let Some((_, handle)) = self.timer.take() {
            ctx.cancel_future(handle);
        }
    }

    /// Whether memory may be ahead of the store: never loaded, a write failed, or the
    /// store was reopened since the load.
    fn needs_reload(&self) -> bool {
        // `take_stale` first: its flag must be consumed even when another reason holds.
        self.shared.take_stale()
            || self.state.is_none()
            || self.store.incarnation() != self.incarnation
    }
}

impl Actor for TenantActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Admission already bounds the queue; actix's own per-sender capacity must
        // never be the one that parks a sender.
        ctx.set_mailbox_capacity(self.shared.capacity + 1);
        self.me = Some(ctx.address().downgrade());
        self.arm_timer(ctx);
    }
}

impl Supervised for TenantActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(tenant = %self.shared.tenant(), "tenant actor restarting; reloading state from storage");
        self.shared.metrics.restarted();
        // The reloaded state has no queue: waiters' requests fail and may be retried.
        self.waiters.clear();
        self.timer = None;
        // A failure is answered (and retried) by the next message.
        let _ = self.reload();
    }
}

/// A message that went through admission; the permit is released when the actor picks
/// it up.
pub(crate) struct Admitted<M> {
    pub(crate) msg: M,
    /// `None` for messages the actor sends itself (timer, returning unclaimed seats):
    /// they bypass admission.
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

impl<M: TenantMessage> Message for Admitted<M> {
    type Result = Result<Answer<M::Reply>, TenantError>;
}

impl<M: TenantMessage> Handler<Admitted<M>> for TenantActor {
    type Result = Response<Result<Answer<M::Reply>, TenantError>>;

    fn handle(&mut self, envelope: Admitted<M>, ctx: &mut Self::Context) -> Self::Result {
        drop(envelope.permit);
        self.take_turn(ctx);
        let started = Instant::now();
        if self.needs_reload() {
            self.forget_memory(ctx);
            if let Err(e) = self.reload() {
                return Response::reply(Err(TenantError::Storage(e)));
            }
        }
        let Some(state) = self.state.as_mut() else {
            return Response::reply(Err(TenantError::Unavailable(
                "its state could not be loaded from storage",
            )));
        };
        let now = self.clock.now();
        let store = &self.store;
        let shared = &self.shared;
        let waiters = &mut self.waiters;
        let me = &self.me;
        #[cfg(feature = "fault-injection")]
        let mut pause = None;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut cx = TenantCx {
                state,
                now,
                store,
                shared,
                poisoned: false,
                view_changed: false,
                waiters,
                me,
                #[cfg(feature = "fault-injection")]
                pause: None,
            };
            cx.prune_waiters();
            let reply = envelope.msg.handle(&mut cx);
            if !cx.poisoned {
                cx.settle_waiters();
            }
            #[cfg(feature = "fault-injection")]
            {
                pause = cx.pause.take();
            }
            (reply, cx.poisoned, cx.view_changed)
        }));
        self.shared
            .metrics
            .message_handled(M::KIND, started.elapsed());
        #[cfg(feature = "fault-injection")]
        if let Some(until) = pause {
            ctx.wait(actix::fut::wrap_future(until));
        }
        match outcome {
            Ok((reply, poisoned, view_changed)) => {
                if poisoned {
                    // Memory is ahead of the store: reload before the next message.
                    self.state = None;
                    self.forget_memory(ctx);
                } else if view_changed && let Some(state) = &self.state {
                    self.shared.publish_view(state);
                }
                self.arm_timer(ctx);
                // A durable answer is settled by whoever awaits it (or by its drop).
                Response::reply(reply.0)
            }
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(tenant = %self.shared.tenant(), message = M::KIND, panic = %what, "tenant actor panicked; restarting it");
                self.state = None;
                ctx.stop();
                Response::reply(Err(TenantError::Unavailable(
                    "it hit an internal error and is restarting",
                )))
            }
        }
    }
}
