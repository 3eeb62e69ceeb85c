//! Offline checkout ("roaming"): a seat that leaves the broker for a bounded time.
//!
//! An offline borrow is a lease that lasts its `offline_hours` and no heartbeat moves:
//! it holds its seat (and counts as overage where it is, booking the charge like any
//! overage borrow) until it expires by the tenant's own timer or is returned early.
//! The vendor bounds it per package: the longest checkout (`max_offline_hours`) and the
//! offline seats held at once (`max_offline_seats`); both 0, the default, allow none.
//! The signed token that proves the checkout without the broker is the HTTP edge's
//! business: the rules here decide only whether and for how long a seat is held.
use std::time::Duration;

use super::DomainError;
use super::input::text_field;
use super::pool::Pool;

/// Longest offline checkout a package may allow: a year.
pub const MAX_OFFLINE_HOURS: u32 = 8_760;
/// Longest client fingerprint accepted, in characters.
pub const MAX_FINGERPRINT: usize = 256;

/// A number of hours of offline checkout: what a borrow asks for (1 to
/// [`MAX_OFFLINE_HOURS`]) or a package allows (0 to [`MAX_OFFLINE_HOURS`]; 0: none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OfflineHours(u32);

impl OfflineHours {
    /// Parses the `offline_hours` of a borrow (JSON numbers arrive as `i64`).
    pub fn parse(hours: i64) -> Result<Self, DomainError> {
        Self::within("offline_hours", hours, 1)
    }

    /// Parses a package's `max_offline_hours` (0 allows no offline checkout).
    pub fn parse_limit(hours: i64) -> Result<Self, DomainError> {
        Self::within("max_offline_hours", hours, 0)
    }

    fn within(field: &str, hours: i64, min: u32) -> Result<Self, DomainError> {
        u32::try_from(hours)
            .ok()
            .filter(|h| (min..=MAX_OFFLINE_HOURS).contains(h))
            .map(OfflineHours)
            .ok_or_else(|| {
                DomainError::Invalid(format!(
                    "{field} must be a whole number of hours between {min} and {MAX_OFFLINE_HOURS}"
                ))
            })
    }

    /// Hours.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The checkout's length in seconds, as a lease stores it.
    pub fn seconds(self) -> u32 {
        self.0 * 3_600
    }

    /// As a duration.
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(u64::from(self.seconds()))
    }
}

/// What an offline borrow asks for besides a seat.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OfflineCheckout {
    /// How long the seat leaves the broker.
    pub hours: OfflineHours,
    /// An identifier of the client machine, copied into the token (the client's
    /// licence check may compare it with the machine it runs on).
    pub fingerprint: Option<String>,
}

impl OfflineCheckout {
    /// Parses the offline fields of a borrow: `offline_hours` and an optional
    /// `fingerprint` (see [`text_field`]; at most [`MAX_FINGERPRINT`] characters).
    pub fn parse(hours: i64, fingerprint: Option<&str>) -> Result<Self, DomainError> {
        Ok(OfflineCheckout {
            hours: OfflineHours::parse(hours)?,
            fingerprint: fingerprint
                .map(|f| text_field("fingerprint", f, MAX_FINGERPRINT))
                .transpose()?,
        })
    }
}

impl Pool {
    /// Why an offline checkout of `hours` is refused now, if it is: the package allows
    /// none, allows shorter ones, or has all its offline seats out.
    pub(crate) fn offline_refusal(&self, hours: OfflineHours) -> Option<DomainError> {
        let p = &self.package;
        let refuse = |why: String| {
            Some(DomainError::OfflineLimitReached {
                tool: p.product_name.clone(),
                why,
            })
        };
        if p.max_offline_hours == 0 || p.max_offline_seats == 0 {
            return refuse(format!(
                "offline checkout of '{}' is not allowed: the vendor has set no offline limits for it",
                p.product_name
            ));
        }
        if hours.get() > p.max_offline_hours {
            return refuse(format!(
                "offline_hours {} is above the limit of {} hours for '{}'; ask for fewer",
                hours.get(),
                p.max_offline_hours,
                p.product_name
            ));
        }
        if self.offline >= p.max_offline_seats {
            return refuse(format!(
                "all {} offline seat(s) of '{}' are checked out; one must be returned or expire first",
                p.max_offline_seats, p.product_name
            ));
        }
        None
    }

    /// Seats held by offline checkouts now.
    pub fn offline_in_use(&self) -> u32 {
        self.offline
    }
}
