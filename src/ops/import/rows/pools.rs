//! Pools, held seats and charges: `licenses`, `borrows`, `overage_charges`.
use permetrix_actors::domain::{MAX_NAME, Seats};
use permetrix_storage::{BorrowId, Money, Timestamp};

use super::{Reading, decisive_time, money, plain, tenant_of};
use crate::ops::import::anomalies::Origin;
use crate::ops::import::cells::Row;

/// A pool's seat limits, `total = commit_qty + max_overage`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Seats in total.
    pub total: u32,
    /// Prepaid seats.
    pub commit_qty: u32,
    /// Seats beyond the commit.
    pub max_overage: u32,
}

/// A `licenses` row: one tool's pool.
#[derive(Clone, Debug, PartialEq)]
pub struct LicenseRow {
    /// Where it is.
    pub origin: Origin,
    /// `tenant_id`; `None` in the single-tenant part.
    pub tenant: Option<String>,
    /// `package_id` (multi-tenant shape).
    pub package_id: Option<String>,
    /// The display name clients borrow by.
    pub tool: String,
    /// The file's `borrowed` counter (the rows win over it).
    pub borrowed: Option<i64>,
    /// The vendor's limits: the `vendor_*` columns where set, else the plain ones.
    pub limits: Limits,
    /// `commit_price`.
    pub commit_price: Money,
    /// `overage_price_per_license`.
    pub overage_price: Money,
    /// `customer_total`, where below the vendor's total.
    pub customer_total: Option<u32>,
    /// `customer_max_overage`, where below the vendor's.
    pub customer_max_overage: Option<u32>,
    /// `customer_max_spend`: a monthly overage spend cap.
    pub customer_max_spend: Option<Money>,
}

/// A seat count: whole, not negative, at most a million.
fn seats(row: &Row<'_>, column: &str) -> Result<Option<u32>, String> {
    match row.int(column)? {
        None => Ok(None),
        Some(n) if n < 0 => Err(format!("{column} is negative ({n})")),
        Some(n) => Seats::parse(column, n)
            .map(|s| Some(s.get()))
            .map_err(|e| e.to_string()),
    }
}

fn price(
    row: &Row<'_>,
    column: &str,
    origin: &Origin,
    cx: &mut Reading<'_>,
) -> Result<Money, String> {
    match row.real(column)? {
        None => Ok(Money::ZERO),
        Some(v) => money(v, column, origin, cx),
    }
}

impl LicenseRow {
    pub(super) fn read(
        row: &Row<'_>,
        origin: &Origin,
        cx: &mut Reading<'_>,
    ) -> Result<Self, String> {
        let tool = plain(&row.required_text("tool")?, "tool", MAX_NAME)?;
        let plain_total = seats(row, "total")?;
        let total = seats(row, "vendor_total")?
            .or(plain_total)
            .ok_or("total is missing")?;
        let max_overage = seats(row, "vendor_max_overage")?
            .or(seats(row, "max_overage")?)
            .unwrap_or(0);
        let commit_qty = match seats(row, "vendor_commit_qty")?.or(seats(row, "commit_qty")?) {
            Some(c) => c,
            None => total.saturating_sub(max_overage),
        };
        let limits = consistent(total, commit_qty, max_overage, origin, cx);
        let customer_total = seats(row, "customer_total")?;
        let customer_max_overage = seats(row, "customer_max_overage")?;
        if let Some(c) = seats(row, "customer_commit_qty")?.filter(|&c| c != limits.commit_qty) {
            cx.anomalies.note(
                origin,
                format!(
                    "customer_commit_qty {c} has no counterpart in permetrix (a customer \
                     restricts seats and overage, not the commit); ignored"
                ),
            );
        }
        let customer_max_spend = match row.real("customer_max_spend")? {
            None => None,
            Some(v) => Some(money(v, "customer_max_spend", origin, cx)?),
        };
        Ok(LicenseRow {
            origin: origin.clone(),
            tenant: tenant_of(row),
            package_id: row.text("package_id")?.filter(|p| !p.trim().is_empty()),
            borrowed: row.int("borrowed")?,
            commit_price: price(row, "commit_price", origin, cx)?,
            overage_price: price(row, "overage_price_per_license", origin, cx)?,
            customer_total: below(customer_total, limits.total, "customer_total", origin, cx),
            customer_max_overage: below(
                customer_max_overage,
                limits.max_overage,
                "customer_max_overage",
                origin,
                cx,
            ),
            customer_max_spend,
            limits,
            tool,
        })
    }
}

/// Limits that satisfy `total = commit_qty + max_overage`: the old server did not
/// insist on it, permetrix does. The total (what clients see) and the commit stay; the
/// overage allowance follows from them.
fn consistent(
    total: u32,
    commit_qty: u32,
    max_overage: u32,
    origin: &Origin,
    cx: &mut Reading<'_>,
) -> Limits {
    if commit_qty.checked_add(max_overage) == Some(total) {
        return Limits {
            total,
            commit_qty,
            max_overage,
        };
    }
    let fixed = if commit_qty <= total {
        Limits {
            total,
            commit_qty,
            max_overage: total - commit_qty,
        }
    } else {
        Limits {
            total,
            commit_qty: total,
            max_overage: 0,
        }
    };
    cx.anomalies.adjust(
        origin,
        format!(
            "total {total} is not commit_qty {commit_qty} + max_overage {max_overage}; \
             imported as total {}, commit {}, overage {}",
            fixed.total, fixed.commit_qty, fixed.max_overage
        ),
    );
    fixed
}

