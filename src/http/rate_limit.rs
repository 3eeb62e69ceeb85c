//! A keyed rate limiter with fixed memory.
//!
//! Each key is hashed (with a per-process random seed, so clients cannot aim at one
//! slot) into one of a fixed number of slots; each slot is a GCRA token bucket held in
//! a single `AtomicI64` (its "theoretical arrival time"). Memory never grows with the
//! number of keys: a flood of distinct keys only makes keys that share a slot share
//! their allowance, which errs on the side of refusing. Time comes from the caller
//! (`now` in unix milliseconds) so that the limiter follows the server's clock.
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// An allowance: `burst` requests at once, then one every `every`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed back to back.
    pub burst: u32,
    /// Time to earn one more request.
    pub every: Duration,
}

impl Rate {
    /// `burst` at once, then one every `every`.
    pub const fn new(burst: u32, every: Duration) -> Self {
        Rate { burst, every }
    }
}

/// Token buckets for many keys in bounded memory.
pub struct KeyedLimiter {
    /// Theoretical arrival time of each slot, unix ms.
    slots: Box<[AtomicI64]>,
    hasher: RandomState,
    /// Milliseconds per request.
    interval: i64,
    /// How far ahead of `now` a slot's arrival time may run (the burst).
    tolerance: i64,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl KeyedLimiter {
    /// A limiter with `slots` buckets (rounded up to at least 1) allowing `rate` per key.
    pub fn new(rate: Rate, slots: usize) -> Self {
        let interval = millis(rate.every).max(1);
        KeyedLimiter {
            slots: (0..slots.max(1)).map(|_| AtomicI64::new(0)).collect(),
            hasher: RandomState::new(),
            interval,
            tolerance: interval.saturating_mul(i64::from(rate.burst.max(1)) - 1),
        }
    }

    /// Takes one request of `key`'s allowance at `now_ms`; `Err(wait)` if it is spent,
    /// with how long until the next request would be allowed.
    pub fn check(&self, key: impl Hash, now_ms: i64) -> Result<(), Duration> {
        let index = self.hasher.hash_one(key) as usize % self.slots.len();
        let slot = &self.slots[index];
        let mut tat = slot.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now_ms);
            if start - now_ms > self.tolerance {
                let wait = start - now_ms - self.tolerance;
                return Err(Duration::from_millis(u64::try_from(wait).unwrap_or(0)));
            }
            match slot.compare_exchange_weak(
                tat,
                start.saturating_add(self.interval),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(current) => tat = current,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_burst_then_one_per_interval() {
        let l = KeyedLimiter::new(Rate::new(3, Duration::from_secs(1)), 64);
        let t = 1_000_000;
        for _ in 0..3 {
            assert_eq!(l.check("a", t), Ok(()));
        }
        assert_eq!(l.check("a", t), Err(Duration::from_secs(1)));
        assert_eq!(l.check("a", t + 400), Err(Duration::from_millis(600)));
        assert_eq!(l.check("a", t + 1000), Ok(()));
        assert!(l.check("a", t + 1000).is_err());
        // After a long pause the full burst is back, and no more.
        for _ in 0..3 {
            assert_eq!(l.check("a", t + 60_000), Ok(()));
        }
        assert!(l.check("a", t + 60_000).is_err());
    }

    #[test]
    fn keys_have_their_own_allowance() {
        let l = KeyedLimiter::new(Rate::new(1, Duration::from_secs(10)), 1 << 16);
        assert_eq!(l.check("a", 0), Ok(()));
        assert!(l.check("a", 0).is_err());
        // With 65536 slots, two fixed keys collide with probability 1/65536.
        assert_eq!(l.check("b", 0), Ok(()));
    }

    #[test]
    fn memory_is_fixed_whatever_the_number_of_keys() {
        let l = KeyedLimiter::new(Rate::new(2, Duration::from_secs(1)), 8);
        for k in 0..10_000u32 {
            let _ = l.check(k, 0);
        }
        assert_eq!(l.slots.len(), 8);
        // Every slot is now spent: a flood errs on the side of refusing.
        assert!(l.check("fresh", 0).is_err());
    }
}
