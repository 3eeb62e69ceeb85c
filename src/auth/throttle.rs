//! Slowing down repeated failed logins, per user and per client address.
//!
//! A key (a user on one host, or an address) may fail `free` times; from then on every
//! further failure blocks the key for twice as long as the previous one (1 s, 2 s,
//! 4 s, … up to `max_block`). While blocked, attempts are answered 429 without looking
//! at the password, so guessing costs the attacker time and the server nothing.
//! Failures are forgotten after `forget_after` without one. A successful login clears
//! its user's record (not its address's: one good account must not launder an
//! address's guesses at others).
//!
//! Like [`crate::http::rate_limit::KeyedLimiter`], keys hash into a fixed number of slots, so
//! memory is bounded; keys that share a slot share their failures.
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Copy, Default)]
struct Failures {
    count: u32,
    last_ms: i64,
    blocked_until_ms: i64,
}

/// Failure counts for many keys in bounded memory.
pub struct FailureThrottle {
    slots: Box<[Mutex<Failures>]>,
    hasher: RandomState,
    free: u32,
    max_block_ms: i64,
    forget_after_ms: i64,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl FailureThrottle {
    /// `free` failures without delay, then doubling blocks up to `max_block`.
    pub fn new(free: u32, max_block: Duration, forget_after: Duration, slots: usize) -> Self {
        FailureThrottle {
            slots: (0..slots.max(1))
                .map(|_| Mutex::new(Failures::default()))
                .collect(),
            hasher: RandomState::new(),
            free: free.max(1),
            max_block_ms: millis(max_block).max(1000),
            forget_after_ms: millis(forget_after),
        }
    }

    fn with_slot<R>(&self, key: impl Hash, f: impl FnOnce(&mut Failures) -> R) -> R {
        let index = self.hasher.hash_one(key) as usize % self.slots.len();
        // A poisoned lock only means another thread panicked mid-update of three
        // integers; the value is still usable.
        let mut slot = self.slots[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut slot)
    }

    /// How long `key` must still wait, if it is blocked at `now_ms`.
    pub fn blocked(&self, key: impl Hash, now_ms: i64) -> Option<Duration> {
        self.with_slot(key, |s| {
            (s.blocked_until_ms > now_ms).then(|| {
                Duration::from_millis(u64::try_from(s.blocked_until_ms - now_ms).unwrap_or(0))
            })
        })
    }

    /// Records a failed attempt of `key` at `now_ms`.
    pub fn failed(&self, key: impl Hash, now_ms: i64) {
        let (free, max_block, forget) = (self.free, self.max_block_ms, self.forget_after_ms);
        self.with_slot(key, |s| {
            if now_ms - s.last_ms > forget {
                s.count = 0;
            }
            s.count = s.count.saturating_add(1);
            s.last_ms = now_ms;
            if s.count >= free {
                let doublings = (s.count - free).min(30);
                let block = 1000i64.saturating_mul(1 << doublings).min(max_block);
                s.blocked_until_ms = now_ms.saturating_add(block);
            }
        });
    }

    /// Clears `key`'s failures (after a successful login of that user).
    pub fn clear(&self, key: impl Hash) {
        self.with_slot(key, |s| *s = Failures::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> FailureThrottle {
        FailureThrottle::new(3, Duration::from_secs(60), Duration::from_secs(3600), 1024)
    }

    #[test]
    fn blocks_double_after_the_free_failures() {
        let t = throttle();
        let now = 10_000_000;
        t.failed("u", now);
        t.failed("u", now);
        assert_eq!(t.blocked("u", now), None);
        t.failed("u", now);
        assert_eq!(t.blocked("u", now), Some(Duration::from_secs(1)));
        assert_eq!(t.blocked("u", now + 1000), None);
        t.failed("u", now + 1000);
        assert_eq!(t.blocked("u", now + 1000), Some(Duration::from_secs(2)));
        for i in 0..20 {
            t.failed("u", now + 2000 + i);
        }
        // Capped.
        assert_eq!(t.blocked("u", now + 2019), Some(Duration::from_secs(60)));
        assert_eq!(t.blocked("other", now), None);
    }

    #[test]
    fn clearing_and_forgetting_reset_the_count() {
        let t = throttle();
        for _ in 0..3 {
            t.failed("u", 0);
        }
        assert!(t.blocked("u", 0).is_some());
        t.clear("u");
        assert_eq!(t.blocked("u", 0), None);
        t.failed("u", 0);
        t.failed("u", 0);
        // An hour later the two old failures no longer count.
        t.failed("u", 3_600_001);
        assert_eq!(t.blocked("u", 3_600_001), None);
    }
}
