//! States of idle tenants, kept for fan-out reads.
//!
//! Idle tenants are not activated just to answer a read: fan-out reads their state
//! from storage and keeps it here until the tenant is activated. That is exact because
//! only a tenant's actor mutates its state, and an idle tenant has no actor: its stored
//! state cannot change until it is activated, and activation drops the cached copy.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use permetrix_storage::TenantId;

use crate::domain::TenantState;
use crate::placement::TenantHasher;

/// States of idle tenants, read from storage by fan-out queries.
///
/// An entry is valid while its tenant has no actor. Activation (and deactivation)
/// calls [`IdleCache::invalidate`]; a read that raced with one is not cached (see
/// [`IdleCache::insert`]).
#[derive(Default)]
pub(crate) struct IdleCache {
    states: DashMap<TenantId, Arc<TenantState>, TenantHasher>,
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

    pub(crate) fn get(&self, tenant: &TenantId) -> Option<Arc<TenantState>> {
        self.states.get(tenant).map(|s| Arc::clone(s.value()))
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Caches `state`, read after [`IdleCache::epoch`] returned `epoch`, unless a
    /// tenant was activated or deactivated since: the read may then predate writes of
    /// that tenant's actor.
    pub(crate) fn insert(&self, tenant: TenantId, state: Arc<TenantState>, epoch: u64) {
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
    pub(crate) fn len(&self) -> usize {
        self.states.len()
    }
}
