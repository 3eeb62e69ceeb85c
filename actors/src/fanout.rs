//! Scatter/gather over many tenants with a deadline.
//!
//! Active tenants are asked through their mailbox, concurrently: their actor owns the
//! live counts. Idle tenants are not activated just to answer a read: their state is
//! read from storage, on blocking threads spread over the cores, and kept in an
//! [`IdleCache`] until the tenant is activated. That is exact because only a tenant's
//! actor mutates its state, and an idle tenant has no actor: its stored state cannot
//! change until it is activated, and activation drops the cached copy. A tenant that
//! does not answer by the deadline is reported as [`TenantError::Timeout`]; the others
//! still return.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use futures_util::StreamExt;
use futures_util::future::Either;
use futures_util::stream::FuturesUnordered;
use permetrix_storage::{TenantId, Timestamp};

use crate::TenantError;
use crate::domain::{TenantSnapshot, TenantState};
use crate::messages::Snapshot;
use crate::registry::Registry;

/// One tenant's answer, by its position in the request.
type Answer = (usize, Result<TenantSnapshot, TenantError>);

/// Fewest idle tenants one blocking storage reader is given: below this, spreading the
/// reads costs more in thread hand-offs than it saves.
const MIN_READ_CHUNK: usize = 64;

/// States of idle tenants, read from storage by fan-out queries.
///
/// An entry is valid while its tenant has no actor. Activation (and deactivation)
/// calls [`IdleCache::invalidate`]; a read that raced with one is not cached (see
/// [`IdleCache::insert`]).
#[derive(Default)]
pub(crate) struct IdleCache {
    states: DashMap<TenantId, Arc<TenantState>>,
    /// Bumped by every activation and deactivation.
    epoch: AtomicU64,
}

impl IdleCache {
    /// Drops the tenant's cached state. Call after its actor is registered (or gone).
    pub(crate) fn invalidate(&self, tenant: &TenantId) {
        // Bump before removing: a reader that checks the epoch under the entry lock
        // either sees the bump or has inserted before our removal.
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.states.remove(tenant);
    }

    fn get(&self, tenant: &TenantId) -> Option<Arc<TenantState>> {
        self.states.get(tenant).map(|s| Arc::clone(s.value()))
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Caches `state`, read after [`IdleCache::epoch`] returned `epoch`, unless a
    /// tenant was activated or deactivated since: the read may then predate writes of
    /// that tenant's actor.
    fn insert(&self, tenant: TenantId, state: Arc<TenantState>, epoch: u64) {
        // The epoch is checked under the entry's shard lock, which `invalidate`'s
        // removal also takes: no stale insert can land after an invalidation.
        match self.states.entry(tenant) {
            Entry::Occupied(mut e) if self.epoch() == epoch => {
                e.insert(state);
            }
            Entry::Vacant(e) if self.epoch() == epoch => {
                e.insert(state);
            }
            _ => {}
        }
    }

    /// Number of cached tenants.
    fn len(&self) -> usize {
        self.states.len()
    }
}

impl Registry {
    /// Live snapshots of `tenants`, in the order given. Each tenant that has not
    /// answered by `deadline` is [`TenantError::Timeout`].
    pub async fn snapshots(
        &self,
        tenants: &[TenantId],
        deadline: Duration,
    ) -> Vec<(TenantId, Result<TenantSnapshot, TenantError>)> {
        let until = tokio::time::Instant::now() + deadline;
        let now = self.clock().now();
        let mut answers: Vec<Option<Result<TenantSnapshot, TenantError>>> =
            std::iter::repeat_with(|| None)
                .take(tenants.len())
                .collect();
        let mut pending = FuturesUnordered::new();
        let mut cold = Vec::new();
        for (i, tenant) in tenants.iter().enumerate() {
            if self.is_active(tenant) {
                pending.push(Either::Left(async move {
                    vec![(i, self.send(tenant, Snapshot).await)]
                }));
            } else if let Some(state) = self.idle_cache().get(tenant) {
                answers[i] = Some(Ok(state.snapshot(now)));
            } else {
                cold.push((i, tenant.clone()));
            }
        }
        let readers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = cold.len().div_ceil(readers).max(MIN_READ_CHUNK);
        let mut cold = cold.into_iter().peekable();
        while cold.peek().is_some() {
            let batch: Vec<(usize, TenantId)> = cold.by_ref().take(chunk).collect();
            pending.push(Either::Right(self.read_idle(batch, now)));
        }
        let gather = async {
            while let Some(batch) = pending.next().await {
                for (i, answer) in batch {
                    answers[i] = Some(answer);
                }
            }
        };
        // Past the deadline the unanswered asks are dropped; the actors' replies (and
        // storage reads, which still fill the cache) go nowhere.
        let _ = tokio::time::timeout_at(until, gather).await;
        tenants
            .iter()
            .cloned()
            .zip(
                answers
                    .into_iter()
                    .map(|a| a.unwrap_or(Err(TenantError::Timeout))),
            )
            .collect()
    }

    /// Number of idle tenants whose state fan-out holds in memory.
    pub fn idle_cached(&self) -> usize {
        self.idle_cache().len()
    }

    /// Reads idle tenants from storage on a blocking thread (the reads are
    /// synchronous and must not stall the caller's event loop).
    async fn read_idle(&self, batch: Vec<(usize, TenantId)>, now: Timestamp) -> Vec<Answer> {
        let registry = self.clone();
        let positions: Vec<usize> = batch.iter().map(|(i, _)| *i).collect();
        let read = tokio::task::spawn_blocking(move || {
            batch
                .into_iter()
                .map(|(i, tenant)| (i, registry.load_idle(tenant, now)))
                .collect()
        });
        match read.await {
            Ok(answers) => answers,
            Err(e) => {
                tracing::error!(error = %e, "fan-out storage reader failed");
                positions
                    .into_iter()
                    .map(|i| {
                        (
                            i,
                            Err(TenantError::Unavailable(
                                "reading its state from storage failed",
                            )),
                        )
                    })
                    .collect()
            }
        }
    }

    fn load_idle(&self, tenant: TenantId, now: Timestamp) -> Result<TenantSnapshot, TenantError> {
        let epoch = self.idle_cache().epoch();
        let state = self.idle_state(&tenant)?;
        let snapshot = state.snapshot(now);
        self.idle_cache().insert(tenant, Arc::new(state), epoch);
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests;
