//! Retried and replayed borrows and returns: with an `Idempotency-Key`, a retry answers
//! the original outcome instead of acting again (the keys themselves are kept by
//! `idempotency`); a v2 signature's nonce is accepted once (the nonces are kept by
//! `nonces`).
use permetrix_storage::records::IdempotentOutcome;
use permetrix_storage::{BorrowId, TenantMutation, Timestamp};

use super::DomainError;
use super::borrow::{BorrowRequest, Grant, Returned};
use super::effects::Effects;
use super::idempotency::IdempotencyTicket;
use super::nonces::SignedNonce;
use super::state::TenantState;

impl TenantState {
    /// The remembered outcome of `ticket`'s key, if the key was used before (and is
    /// within its retention). A key used with a different request is refused.
    pub fn idempotent_outcome(
        &self,
        ticket: &IdempotencyTicket,
        now: Timestamp,
    ) -> Result<Option<IdempotentOutcome>, DomainError> {
        self.keys.outcome(ticket, now)
    }

    /// Borrows, remembering `ticket` (if any) in the same write as the lease.
    pub fn borrow_idempotent(
        &mut self,
        req: &BorrowRequest,
        ticket: Option<&IdempotencyTicket>,
        now: Timestamp,
    ) -> Result<(Grant, Effects), DomainError> {
        let (grant, mut effects) = self.borrow(req, now)?;
        if let Some(ticket) = ticket {
            let l = &grant.lease;
            let outcome = IdempotentOutcome::Borrowed {
                id: l.id,
                tool: l.tool.clone(),
                user: l.user.clone(),
                borrowed_at: l.borrowed_at,
                lease_expires_at: l.lease_expires_at,
                is_overage: l.is_overage,
            };
            effects
                .mutations
                .push(self.keys.remember(ticket, outcome, now));
        }
        Ok((grant, effects))
    }

    /// Returns a seat, remembering `ticket` (if any) in the same write.
    pub fn return_idempotent(
        &mut self,
        id: BorrowId,
        ticket: Option<&IdempotencyTicket>,
        now: Timestamp,
    ) -> Result<(Returned, Effects), DomainError> {
        let (returned, mut effects) = self.return_lease(id, now)?;
        if let Some(ticket) = ticket {
            let outcome = IdempotentOutcome::Returned {
                id,
                tool: returned.lease.tool.clone(),
            };
            effects
                .mutations
                .push(self.keys.remember(ticket, outcome, now));
        }
        Ok((returned, effects))
    }

    /// Forgets keys older than [`KEY_RETENTION`](super::KEY_RETENTION); returns the
    /// deletions to persist.
    pub fn forget_old_keys(&mut self, now: Timestamp) -> Vec<TenantMutation> {
        self.keys.forget_old(now)
    }

    /// Checks and records the nonce of a v2-signed borrow: a nonce seen within its
    /// window is a replay. Done before anything else the borrow does, in the actor, so
    /// that two requests with one nonce can never both pass.
    pub fn claim_nonce(&mut self, nonce: &SignedNonce, now: Timestamp) -> Result<(), DomainError> {
        self.nonces.claim(nonce, now)
    }

    /// Forgets nonces whose window has passed; returns the deletions to persist.
    pub fn forget_old_nonces(&mut self, now: Timestamp) -> Vec<TenantMutation> {
        self.nonces.forget_expired(now)
    }

    /// When the oldest nonce is due to be forgotten.
    pub fn next_nonce_expiry(&self) -> Option<Timestamp> {
        self.nonces.next_expiry()
    }

    /// Number of remembered nonces.
    pub fn remembered_nonces(&self) -> usize {
        self.nonces.len()
    }

    /// When the oldest key is due to be forgotten (with some slack, so that one timer
    /// forgets a batch).
    pub fn next_key_expiry(&self) -> Option<Timestamp> {
        self.keys.next_expiry()
    }

    /// Number of remembered keys.
    pub fn remembered_keys(&self) -> usize {
        self.keys.len()
    }
}
