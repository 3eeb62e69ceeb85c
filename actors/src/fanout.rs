//! Scatter/gather over many tenants with a deadline.
//!
//! Active tenants are asked through their mailbox: their actor owns the live counts.
//! The asks are scattered per arbiter: one gatherer task runs on each arbiter thread,
//! posts a snapshot message to each of its tenants (through admission, like any
//! message) and hands back their answers in one batch. The actors put their answers
//! in a shared sink rather than replying, so an ask costs no reply channel and no
//! future, and everything but the batch stays on the arbiter's thread (a wake-up
//! there is a queue push) instead of two cross-thread wake-ups per tenant.
//!
//! Idle tenants are not activated just to answer a read: their state is read from
//! storage, on blocking threads spread over the cores, and kept in the registry's idle
//! cache (`idle_cache`, which says why that is exact) until the tenant is activated.
//! Leases that lapsed meanwhile are expired in that copy (not in storage) before it
//! answers, so a view never counts a seat that a lapsed lease no longer holds.
//! Tenants owned by other brokers of a shared store are read the same way, from
//! committed state, with no activation and no acquisition, and never cached: their
//! owner may write them at any time.
//!
//! A tenant that does not answer by the deadline is reported as
//! [`TenantError::Timeout`]; the others still return. A gatherer hands in what it has
//! at the deadline; the caller waits [`DELIVERY_GRACE`] longer for the batches (an
//! arbiter whose thread is blocked never delivers: its tenants time out).
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::Either;
use futures_util::stream::FuturesUnordered;
use permetrix_storage::{TenantId, Timestamp};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::TenantError;
use crate::domain::{TenantSnapshot, TenantState};
use crate::handling::{TenantCx, TenantMessage};
use crate::registry::Registry;
use crate::reply::Reply;

/// One tenant's answer, by its position in the request.
type Answer = (usize, Result<TenantSnapshot, TenantError>);

/// What one gatherer or storage reader hands in: answers, and the tenants whose actor
/// stopped before it was asked (passivated meanwhile), to be read from storage.
struct Gathered {
    answers: Vec<Answer>,
    inactive: Vec<(usize, TenantId)>,
}

/// Fewest idle tenants one blocking storage reader is given: below this, spreading the
/// reads costs more in thread hand-offs than it saves.
const MIN_READ_CHUNK: usize = 64;

/// How long after the deadline the caller still waits for batches handed in at the
/// deadline.
pub const DELIVERY_GRACE: Duration = Duration::from_millis(100);

impl Registry {
    /// Live snapshots of `tenants`, in the order given. Each tenant that has not
    /// answered by `deadline` is [`TenantError::Timeout`].
    pub async fn snapshots(
        &self,
        tenants: &[TenantId],
        deadline: Duration,
    ) -> Vec<(TenantId, Result<TenantSnapshot, TenantError>)> {
        let until = Instant::now() + deadline;
        let now = self.clock().now();
        let pool = self.arbiter_pool();
        let mut active: Vec<Vec<(usize, TenantId)>> = vec![Vec::new(); pool.len()];
        let mut idle = Vec::new();
        for (i, tenant) in tenants.iter().enumerate() {
            if self.is_active(tenant) {
                active[pool.slot_of(tenant)].push((i, tenant.clone()));
            } else {
                idle.push((i, tenant.clone()));
            }
        }

        let mut pending = FuturesUnordered::new();
        for (slot, batch) in active.into_iter().enumerate() {
            if !batch.is_empty() {
                pending.push(Either::Left(self.ask_on_arbiter(slot, batch, until)));
            }
        }
        let readers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = idle.len().div_ceil(readers).max(MIN_READ_CHUNK);
        let mut idle = idle.into_iter().peekable();
        while idle.peek().is_some() {
            let batch: Vec<(usize, TenantId)> = idle.by_ref().take(chunk).collect();
            pending.push(Either::Right(self.read_idle(batch, now)));
        }

        // Every tenant is a timeout until its answer arrives.
        let mut answers: Vec<(TenantId, Result<TenantSnapshot, TenantError>)> = tenants
            .iter()
            .map(|t| (t.clone(), Err(TenantError::Timeout)))
            .collect();
        let gather = async {
            while let Some(batch) = pending.next().await {
                for (i, answer) in batch.answers {
                    answers[i].1 = answer;
                }
                if !batch.inactive.is_empty() {
                    pending.push(Either::Right(self.read_idle(batch.inactive, now)));
                }
            }
        };
        // Storage reads still running past this point are not waited for (they still
        // fill the cache for the next query).
        let _ = tokio::time::timeout_at(until + DELIVERY_GRACE, gather).await;
        answers
    }

