//! How a message is handled: the trait every verb implements and what its handler may
//! touch ([`TenantCx`]). A handler applies a domain operation, persists the effects
//! with [`TenantCx::commit`] and returns the [`Reply`], which is settled once the write
//! is durable, never inside the actor.
#[cfg(feature = "fault-injection")]
use std::future::Future;
#[cfg(feature = "fault-injection")]
use std::pin::Pin;
use std::sync::Arc;

use permetrix_storage::{StorageError, Store, Timestamp};

use crate::TenantError;
use crate::domain::{BorrowRequest, DomainError, Effects, OutboxPolicy, TenantEvent, TenantState};
use crate::reply::Reply;
use crate::shared::TenantShared;
use crate::waiters::{Handoffs, WaiterSlots};

/// A message to a tenant actor.
pub trait TenantMessage: Send + 'static {
    /// The reply on success.
    type Reply: Send + 'static;
    /// Label for the message-duration metric.
    const KIND: &'static str;
    /// Applies the message to the tenant's state. Runs inside the actor, one message at
    /// a time; must not block.
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<Self::Reply>;
}

/// What a handler may touch: the state, the time, and the way to persist.
pub struct TenantCx<'a> {
    pub(crate) state: &'a mut TenantState,
    pub(crate) now: Timestamp,
    pub(crate) store: &'a Arc<dyn Store>,
    pub(crate) shared: &'a Arc<TenantShared>,
    /// A write failed: the actor must reload its state from storage.
    pub(crate) poisoned: bool,
    /// Settings or pools changed: republish the edge view.
    pub(crate) view_changed: bool,
    /// Reply channels of queued borrows.
    pub(crate) waiters: &'a mut WaiterSlots,
    /// Fault injection: take no further message until this resolves.
    #[cfg(feature = "fault-injection")]
    pub(crate) pause: Option<Pin<Box<dyn Future<Output = ()>>>>,
}

impl TenantCx<'_> {
    /// The tenant's state.
    pub fn state(&mut self) -> &mut TenantState {
        self.state
    }

    /// The time this message is handled at.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The store (reads that are not part of the state, such as the ledger).
    pub fn store(&self) -> &Arc<dyn Store> {
        self.store
    }

    /// Test builds only (feature `fault-injection`): the actor takes no further message
    /// until `until` resolves, without blocking its arbiter thread, as a tenant stuck on
    /// slow work would. Messages queue (up to the mailbox capacity) meanwhile.
    #[cfg(feature = "fault-injection")]
    pub fn pause_mailbox(&mut self, until: impl Future<Output = ()> + 'static) {
        self.pause = Some(Box::pin(until));
    }

    /// Marks settings or pools as changed, so the edge view is republished.
    pub fn view_changed(&mut self) {
        self.view_changed = true;
    }

    /// Publishes an event now (for events that change no state, such as denials).
    pub fn publish(&self, event: TenantEvent) {
        self.shared.publish(event);
    }

    /// A borrow was refused: publishes its live `denied` event and notes it for the
    /// vendor's `borrow.denied` webhook (written within a second, coalesced; the
    /// refusal itself waits for no write).
    pub fn denied(&mut self, req: &BorrowRequest, error: &DomainError) {
        self.shared.denied(self.state, req, error, self.now);
    }

    /// Persists `effects` and replies `reply` once they are durable, without holding
    /// the mailbox. If the write fails, the state in memory is ahead of the store:
    /// the actor reloads from storage and the caller gets a storage error. A fenced
    /// write (another broker owns the tenant now) stops the actor instead. Webhook
    /// events the vendor receives go into the outbox in the same write.
    pub fn commit<R>(&mut self, mut effects: Effects, reply: R) -> Reply<R> {
        let outbox_head = self.stage_outbox(&mut effects);
        if effects.mutations.is_empty() {
            for e in effects.events {
                self.shared.publish(e);
            }
            return Reply::ready(Ok(reply));
        }
        self.shared.metrics.levels(self.state);
        match self.store.append(
            self.shared.tenant(),
            self.shared.epoch(),
            &effects.mutations,
        ) {
            Err(e) => {
                if matches!(e, StorageError::Fenced { .. }) {
                    // Not a reload: the state belongs to another broker now.
                    self.shared.fenced();
                } else {
                    tracing::error!(tenant = %self.shared.tenant(), error = %e, "tenant write failed; reloading state");
                    self.poisoned = true;
                }
                Reply::ready(Err(TenantError::Storage(e)))
            }
            Ok(ticket) => Reply::durable(
                reply,
                ticket,
                effects.events,
                outbox_head,
                Arc::clone(self.shared),
            ),
        }
    }

    /// Adds the outbox records of `effects`' webhook events (and of refusal windows
    /// that closed) to its write; the newest sequence number written, if any. A write
    /// without webhook events does not touch the hooks.
    fn stage_outbox(&mut self, effects: &mut Effects) -> Option<u64> {
        if !self.state.has_outbox_events(effects, self.now) {
            return None;
        }
        let hooks = &self.shared.outbox;
        let policy = OutboxPolicy {
            wanted: hooks.wanted(),
            delivered_through: hooks.delivered_through(),
            capacity: hooks.capacity(),
        };
        let staged = self.state.stage_outbox(effects, &policy, self.now);
        if staged.dropped > 0 {
            tracing::warn!(tenant = %self.shared.tenant(), dropped = staged.dropped, "webhook outbox full; dropped its oldest undelivered events");
            hooks.dropped(staged.dropped);
        }
        staged.head
    }

    /// Drops waiters whose client went away, so that no count or listing shows them.
    /// Runs before every message.
    pub(crate) fn prune_waiters(&mut self) {
        self.waiters.prune(self.state);
    }

    /// Answers waiters whose wait ran out, then hands free seats to the heads of the
    /// queues; their write is committed like any other. Runs after every message, so a
    /// seat freed by a return, an expiry or a raised limit goes to the next waiter at
    /// once. The returned reply carries the seats to hand over once durable.
    pub(crate) fn settle_waiters(&mut self) -> Option<Reply<Handoffs>> {
        let (effects, handoffs) = self.waiters.serve(self.state, self.shared, self.now)?;
        Some(self.commit(effects, handoffs))
    }
}
