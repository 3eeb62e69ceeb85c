//! The file's rows as typed values: each row of each table the import reads becomes a
//! row type whose fields are checked (ids, counts, money, timestamps, hashes), or is
//! skipped with an anomaly naming its table and id. Rules of one row live here; rules
//! that need several rows (which pool a borrow holds, the ledger's order) are the
//! plan's.
use std::collections::BTreeMap;

use permetrix_storage::{Money, Timestamp};

use super::anomalies::{Anomalies, Origin};
use super::cells::{RawFile, RawRows, Row};
use super::time;

mod accounts;
mod pools;

pub use accounts::{KeyRow, PackageRow, PasswordSource, TenantRow, UserRow, VendorRow, map_scopes};
pub use pools::{BorrowRow, ChargeRow, LicenseRow, Limits};

/// The tables the import reads, in the order it reads them.
pub const TABLES: [&str; 8] = [
    "tenants",
    "vendors",
    "license_packages",
    "licenses",
    "borrows",
    "overage_charges",
    "api_keys",
    "users",
];

/// Every row that could be read, by table.
#[derive(Clone, Debug, Default)]
pub struct Rows {
    /// `tenants` (multi-tenant shape).
    pub tenants: Vec<TenantRow>,
    /// `vendors` (multi-tenant shape).
    pub vendors: Vec<VendorRow>,
    /// `license_packages` (multi-tenant shape).
    pub packages: Vec<PackageRow>,
    /// `licenses`: the pools.
    pub licenses: Vec<LicenseRow>,
    /// `borrows`: the seats held now.
    pub borrows: Vec<BorrowRow>,
    /// `overage_charges`.
    pub charges: Vec<ChargeRow>,
    /// `api_keys`.
    pub keys: Vec<KeyRow>,
    /// `users`.
    pub users: Vec<UserRow>,
    /// Rows in the file, per table read.
    pub counts: BTreeMap<&'static str, usize>,
    /// Whether the file has the multi-tenant tables.
    pub multi_tenant: bool,
}

/// What every row reader needs: the time of the import and where anomalies go.
pub struct Reading<'a> {
    /// The time of the import (stands in for missing informational times).
    pub now: Timestamp,
    /// Found so far.
    pub anomalies: &'a mut Anomalies,
}

/// Reads every known table of `file` into typed rows.
pub fn read(file: &RawFile, now: Timestamp, anomalies: &mut Anomalies) -> Rows {
    let mut cx = Reading { now, anomalies };
    let empty = RawRows::default();
    let table = |name: &str| file.get(name).unwrap_or(&empty);
    let mut rows = Rows {
        multi_tenant: file.contains_key("tenants"),
        ..Rows::default()
    };
    for name in TABLES {
        if let Some(t) = file.get(name) {
            rows.counts.insert(name, t.rows.len());
        }
    }
    rows.tenants = each(
        table("tenants"),
        "tenants",
        "tenant_id",
        &mut cx,
        TenantRow::read,
    );
    rows.vendors = each(
        table("vendors"),
        "vendors",
        "vendor_id",
        &mut cx,
        VendorRow::read,
    );
    rows.packages = each(
        table("license_packages"),
        "license_packages",
        "package_id",
        &mut cx,
        PackageRow::read,
    );
    let licenses = table("licenses");
    let license_id = if licenses.has("id") { "id" } else { "tool" };
    rows.licenses = each(licenses, "licenses", license_id, &mut cx, LicenseRow::read);
    rows.borrows = each(table("borrows"), "borrows", "id", &mut cx, BorrowRow::read);
    rows.charges = each(
        table("overage_charges"),
        "overage_charges",
        "id",
        &mut cx,
        ChargeRow::read,
    );
    rows.keys = each(table("api_keys"), "api_keys", "id", &mut cx, KeyRow::read);
    rows.users = each(table("users"), "users", "username", &mut cx, UserRow::read);
    rows
}

/// Reads each row of `table` with `read`; a row it refuses is skipped with an anomaly.
fn each<T>(
    table: &RawRows,
    name: &'static str,
    id_column: &str,
    cx: &mut Reading<'_>,
    read: impl Fn(&Row<'_>, &Origin, &mut Reading<'_>) -> Result<T, String>,
) -> Vec<T> {
    let mut out = Vec::with_capacity(table.rows.len());
    for row in table.rows() {
        let origin = Origin {
            table: name,
            row: match row.text(id_column) {
                Ok(Some(id)) if !id.trim().is_empty() => id,
                _ => format!("#{}", row.position),
            },
            tenant: tenant_of(&row),
        };
        match read(&row, &origin, cx) {
            Ok(t) => out.push(t),
            Err(why) => cx.anomalies.skip(&origin, why),
        }
    }
    out
}

/// The row's `tenant_id`, if the table has one and it is set: rows without one belong
/// to the single-tenant part of the file.
pub fn tenant_of(row: &Row<'_>) -> Option<String> {
    row.text("tenant_id")
        .ok()
        .flatten()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// A timestamp that decides something (order, month, expiry): unreadable refuses the row.
pub fn decisive_time(
    row: &Row<'_>,
    column: &str,
    origin: &Origin,
    cx: &mut Reading<'_>,
) -> Result<Option<Timestamp>, String> {
    let Some(text) = row.text(column)? else {
        return Ok(None);
    };
    let parsed =
        time::parse(&text).ok_or_else(|| format!("{column} '{text}' is not an ISO 8601 time"))?;
    if parsed.naive {
        cx.anomalies.note(
            origin,
            format!("{column} '{text}' has no offset; read as UTC"),
        );
    }
    Ok(Some(parsed.at))
}

/// A timestamp that only informs (creation, last use): unreadable is dropped with a note.
pub fn informative_time(
    row: &Row<'_>,
    column: &str,
    origin: &Origin,
    cx: &mut Reading<'_>,
) -> Option<Timestamp> {
    match decisive_time(row, column, origin, cx) {
        Ok(t) => t,
        Err(why) => {
            cx.anomalies.adjust(origin, format!("{why}; left out"));
            None
        }
    }
}

/// An amount of money in currency units, as cents: negative or absurd refuses, a
/// fraction of a cent is rounded and reported.
pub fn money(
    value: f64,
    column: &str,
    origin: &Origin,
    cx: &mut Reading<'_>,
) -> Result<Money, String> {
    if value < 0.0 {
        return Err(format!("{column} {value} is negative"));
    }
    let cents = value * 100.0;
    // Rounded here (half away from zero): the API refuses fractions of a cent, the
    // import adjusts them and says so.
    let money = Money::from_decimal(cents.round() / 100.0).map_err(|e| format!("{column}: {e}"))?;
    if (cents - cents.round()).abs() > 1e-6 {
        cx.anomalies.adjust(
            origin,
            format!("{column} {value} is not a whole number of cents; imported as {money}"),
        );
    }
    Ok(money)
}

/// Plain text of at most `max` characters without control characters (names, ids).
pub fn plain(text: &str, column: &str, max: usize) -> Result<String, String> {
    permetrix_actors::domain::text_field(column, text.trim(), max).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
