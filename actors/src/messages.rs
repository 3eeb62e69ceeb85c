//! The messages a tenant actor understands. Each is a verb with a typed reply; its
//! handler applies a domain operation, persists the effects and replies once they are
//! durable.
#[cfg(feature = "fault-injection")]
use std::future::Future;
#[cfg(feature = "fault-injection")]
use std::pin::Pin;
use std::sync::Arc;

use permetrix_storage::records::{PackageRecord, SettingsRecord};
use permetrix_storage::{BorrowId, Durable, Store, Timestamp};

use crate::TenantError;
use crate::domain::{
    BorrowRequest, Effects, Grant, LeaseView, ProvisionRequest, Returned, SettingsPatch,
    TenantEvent, TenantSnapshot, TenantState, ToolStatus,
};
use crate::tenant_actor::TenantShared;

mod commercial;
pub use commercial::{
    DecideRequest, GetBudget, GetLedgerHead, RequestMore, Restrict, SetSpendCap, UpdatePackage,
};

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

/// The result of handling a message: ready now, or once a write is durable.
pub struct Reply<R>(pub(crate) Result<Answer<R>, TenantError>);

impl<R> Reply<R> {
    /// A reply available now.
    pub fn ready(result: Result<R, TenantError>) -> Self {
        Reply(result.map(Answer::Ready))
    }
}

/// What the actor answers: the reply, or the reply with the write it waits for. It is
/// settled wherever it is awaited: by the HTTP worker that asked (so the flusher wakes
/// that worker directly, with no hop through the actor's arbiter); one nobody awaits
/// settles itself when dropped (see [`Owed`]).
pub(crate) enum Answer<R> {
    Ready(R),
    Durable { owed: Owed, reply: R },
}

impl<R> Answer<R> {
    /// The reply, once its write (if any) is durable and settled.
    pub(crate) async fn settle(self) -> Result<R, TenantError> {
        match self {
            Answer::Ready(reply) => Ok(reply),
            Answer::Durable { mut owed, reply } => owed.settle().await.map(|()| reply),
        }
    }
}

/// What a write owes once its durability is known: its events if it is durable, a
/// reload of the actor's state if it is not (memory is ahead of the store).
///
/// Owed exactly once, whoever holds it: a reply nobody awaits (a message the actor
/// sent itself, or one whose client disconnected after the actor handled it) is
/// dropped unsettled, and the drop hands it to a task of its own on the current
/// runtime rather than skip the events or the reload.
pub(crate) struct Owed {
    ticket: Durable,
    events: Vec<TenantEvent>,
    shared: Arc<TenantShared>,
    settled: bool,
    /// Already handed over once: if this is dropped unsettled too (its runtime is
    /// shutting down), assume the worst instead of handing it over again.
    orphan: bool,
}

impl Owed {
    /// What a write with durability `ticket` owes: `events` once durable.
    pub(crate) fn new(
        ticket: Durable,
        events: Vec<TenantEvent>,
        shared: Arc<TenantShared>,
    ) -> Self {
        Owed {
            ticket,
            events,
            shared,
            settled: false,
            orphan: false,
        }
    }

    /// Waits for durability, then publishes the events or marks the actor's memory
    /// stale. Settled once: a second call has nothing left to do.
    pub(crate) async fn settle(&mut self) -> Result<(), TenantError> {
        let outcome = self.ticket.wait().await;
        self.settled = true;
        match outcome {
            Err(e) => {
                self.shared.mark_stale();
                Err(e.into())
            }
            Ok(()) => {
                for e in self.events.drain(..) {
                    self.shared.publish(e);
                }
                Ok(())
            }
        }
    }
}

impl Drop for Owed {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let runtime = tokio::runtime::Handle::try_current();
        match runtime {
            Ok(runtime) if !self.orphan => {
                let mut rest = Owed {
                    ticket: std::mem::replace(&mut self.ticket, Durable::done()),
                    events: std::mem::take(&mut self.events),
                    shared: Arc::clone(&self.shared),
                    settled: false,
                    orphan: true,
                };
                runtime.spawn(async move {
                    let _ = rest.settle().await;
                });
            }
            // No runtime left to wait on: a reload is always correct, if not needed.
            _ => self.shared.mark_stale(),
        }
    }
}

impl<R, E: Into<TenantError>> From<Result<R, E>> for Reply<R> {
    fn from(result: Result<R, E>) -> Self {
        Reply::ready(result.map_err(Into::into))
    }
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
    pub(crate) waiters: &'a mut crate::waiters::WaiterSlots,
    /// The actor itself (weak: it must not keep itself alive), to give back seats
    /// granted to waiters that left.
    pub(crate) me: &'a Option<actix::WeakAddr<crate::tenant_actor::TenantActor>>,
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

    /// Persists `effects` and replies `reply` once they are durable, without holding
    /// the mailbox. If the write fails, the state in memory is ahead of the store:
    /// the actor reloads from storage and the caller gets a storage error.
    pub fn commit<R: 'static>(&mut self, effects: Effects, reply: R) -> Reply<R> {
        if effects.mutations.is_empty() {
            for e in effects.events {
                self.shared.publish(e);
            }
            return Reply::ready(Ok(reply));
        }
        self.shared.metrics.levels(self.state);
        match self.store.append(self.shared.tenant(), &effects.mutations) {
            Err(e) => {
                tracing::error!(tenant = %self.shared.tenant(), error = %e, "tenant write failed; reloading state");
                self.poisoned = true;
                Reply::ready(Err(TenantError::Storage(e)))
            }
            Ok(ticket) => Reply(Ok(Answer::Durable {
                owed: Owed::new(ticket, effects.events, Arc::clone(self.shared)),
                reply,
            })),
        }
    }
}

