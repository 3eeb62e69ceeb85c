//! The actor side of the wait queue: the reply channel of each queued borrow, the step
//! that runs after every message to answer waiters whose wait ran out and to hand
//! freed seats to the next ones, and the hand-over of those seats once durable.
//!
//! The queue order and the rules live in the domain; here are only the channels. A
//! waiter's receiver lives in the HTTP request that waits for it: when the client
//! disconnects, the request is dropped, the sender reports `is_closed()`, and the
//! waiter is skipped and dropped without a seat. A seat granted to a waiter is
//! durable before it is handed over; if the receiver went away in between, the seat
//! is given back (the actor returns it).
use std::collections::HashMap;

use permetrix_storage::{BorrowId, Timestamp};
use tokio::sync::oneshot;

use crate::TenantError;
use crate::domain::{Effects, Grant, Served, TenantState, WaiterId};
use crate::reply::Reply;
use crate::shared::TenantShared;

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

    fn take(&mut self, id: WaiterId) -> Option<WaiterReply> {
        self.slots.remove(&id)
    }

    /// Whether the waiter's client still waits.
    fn is_live(&self, id: WaiterId) -> bool {
        self.slots.get(&id).is_some_and(|tx| !tx.is_closed())
    }

    /// Drops the channels of waiters whose client went away, and those waiters from
    /// the queue, so that no count or listing shows them.
    pub(crate) fn prune(&mut self, state: &mut TenantState) {
        if !state.has_waiters() {
            return;
        }
        self.slots.retain(|_, tx| !tx.is_closed());
        state.retain_waiters(|id| self.is_live(id));
    }

    /// Answers waiters whose wait ran out (with their `denied` events), then
    /// grants free seats to the heads of the queues. Returns the grants' effects, to
    /// be written like any other, and their hand-over; `None` if nobody was granted.
    pub(crate) fn serve(
        &mut self,
        state: &mut TenantState,
        shared: &TenantShared,
        now: Timestamp,
    ) -> Option<(Effects, Handoffs)> {
        if !state.has_waiters() {
            return None;
        }
        for (id, reason, req) in state.time_out_waiters(now) {
            if let Some(tx) = self.take(id) {
                shared.denied(state, &req, &reason, now);
                let _ = tx.send(Err(reason.into()));
            }
        }
        let served = state.serve_waiters(now, |id| self.is_live(id));
        let mut effects = Effects::default();
        let mut handoffs = Handoffs(Vec::new());
        for (id, outcome) in served {
            let tx = self.take(id);
            match outcome {
                Served::Granted(grant, e) => {
                    effects.merge(e);
                    // `serve_waiters` grants only live waiters, so the channel is here.
                    handoffs.0.push((tx, *grant));
                }
                Served::Refused(reason) => {
                    if let Some(tx) = tx {
                        let _ = tx.send(Err(reason.into()));
                    }
                }
            }
        }
        self.slots.retain(|_, tx| !tx.is_closed());
        (!effects.mutations.is_empty()).then_some((effects, handoffs))
    }

    /// Drops every channel (the actor restarts; its waiters' requests fail and may be
    /// retried).
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
    }
}

/// Seats granted to waiters, to be handed over once their write is durable. Dropped
/// with seats still in it (the write failed), it tells those waiters so.
pub(crate) struct Handoffs(Vec<(Option<WaiterReply>, Grant)>);

impl Handoffs {
    /// Hands the seats over once `reply` (their write) is settled; returns the seats
    /// whose waiter left meanwhile, for the actor to give back rather than hold them
    /// until their leases expire.
    pub(crate) async fn deliver(reply: Reply<Handoffs>) -> Vec<BorrowId> {
        let mut handoffs = match reply.settle().await {
            Ok(handoffs) => handoffs,
            Err(e) => {
                // The grants were dropped unsent: their waiters are told.
                tracing::error!(error = %e, "queued grants did not become durable");
                return Vec::new();
            }
        };
        let mut unclaimed = Vec::new();
        for (tx, grant) in handoffs.0.drain(..) {
            let id = grant.lease.id;
            let delivered = tx.is_some_and(|tx| tx.send(Ok(grant)).is_ok());
            if !delivered {
                unclaimed.push(id);
            }
        }
        unclaimed
    }
}

impl Drop for Handoffs {
    fn drop(&mut self) {
        for (tx, _) in self.0.drain(..) {
            if let Some(tx) = tx {
                let _ = tx.send(Err(TenantError::Unavailable(
                    "a seat was found but could not be stored",
                )));
            }
        }
    }
}
