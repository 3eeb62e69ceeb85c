//! Lease expiry: an index of leases ordered by expiry, so that finding the due ones
//! and the next deadline costs O(log n) instead of a scan of every lease, and a memory
//! of recently expired leases, so that a late heartbeat or return is told that its
//! lease expired rather than that it never existed.
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use permetrix_storage::{BorrowId, Timestamp};

/// How long an expired lease is remembered (answers `lease_expired` instead of
/// `unknown_borrow`).
pub const EXPIRED_MEMORY: Duration = Duration::from_secs(24 * 3600);
/// At most this many expired leases are remembered per tenant; the oldest are
/// forgotten first.
const EXPIRED_MEMORY_MAX: usize = 100_000;

/// Active leases ordered by `(lease_expires_at, id)`.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExpiryIndex {
    by_time: BTreeSet<(Timestamp, BorrowId)>,
}

impl ExpiryIndex {
    pub(crate) fn insert(&mut self, at: Timestamp, id: BorrowId) {
        self.by_time.insert((at, id));
    }

    pub(crate) fn remove(&mut self, at: Timestamp, id: BorrowId) {
        self.by_time.remove(&(at, id));
    }

    /// The earliest expiry.
    pub(crate) fn next(&self) -> Option<Timestamp> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Leases expiring at or before `now`, earliest first.
    pub(crate) fn due(&self, now: Timestamp) -> Vec<BorrowId> {
        self.by_time
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.by_time.len()
    }
}

/// Leases that expired recently, with when.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExpiredLeases {
    at: HashMap<BorrowId, Timestamp>,
    order: VecDeque<(Timestamp, BorrowId)>,
}

impl ExpiredLeases {
    pub(crate) fn remember(&mut self, id: BorrowId, at: Timestamp) {
        if self.order.len() >= EXPIRED_MEMORY_MAX
            && let Some((_, old)) = self.order.pop_front()
        {
            self.at.remove(&old);
        }
        self.at.insert(id, at);
        self.order.push_back((at, id));
    }

    /// Forgets leases that expired more than [`EXPIRED_MEMORY`] before `now`.
    pub(crate) fn forget_old(&mut self, now: Timestamp) {
        let cutoff = Timestamp::from_millis(
            now.millis()
                .saturating_sub(i64::try_from(EXPIRED_MEMORY.as_millis()).unwrap_or(i64::MAX)),
        );
        while let Some(&(at, id)) = self.order.front() {
            if at >= cutoff {
                break;
            }
            self.order.pop_front();
            self.at.remove(&id);
        }
    }

    pub(crate) fn get(&self, id: &BorrowId) -> Option<Timestamp> {
        self.at.get(id).copied()
    }
}