/// Borrow a seat.
#[derive(Debug)]
pub struct Borrow(pub BorrowRequest);

impl TenantMessage for Borrow {
    type Reply = Grant;
    const KIND: &'static str = "borrow";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<Grant> {
        let now = cx.now;
        match cx.state.borrow(&self.0, now) {
            Ok((grant, effects)) => cx.commit(effects, grant),
            Err(e) => {
                cx.publish(cx.state.denied_event(&self.0, denial_code(&e), now));
                Reply::ready(Err(e.into()))
            }
        }
    }
}

/// The error code of a refused borrow (the `reason` of denied events).
pub fn denial_code(e: &crate::domain::DomainError) -> &'static str {
    use crate::domain::DomainError as D;
    match e {
        D::UnknownTool(_) => "unknown_tool",
        D::NoSeats { .. } => "no_seats",
        D::MaxOverageReached { .. } => "max_overage_reached",
        D::SpendCapReached { .. } => "spend_cap_reached",
        D::UserLimitReached { .. } => "user_limit_reached",
        D::UnknownBorrow => "unknown_borrow",
        D::PackageInactive { .. } => "package_inactive",
        D::ExceedsVendorLimit { .. } => "exceeds_vendor_limit",
        D::PackageExists(_) => "package_exists",
        D::Invalid(_) => "invalid_request",
        D::LeaseExpired { .. } => "lease_expired",
        D::IdempotencyKeyReused => "idempotency_key_reused",
        D::UnknownPackage(_) => "unknown_package",
        D::PackageRevoked(_) => "package_revoked",
        D::UnknownRequest(_) => "unknown_request",
        D::RequestDecided { .. } => "request_decided",
        D::RequestPending { .. } => "request_pending",
    }
}

/// Return a seat.
#[derive(Debug)]
pub struct Return(pub BorrowId);

impl TenantMessage for Return {
    type Reply = Returned;
    const KIND: &'static str = "return";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<Returned> {
        let now = cx.now;
        match cx.state.return_lease(self.0, now) {
            Ok((returned, effects)) => cx.commit(effects, returned),
            Err(e) => Reply::ready(Err(e.into())),
        }
    }
}

/// Extend a lease.
#[derive(Debug)]
pub struct Heartbeat(pub BorrowId);

impl TenantMessage for Heartbeat {
    type Reply = LeaseView;
    const KIND: &'static str = "heartbeat";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<LeaseView> {
        let now = cx.now;
        match cx.state.heartbeat(self.0, now) {
            Ok((view, effects)) => cx.commit(effects, view),
            Err(e) => Reply::ready(Err(e.into())),
        }
    }
}

/// Status of one tool (`Some`) or all tools.
#[derive(Debug)]
pub struct Status(pub Option<String>);

impl TenantMessage for Status {
    type Reply = Vec<ToolStatus>;
    const KIND: &'static str = "status";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<Vec<ToolStatus>> {
        cx.state.status(self.0.as_deref(), cx.now).into()
    }
}

/// Active borrows, newest first, optionally of one user.
#[derive(Debug)]
pub struct ListBorrows(pub Option<String>);

impl TenantMessage for ListBorrows {
    type Reply = Vec<LeaseView>;
    const KIND: &'static str = "list_borrows";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<Vec<LeaseView>> {
        Reply::ready(Ok(cx.state.borrows(self.0.as_deref())))
    }
}

/// Create a pool from a vendor's package.
#[derive(Debug)]
pub struct Provision(pub ProvisionRequest);

impl TenantMessage for Provision {
    type Reply = PackageRecord;
    const KIND: &'static str = "provision";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<PackageRecord> {
        match cx.state.provision(self.0) {
            Ok((package, effects)) => {
                cx.view_changed();
                cx.commit(effects, package)
            }
            Err(e) => Reply::ready(Err(e.into())),
        }
    }
}

/// Read settings.
#[derive(Debug)]
pub struct GetSettings;

impl TenantMessage for GetSettings {
    type Reply = SettingsRecord;
    const KIND: &'static str = "get_settings";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<SettingsRecord> {
        Reply::ready(Ok(cx.state.settings().clone()))
    }
}

/// Change settings.
#[derive(Debug)]
pub struct UpdateSettings(pub SettingsPatch);

impl TenantMessage for UpdateSettings {
    type Reply = SettingsRecord;
    const KIND: &'static str = "update_settings";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<SettingsRecord> {
        match cx.state.update_settings(self.0) {
            Ok((settings, effects)) => {
                cx.view_changed();
                cx.commit(effects, settings)
            }
            Err(e) => Reply::ready(Err(e.into())),
        }
    }
}

/// Live counts, for fan-out queries.
#[derive(Debug)]
pub struct Snapshot;

impl TenantMessage for Snapshot {
    type Reply = TenantSnapshot;
    const KIND: &'static str = "snapshot";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<TenantSnapshot> {
        Reply::ready(Ok(cx.state.snapshot(cx.now)))
    }
}

mod leases;
mod limits;
mod queue;

pub use leases::{DueReport, ExpireDue};
pub use limits::{GetUserLimits, SetUserLimit};
pub use queue::{
    BorrowOrQueue, BorrowOutcome, QueueListing, QueueOf, QueuedBorrow, ReturnIdempotent,
    ReturnOutcome,
};
