//! The wait queue: borrows that found no seat wait here, FIFO per pool, until a seat
//! frees or their wait runs out.
//!
//! Only refusals that a freed seat can cure queue: `no_seats` and
//! `max_overage_reached`. Everything else (unknown tool, inactive package, spend cap,
//! per-user limit) is answered at once. When seats free, the head of the queue is
//! served first; a waiter that can no longer be granted for another reason (its user
//! reached the per-user limit meanwhile, the spend cap was reached) is answered with
//! that refusal and the next one is served. Waiters whose client went away are skipped
//! and dropped, never granted and never counted.
//!
//! The queue lives in memory only: a waiter is an open HTTP request, which a restart
//! ends anyway.
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use permetrix_storage::Timestamp;
use serde::Serialize;

use super::idempotency::IdempotencyTicket;
use super::state::{BorrowRequest, Effects, Grant};
use super::views::ser_time;
use super::{DomainError, TenantState};

/// Most waiters one pool holds; beyond that a borrow is refused at once.
pub const MAX_WAITERS_PER_POOL: usize = 10_000;

/// Identifies one queued borrow within its tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaiterId(u64);

#[derive(Clone, Debug)]
struct Waiter {
    id: WaiterId,
    req: BorrowRequest,
    since: Timestamp,
    deadline: Timestamp,
    /// The refusal that made it queue; the answer if its wait runs out.
    reason: DomainError,
    ticket: Option<IdempotencyTicket>,
}

/// Every pool's queue.
#[derive(Clone, Debug, Default)]
pub(crate) struct WaitQueues {
    /// Product id → waiters, oldest first.
    by_pool: HashMap<String, VecDeque<Waiter>>,
    /// Waiter → product id.
    pool_of: HashMap<WaiterId, String>,
    deadlines: BTreeSet<(Timestamp, WaiterId)>,
    next_id: u64,
}

impl WaitQueues {
    /// Waiters queued for the pool of `product_id`.
    pub(crate) fn waiting(&self, product_id: &str) -> u32 {
        self.by_pool
            .get(product_id)
            .map_or(0, |q| u32::try_from(q.len()).unwrap_or(u32::MAX))
    }

    fn remove(&mut self, id: WaiterId) -> Option<Waiter> {
        let product = self.pool_of.remove(&id)?;
        let queue = self.by_pool.get_mut(&product)?;
        let at = queue.iter().position(|w| w.id == id)?;
        let waiter = queue.remove(at)?;
        if queue.is_empty() {
            self.by_pool.remove(&product);
        }
        self.deadlines.remove(&(waiter.deadline, id));
        Some(waiter)
    }

    fn pop_head(&mut self, product: &str) -> Option<Waiter> {
        let queue = self.by_pool.get_mut(product)?;
        let waiter = queue.pop_front()?;
        if queue.is_empty() {
            self.by_pool.remove(product);
        }
        self.pool_of.remove(&waiter.id);
        self.deadlines.remove(&(waiter.deadline, waiter.id));
        Some(waiter)
    }
}

/// A borrow that was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queued {
    /// Its id.
    pub id: WaiterId,
    /// Its position, from 1.
    pub position: usize,
}

/// One entry of a queue listing (`GET /licenses/{tool}/queue`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QueueEntry {
    /// Position, from 1 (the next seat goes to 1).
    pub position: usize,
    /// Who waits.
    pub user: String,
    /// Since when.
    #[serde(serialize_with = "ser_time")]
    pub since: Timestamp,
    /// Short public reference of the waiter's `Idempotency-Key`, if it sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// What became of a waiter when seats were handed out.
#[derive(Debug)]
pub enum Served {
    /// It got a seat: persist the effects, then hand it the grant.
    Granted(Box<Grant>, Effects),
    /// It can no longer be granted for another reason: answer this refusal.
    Refused(DomainError),
}

/// Whether a refusal is one that a freed seat can cure.
pub fn is_queueable(e: &DomainError) -> bool {
    matches!(
        e,
        DomainError::NoSeats { .. } | DomainError::MaxOverageReached { .. }
    )
}

impl TenantState {
    /// Queues a refused borrow for up to `wait`. Refusals that a freed seat cannot
    /// cure, and full queues, give back `reason` as the error.
    pub fn enqueue(
        &mut self,
        req: BorrowRequest,
        reason: DomainError,
        wait: Duration,
        ticket: Option<IdempotencyTicket>,
        now: Timestamp,
    ) -> Result<Queued, DomainError> {
        if !is_queueable(&reason) || wait.is_zero() {
            return Err(reason);
        }
        let product = self.pool(&req.tool)?.product_id().to_owned();
        let q = &mut self.queue;
        let queue = q.by_pool.entry(product.clone()).or_default();
        if queue.len() >= MAX_WAITERS_PER_POOL {
            return Err(reason);
        }
        q.next_id += 1;
        let id = WaiterId(q.next_id);
        let deadline = now.plus(wait);
        queue.push_back(Waiter {
            id,
            req,
            since: now,
            deadline,
            reason,
            ticket,
        });
        let position = queue.len();
        q.pool_of.insert(id, product);
        q.deadlines.insert((deadline, id));
        Ok(Queued { id, position })
    }

