//! Input as the domain accepts it. The HTTP edge parses a request's fields into these
//! types once; the rules and the actors take the types, so each check is written here
//! and nowhere else. A parse error is what the client is told: a
//! [`DomainError::Invalid`] (400 `invalid_request`) whose text names the field and
//! says what to send instead.
use std::fmt;
use std::time::Duration;

use permetrix_storage::Money;

use super::DomainError;

/// Longest tool or user name accepted, in characters.
pub const MAX_NAME: usize = 256;

/// A text field: not empty, at most `max` characters, no control characters.
///
/// The rule for every free-text field of the API (names, notes, ids chosen by
/// vendors); the field name goes into the error.
pub fn text_field(field: &str, value: &str, max: usize) -> Result<String, DomainError> {
    if value.is_empty() {
        return Err(DomainError::Invalid(format!("{field} must not be empty")));
    }
    if value.chars().count() > max {
        return Err(DomainError::Invalid(format!(
            "{field} is longer than {max} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(DomainError::Invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(value.to_owned())
}

/// The name of a tool as a client gives it: a pool's product name or product id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ToolName(String);

impl ToolName {
    /// Parses the `tool` field (see [`text_field`]; at most [`MAX_NAME`] characters).
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        text_field("tool", value, MAX_NAME).map(ToolName)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Who borrows: a client's user name, stored with the lease.
///
/// Folded to lowercase here, once: `DevOne` and `devone` are one user, so per-user
/// limits hold whatever the case a client sends, and listings, events and the ledger
/// show the folded name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserName(String);

impl UserName {
    /// Parses the `user` field (see [`text_field`]; at most [`MAX_NAME`] characters),
    /// folded to lowercase.
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        text_field("user", &value.to_lowercase(), MAX_NAME).map(UserName)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The length of a lease: [`LeaseSeconds::MIN`] to [`LeaseSeconds::MAX`] seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseSeconds(u32);

impl LeaseSeconds {
    /// Shortest lease a client may ask for.
    pub const MIN: u32 = 30;
    /// Longest lease a client may ask for.
    pub const MAX: u32 = 86_400;
    /// Lease length when neither the request nor the tenant says otherwise.
    pub const DEFAULT: LeaseSeconds = LeaseSeconds(3_600);

    /// Parses a lease length sent in `field` (`lease_seconds` of a borrow,
    /// `default_lease_seconds` of the tenant's settings).
    pub fn parse(field: &str, secs: u32) -> Result<Self, DomainError> {
        if (Self::MIN..=Self::MAX).contains(&secs) {
            Ok(LeaseSeconds(secs))
        } else {
            Err(DomainError::Invalid(format!(
                "{field} must be between {} and {}",
                Self::MIN,
                Self::MAX
            )))
        }
    }

    /// A length read back from the tenant's stored settings, which were parsed when
    /// they were set.
    pub(crate) fn stored(secs: u32) -> Self {
        LeaseSeconds(secs)
    }

    /// Seconds.
    pub fn get(self) -> u32 {
        self.0
    }

    /// As a duration.
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(u64::from(self.0))
    }
}

/// How long a borrow may wait in the queue for a seat: 0 (answer at once) to
/// [`WaitSeconds::MAX`] seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WaitSeconds(u32);

impl WaitSeconds {
    /// Longest wait a borrow may ask for.
    pub const MAX: u32 = 300;
    /// No wait: the borrow is answered at once.
    pub const ZERO: WaitSeconds = WaitSeconds(0);

    /// Parses the `wait_seconds` of a borrow.
    pub fn parse(secs: u32) -> Result<Self, DomainError> {
        if secs <= Self::MAX {
            Ok(WaitSeconds(secs))
        } else {
            Err(DomainError::Invalid(format!(
                "wait_seconds must be between 0 and {}",
                Self::MAX
            )))
        }
    }

    /// Seconds.
    pub fn get(self) -> u32 {
        self.0
    }

    /// Whether the borrow is answered at once.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// As a duration.
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(u64::from(self.0))
    }
}

/// A number of seats in a package limit or a request for more: 0 to [`Seats::MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seats(u32);

impl Seats {
    /// Largest seat count accepted.
    pub const MAX: u32 = 1_000_000;

    /// Parses a seat count sent in `field` (JSON numbers arrive as `i64`, so a
    /// negative count is refused here with the same sentence).
    pub fn parse(field: &str, n: i64) -> Result<Self, DomainError> {
        u32::try_from(n)
            .ok()
            .filter(|&n| n <= Self::MAX)
            .map(Seats)
            .ok_or_else(|| {
                DomainError::Invalid(format!(
                    "{field} must be a whole number between 0 and {}",
                    Self::MAX
                ))
            })
    }

    /// A count read back from a stored record, which was parsed when it was stored.
    pub(crate) fn stored(n: u32) -> Self {
        Seats(n)
    }

    /// The count.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// Most a pool's overage seats may cost at once, `overage_price × max_overage`, in
/// cents (10^13 in whole units, the largest single amount). It keeps a month's sum of
/// charges about a thousand full pools away from the largest `i64`, where sums would
/// saturate.
pub const MAX_OVERAGE_EXPOSURE_CENTS: i128 = 1_000_000_000_000_000;

/// The bound of a package's prices: `overage_price × max_overage` at most
/// [`MAX_OVERAGE_EXPOSURE_CENTS`].
pub fn check_overage_exposure(overage_price: Money, max_overage: u32) -> Result<(), DomainError> {
    let exposure = i128::from(overage_price.cents()) * i128::from(max_overage);
    if exposure <= MAX_OVERAGE_EXPOSURE_CENTS {
        Ok(())
    } else {
        Err(DomainError::Invalid(format!(
            "overage_price_per_license ({overage_price}) × max_overage ({max_overage}) is more \
             than {}; lower the price or the overage allowance",
            Money::from_cents(MAX_OVERAGE_EXPOSURE_CENTS as i64)
        )))
    }
}

/// The rule of a package's seats: `total = commit_qty + max_overage`.
pub fn check_seat_sum(total: u32, commit_qty: u32, max_overage: u32) -> Result<(), DomainError> {
    if commit_qty.checked_add(max_overage) == Some(total) {
        Ok(())
    } else {
        Err(DomainError::Invalid(format!(
            "total ({total}) must equal commit_qty ({commit_qty}) + max_overage ({max_overage})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(e: DomainError) -> String {
        e.to_string()
    }

    #[test]
    fn names_are_non_empty_bounded_and_free_of_control_characters() {
        assert_eq!(ToolName::parse("ECU").unwrap().as_str(), "ECU");
        assert_eq!(
            detail(ToolName::parse("").unwrap_err()),
            "tool must not be empty"
        );
        assert_eq!(
            detail(UserName::parse(&"é".repeat(MAX_NAME + 1)).unwrap_err()),
            "user is longer than 256 characters"
        );
        assert!(UserName::parse(&"é".repeat(MAX_NAME)).is_ok());
        assert_eq!(
            detail(UserName::parse("a\u{0}b").unwrap_err()),
            "user must not contain control characters"
        );
    }

    #[test]
    fn user_names_are_one_user_whatever_their_case() {
        assert_eq!(UserName::parse("SameUser").unwrap().as_str(), "sameuser");
        assert_eq!(UserName::parse("SameUser"), UserName::parse("sameuser"));
        assert_eq!(UserName::parse("ÄRGER@X").unwrap().as_str(), "ärger@x");
        // The tool keeps its spelling: tools are matched against provisioned names.
        assert_eq!(ToolName::parse("ECU").unwrap().as_str(), "ECU");
    }

    #[test]
    fn lease_lengths_are_between_30_seconds_and_a_day() {
        for ok in [LeaseSeconds::MIN, 3_600, LeaseSeconds::MAX] {
            assert_eq!(LeaseSeconds::parse("lease_seconds", ok).unwrap().get(), ok);
        }
        for bad in [0, 29, 86_401] {
            assert_eq!(
                detail(LeaseSeconds::parse("lease_seconds", bad).unwrap_err()),
                "lease_seconds must be between 30 and 86400"
            );
        }
        assert_eq!(
            LeaseSeconds::parse("lease_seconds", 3_600),
            Ok(LeaseSeconds::DEFAULT)
        );
    }

    #[test]
    fn waits_are_at_most_five_minutes() {
        assert!(WaitSeconds::parse(0).unwrap().is_zero());
        assert_eq!(
            WaitSeconds::parse(300).unwrap().as_duration().as_secs(),
            300
        );
        assert_eq!(
            detail(WaitSeconds::parse(301).unwrap_err()),
            "wait_seconds must be between 0 and 300"
        );
    }

    #[test]
    fn a_pools_overage_exposure_is_bounded() {
        let price = Money::from_cents(100_000_000_000_000);
        assert!(check_overage_exposure(price, 10).is_ok());
        assert!(check_overage_exposure(price, 11).is_err());
        let most = Money::from_cents(999_999_999_999_999);
        assert!(check_overage_exposure(most, 1).is_ok());
        assert!(check_overage_exposure(Money::from_cents(1_000_000_000), Seats::MAX).is_ok());
        assert!(check_overage_exposure(Money::from_cents(1_000_000_001), Seats::MAX).is_err());
    }

    #[test]
    fn seat_counts_are_whole_numbers_up_to_a_million() {
        assert_eq!(Seats::parse("total", 0).unwrap().get(), 0);
        assert_eq!(Seats::parse("total", 1_000_000).unwrap().get(), 1_000_000);
        for bad in [-1, 1_000_001, i64::MAX] {
            assert_eq!(
                detail(Seats::parse("commit_qty", bad).unwrap_err()),
                "commit_qty must be a whole number between 0 and 1000000"
            );
        }
    }
}
