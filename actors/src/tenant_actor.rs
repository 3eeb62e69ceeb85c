//! The tenant actor: a thin shell around [`TenantState`].
//!
//! Message in → domain operation → write (non-blocking) → reply once durable. The
//! actor is supervised: a panic in a handler is caught at the handler boundary, the
//! actor stops, and [`Supervised::restarting`] reloads its state from storage. Messages
//! queued meanwhile stay in the mailbox and are served by the restarted actor. Too
//! many restarts too fast quarantine the tenant instead (`quarantine`): its actor then
//! holds no state and refuses every message until an operator resumes it.
//!
//! An actor told to stop ([`Stop`], or the stop flag of its [`TenantShared`]: a fenced
//! write, a lost lease, passivation) drops its state and answers nothing more from
//! memory; it never reloads again. A tenant activated again gets a new actor.
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use actix::{
    Actor, ActorContext, AsyncContext, Context, Handler, Message, Response, SpawnHandle, Supervised,
};
use permetrix_storage::{StorageError, Store, Timestamp};

use crate::TenantError;
use crate::clock::Clock;
use crate::domain::{
    OutboxPolicy, Quarantine, TenantState, WebhookEvent, WebhookEventKind, stage_stored,
};
use crate::handling::{TenantCx, TenantMessage};
use crate::messages::{ExpireDue, Return};
use crate::overload::{Fairness, Permit};
use crate::quarantine::QuarantineEvent;
use crate::reply::Reply;
use crate::shared::{Stop, TenantShared};
use crate::waiters::{Handoffs, WaiterSlots};

pub(crate) struct TenantActor {
    shared: Arc<TenantShared>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// `None` after a failed reload; every message retries the load.
    state: Option<TenantState>,
    /// Reply channels of queued borrows.
    waiters: WaiterSlots,
    /// The armed due-timer: when it fires, and its handle.
    timer: Option<(Timestamp, SpawnHandle)>,
    /// The store's incarnation the state was loaded under; a reopened store means
    /// writes may have been lost, so the state is reloaded.
    incarnation: u64,
    /// Messages handled since the actor last yielded its arbiter.
    fairness: Fairness,
    /// Told to stop: the state is gone for good, nothing is reloaded any more.
    stopping: bool,
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
            timer: None,
            incarnation,
            fairness: Fairness::default(),
            stopping: false,
        }
    }

    /// Drops the state and everything beside it, for good: this actor answers nothing
    /// more (see the module docs).
    fn drop_state(&mut self, ctx: &mut Context<Self>) {
        self.stopping = true;
        self.state = None;
        self.forget_memory(ctx);
        ctx.stop();
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
                self.shared.outbox.loaded(state.outbox_head());
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

    /// Counts this message against the actor's turn on its arbiter; at the end of a
    /// turn, pauses the mailbox (after this message) until the arbiter has run its
    /// other ready tasks once. An actor alone on its arbiter resumes at once.
    fn take_turn(&mut self, ctx: &mut Context<Self>) {
        if self.fairness.handled_one() {
            ctx.wait(actix::fut::wrap_future(tokio::task::yield_now()));
        }
    }

    /// Hands seats granted to waiters over once their write is durable, on a task of
    /// its own (the mailbox does not wait); seats whose waiter left meanwhile are
    /// returned through the mailbox.
    fn hand_over(handoffs: Reply<Handoffs>, ctx: &mut Context<Self>) {
        let me = ctx.address().downgrade();
        actix::spawn(async move {
            for id in Handoffs::deliver(handoffs).await {
                match me.upgrade() {
                    Some(addr) => addr.do_send(Admitted {
                        msg: Return::of(id),
                        permit: None,
                    }),
                    None => {
                        tracing::warn!(borrow = %id, "a queued grant was not claimed and its tenant stopped; the lease will expire");
                    }
                }
            }
        });
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

impl TenantActor {
    /// Writes `tenant.quarantined` to the tenant's outbox if its vendor receives it, from
    /// the outbox's ends as stored (the state is not built: that may be what crashes).
    /// The delivery worker hears of it once it is durable, like any other event.
    fn write_quarantine_event(&self, q: &QuarantineEvent) {
        let hooks = &self.shared.outbox;
        let policy = OutboxPolicy {
            wanted: hooks.wanted(),
            delivered_through: hooks.delivered_through(),
            capacity: hooks.capacity(),
        };
        if !policy.wanted.contains(WebhookEventKind::TenantQuarantined) {
            return;
        }
        let tenant = self.shared.tenant();
        let records = match self.store.load_tenant(tenant) {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(tenant = %tenant, error = %e, "cannot read the outbox to write tenant.quarantined; its vendor is not told");
                return;
            }
        };
        let event = WebhookEvent::TenantQuarantined(Quarantine {
            restarts: q.restarts,
            reason: format!(
                "its actor crashed {} times within {} s",
                q.restarts,
                q.period.as_secs()
            ),
            // Only an operator lifts it.
            until: None,
        });
        let (mutations, staged) = stage_stored(
            records.outbox_head.as_ref(),
            records.outbox_oldest,
            event,
            &policy,
            q.at,
        );
        let Some(head) = staged.head else {
            return;
        };
        if staged.dropped > 0 {
            hooks.dropped(staged.dropped);
        }
        match self.store.append(tenant, self.shared.epoch(), &mutations) {
            Ok(ticket) => {
                let (hooks, tenant) = (Arc::clone(hooks), tenant.clone());
                actix::spawn(async move {
                    match ticket.wait().await {
                        Ok(()) => hooks.durable(head),
                        Err(e) => {
                            tracing::error!(tenant = %tenant, error = %e, "writing tenant.quarantined failed; its vendor is not told");
                        }
                    }
                });
            }
            Err(e) => {
                tracing::error!(tenant = %tenant, error = %e, "writing tenant.quarantined failed; its vendor is not told");
            }
        }
    }
}

impl Actor for TenantActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Admission already bounds the queue; actix's own per-sender capacity must
        // never be the one that parks a sender.
        ctx.set_mailbox_capacity(self.shared.admission.capacity() + 1);
        self.shared
            .set_stopper(ctx.address().downgrade().recipient::<Stop>());
        self.arm_timer(ctx);
    }
}

