use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign};
use thiserror::Error;

/// An amount of money in cents (the currency is the vendor's; permetrix does not
/// convert). Integer cents keep sums exact; the JSON edge shows decimal numbers.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(i64);

/// Why an amount was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    /// Negative, not finite, or too large.
    #[error(
        "amount {0} is not valid: use a non-negative number below 10^13 with at most two decimals"
    )]
    Invalid(String),
    /// More than two decimals: refused rather than rounded, so that nobody is billed an
    /// amount they did not write.
    #[error("amount {0} has more than two decimals; amounts are whole cents, such as 12.34")]
    TooPrecise(String),
}

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(0);

    /// From whole cents.
    pub const fn from_cents(cents: i64) -> Self {
        Money(cents)
    }

    /// The amount in cents.
    pub const fn cents(self) -> i64 {
        self.0
    }

    /// Largest amount accepted, in whole units (10^13; in cents 10^15).
    pub const MAX_UNITS: f64 = 1e13;

    /// Parses a decimal amount (as sent in JSON): whole cents only. An amount with more
    /// than two decimals is refused, never rounded.
    pub fn from_decimal(value: f64) -> Result<Self, MoneyError> {
        if !value.is_finite() || !(0.0..Self::MAX_UNITS).contains(&value) {
            return Err(MoneyError::Invalid(value.to_string()));
        }
        let cents = (value * 100.0).round();
        // A JSON number with at most two decimals parses to the double nearest to
        // `cents / 100`, which is what the division gives (it is correctly rounded); a
        // few ulps of slack cover parsers that land one ulp off. Anything further away
        // had more decimals.
        if (cents / 100.0 - value).abs() > value.max(1.0) * 4.0 * f64::EPSILON {
            return Err(MoneyError::TooPrecise(value.to_string()));
        }
        // Bounded above, so the cast cannot saturate.
        Ok(Money(cents as i64))
    }

    /// The amount as a decimal number for JSON.
    pub fn as_decimal(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// Sum that saturates instead of overflowing.
    pub fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }

    /// Difference, floored at zero.
    pub fn saturating_sub(self, other: Money) -> Money {
        Money(self.0.saturating_sub(other.0).max(0))
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        self.saturating_add(rhs)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        *self = *self + rhs;
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_whole_cents() {
        assert_eq!(Money::from_decimal(500.0), Ok(Money::from_cents(50_000)));
        assert_eq!(Money::from_cents(12_345).to_string(), "123.45");
        assert_eq!(Money::from_cents(12_345).as_decimal(), 123.45);
        for (value, cents) in [
            (0.1, 10),
            (0.29, 29),
            (19.99, 1_999),
            (1_234_567.89, 123_456_789),
            (9_999_999_999_999.99, 999_999_999_999_999),
        ] {
            assert_eq!(Money::from_decimal(value), Ok(Money::from_cents(cents)));
        }
    }

    #[test]
    fn more_than_two_decimals_are_refused_not_rounded() {
        for bad in [0.001, 0.105, 12.345, 99.999, 1e12 + 0.125] {
            assert!(
                matches!(Money::from_decimal(bad), Err(MoneyError::TooPrecise(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_negative_and_non_finite() {
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e14] {
            assert!(Money::from_decimal(bad).is_err(), "{bad}");
        }
    }
}
