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

use permetrix_storage::Timestamp;
use serde::Serialize;

use super::DomainError;
use super::borrow::{BorrowRequest, Grant};
use super::effects::Effects;
use super::idempotency::IdempotencyTicket;
use super::input::WaitSeconds;
use super::views::ser_time;

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

    /// Queues a refused borrow for `product`'s pool for up to `wait`; a full queue
    /// gives back `reason` as the error.
    pub(crate) fn push(
        &mut self,
        product: String,
        req: BorrowRequest,
        reason: DomainError,
        wait: WaitSeconds,
        ticket: Option<IdempotencyTicket>,
        now: Timestamp,
    ) -> Result<Queued, DomainError> {
        let queue = self.by_pool.entry(product.clone()).or_default();
        if queue.len() >= MAX_WAITERS_PER_POOL {
            return Err(reason);
        }
        self.next_id += 1;
        let id = WaiterId(self.next_id);
        let deadline = now.plus(wait.as_duration());
        queue.push_back(Waiter {
            id,
            req,
            since: now,
            deadline,
            reason,
            ticket,
        });
        let position = queue.len();
        self.pool_of.insert(id, product);
        self.deadlines.insert((deadline, id));
        Ok(Queued { id, position })
    }

    /// The queued borrow that carries `ticket`'s key, if any. A different request
    /// under the same key is refused.
    pub(crate) fn with_key(
        &self,
        ticket: &IdempotencyTicket,
    ) -> Result<Option<Queued>, DomainError> {
        for queue in self.by_pool.values() {
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

    /// Moves a waiter's deadline to `wait` from `now`.
    pub(crate) fn rewait(&mut self, id: WaiterId, wait: WaitSeconds, now: Timestamp) {
        let Some(product) = self.pool_of.get(&id) else {
            return;
        };
        if let Some(w) = self
            .by_pool
            .get_mut(product)
            .and_then(|queue| queue.iter_mut().find(|w| w.id == id))
        {
            self.deadlines.remove(&(w.deadline, id));
            w.deadline = now.plus(wait.as_duration());
            self.deadlines.insert((w.deadline, id));
        }
    }

    /// Drops every waiter for which `live` says no.
    pub(crate) fn retain(&mut self, mut live: impl FnMut(WaiterId) -> bool) {
        let gone: Vec<WaiterId> = self
            .pool_of
            .keys()
            .copied()
            .filter(|id| !live(*id))
            .collect();
        for id in gone {
            self.remove(id);
        }
    }

    /// Whether no borrow is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.pool_of.is_empty()
    }

    /// Product ids of the pools that have waiters, in a fixed order.
    pub(crate) fn pools(&self) -> Vec<String> {
        let mut pools: Vec<String> = self.by_pool.keys().cloned().collect();
        pools.sort();
        pools
    }

    /// The head of `product`'s queue: its id, request and key.
    pub(crate) fn head(
        &self,
        product: &str,
    ) -> Option<(WaiterId, &BorrowRequest, Option<&IdempotencyTicket>)> {
        let w = self.by_pool.get(product)?.front()?;
        Some((w.id, &w.req, w.ticket.as_ref()))
    }

    /// Removes the head of `product`'s queue; returns its id.
    pub(crate) fn pop_head(&mut self, product: &str) -> Option<WaiterId> {
        let queue = self.by_pool.get_mut(product)?;
        let waiter = queue.pop_front()?;
        if queue.is_empty() {
            self.by_pool.remove(product);
        }
        self.pool_of.remove(&waiter.id);
        self.deadlines.remove(&(waiter.deadline, waiter.id));
        Some(waiter.id)
    }

    /// Removes waiters whose wait ran out by `now`; each with the refusal that made it
    /// queue, and its request.
    pub(crate) fn time_out(
        &mut self,
        now: Timestamp,
    ) -> Vec<(WaiterId, DomainError, BorrowRequest)> {
        let due: Vec<WaiterId> = self
            .deadlines
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
            .collect();
        let mut out = Vec::with_capacity(due.len());
        for id in due {
            if let Some(w) = self.remove(id) {
                out.push((id, w.reason, w.req));
            }
        }
        out
    }

    /// The earliest waiter deadline.
    pub(crate) fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// The queue of `product`'s pool, head first.
    pub(crate) fn listing(&self, product: &str) -> Vec<QueueEntry> {
        self.by_pool
            .get(product)
            .map(|q| {
                q.iter()
                    .enumerate()
                    .map(|(i, w)| QueueEntry {
                        position: i + 1,
                        user: w.req.user.as_str().to_owned(),
                        since: w.since,
                        reference: w.ticket.as_ref().map(|t| t.key.reference()),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Removes a waiter (its client went away). Returns whether it was queued.
    pub(crate) fn cancel(&mut self, id: WaiterId) -> bool {
        self.remove(id).is_some()
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