impl Supervised for TenantActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        if self.stopping || self.shared.stopped().is_some() {
            // Stopped on purpose; the supervisor restarts it only because someone still
            // holds its address. It stays without state until the last one is dropped.
            self.stopping = true;
            self.state = None;
            return;
        }
        let shared = Arc::clone(&self.shared);
        let tenant = shared.tenant();
        shared.metrics.restarted();
        // The reloaded state has no queue: waiters' requests fail and may be retried.
        self.waiters.clear();
        self.timer = None;
        let now = self.clock.now();
        if let Some(q) = shared.quarantine.restarted(tenant, shared.vendor_id(), now) {
            tracing::error!(
                tenant = %tenant,
                restarts = q.restarts,
                period_s = q.period.as_secs(),
                "tenant quarantined: its actor crashed {} times within {} s; its requests are \
                 refused with 503 tenant_unavailable until an operator resumes it \
                 (POST /api/admin/tenants/{tenant}/resume)",
                q.restarts,
                q.period.as_secs(),
            );
            shared.metrics.quarantine_changed(true);
            // Nothing is loaded while quarantined (the load itself may be what
            // crashes); the first message after the resume loads the state.
            self.state = None;
            self.write_quarantine_event(&q);
            return;
        }
        tracing::warn!(tenant = %tenant, "tenant actor restarting; reloading state from storage");
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
    pub(crate) permit: Option<Permit>,
}

impl Handler<Stop> for TenantActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        if !self.stopping {
            tracing::debug!(tenant = %self.shared.tenant(), reason = ?self.shared.stopped(), "tenant actor stopping");
        }
        self.drop_state(ctx);
    }
}

impl<M: TenantMessage> Message for Admitted<M> {
    type Result = Reply<M::Reply>;
}

impl<M: TenantMessage> Handler<Admitted<M>> for TenantActor {
    type Result = Response<Reply<M::Reply>>;

    fn handle(&mut self, envelope: Admitted<M>, ctx: &mut Self::Context) -> Self::Result {
        drop(envelope.permit);
        if let Some(why) = self.shared.stopped() {
            self.drop_state(ctx);
            return Response::reply(Reply::ready(Err(why.error(self.shared.tenant()))));
        }
        if self.stopping {
            return Response::reply(Reply::ready(Err(TenantError::Unavailable(
                "its actor stopped",
            ))));
        }
        if self.shared.quarantine.is_on() {
            // Queued before the quarantine began (or sent by the actor itself): refused
            // like the requests that admission turns away now.
            return Response::reply(Reply::ready(Err(self.shared.quarantine.refusal())));
        }
        self.take_turn(ctx);
        let started = Instant::now();
        if self.needs_reload() {
            self.forget_memory(ctx);
            if let Err(e) = self.reload() {
                return Response::reply(Reply::ready(Err(TenantError::Storage(e))));
            }
        }
        let Some(state) = self.state.as_mut() else {
            return Response::reply(Reply::ready(Err(TenantError::Unavailable(
                "its state could not be loaded from storage",
            ))));
        };
        let now = self.clock.now();
        let store = &self.store;
        let shared = &self.shared;
        let waiters = &mut self.waiters;
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
                #[cfg(feature = "fault-injection")]
                pause: None,
            };
            cx.prune_waiters();
            let reply = envelope.msg.handle(&mut cx);
            let handoffs = if cx.poisoned {
                None
            } else {
                cx.settle_waiters()
            };
            #[cfg(feature = "fault-injection")]
            {
                pause = cx.pause.take();
            }
            (reply, handoffs, cx.poisoned, cx.view_changed)
        }));
        self.shared
            .metrics
            .message_handled(M::KIND, started.elapsed());
        #[cfg(feature = "fault-injection")]
        if let Some(until) = pause {
            ctx.wait(actix::fut::wrap_future(until));
        }
        match outcome {
            Ok((reply, handoffs, poisoned, view_changed)) => {
                if let Some(handoffs) = handoffs {
                    Self::hand_over(handoffs, ctx);
                }
                if self.shared.stopped().is_some() {
                    // Fenced while handling: the state may not be the tenant's any more.
                    self.drop_state(ctx);
                    return Response::reply(reply);
                }
                if poisoned {
                    // Memory is ahead of the store: reload before the next message.
                    self.state = None;
                    self.forget_memory(ctx);
                } else if view_changed && let Some(state) = &self.state {
                    self.shared.publish_view(state);
                }
                self.arm_timer(ctx);
                self.shared.handled(now, self.state.as_ref());
                // Settled by whoever awaits it (or by its drop), not here.
                Response::reply(reply)
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
                Response::reply(Reply::ready(Err(TenantError::Unavailable(
                    "it hit an internal error and is restarting",
                ))))
            }
        }
    }
}