    /// The queued borrow that carries `ticket`'s key (a retry of a borrow that is
    /// still waiting), if any. A different request under the same key is refused.
    pub fn waiter_with_key(
        &self,
        ticket: &IdempotencyTicket,
    ) -> Result<Option<Queued>, DomainError> {
        for queue in self.queue.by_pool.values() {
            for (i, w) in queue.iter().enumerate() {
                if let Some(t) = &w.ticket
                    && t.key == ticket.key
                {
                    if t.fingerprint != ticket.fingerprint {
                        return Err(DomainError::IdempotencyKeyReused);
                    }
                    return Ok(Some(Queued {
                        id: w.id,
                        position: i + 1,
                    }));
                }
            }
        }
        Ok(None)
    }

    /// Moves a waiter's deadline (a retry that takes over a waiting borrow waits as
    /// long as the retry asks).
    pub fn rewait(&mut self, id: WaiterId, wait: Duration, now: Timestamp) {
        let q = &mut self.queue;
        let Some(product) = q.pool_of.get(&id) else {
            return;
        };
        if let Some(w) = q
            .by_pool
            .get_mut(product)
            .and_then(|queue| queue.iter_mut().find(|w| w.id == id))
        {
            q.deadlines.remove(&(w.deadline, id));
            w.deadline = now.plus(wait);
            q.deadlines.insert((w.deadline, id));
        }
    }

    /// Removes a waiter (its client went away). Returns whether it was queued.
    pub fn cancel_waiter(&mut self, id: WaiterId) -> bool {
        self.queue.remove(id).is_some()
    }

    /// Drops every waiter for which `live` says no.
    pub fn retain_waiters(&mut self, mut live: impl FnMut(WaiterId) -> bool) {
        let gone: Vec<WaiterId> = self
            .queue
            .pool_of
            .keys()
            .copied()
            .filter(|id| !live(*id))
            .collect();
        for id in gone {
            self.queue.remove(id);
        }
    }

    /// Whether any borrow is waiting.
    pub fn has_waiters(&self) -> bool {
        !self.queue.pool_of.is_empty()
    }

    /// Hands free seats to waiters, head of each queue first. Waiters for which `live`
    /// says no are dropped without a seat.
    pub fn serve_waiters(
        &mut self,
        now: Timestamp,
        mut live: impl FnMut(WaiterId) -> bool,
    ) -> Vec<(WaiterId, Served)> {
        let mut out = Vec::new();
        let mut pools: Vec<String> = self.queue.by_pool.keys().cloned().collect();
        pools.sort();
        for product in pools {
            while let Some(head) = self.queue.by_pool.get(&product).and_then(|q| q.front()) {
                if !live(head.id) {
                    self.queue.pop_head(&product);
                    continue;
                }
                let (req, ticket) = (head.req.clone(), head.ticket.clone());
                match self.borrow_idempotent(&req, ticket.as_ref(), now) {
                    Ok((grant, effects)) => {
                        if let Some(w) = self.queue.pop_head(&product) {
                            out.push((w.id, Served::Granted(Box::new(grant), effects)));
                        }
                    }
                    // Still no seat: the head keeps its place, and nobody behind it
                    // may pass.
                    Err(e) if is_queueable(&e) => break,
                    Err(e) => {
                        if let Some(w) = self.queue.pop_head(&product) {
                            out.push((w.id, Served::Refused(e)));
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
        let due: Vec<WaiterId> = self
            .queue
            .deadlines
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
            .collect();
        let mut out = Vec::with_capacity(due.len());
        for id in due {
            if let Some(w) = self.queue.remove(id) {
                out.push((id, w.reason, w.req));
            }
        }
        out
    }

    /// The earliest waiter deadline.
    pub fn next_waiter_deadline(&self) -> Option<Timestamp> {
        self.queue.deadlines.first().map(|(at, _)| *at)
    }

    /// The queue of one pool, head first, and the pool's tool name.
    pub fn queue_of(&self, tool: &str) -> Result<(String, Vec<QueueEntry>), DomainError> {
        let pool = self.pool(tool)?;
        let entries = self
            .queue
            .by_pool
            .get(pool.product_id())
            .map(|q| {
                q.iter()
                    .enumerate()
                    .map(|(i, w)| QueueEntry {
                        position: i + 1,
                        user: w.req.user.clone(),
                        since: w.since,
                        reference: w.ticket.as_ref().map(|t| t.key.reference()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok((pool.name().to_owned(), entries))
    }

    /// The earliest instant at which something is due: a lease expiry, a waiter's
    /// deadline, or old idempotency keys to forget.
    pub fn next_due(&self) -> Option<Timestamp> {
        [
            self.next_expiry(),
            self.next_waiter_deadline(),
            self.next_key_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}
