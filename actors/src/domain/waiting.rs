//! Borrows that wait for a seat: joining the queue, being served when seats free,
//! timing out. The queue itself is kept by `queue`.
use permetrix_storage::Timestamp;

use super::DomainError;
use super::borrow::BorrowRequest;
use super::idempotency::IdempotencyTicket;
use super::input::WaitSeconds;
use super::queue::{QueueEntry, Queued, Served, WaiterId, is_queueable};
use super::state::TenantState;

impl TenantState {
    /// Queues a refused borrow for up to `wait`. Refusals that a freed seat cannot
    /// cure, and full queues, give back `reason` as the error.
    pub fn enqueue(
        &mut self,
        req: BorrowRequest,
        reason: DomainError,
        wait: WaitSeconds,
        ticket: Option<IdempotencyTicket>,
        now: Timestamp,
    ) -> Result<Queued, DomainError> {
        if !is_queueable(&reason) || wait.is_zero() {
            return Err(reason);
        }
        let product = self.pool(req.tool.as_str())?.product_id().to_owned();
        self.queue.push(product, req, reason, wait, ticket, now)
    }

    /// The queued borrow that carries `ticket`'s key (a retry of a borrow that is
    /// still waiting), if any. A different request under the same key is refused.
    pub fn waiter_with_key(
        &self,
        ticket: &IdempotencyTicket,
    ) -> Result<Option<Queued>, DomainError> {
        self.queue.with_key(ticket)
    }

    /// Moves a waiter's deadline (a retry that takes over a waiting borrow waits as
    /// long as the retry asks).
    pub fn rewait(&mut self, id: WaiterId, wait: WaitSeconds, now: Timestamp) {
        self.queue.rewait(id, wait, now);
    }

    /// Removes a waiter (its client went away). Returns whether it was queued.
    pub fn cancel_waiter(&mut self, id: WaiterId) -> bool {
        self.queue.cancel(id)
    }

    /// Drops every waiter for which `live` says no.
    pub fn retain_waiters(&mut self, live: impl FnMut(WaiterId) -> bool) {
        self.queue.retain(live);
    }

    /// Whether any borrow is waiting.
    pub fn has_waiters(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Hands free seats to waiters, head of each queue first. Waiters for which `live`
    /// says no are dropped without a seat.
    pub fn serve_waiters(
        &mut self,
        now: Timestamp,
        mut live: impl FnMut(WaiterId) -> bool,
    ) -> Vec<(WaiterId, Served)> {
        let mut out = Vec::new();
        for product in self.queue.pools() {
            while let Some((id, req, ticket)) = self.queue.head(&product) {
                if !live(id) {
                    self.queue.pop_head(&product);
                    continue;
                }
                let (req, ticket) = (req.clone(), ticket.cloned());
                match self.borrow_idempotent(&req, ticket.as_ref(), now) {
                    Ok((grant, effects)) => {
                        if let Some(id) = self.queue.pop_head(&product) {
                            out.push((id, Served::Granted(Box::new(grant), effects)));
                        }
                    }
                    // Still no seat: the head keeps its place, and nobody behind it
                    // may pass.
                    Err(e) if is_queueable(&e) => break,
                    Err(e) => {
                        if let Some(id) = self.queue.pop_head(&product) {
                            out.push((id, Served::Refused(e)));
                        }
                    }
                }
            }
        }
        out
    }

    /// Removes waiters whose wait ran out by `now`; each is answered with the refusal
    /// that made it queue (returned with its request, for the `denied` event).
    pub fn time_out_waiters(
        &mut self,
        now: Timestamp,
    ) -> Vec<(WaiterId, DomainError, BorrowRequest)> {
        self.queue.time_out(now)
    }

    /// The earliest waiter deadline.
    pub fn next_waiter_deadline(&self) -> Option<Timestamp> {
        self.queue.next_deadline()
    }

    /// The queue of one pool, head first, and the pool's tool name.
    pub fn queue_of(&self, tool: &str) -> Result<(String, Vec<QueueEntry>), DomainError> {
        let pool = self.pool(tool)?;
        Ok((
            pool.name().to_owned(),
            self.queue.listing(pool.product_id()),
        ))
    }

    /// The earliest instant at which something is due: a lease expiry, a waiter's
    /// deadline, old idempotency keys or nonces to forget, or refusals to write to the
    /// outbox.
    pub fn next_due(&self) -> Option<Timestamp> {
        [
            self.next_expiry(),
            self.next_waiter_deadline(),
            self.next_key_expiry(),
            self.next_nonce_expiry(),
            self.outbox.next_flush(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}
