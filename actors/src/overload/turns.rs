//! Turns: how many of a tenant's requests may be in progress at once, and when that
//! limit applies (only while other tenants are active).
//!
//! A tenant alone on the server may have as many requests in progress as its mailbox
//! admits, so one build farm can use the whole machine. Once another tenant has sent a
//! request within [`SHARED_FOR`], every request takes one of its tenant's turns
//! (`RegistryConfig::tenant_concurrency`) from its admission until its write is
//! durable: a flooded tenant then keeps only that many requests' work queued in the
//! HTTP workers, the arbiters and the flush, ahead of its neighbours' requests
//! (BENCHMARKS.md, "Fair share under a flood").
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use permetrix_storage::Timestamp;
use tokio::sync::{AcquireError, Semaphore, SemaphorePermit};

/// How long after a request of another tenant the server counts as shared.
pub const SHARED_FOR: Duration = Duration::from_secs(1);

/// Default of `RegistryConfig::tenant_concurrency` (BENCHMARKS.md, "Fair share under a
/// flood": what it costs one tenant's throughput and saves its neighbours' latency).
pub const DEFAULT_TENANT_CONCURRENCY: usize = 8;

/// One tenant's turns. Fair: they are handed out in arrival order.
pub(crate) struct Turns(Semaphore);

impl Turns {
    /// `concurrency` turns (at least one).
    pub(crate) fn new(concurrency: usize) -> Self {
        Turns(Semaphore::new(concurrency.clamp(1, Semaphore::MAX_PERMITS)))
    }

    /// Waits for a turn; it is given back when the returned permit is dropped.
    pub(crate) async fn take(&self) -> Result<SemaphorePermit<'_>, AcquireError> {
        self.0.acquire().await
    }
}

/// Tracks which tenant sent the last request and when the sender last changed.
///
/// Two relaxed atomics, no lock: an occasional stale read only decides one request's
/// turn a moment early or late.
pub(crate) struct Sharing {
    /// Identity of the tenant that sent the last request.
    last_tenant: AtomicUsize,
    /// When (milliseconds, the registry's clock) a request came from a different tenant
    /// than the one before it; `i64::MIN`: never.
    last_change_ms: AtomicI64,
}

impl Default for Sharing {
    fn default() -> Self {
        Sharing {
            last_tenant: AtomicUsize::new(0),
            last_change_ms: AtomicI64::new(i64::MIN),
        }
    }
}

impl Sharing {
    /// Records a request of `tenant` (any identity that differs between tenants) at
    /// `now` and answers whether it must take a turn: whether another tenant sent one
    /// within [`SHARED_FOR`].
    pub(crate) fn note(&self, tenant: usize, now: Timestamp) -> bool {
        let now_ms = now.millis();
        // Read before writing: a tenant alone keeps the cache line shared.
        if self.last_tenant.load(Ordering::Relaxed) != tenant {
            self.last_tenant.store(tenant, Ordering::Relaxed);
            self.last_change_ms.store(now_ms, Ordering::Relaxed);
            return true;
        }
        let changed = self.last_change_ms.load(Ordering::Relaxed);
        // A clock that went back counts as "just now": sharing a little longer is safe.
        changed != i64::MIN && now_ms.saturating_sub(changed) < SHARED_FOR.as_millis() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_are_held_until_given_back() {
        let turns = Turns::new(0);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let first = turns.take().await.unwrap();
            assert!(turns.0.try_acquire().is_err(), "one turn only");
            drop(first);
            assert!(turns.take().await.is_ok());
        });
    }

    const WINDOW: i64 = SHARED_FOR.as_millis() as i64;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn a_tenant_alone_takes_no_turns() {
        let s = Sharing::default();
        // Its first request changes the sender (from nobody).
        assert!(s.note(1, at(0)));
        assert!(s.note(1, at(WINDOW - 1)));
        assert!(!s.note(1, at(WINDOW)));
        assert!(!s.note(1, at(WINDOW + 5_000)));
    }

    #[test]
    fn another_tenant_makes_every_tenant_take_turns_for_a_while() {
        let s = Sharing::default();
        s.note(1, at(0));
        assert!(!s.note(1, at(10_000)));
        assert!(s.note(2, at(10_001)));
        assert!(s.note(1, at(10_002)));
        assert!(s.note(1, at(10_002 + WINDOW - 1)));
        assert!(!s.note(1, at(10_002 + WINDOW)));
    }
}
