//! Borrowing and returning seats: the one borrow verb (which may wait in the queue,
//! and with an `Idempotency-Key` may be retried), the one return verb, and the queue
//! listing.
use permetrix_storage::BorrowId;
use permetrix_storage::records::IdempotentOutcome;
use tokio::sync::oneshot;

use crate::TenantError;
use crate::domain::{
    BorrowRequest, DomainError, Grant, IdempotencyKey, IdempotencyTicket, LeaseView, QueueEntry,
    TenantState, WaitSeconds, WaiterId,
};
use crate::handling::{TenantCx, TenantMessage};
use crate::reply::Reply;

/// Borrow a seat; if none is free and `wait` is not zero, wait in the pool's FIFO
/// queue for up to `wait`. With a key, a retry returns the original grant (or takes
/// over the original request's place in the queue) instead of taking a second seat.
#[derive(Debug)]
pub struct Borrow {
    /// What to borrow.
    pub req: BorrowRequest,
    /// How long to wait for a seat (zero: answer at once).
    pub wait: WaitSeconds,
    /// The request's `Idempotency-Key`.
    pub key: Option<IdempotencyKey>,
}

impl Borrow {
    /// A borrow answered at once (no wait, no key).
    pub fn now(req: BorrowRequest) -> Self {
        Borrow {
            req,
            wait: WaitSeconds::ZERO,
            key: None,
        }
    }
}

/// The answer to [`Borrow`].
#[derive(Debug)]
pub enum BorrowOutcome {
    /// A seat was granted now (and is durable).
    Granted(Grant),
    /// The key was used before: the original grant, as it was then.
    Replayed(LeaseView),
    /// Queued: await [`QueuedBorrow::granted`].
    Queued(QueuedBorrow),
}

impl BorrowOutcome {
    /// The grant of a borrow answered at once; `None` if it was replayed or queued.
    pub fn granted_now(self) -> Option<Grant> {
        match self {
            BorrowOutcome::Granted(grant) => Some(grant),
            BorrowOutcome::Replayed(_) | BorrowOutcome::Queued(_) => None,
        }
    }
}

/// A borrow waiting in the queue. Dropping it (the HTTP client went away) removes the
/// waiter: it is skipped and never granted.
#[derive(Debug)]
pub struct QueuedBorrow {
    /// The waiter.
    pub waiter: WaiterId,
    /// Position when queued, from 1.
    pub position: usize,
    rx: oneshot::Receiver<Result<Grant, TenantError>>,
}

impl QueuedBorrow {
    /// Waits for the outcome: a durable grant, or the refusal that made it queue once
    /// the wait runs out.
    pub async fn granted(self) -> Result<Grant, TenantError> {
        self.rx.await.unwrap_or(Err(TenantError::Unavailable(
            "it restarted while the borrow was queued",
        )))
    }
}

/// The original grant of a retried borrow. The key's fingerprint covers the offline
/// checkout, so the retry's request says whether the grant was one.
fn replayed(
    outcome: IdempotentOutcome,
    req: &BorrowRequest,
    state: &TenantState,
) -> Result<LeaseView, DomainError> {
    match outcome {
        IdempotentOutcome::Borrowed {
            id,
            tool,
            user,
            borrowed_at,
            lease_expires_at,
            is_overage,
        } => Ok(LeaseView {
            id,
            product_id: state
                .pool(&tool)
                .map_or_else(|_| tool.clone(), |p| p.product_id().to_owned()),
            tool,
            user,
            borrowed_at,
            lease_expires_at,
            is_overage,
            offline: req.offline.is_some(),
        }),
        IdempotentOutcome::Returned { .. } => Err(DomainError::IdempotencyKeyReused),
    }
}

