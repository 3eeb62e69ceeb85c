//! Pools, held seats and the ledger of one tenant.
use std::collections::{BTreeMap, BTreeSet};

use permetrix_actors::domain::{LedgerHead, chain_hash, month_of};
use permetrix_storage::records::{
    ChargeRecord, LeaseRecord, PackageRecord, PackageStatus, RestrictionRecord, SpendRecord,
};
use permetrix_storage::{Money, TenantId, Timestamp, VendorId};
use sha2::{Digest, Sha256};

use super::lease_seconds;
use crate::ops::import::anomalies::{Anomalies, Origin};
use crate::ops::import::rows::{BorrowRow, ChargeRow, LicenseRow, Rows};

/// A tenant's pools as built from its `licenses` rows.
pub(super) struct Pools {
    /// One package per pool; `vendor_id` empty where no package row names one.
    pub packages: Vec<PackageRecord>,
    /// Customer restrictions.
    pub restrictions: Vec<RestrictionRecord>,
    /// The file's `borrowed` counter of each pool (by product id), to check.
    pub counters: Vec<(String, Option<i64>, Origin)>,
}

/// A product id made from a tool's display name: lowercase letters and digits, other
/// runs of characters as one `-`.
pub fn slug(tool: &str) -> String {
    let mut out = String::new();
    for c in tool.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    let out: String = out.chars().take(64).collect();
    if out.is_empty() { "tool".into() } else { out }
}

/// A package id of the import's own, the same on every run (so that a second run
/// finds the first one's): `pkg-` and 16 hex digits of SHA-256(tenant/tool).
fn package_id(tenant: &TenantId, tool: &str) -> String {
    let digest = Sha256::digest(format!("{tenant}/{tool}").as_bytes());
    format!("pkg-{}", &hex::encode(digest)[..16])
}

pub(super) fn pools(
    tenant: &TenantId,
    licenses: &[&LicenseRow],
    rows: &Rows,
    tenant_active: bool,
    created_at: Timestamp,
    fallback_vendor: Option<&VendorId>,
    anomalies: &mut Anomalies,
) -> Pools {
    let mut out = Pools {
        packages: Vec::new(),
        restrictions: Vec::new(),
        counters: Vec::new(),
    };
    // Names a borrow may use for a pool: every product name and product id.
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut package_ids: BTreeSet<String> = BTreeSet::new();
    for l in licenses {
        if names.contains(&l.tool) {
            anomalies.skip(
                &l.origin,
                format!(
                    "tenant {tenant} already has a pool named '{}' or with that id",
                    l.tool
                ),
            );
            continue;
        }
        let package = l.package_id.as_ref().and_then(|id| {
            let found = rows.packages.iter().find(|p| &p.id == id);
            if found.is_none() {
                anomalies.note(
                    &l.origin,
                    format!("package_id '{id}' is not in license_packages"),
                );
            }
            found.filter(|p| p.tenant.as_deref().is_none_or(|t| t == tenant.as_str()))
        });
        let mut product_id = package
            .and_then(|p| p.product_id.clone())
            .unwrap_or_else(|| slug(&l.tool));
        if names.contains(&product_id) {
            let base = product_id.clone();
            let mut n = 2;
            while names.contains(&product_id) {
                product_id = format!("{base}-{n}");
                n += 1;
            }
            anomalies.adjust(
                &l.origin,
                format!("product id '{base}' is taken in this tenant; '{product_id}' instead"),
            );
        }
        let id = match package.map(|p| p.id.clone()) {
            Some(id) if !package_ids.contains(&id) => id,
            _ => package_id(tenant, &l.tool),
        };
        let mut status = package.map_or(PackageStatus::Active, |p| p.status);
        if !tenant_active && status == PackageStatus::Active {
            status = PackageStatus::Suspended;
        }
        names.insert(l.tool.clone());
        names.insert(product_id.clone());
        package_ids.insert(id.clone());
        let vendor = package
            .map(|p| p.vendor.to_string())
            .or_else(|| fallback_vendor.map(VendorId::to_string))
            .unwrap_or_default();
        if l.customer_total.is_some()
            || l.customer_max_overage.is_some()
            || l.customer_max_spend.is_some()
        {
            out.restrictions.push(RestrictionRecord {
                product_id: product_id.clone(),
                total: l.customer_total,
                max_overage: l.customer_max_overage,
                max_spend: l.customer_max_spend,
                max_per_user: None,
            });
        }
        out.counters
            .push((product_id.clone(), l.borrowed, l.origin.clone()));
        out.packages.push(PackageRecord {
            package_id: id,
            vendor_id: vendor,
            product_id,
            product_name: l.tool.clone(),
            total: l.limits.total,
            commit_qty: l.limits.commit_qty,
            max_overage: l.limits.max_overage,
            commit_price: l.commit_price,
            overage_price: l.overage_price,
            crm_opportunity_id: package.and_then(|p| p.crm_opportunity_id.clone()),
            valid_from: None,
            valid_until: None,
            status,
            created_at: package.and_then(|p| p.provisioned_at).unwrap_or(created_at),
            // The old server had no offline checkout: none allowed until the vendor says.
            max_offline_hours: 0,
            max_offline_seats: 0,
        });
    }
    out
}

