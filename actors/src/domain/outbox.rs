//! The tenant's webhook outbox: numbering the events an operation caused, writing the
//! wanted ones with its change, deleting the delivered ones, keeping the outbox within
//! its capacity, and coalescing refusals into one event per tool, reason and second.
//!
//! The events themselves stay in storage; the state keeps only the outbox's ends and the
//! refusals of the current second.
pub(super) mod ends;

pub use ends::{OutboxPolicy, Staged};

use std::time::Duration;

use ends::Outbox;
use permetrix_storage::records::OutboxRecord;
use permetrix_storage::{TenantMutation, Timestamp};

use super::DomainError;
use super::borrow::BorrowRequest;
use super::effects::Effects;
use super::state::TenantState;
use super::webhook_events::{DenialSummary, WebhookEvent};

/// Refusals of one tool for one reason within this long are one `borrow.denied` event.
pub const DENIAL_WINDOW: Duration = Duration::from_secs(1);

/// Whether a refusal is one a vendor hears of: a tool they provisioned refused for a
/// commercial reason (not a malformed request, not a name nobody provisioned).
fn is_denial(error: &DomainError) -> bool {
    matches!(
        error,
        DomainError::NoSeats { .. }
            | DomainError::MaxOverageReached { .. }
            | DomainError::SpendCapReached { .. }
            | DomainError::UserLimitReached { .. }
            | DomainError::PackageInactive { .. }
    )
}

impl TenantState {
    /// The sequence number of the newest outbox event (0 if there never was one).
    pub fn outbox_head(&self) -> u64 {
        self.outbox.next_seq - 1
    }

    /// Notes a refused borrow for the next `borrow.denied` event of its tool and
    /// reason. Nothing is written now: a refusal changes nothing, and its answer does
    /// not wait for a write. The window is written once it closes (the actor's timer),
    /// so a flood of refusals is one event per tool, reason and second.
    pub fn note_denial(&mut self, req: &BorrowRequest, error: &DomainError, now: Timestamp) {
        if !is_denial(error) {
            return;
        }
        let Ok(pool) = self.pool(req.tool.as_str()) else {
            return;
        };
        let (tool, product_id) = (pool.name().to_owned(), pool.product_id().to_owned());
        let user = req.user.as_str();
        let reason = error.code();
        let open = self
            .outbox
            .denials
            .iter_mut()
            .find(|(d, _)| d.product_id == product_id && d.reason == reason);
        match open {
            Some((d, _)) => {
                d.count += 1;
                d.last_at = now;
                if d.users.len() < DenialSummary::MAX_USERS && !d.users.iter().any(|u| u == user) {
                    d.users.push(user.to_owned());
                }
            }
            None => {
                let summary = DenialSummary {
                    tool,
                    product_id,
                    reason,
                    count: 1,
                    first_at: now,
                    last_at: now,
                    users: vec![user.to_owned()],
                };
                self.outbox.denials.push((summary, now.plus(DENIAL_WINDOW)));
            }
        }
    }

    /// Whether a write now would carry outbox events: the operation's own, or windows
    /// of refusals that have closed.
    pub fn has_outbox_events(&self, effects: &Effects, now: Timestamp) -> bool {
        !effects.webhooks.is_empty() || self.outbox.next_flush().is_some_and(|at| at <= now)
    }

    /// Turns the wanted events of `effects` (after the refusal windows closed by `now`)
    /// into outbox records in its write, numbered in order, and deletes what `policy`
    /// says may go. Events of types nobody wants are not stored and take no number.
    pub fn stage_outbox(
        &mut self,
        effects: &mut Effects,
        policy: &OutboxPolicy,
        now: Timestamp,
    ) -> Staged {
        let mut events = self.outbox.take_closed(now);
        events.append(&mut effects.webhooks);
        self.outbox
            .stage(events, &mut effects.mutations, policy, now)
    }
}

/// The write that adds `event` to a tenant's outbox as stored (its newest event
/// `head`, its oldest `oldest`), for an event no operation of the state causes: the
/// crash-loop quarantine writes `tenant.quarantined` while the tenant has no state in
/// memory (loading it may be what crashes). Nothing if `policy` does not want it.
pub fn stage_stored(
    head: Option<&OutboxRecord>,
    oldest: Option<u64>,
    event: WebhookEvent,
    policy: &OutboxPolicy,
    now: Timestamp,
) -> (Vec<TenantMutation>, Staged) {
    let mut mutations = Vec::new();
    let staged = Outbox::stored(head, oldest).stage(vec![event], &mut mutations, policy, now);
    (mutations, staged)
}