    /// Number of idle tenants whose state fan-out holds in memory.
    pub fn idle_cached(&self) -> usize {
        self.idle_cache().len()
    }

    /// Reads idle tenants into the fan-out cache in the background, on one blocking
    /// thread, so that the first fan-out after a start does not wait for storage.
    /// Tenants that are active or cached already are skipped; with a store shared by
    /// several brokers nothing is cached, so nothing is read.
    pub fn warm_idle(&self, tenants: Vec<TenantId>) {
        if self.shared_store() {
            return;
        }
        let registry = self.clone();
        // Detached: if it fails, the first fan-out reads those tenants itself.
        drop(tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let mut loaded = 0usize;
            for tenant in tenants {
                let cache = registry.idle_cache();
                if registry.is_active(&tenant) || cache.get(&tenant).is_some() {
                    continue;
                }
                let epoch = cache.epoch();
                match registry.idle_state(&tenant) {
                    Ok(state) => {
                        cache.insert(tenant, Arc::new(state), epoch);
                        loaded += 1;
                    }
                    Err(e) => {
                        tracing::warn!(tenant = %tenant, error = %e, "warming the fan-out cache: read failed");
                    }
                }
            }
            tracing::info!(
                tenants = loaded,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "fan-out cache warmed"
            );
        }));
    }

    /// Asks the active tenants of one arbiter, from a gatherer on that arbiter.
    async fn ask_on_arbiter(
        &self,
        slot: usize,
        batch: Vec<(usize, TenantId)>,
        until: Instant,
    ) -> Gathered {
        let positions: Vec<usize> = batch.iter().map(|(i, _)| *i).collect();
        let (tx, rx) = oneshot::channel();
        let registry = self.clone();
        let gatherer = async move {
            let sink = Arc::new(Sink::new(batch.len()));
            let mut refused = Vec::new();
            let mut inactive = Vec::new();
            for (i, tenant) in batch {
                let ask = SnapshotInto {
                    position: i,
                    sink: Some(Arc::clone(&sink)),
                };
                match registry.post(&tenant, ask) {
                    Ok(true) => {}
                    Ok(false) => inactive.push((i, tenant)),
                    Err(e) => refused.push((i, Err(e))),
                }
            }
            // Hand in what has arrived by the deadline; the rest count as timeouts.
            let _ = tokio::time::timeout_at(until, sink.all_answered()).await;
            let mut answers = sink.take();
            // A refused or unsent ask also left an `Unavailable` in the sink (its
            // message was dropped): the precise error (or the storage read of an
            // inactive tenant) comes later and wins.
            answers.extend(refused);
            let _ = tx.send(Gathered { answers, inactive });
        };
        let spawned = self
            .arbiter_pool()
            .handle(slot)
            .is_some_and(|arbiter| arbiter.spawn(gatherer));
        match rx.await {
            Ok(gathered) => gathered,
            Err(_) => {
                if !spawned {
                    tracing::error!(slot, "fan-out could not reach an arbiter; is it stopped?");
                }
                unavailable(positions, "its arbiter thread is not running")
            }
        }
    }

    /// Snapshots of idle tenants, from the cache or storage, on a blocking thread (the
    /// reads are synchronous and must not stall the caller's event loop).
    async fn read_idle(&self, batch: Vec<(usize, TenantId)>, now: Timestamp) -> Gathered {
        let registry = self.clone();
        let positions: Vec<usize> = batch.iter().map(|(i, _)| *i).collect();
        let read = tokio::task::spawn_blocking(move || {
            batch
                .into_iter()
                .map(|(i, tenant)| (i, registry.idle_snapshot(tenant, now)))
                .collect()
        });
        match read.await {
            Ok(answers) => Gathered {
                answers,
                inactive: Vec::new(),
            },
            Err(e) => {
                tracing::error!(error = %e, "fan-out storage reader failed");
                unavailable(positions, "reading its state from storage failed")
            }
        }
    }

    fn idle_snapshot(
        &self,
        tenant: TenantId,
        now: Timestamp,
    ) -> Result<TenantSnapshot, TenantError> {
        let shared_store = self.shared_store();
        let epoch = self.idle_cache().epoch();
        // With a shared store another broker may own the tenant and write it at any
        // time: committed state, read now, never cached.
        let cached = (!shared_store)
            .then(|| self.idle_cache().get(&tenant))
            .flatten();
        let (state, mut changed) = match cached {
            Some(state) => (state, false),
            None => (Arc::new(self.idle_state(&tenant)?), !shared_store),
        };
        // Leases of an idle tenant may have lapsed while nobody asked (the server was
        // down, say): they hold no seat, though storage still has them until the
        // tenant's actor expires them. Expire them in the copy this view reads (and
        // caches: expiry only moves forward), never in storage.
        let state = if state.next_expiry().is_some_and(|at| at <= now) {
            let mut current = TenantState::clone(&state);
            let _ = current.expire(now);
            changed = !shared_store;
            Arc::new(current)
        } else {
            state
        };
        let snapshot = state.snapshot(now);
        if changed {
            self.idle_cache().insert(tenant, state, epoch);
        }
        Ok(snapshot)
    }
}