/// A customer restriction, kept only where it lowers the vendor's limit.
fn below(
    value: Option<u32>,
    vendor: u32,
    column: &str,
    origin: &Origin,
    cx: &mut Reading<'_>,
) -> Option<u32> {
    match value {
        Some(v) if v < vendor => Some(v),
        Some(v) if v > vendor => {
            cx.anomalies.note(
                origin,
                format!("{column} {v} is above the vendor's {vendor}; a customer may only lower it, so ignored"),
            );
            None
        }
        _ => None,
    }
}

/// A `borrows` row: a seat held now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BorrowRow {
    /// Where it is.
    pub origin: Origin,
    /// `tenant_id`; `None` in the single-tenant part.
    pub tenant: Option<String>,
    /// The borrow id (a random UUID v4): returnable by it after the move.
    pub id: BorrowId,
    /// The tool's display name.
    pub tool: String,
    /// Who holds it.
    pub user: String,
    /// When it was borrowed.
    pub borrowed_at: Timestamp,
    /// `is_overage`.
    pub is_overage: bool,
}

/// A borrow id the old server issued: a UUID v4, whose 122 random bits make it an
/// unguessable token (knowing it authorises the return). Another UUID version could
/// be guessed, so it is refused.
fn borrow_id(text: &str) -> Result<BorrowId, String> {
    let uuid =
        uuid::Uuid::try_parse(text.trim()).map_err(|_| format!("id '{text}' is not a UUID"))?;
    if uuid.get_version_num() != 4 || uuid.get_variant() != uuid::Variant::RFC4122 {
        return Err(format!(
            "id '{text}' is not a random (version 4) UUID, so it is no unguessable borrow id"
        ));
    }
    BorrowId::parse(&uuid.hyphenated().to_string()).map_err(|e| e.to_string())
}

impl BorrowRow {
    pub(super) fn read(
        row: &Row<'_>,
        origin: &Origin,
        cx: &mut Reading<'_>,
    ) -> Result<Self, String> {
        let id = borrow_id(&row.required_text("id")?)?;
        let tool = plain(&row.required_text("tool")?, "tool", MAX_NAME)?;
        let user = plain(&row.required_text("user")?, "user", MAX_NAME)?;
        let borrowed_at =
            decisive_time(row, "borrowed_at", origin, cx)?.ok_or("borrowed_at is missing")?;
        let is_overage = match row.int("is_overage")? {
            None | Some(0) => false,
            Some(1) => true,
            Some(other) => {
                cx.anomalies
                    .note(origin, format!("is_overage is {other}; read as 1"));
                true
            }
        };
        Ok(BorrowRow {
            origin: origin.clone(),
            tenant: tenant_of(row),
            id,
            tool,
            user,
            borrowed_at,
            is_overage,
        })
    }
}

/// An `overage_charges` row.
#[derive(Clone, Debug, PartialEq)]
pub struct ChargeRow {
    /// Where it is.
    pub origin: Origin,
    /// `tenant_id`; `None` in the single-tenant part.
    pub tenant: Option<String>,
    /// The charge id, kept.
    pub id: String,
    /// The tool's display name.
    pub tool: String,
    /// The borrow that caused it (nil if the file's is no UUID).
    pub borrow_id: BorrowId,
    /// Who borrowed.
    pub user: String,
    /// When it was booked.
    pub charged_at: Timestamp,
    /// The amount, in cents.
    pub amount: Money,
    /// The file's amount, in currency units (to report rounding).
    pub exact: f64,
}

/// The borrow id of a charge whose own is unreadable: all zeros, which no borrow has.
pub const NO_BORROW: &str = "00000000-0000-0000-0000-000000000000";

impl ChargeRow {
    pub(super) fn read(
        row: &Row<'_>,
        origin: &Origin,
        cx: &mut Reading<'_>,
    ) -> Result<Self, String> {
        let id = plain(&row.required_text("id")?, "id", 128)?;
        let tool = plain(&row.required_text("tool")?, "tool", MAX_NAME)?;
        let charged_at =
            decisive_time(row, "charged_at", origin, cx)?.ok_or("charged_at is missing")?;
        let exact = row.real("amount")?.ok_or("amount is missing")?;
        let amount = money(exact, "amount", origin, cx)?;
        let borrow_text = row.text("borrow_id")?.unwrap_or_default();
        let borrow_id = match uuid::Uuid::try_parse(borrow_text.trim()) {
            Ok(u) => BorrowId::parse(&u.hyphenated().to_string()).map_err(|e| e.to_string())?,
            Err(_) => {
                cx.anomalies.adjust(
                    origin,
                    format!("borrow_id '{borrow_text}' is not a UUID; the charge is kept with borrow id {NO_BORROW}"),
                );
                BorrowId::parse(NO_BORROW).map_err(|e| e.to_string())?
            }
        };
        let user = match row.text("user")?.map(|u| plain(&u, "user", MAX_NAME)) {
            Some(Ok(u)) => u,
            _ => {
                cx.anomalies
                    .adjust(origin, "user is missing or unreadable; kept as 'unknown'");
                "unknown".to_owned()
            }
        };
        Ok(ChargeRow {
            origin: origin.clone(),
            tenant: tenant_of(row),
            id,
            tool,
            borrow_id,
            user,
            charged_at,
            amount,
            exact,
        })
    }
}
