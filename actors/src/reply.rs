//! The answer to a message: ready now, or owed until the write it reports is durable.
//!
//! The actor never waits for durability: a handler that wrote returns a [`Reply`]
//! holding the write's ticket, and the actor moves on to its next message. The reply
//! travels back to whoever asked and is settled there, by [`Reply::settle`]: the HTTP
//! worker that sent the message waits for the ticket itself, so the flusher wakes that
//! worker directly, with no hop through the actor's arbiter.
//!
//! Settling does what the write owes once its fate is known: publish its events if it
//! is durable, mark the actor's memory stale (to be reloaded) if it is not, and only
//! then hand over the reply. It happens exactly once, whoever holds the reply: one
//! nobody awaits (a message the actor sent itself, or one whose client went away after
//! the actor handled it) settles itself on a task of its own when dropped, so no event
//! and no reload is lost.
//!
//! A write that was fenced (another broker owns the tenant now) stops the tenant's actor
//! instead of marking it for a reload: its memory may no longer be the tenant's.
use std::ops::Deref;
use std::sync::Arc;

use permetrix_storage::{Durable, StorageError};

use crate::TenantError;
use crate::domain::TenantEvent;
use crate::shared::TenantShared;

/// A handler's answer: `R` (or why not), possibly owed until a write is durable.
#[must_use = "a reply owes its write's events or a reload until it is settled"]
pub struct Reply<R> {
    result: Result<R, TenantError>,
    /// What the reply owes once its write is settled; `None` when nothing is owed (any
    /// more).
    owed: Option<Owed>,
    /// Settling on a task of its own because its first holder dropped it: if this one
    /// is dropped unsettled too (its runtime is shutting down), a reload is assumed.
    orphan: bool,
}

/// The write a reply waits for, the events it publishes once durable, the newest
/// webhook outbox event it wrote (the delivery worker may have it once durable), and
/// the tenant they belong to.
struct Owed {
    ticket: Durable,
    events: Vec<TenantEvent>,
    outbox_head: Option<u64>,
    shared: InFlight,
}

impl Owed {
    /// The write is settled: publish what it owes if durable, else mark the actor's
    /// memory stale. Returns the storage error if it is not durable.
    fn settled(self, durable: Result<(), StorageError>) -> Option<TenantError> {
        match durable {
            Ok(()) => {
                for e in self.events {
                    self.shared.publish(e);
                }
                if let Some(head) = self.outbox_head {
                    self.shared.outbox.durable(head);
                }
                None
            }
            Err(e) => {
                if matches!(e, StorageError::Fenced { .. }) {
                    self.shared.fenced();
                } else {
                    self.shared.mark_stale();
                }
                Some(e.into())
            }
        }
    }
}

impl<R> Reply<R> {
    /// A reply available now: nothing was written, or nothing needs to wait.
    pub fn ready(result: Result<R, TenantError>) -> Self {
        Reply {
            result,
            owed: None,
            orphan: false,
        }
    }

    /// `reply` to a write with durability `ticket`, publishing `events` (and telling
    /// the outbox's hooks of `outbox_head`) once durable.
    pub(crate) fn durable(
        reply: R,
        ticket: Durable,
        events: Vec<TenantEvent>,
        outbox_head: Option<u64>,
        shared: Arc<TenantShared>,
    ) -> Self {
        Reply {
            result: Ok(reply),
            owed: Some(Owed {
                ticket,
                events,
                outbox_head,
                shared: InFlight::new(shared),
            }),
            orphan: false,
        }
    }

    /// The reply, once its write (if any) is durable: its events are published then.
    /// A write that never becomes durable marks the actor's memory stale and answers
    /// the storage error instead.
    ///
    /// Cancel-safe: dropped while waiting, the reply is still settled (see the module
    /// docs).
    pub(crate) async fn settle(mut self) -> Result<R, TenantError> {
        if let Some(owed) = &self.owed {
            let durable = owed.ticket.wait().await;
            if let Some(owed) = self.owed.take()
                && let Some(e) = owed.settled(durable)
            {
                self.result = Err(e);
            }
        }
        // Nothing is owed any more, so the drop of what is left does nothing.
        std::mem::replace(&mut self.result, Err(TenantError::Timeout))
    }
}

impl<R, E: Into<TenantError>> From<Result<R, E>> for Reply<R> {
    fn from(result: Result<R, E>) -> Self {
        Reply::ready(result.map_err(Into::into))
    }
}

impl<R> Drop for Reply<R> {
    fn drop(&mut self) {
        let Some(owed) = self.owed.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if !self.orphan => {
                let rest = Reply {
                    result: Ok(()),
                    owed: Some(owed),
                    orphan: true,
                };
                runtime.spawn(async move {
                    let _ = rest.settle().await;
                });
            }
            // No runtime left to wait on: a reload is always correct, if not needed.
            _ => owed.shared.mark_stale(),
        }
    }
}

/// A write of a tenant handed out and not settled yet: counted from its creation to its
/// drop, so that passivation can wait for the tenant's last write to be durable.
struct InFlight(Arc<TenantShared>);

impl InFlight {
    fn new(shared: Arc<TenantShared>) -> Self {
        shared.write_started();
        InFlight(shared)
    }
}

impl Deref for InFlight {
    type Target = TenantShared;
    fn deref(&self) -> &TenantShared {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.write_settled();
    }
}