/// The vendor of most of the packages (the smallest id among equals).
pub(super) fn main_vendor(packages: &[PackageRecord]) -> Option<VendorId> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for p in packages.iter().filter(|p| !p.vendor_id.is_empty()) {
        *counts.entry(&p.vendor_id).or_default() += 1;
    }
    let best = counts.values().max()?;
    counts
        .iter()
        .find(|(_, n)| *n == best)
        .and_then(|(v, _)| VendorId::parse(v).ok())
}

fn pool_of<'a>(packages: &'a [PackageRecord], tool: &str) -> Option<&'a PackageRecord> {
    packages
        .iter()
        .find(|p| p.product_name == tool)
        .or_else(|| packages.iter().find(|p| p.product_id == tool))
}

/// The held seats: each borrow row a lease of its pool, expiring one default lease
/// after the import unless heartbeated or returned. The rows win over the file's
/// `borrowed` counters; where they differ, or exceed a pool, the report says so.
pub(super) fn leases(
    tenant: &TenantId,
    borrows: &[&BorrowRow],
    packages: &[PackageRecord],
    counters: &[(String, Option<i64>, Origin)],
    now: Timestamp,
    anomalies: &mut Anomalies,
) -> Vec<LeaseRecord> {
    let expires = now.plus(std::time::Duration::from_secs(u64::from(lease_seconds())));
    let mut held: BTreeMap<&str, u32> = BTreeMap::new();
    let mut out = Vec::new();
    for b in borrows {
        let Some(pool) = pool_of(packages, &b.tool) else {
            anomalies.skip(
                &b.origin,
                format!(
                    "tool '{}' is unknown: tenant {tenant} has no pool of it",
                    b.tool
                ),
            );
            continue;
        };
        *held.entry(&pool.product_id).or_default() += 1;
        out.push(LeaseRecord {
            id: b.id,
            product_id: pool.product_id.clone(),
            user: b.user.clone(),
            borrowed_at: b.borrowed_at,
            lease_expires_at: expires,
            lease_seconds: lease_seconds(),
            is_overage: b.is_overage,
            offline: false,
        });
    }
    for (product_id, counter, origin) in counters {
        let rows = held.get(product_id.as_str()).copied().unwrap_or(0);
        if counter.is_some_and(|c| c != i64::from(rows)) {
            anomalies.adjust(
                origin,
                format!(
                    "borrowed says {}, the borrows table holds {rows} seat(s) of it; the rows win",
                    counter.unwrap_or_default()
                ),
            );
        }
        if let Some(p) = packages.iter().find(|p| &p.product_id == product_id)
            && rows > p.total
        {
            anomalies.note(
                origin,
                format!(
                    "{rows} seats are held, above its total of {}: they stay held, and new \
                     borrows are refused until enough are returned",
                    p.total
                ),
            );
        }
    }
    out
}

/// The overage ledger in time order (ties by charge id), hash-chained from the first
/// charge, with the spend counters it implies per pool and month, and the sum of the
/// rounding to cents.
pub(super) fn ledger(
    tenant: &TenantId,
    charges: &[&ChargeRow],
    packages: &[PackageRecord],
    anomalies: &mut Anomalies,
) -> (Vec<ChargeRecord>, Vec<SpendRecord>, f64) {
    let mut sorted: Vec<&ChargeRow> = charges.to_vec();
    sorted.sort_by(|a, b| {
        a.charged_at
            .cmp(&b.charged_at)
            .then_with(|| a.id.cmp(&b.id))
    });
    let mut head = LedgerHead::default();
    let mut ledger = Vec::with_capacity(sorted.len());
    let mut spend: BTreeMap<(String, u32), (Money, u64)> = BTreeMap::new();
    let mut rounding = 0.0;
    for c in sorted {
        let (product_id, product_name) = match pool_of(packages, &c.tool) {
            Some(p) => (p.product_id.clone(), p.product_name.clone()),
            None => {
                anomalies.note(
                    &c.origin,
                    format!(
                        "tool '{}' has no pool; the charge stays in the ledger under it",
                        c.tool
                    ),
                );
                (slug(&c.tool), c.tool.clone())
            }
        };
        let mut charge = ChargeRecord {
            seq: head.seq + 1,
            id: c.id.clone(),
            product_id,
            product_name,
            borrow_id: c.borrow_id,
            user: c.user.clone(),
            charged_at: c.charged_at,
            amount: c.amount,
            prev_hash: head.hash,
            hash: [0; 32],
        };
        charge.hash = chain_hash(tenant, &charge);
        head = LedgerHead::after(&charge);
        let month = spend
            .entry((charge.product_id.clone(), month_of(charge.charged_at)))
            .or_default();
        month.0 += charge.amount;
        month.1 += 1;
        rounding += charge.amount.as_decimal() - c.exact;
        ledger.push(charge);
    }
    let spend = spend
        .into_iter()
        .map(
            |((product_id, month), (overage_cost, overage_count))| SpendRecord {
                product_id,
                month,
                overage_cost,
                overage_count,
            },
        )
        .collect();
    (ledger, spend, rounding)
}