/// Where the actors of one arbiter put their answers. Every ask ends in exactly one
/// answer: its snapshot, or `Unavailable` if its message was dropped unhandled.
struct Sink {
    answers: Mutex<Vec<Answer>>,
    remaining: AtomicUsize,
    done: Notify,
}

impl Sink {
    fn new(asks: usize) -> Self {
        Sink {
            answers: Mutex::new(Vec::with_capacity(asks)),
            remaining: AtomicUsize::new(asks),
            done: Notify::new(),
        }
    }

    fn put(&self, answer: Answer) {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(answer);
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
    }

    async fn all_answered(&self) {
        while self.remaining.load(Ordering::Acquire) > 0 {
            self.done.notified().await;
        }
    }

    fn take(&self) -> Vec<Answer> {
        std::mem::take(&mut *self.answers.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Snapshot message of a fan-out: the actor puts its answer in the sink instead of
/// replying, so that a gatherer needs no reply channel and no future per tenant.
struct SnapshotInto {
    position: usize,
    /// Taken when answered; still here when dropped unhandled.
    sink: Option<Arc<Sink>>,
}

impl TenantMessage for SnapshotInto {
    type Reply = ();
    const KIND: &'static str = "snapshot";
    fn handle(mut self, cx: &mut TenantCx<'_>) -> Reply<()> {
        // Computed first: if it panicked, the drop below would still answer.
        let snapshot = cx.state.snapshot(cx.now);
        if let Some(sink) = self.sink.take() {
            sink.put((self.position, Ok(snapshot)));
        }
        Reply::ready(Ok(()))
    }
}

impl Drop for SnapshotInto {
    fn drop(&mut self) {
        // Refused at admission, mailbox closed, actor restarting or panicking.
        if let Some(sink) = self.sink.take() {
            sink.put((
                self.position,
                Err(TenantError::Unavailable(
                    "it did not handle the snapshot request",
                )),
            ));
        }
    }
}

fn unavailable(positions: Vec<usize>, why: &'static str) -> Gathered {
    Gathered {
        answers: positions
            .into_iter()
            .map(|i| (i, Err(TenantError::Unavailable(why))))
            .collect(),
        inactive: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
