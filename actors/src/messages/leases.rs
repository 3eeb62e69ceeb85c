//! Lease expiry, driven by the actor's own timer.
use crate::handling::{TenantCx, TenantMessage};
use crate::reply::Reply;

/// Handles everything that is due at the actor's current time: frees expired leases
/// (each with an `expire` event), forgets idempotency keys past their retention and
/// signature nonces past their window, and —
/// as after every message — answers waiters whose wait ran out and hands freed seats
/// to the next waiters.
///
/// The actor sends this to itself when its timer fires; tests send it after moving a
/// [`ManualClock`](crate::ManualClock), so expiry is exercised without sleeping.
#[derive(Debug, Clone, Copy)]
pub struct ExpireDue;

/// What an [`ExpireDue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueReport {
    /// Leases that expired.
    pub expired: usize,
    /// Idempotency keys forgotten.
    pub forgotten_keys: usize,
    /// Signature nonces forgotten (that had been stored).
    pub forgotten_nonces: usize,
}

impl TenantMessage for ExpireDue {
    type Reply = DueReport;
    const KIND: &'static str = "expire_due";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<DueReport> {
        let now = cx.now;
        let mut effects = cx.state.expire(now);
        let expired = effects.events.len();
        let forgotten = cx.state.forget_old_keys(now);
        let nonces = cx.state.forget_old_nonces(now);
        let report = DueReport {
            expired,
            forgotten_keys: forgotten.len(),
            forgotten_nonces: nonces.len(),
        };
        effects.mutations.extend(forgotten);
        effects.mutations.extend(nonces);
        cx.commit(effects, report)
    }
}
