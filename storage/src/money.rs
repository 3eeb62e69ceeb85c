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

    /// Parses a decimal amount (as sent in JSON), rounding to cents.
    pub fn from_decimal(value: f64) -> Result<Self, MoneyError> {
        if !value.is_finite() || !(0.0..1e13).contains(&value) {
            return Err(MoneyError::Invalid(value.to_string()));
        }
        // Bounded above, so the cast cannot saturate.
        Ok(Money((value * 100.0).round() as i64))
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
    fn decimals_round_to_cents() {
        assert_eq!(Money::from_decimal(500.0), Ok(Money::from_cents(50_000)));
        assert_eq!(Money::from_decimal(0.105), Ok(Money::from_cents(11)));
        assert_eq!(Money::from_cents(12_345).to_string(), "123.45");
        assert_eq!(Money::from_cents(12_345).as_decimal(), 123.45);
    }

    #[test]
    fn rejects_negative_and_non_finite() {
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e14] {
            assert!(Money::from_decimal(bad).is_err(), "{bad}");
        }
    }
}