impl TenantMessage for Borrow {
    type Reply = BorrowOutcome;
    const KIND: &'static str = "borrow";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<BorrowOutcome> {
        let now = cx.now;
        if let Some(nonce) = &self.req.nonce
            && let Err(replayed) = cx.state.claim_nonce(nonce, now)
        {
            return Reply::ready(Err(replayed.into()));
        }
        let ticket = self.key.map(|k| IdempotencyTicket::borrow(k, &self.req));
        if let Some(t) = &ticket {
            match cx.state.idempotent_outcome(t, now) {
                Err(e) => return Reply::ready(Err(e.into())),
                Ok(Some(outcome)) => {
                    return Reply::ready(
                        replayed(outcome, &self.req, cx.state)
                            .map(BorrowOutcome::Replayed)
                            .map_err(Into::into),
                    );
                }
                Ok(None) => {}
            }
            match cx.state.waiter_with_key(t) {
                Err(e) => return Reply::ready(Err(e.into())),
                Ok(Some(queued)) => {
                    // A retry of a borrow that is still queued (its first connection
                    // may be dead): it takes over the place in the queue.
                    let (tx, rx) = oneshot::channel();
                    if let Some(old) = cx.waiters.insert(queued.id, tx) {
                        let _ = old.send(Err(TenantError::Unavailable(
                            "a retry with the same Idempotency-Key took over this request",
                        )));
                    }
                    cx.state.rewait(queued.id, self.wait, now);
                    return Reply::ready(Ok(BorrowOutcome::Queued(QueuedBorrow {
                        waiter: queued.id,
                        position: queued.position,
                        rx,
                    })));
                }
                Ok(None) => {}
            }
        }
        match cx.state.borrow_idempotent(&self.req, ticket.as_ref(), now) {
            Ok((grant, effects)) => cx.commit(effects, BorrowOutcome::Granted(grant)),
            Err(refusal) => {
                match cx
                    .state
                    .enqueue(self.req.clone(), refusal, self.wait, ticket, now)
                {
                    Ok(queued) => {
                        // Dashboards show the wait queue live.
                        cx.publish(cx.state.queued_event(&self.req, now));
                        let (tx, rx) = oneshot::channel();
                        cx.waiters.insert(queued.id, tx);
                        Reply::ready(Ok(BorrowOutcome::Queued(QueuedBorrow {
                            waiter: queued.id,
                            position: queued.position,
                            rx,
                        })))
                    }
                    Err(e) => {
                        cx.denied(&self.req, &e);
                        Reply::ready(Err(e.into()))
                    }
                }
            }
        }
    }
}

/// Return a seat; with a key, a retry answers the original outcome.
#[derive(Debug)]
pub struct Return {
    /// The borrow.
    pub id: BorrowId,
    /// The request's `Idempotency-Key`.
    pub key: Option<IdempotencyKey>,
}

impl Return {
    /// A return without a key.
    pub fn of(id: BorrowId) -> Self {
        Return { id, key: None }
    }
}

/// The answer to [`Return`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnOutcome {
    /// Tool of the returned seat.
    pub tool: String,
    /// Whether this is the remembered outcome of an earlier request with the same key.
    pub replayed: bool,
}

impl TenantMessage for Return {
    type Reply = ReturnOutcome;
    const KIND: &'static str = "return";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<ReturnOutcome> {
        let now = cx.now;
        let ticket = self.key.map(|k| IdempotencyTicket::return_of(k, self.id));
        if let Some(t) = &ticket {
            match cx.state.idempotent_outcome(t, now) {
                Err(e) => return Reply::ready(Err(e.into())),
                Ok(Some(IdempotentOutcome::Returned { tool, .. })) => {
                    return Reply::ready(Ok(ReturnOutcome {
                        tool,
                        replayed: true,
                    }));
                }
                Ok(Some(IdempotentOutcome::Borrowed { .. })) => {
                    return Reply::ready(Err(DomainError::IdempotencyKeyReused.into()));
                }
                Ok(None) => {}
            }
        }
        match cx.state.return_idempotent(self.id, ticket.as_ref(), now) {
            Ok((returned, effects)) => cx.commit(
                effects,
                ReturnOutcome {
                    tool: returned.lease.tool,
                    replayed: false,
                },
            ),
            Err(e) => Reply::ready(Err(e.into())),
        }
    }
}

/// The queue of one tool.
#[derive(Debug)]
pub struct QueueOf(pub String);

/// A queue listing.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct QueueListing {
    /// Tool (product) name.
    pub tool: String,
    /// Waiters (live ones only).
    pub waiting: usize,
    /// Head first.
    pub queue: Vec<QueueEntry>,
}

impl TenantMessage for QueueOf {
    type Reply = QueueListing;
    const KIND: &'static str = "queue";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<QueueListing> {
        cx.state
            .queue_of(&self.0)
            .map(|(tool, queue)| QueueListing {
                tool,
                waiting: queue.len(),
                queue,
            })
            .into()
    }
}
