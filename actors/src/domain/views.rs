//! What the outside sees of a tenant: typed, serialisable replies.
use permetrix_storage::records::PackageStatus;
use permetrix_storage::{BorrowId, Money, Timestamp};
use serde::{Serialize, Serializer};

/// RFC 3339 in UTC with milliseconds (`2026-11-27T03:54:55.123+00:00`): parsed by
/// Python's `datetime.fromisoformat`, JavaScript's `Date` and every RFC 3339 parser.
pub fn rfc3339(t: Timestamp) -> String {
    let nanos = i128::from(t.millis()) * 1_000_000;
    let dt = time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+00:00"
    );
    dt.format(&format).unwrap_or_default()
}

pub(crate) fn ser_time<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

pub(crate) fn ser_money<S: Serializer>(m: &Money, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(m.as_decimal())
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn ser_id<S: Serializer>(id: &BorrowId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

fn ser_status<S: Serializer>(st: &PackageStatus, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match st {
        PackageStatus::Active => "active",
        PackageStatus::Suspended => "suspended",
        PackageStatus::Revoked => "revoked",
    })
}

/// An active borrow as clients see it (`{id, tool, user, borrowed_at, …}`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeaseView {
    /// Borrow id.
    #[serde(serialize_with = "ser_id")]
    pub id: BorrowId,
    /// Tool (product) name.
    pub tool: String,
    /// Product id (not shown: the edge puts it into offline tokens).
    #[serde(skip)]
    pub product_id: String,
    /// Who borrowed.
    pub user: String,
    /// When granted.
    #[serde(serialize_with = "ser_time")]
    pub borrowed_at: Timestamp,
    /// When it lapses unless heartbeated (an offline checkout: when it ends).
    #[serde(serialize_with = "ser_time")]
    pub lease_expires_at: Timestamp,
    /// Whether the seat is beyond the commit.
    pub is_overage: bool,
    /// An offline checkout (shown only when true, so online leases look as before).
    #[serde(skip_serializing_if = "is_false")]
    pub offline: bool,
}

/// One pool's status (`GET /licenses/status`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolStatus {
    /// Tool (product) name.
    pub tool: String,
    /// Product id.
    pub product_id: String,
    /// Seats that may be held at once (vendor limit lowered by the customer's).
    pub total: u32,
    /// Seats in use.
    pub borrowed: u32,
    /// Seats free now.
    pub available: u32,
    /// Prepaid seats.
    pub commit: u32,
    /// Overage seats allowed.
    pub max_overage: u32,
    /// Overage seats in use.
    pub overage: u32,
    /// Commit seats in use.
    pub in_commit: u32,
    /// Price of the commit block.
    #[serde(serialize_with = "ser_money")]
    pub commit_price: Money,
    /// Charge per overage borrow.
    #[serde(serialize_with = "ser_money")]
    pub overage_price_per_license: Money,
    /// Overage charges booked this month (UTC).
    #[serde(serialize_with = "ser_money")]
    pub current_overage_cost: Money,
    /// `commit_price + current_overage_cost`.
    #[serde(serialize_with = "ser_money")]
    pub total_cost: Money,
    /// Borrows queued for a seat.
    pub waiting: u32,
    /// Package status set by the vendor.
    #[serde(serialize_with = "ser_status")]
    pub status: PackageStatus,
    /// Package id (shown to vendors, not in the tenant's status).
    #[serde(skip)]
    pub package_id: String,
    /// Provisioning vendor (fan-out filters by it).
    #[serde(skip)]
    pub vendor_id: String,
    /// Seats held by offline checkouts (shown to vendors).
    #[serde(skip)]
    pub offline: u32,
    /// The package's longest offline checkout in hours (shown to vendors).
    #[serde(skip)]
    pub max_offline_hours: u32,
    /// The package's offline seats held at once (shown to vendors).
    #[serde(skip)]
    pub max_offline_seats: u32,
}

/// Live seat counts summed over a tenant's pools.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UsageTotals {
    /// Seats in use.
    pub borrowed: u32,
    /// Seats that may be held at once.
    pub total: u32,
    /// Overage seats in use.
    pub overage: u32,
}

/// A tenant's state as gathered by fan-out queries.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TenantSnapshot {
    /// Per-pool status.
    pub tools: Vec<ToolStatus>,
    /// Sums over the pools.
    pub usage: UsageTotals,
}
