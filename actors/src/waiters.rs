//! The actor side of the wait queue: the reply channel of each queued borrow, and the
//! step that runs after every message to hand freed seats to waiters and to answer
//! waiters whose wait ran out.
//!
//! The queue order and the rules live in the domain; here are only the channels. A
//! waiter's receiver lives in the HTTP request that waits for it: when the client
//! disconnects, the request is dropped, the sender reports `is_closed()`, and the
//! waiter is skipped and dropped without a seat. A seat granted to a waiter is
//! durable before it is handed over; if the receiver went away in between, the seat
//! is returned at once.
use std::collections::HashMap;
use std::sync::Arc;

use actix::WeakAddr;
use tokio::sync::oneshot;

use crate::TenantError;
use crate::domain::{Effects, Grant, Served, WaiterId};
use crate::messages::{Owed, Return, TenantCx, denial_code};
use crate::tenant_actor::{Admitted, TenantActor};

/// Where a queued borrow's answer goes.
pub(crate) type WaiterReply = oneshot::Sender<Result<Grant, TenantError>>;

/// Reply channels of the queued borrows of one tenant.
#[derive(Default)]
pub(crate) struct WaiterSlots {
    slots: HashMap<WaiterId, WaiterReply>,
}

impl WaiterSlots {
    pub(crate) fn insert(&mut self, id: WaiterId, reply: WaiterReply) -> Option<WaiterReply> {
        self.slots.insert(id, reply)
    }

    pub(crate) fn take(&mut self, id: WaiterId) -> Option<WaiterReply> {
        self.slots.remove(&id)
    }

    /// Whether the waiter's client still waits.
    pub(crate) fn is_live(&self, id: WaiterId) -> bool {
        self.slots.get(&id).is_some_and(|tx| !tx.is_closed())
    }

    /// Drops the channels of waiters whose client went away.
    fn prune(&mut self) {
        self.slots.retain(|_, tx| !tx.is_closed());
    }

    /// Drops every channel (the actor restarts; its waiters' requests fail and may be
    /// retried).
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
    }
}

impl TenantCx<'_> {
    /// Drops waiters whose client went away, so that no count or listing shows them.
    pub(crate) fn prune_waiters(&mut self) {
        if !self.state.has_waiters() {
            return;
        }
        self.waiters.prune();
        let slots = &*self.waiters;
        self.state.retain_waiters(|id| slots.is_live(id));
    }

    /// Answers waiters whose wait ran out, then hands free seats to the heads of the
    /// queues. Runs after every message, so a seat freed by a return, an expiry or a
    /// raised limit goes to the next waiter at once.
    pub(crate) fn settle_waiters(&mut self) {
        if !self.state.has_waiters() {
            return;
        }
        let now = self.now;
        for (id, reason, req) in self.state.time_out_waiters(now) {
            if let Some(tx) = self.waiters.take(id) {
                self.publish(self.state.denied_event(&req, denial_code(&reason), now));
                let _ = tx.send(Err(reason.into()));
            }
        }
        let slots = &*self.waiters;
        let served = self.state.serve_waiters(now, |id| slots.is_live(id));
        let mut effects = Effects::default();
        let mut handoffs = Vec::new();
        for (id, outcome) in served {
            let tx = self.waiters.take(id);
            match outcome {
                Served::Granted(grant, e) => {
                    effects.mutations.extend(e.mutations);
                    effects.events.extend(e.events);
                    // `serve_waiters` grants only live waiters, so the channel is here.
                    handoffs.push((tx, *grant));
                }
                Served::Refused(reason) => {
                    if let Some(tx) = tx {
                        let _ = tx.send(Err(reason.into()));
                    }
                }
            }
        }
        self.waiters.prune();
        if effects.mutations.is_empty() {
            return;
        }
        match self.store.append(self.shared.tenant(), &effects.mutations) {
            Err(e) => {
                tracing::error!(tenant = %self.shared.tenant(), error = %e, "writing queued grants failed; reloading state");
                self.poisoned = true;
                refuse_all(handoffs);
            }
            Ok(ticket) => {
                // Published, or the actor marked stale, like any other write's.
                let mut owed = Owed::new(ticket, effects.events, Arc::clone(self.shared));
                let me = self.me.clone();
                actix::spawn(async move {
                    if let Err(e) = owed.settle().await {
                        tracing::error!(error = %e, "queued grants did not become durable");
                        refuse_all(handoffs);
                        return;
                    }
                    for (tx, grant) in handoffs {
                        let id = grant.lease.id;
                        let delivered = match tx {
                            Some(tx) => tx.send(Ok(grant)).is_ok(),
                            None => false,
                        };
                        if !delivered {
                            // The client left between the grant and its durability:
                            // give the seat back rather than hold it until the lease
                            // expires.
                            return_unclaimed(me.as_ref(), id);
                        }
                    }
                });
            }
        }
    }
}

/// Tells the waiters granted a seat that it could not be stored.
fn refuse_all(handoffs: Vec<(Option<WaiterReply>, Grant)>) {
    for (tx, _) in handoffs {
        if let Some(tx) = tx {
            let _ = tx.send(Err(TenantError::Unavailable(
                "a seat was found but could not be stored",
            )));
        }
    }
}

fn return_unclaimed(me: Option<&WeakAddr<TenantActor>>, id: permetrix_storage::BorrowId) {
    match me.and_then(WeakAddr::upgrade) {
        Some(addr) => addr.do_send(Admitted {
            msg: Return(id),
            permit: None,
        }),
        None => {
            tracing::warn!(borrow = %id, "a queued grant was not claimed and its tenant stopped; the lease will expire")
        }
    }
}
