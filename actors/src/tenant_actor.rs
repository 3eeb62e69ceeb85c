//! The tenant actor: a thin shell around [`TenantState`].
//!
//! Message in → domain operation → write (non-blocking) → reply once durable. The
//! actor is supervised: a panic in a handler is caught at the handler boundary, the
//! actor stops, and [`Supervised::restarting`] reloads its state from storage. Messages
//! queued meanwhile stay in the mailbox and are served by the restarted actor.
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use actix::{Actor, ActorContext, Context, Handler, Message, Response, Supervised};
use arc_swap::ArcSwap;
use permetrix_storage::{Store, TenantId, VendorId};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

use crate::TenantError;
use crate::clock::Clock;
use crate::domain::{TenantEvent, TenantState};
use crate::messages::{ReplyInner, TenantCx, TenantMessage};
use crate::metrics::TenantMetrics;
use crate::view::TenantView;

/// Events buffered per subscriber before a slow one starts losing them.
const EVENT_BUFFER: usize = 1024;

/// What the registry and the edge share with one tenant's actor.
pub(crate) struct TenantShared {
    tenant: TenantId,
    vendor_id: VendorId,
    /// Edge view; replaced (never mutated) by the actor.
    pub(crate) view: ArcSwap<TenantView>,
    pub(crate) events: broadcast::Sender<TenantEvent>,
    /// Admission: one permit per queued message. Permits in use = mailbox depth.
    pub(crate) admission: Arc<Semaphore>,
    pub(crate) capacity: usize,
    pub(crate) metrics: Arc<dyn TenantMetrics>,
}

impl TenantShared {
    pub(crate) fn new(
        state: &TenantState,
        vendor_id: VendorId,
        capacity: usize,
        metrics: Arc<dyn TenantMetrics>,
    ) -> Self {
        metrics.levels(state);
        TenantShared {
            tenant: state.tenant().clone(),
            view: ArcSwap::from_pointee(TenantView::of(vendor_id.clone(), state)),
            vendor_id,
            events: broadcast::channel(EVENT_BUFFER).0,
            admission: Arc::new(Semaphore::new(capacity)),
            capacity,
            metrics,
        }
    }

    pub(crate) fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub(crate) fn publish(&self, event: TenantEvent) {
        if self.events.receiver_count() > 0 {
            // Err only means every subscriber left meanwhile.
            let _ = self.events.send(event);
        }
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
}

impl TenantActor {
    pub(crate) fn new(
        shared: Arc<TenantShared>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        state: TenantState,
    ) -> Self {
        TenantActor {
            shared,
            store,
            clock,
            state: Some(state),
        }
    }

    fn reload(&mut self) {
        let tenant = self.shared.tenant().clone();
        match self.store.load_tenant(&tenant) {
            Ok(records) => {
                let state = TenantState::from_records(tenant, records);
                self.shared.publish_view(&state);
                self.shared.metrics.levels(&state);
                self.state = Some(state);
            }
            Err(e) => {
                tracing::error!(tenant = %tenant, error = %e, "reloading tenant state failed; will retry on the next message");
                self.state = None;
            }
        }
    }
}

impl Actor for TenantActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Admission already bounds the queue; actix's own per-sender capacity must
        // never be the one that parks a sender.
        ctx.set_mailbox_capacity(self.shared.capacity + 1);
    }
}

impl Supervised for TenantActor {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        tracing::warn!(tenant = %self.shared.tenant(), "tenant actor restarting; reloading state from storage");
        self.shared.metrics.restarted();
        self.reload();
    }
}

/// A message that went through admission; the permit is released when the actor picks
/// it up.
pub(crate) struct Admitted<M> {
    pub(crate) msg: M,
    pub(crate) permit: OwnedSemaphorePermit,
}

impl<M: TenantMessage> Message for Admitted<M> {
    type Result = Result<M::Reply, TenantError>;
}

impl<M: TenantMessage> Handler<Admitted<M>> for TenantActor {
    type Result = Response<Result<M::Reply, TenantError>>;

    fn handle(&mut self, envelope: Admitted<M>, ctx: &mut Self::Context) -> Self::Result {
        drop(envelope.permit);
        let started = Instant::now();
        if self.state.is_none() {
            self.reload();
        }
        let Some(state) = self.state.as_mut() else {
            return Response::reply(Err(TenantError::Unavailable(
                "its state could not be loaded from storage",
            )));
        };
        let now = self.clock.now();
        let store = &self.store;
        let shared = &self.shared;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut cx = TenantCx {
                state,
                now,
                store,
                shared,
                poisoned: false,
                view_changed: false,
            };
            let reply = envelope.msg.handle(&mut cx);
            (reply, cx.poisoned, cx.view_changed)
        }));
        self.shared
            .metrics
            .message_handled(M::KIND, started.elapsed());
        match outcome {
            Ok((reply, poisoned, view_changed)) => {
                if poisoned {
                    // Memory is ahead of the store: restart and reload.
                    self.state = None;
                    ctx.stop();
                } else if view_changed && let Some(state) = &self.state {
                    self.shared.publish_view(state);
                }
                match reply.0 {
                    ReplyInner::Ready(result) => Response::reply(result),
                    ReplyInner::Later(fut) => Response::fut(fut),
                }
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
