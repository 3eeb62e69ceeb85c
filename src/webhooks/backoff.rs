//! When a failed delivery is tried again: exponential backoff from a base, doubled per
//! failure, capped, with jitter so that many endpoints failing together do not retry
//! together; and when to give up.
use std::time::Duration;

/// The first retry comes after about this long (`--webhooks-retry-base-ms`).
pub const DEFAULT_BASE: Duration = Duration::from_secs(10);
/// No retry waits longer than this.
pub const CAP: Duration = Duration::from_secs(3600);
/// A delivery failing for this long disables its endpoint.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The wait before the next attempt after `failures` failed ones (from 1):
/// `min(base * 2^(failures-1), cap)`, of which a random part in `[1/2, 1]` is taken.
/// `unit` is a random number in `[0, 1)`.
pub fn delay(base: Duration, failures: u32, unit: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(31);
    let full = base.saturating_mul(1 << exponent).min(CAP);
    full.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

/// A random number in `[0, 1)`.
pub fn jitter() -> f64 {
    let bytes: [u8; 8] = crate::auth::secrets::random_bytes();
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_base_up_to_the_cap_with_jitter_in_the_upper_half() {
        let s = Duration::from_secs;
        assert_eq!(delay(s(10), 1, 1.0), s(10));
        assert_eq!(delay(s(10), 1, 0.0), s(5));
        assert_eq!(delay(s(10), 4, 1.0), s(80));
        assert_eq!(delay(s(10), 12, 1.0), CAP);
        assert_eq!(delay(s(10), 500, 0.0), CAP / 2);
        for _ in 0..100 {
            let d = delay(s(10), 3, jitter());
            assert!(d >= s(20) && d <= s(40), "{d:?}");
        }
    }

    #[test]
    fn a_day_of_failures_is_some_thirty_attempts() {
        let mut waited = Duration::ZERO;
        let mut attempts = 1;
        while waited < GIVE_UP_AFTER {
            waited += delay(DEFAULT_BASE, attempts, 1.0);
            attempts += 1;
        }
        assert!((25..=40).contains(&attempts), "{attempts}");
    }
}
