//! What the import will create, tenant by tenant, from the typed rows: the records a
//! fresh tenant gets (pools, held seats, the ledger, spend counters, settings, keys,
//! users) and the vendors they need. Plain Rust, no storage: whether each tenant is
//! new, already imported, or in conflict with the store is `compare`'s question.
use std::collections::{BTreeMap, BTreeSet};

use permetrix_storage::records::{
    ChargeRecord, LeaseRecord, PackageRecord, RestrictionRecord, SettingsRecord, SignaturePolicy,
    SpendRecord, TenantRecord, UserRecord,
};
use permetrix_storage::{ImportedKey, Money, TenantId, Timestamp, VendorId};

use super::anomalies::{Anomalies, Origin};
use super::rows::{Rows, TenantRow};

mod accounts;
mod pools;

/// The lease an imported seat gets, from the import: the tenant's default (3600 s).
pub fn lease_seconds() -> u32 {
    permetrix_actors::domain::LeaseSeconds::DEFAULT.get()
}

/// What the command line says beyond the file.
pub struct Settings {
    /// When the import runs.
    pub now: Timestamp,
    /// The tenant and vendor of the single-tenant part (`--tenant`, `--vendor`).
    pub single_tenant: Option<TenantId>,
    /// `--vendor`: the single tenant's vendor, and the vendor of a multi-tenant tenant
    /// whose packages name none.
    pub vendor: Option<VendorId>,
    /// Whether `--signing-secret` was given (then tenants require v1 signatures).
    pub signing_secret: bool,
}

/// The keyed digest of an old key's SHA-256 hex (the server pepper's).
pub type KeyDigest<'a> = &'a dyn Fn(&str) -> [u8; 32];

/// One tenant as the import would create it.
#[derive(Clone, Debug)]
pub struct Draft {
    /// The tenant's id.
    pub id: TenantId,
    /// The tenant.
    pub tenant: TenantRecord,
    /// Its pools.
    pub packages: Vec<PackageRecord>,
    /// Customer restrictions (`customer_*` columns).
    pub restrictions: Vec<RestrictionRecord>,
    /// Settings that keep the old clients working.
    pub settings: SettingsRecord,
    /// The seats held now.
    pub leases: Vec<LeaseRecord>,
    /// The overage ledger, in time order, hash-chained.
    pub charges: Vec<ChargeRecord>,
    /// Spend counters per pool and month.
    pub spend: Vec<SpendRecord>,
    /// The old server's keys.
    pub keys: Vec<ImportedKey>,
    /// Portal users.
    pub users: Vec<UserRecord>,
    /// Every vendor its packages name (its own first).
    pub vendors: BTreeSet<VendorId>,
    /// Sum of (imported − file) over its charges, in currency units.
    pub rounding: f64,
}

/// A vendor the tenants need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorDraft {
    /// The vendor id.
    pub id: VendorId,
    /// Name.
    pub name: String,
    /// Contact.
    pub contact_email: Option<String>,
    /// When the old server created it.
    pub created_at: Option<Timestamp>,
    /// Whether the file describes it (a `vendors` row); else only its id is known.
    pub described: bool,
}

/// Everything the import would create, and what stops it.
#[derive(Clone, Debug, Default)]
pub struct Drafts {
    /// Tenants, in id order.
    pub tenants: Vec<Draft>,
    /// Vendors, by id.
    pub vendors: BTreeMap<VendorId, VendorDraft>,
    /// Reasons not to import at all (each names what to do).
    pub refusals: Vec<String>,
}

/// A tenant's rows, gathered from every table.
#[derive(Default)]
struct TenantRows<'a> {
    row: Option<&'a TenantRow>,
    licenses: Vec<&'a super::rows::LicenseRow>,
    borrows: Vec<&'a super::rows::BorrowRow>,
    charges: Vec<&'a super::rows::ChargeRow>,
    keys: Vec<&'a super::rows::KeyRow>,
    users: Vec<&'a super::rows::UserRow>,
}

/// Builds the drafts of every tenant in the file.
pub fn draft(
    rows: &Rows,
    s: &Settings,
    digest: KeyDigest<'_>,
    anomalies: &mut Anomalies,
) -> Drafts {
    let mut drafts = Drafts::default();
    let groups = group(rows, s, &mut drafts.refusals, anomalies);
    for v in &rows.vendors {
        drafts.vendors.insert(
            v.id.clone(),
            VendorDraft {
                id: v.id.clone(),
                name: v.name.clone(),
                contact_email: v.contact_email.clone(),
                created_at: v.created_at,
                described: true,
            },
        );
    }
    let only_vendor = match rows.vendors.as_slice() {
        [one] => Some(one.id.clone()),
        _ => None,
    };
    for (tenant, parts) in groups {
        let fallback = s.vendor.clone().or_else(|| only_vendor.clone());
        match build(&tenant, &parts, rows, s, fallback, digest, anomalies) {
            Ok(d) => drafts.tenants.push(d),
            Err(refusal) => drafts.refusals.push(refusal),
        }
    }
    let used: BTreeSet<&str> = drafts
        .tenants
        .iter()
        .flat_map(|d| d.packages.iter().map(|p| p.package_id.as_str()))
        .collect();
    for p in rows
        .packages
        .iter()
        .filter(|p| !used.contains(p.id.as_str()))
    {
        anomalies.skip(
            &p.origin,
            "no licenses row of its tenant refers to it: there is no pool to create",
        );
    }
    for d in &drafts.tenants {
        for v in &d.vendors {
            drafts
                .vendors
                .entry(v.clone())
                .or_insert_with(|| VendorDraft {
                    id: v.clone(),
                    name: v.to_string(),
                    contact_email: None,
                    created_at: None,
                    described: false,
                });
        }
    }
    drafts
}

/// Sorts the rows by tenant: rows without a `tenant_id` belong to the single tenant
/// named on the command line; rows naming a tenant the file does not describe are
/// skipped.
fn group<'a>(
    rows: &'a Rows,
    s: &Settings,
    refusals: &mut Vec<String>,
    anomalies: &mut Anomalies,
) -> BTreeMap<TenantId, TenantRows<'a>> {
    let mut groups: BTreeMap<TenantId, TenantRows<'a>> = BTreeMap::new();
    for t in &rows.tenants {
        groups.entry(t.id.clone()).or_default().row = Some(t);
    }
    let single_rows = rows.licenses.iter().any(|r| r.tenant.is_none())
        || rows.borrows.iter().any(|r| r.tenant.is_none())
        || rows.charges.iter().any(|r| r.tenant.is_none())
        || rows.keys.iter().any(|r| r.tenant.is_none())
        || rows.users.iter().any(|r| r.tenant.is_none());
    match (&s.single_tenant, single_rows) {
        (Some(t), _) if groups.contains_key(t) => refusals.push(format!(
            "--tenant {t} is also a tenant of the file's tenants table; name the single-tenant \
             part's tenant differently"
        )),
        (Some(t), true) => {
            groups.insert(t.clone(), TenantRows::default());
        }
        (Some(t), false) => refusals.push(format!(
            "--tenant {t} names the tenant of the file's single-tenant rows (rows without a \
             tenant_id), but the file has none; leave out --tenant"
        )),
        (None, true) => refusals.push(
            "the file holds single-tenant rows (licenses, borrows, charges, keys or users without \
             a tenant_id): name the tenant and vendor they move into with --tenant ID --vendor ID"
                .into(),
        ),
        (None, false) => {}
    }
    let mut place = |tenant: &Option<String>, origin: &Origin| -> Option<TenantId> {
        let id = match tenant {
            None => s.single_tenant.clone(),
            Some(text) => TenantId::parse(text).ok(),
        };
        match id.filter(|id| groups.contains_key(id)) {
            Some(id) => Some(id),
            None => {
                if let Some(text) = tenant {
                    anomalies.skip(
                        origin,
                        format!("tenant '{text}' is not in the tenants table"),
                    );
                }
                None
            }
        }
    };
    let mut placed = Vec::new();
    for r in &rows.licenses {
        placed.push((place(&r.tenant, &r.origin), Part::License(r)));
    }
    for r in &rows.borrows {
        placed.push((place(&r.tenant, &r.origin), Part::Borrow(r)));
    }
    for r in &rows.charges {
        placed.push((place(&r.tenant, &r.origin), Part::Charge(r)));
    }
    for r in &rows.keys {
        placed.push((place(&r.tenant, &r.origin), Part::Key(r)));
    }
    for r in &rows.users {
        placed.push((place(&r.tenant, &r.origin), Part::User(r)));
    }
    for (id, part) in placed {
        let Some(g) = id.and_then(|id| groups.get_mut(&id)) else {
            continue;
        };
        match part {
            Part::License(r) => g.licenses.push(r),
            Part::Borrow(r) => g.borrows.push(r),
            Part::Charge(r) => g.charges.push(r),
            Part::Key(r) => g.keys.push(r),
            Part::User(r) => g.users.push(r),
        }
    }
    groups
}

enum Part<'a> {
    License(&'a super::rows::LicenseRow),
    Borrow(&'a super::rows::BorrowRow),
    Charge(&'a super::rows::ChargeRow),
    Key(&'a super::rows::KeyRow),
    User(&'a super::rows::UserRow),
}

/// One tenant's draft.
fn build(
    tenant: &TenantId,
    parts: &TenantRows<'_>,
    rows: &Rows,
    s: &Settings,
    fallback_vendor: Option<VendorId>,
    digest: KeyDigest<'_>,
    anomalies: &mut Anomalies,
) -> Result<Draft, String> {
    let active = parts.row.is_none_or(|t| t.active);
    let created_at = parts.row.and_then(|t| t.created_at).unwrap_or(s.now);
    let pools = pools::pools(
        tenant,
        &parts.licenses,
        rows,
        active,
        created_at,
        fallback_vendor.as_ref(),
        anomalies,
    );
    let vendor = match (&s.single_tenant, parts.row) {
        (Some(single), None) if single == tenant => s.vendor.clone(),
        _ => pools::main_vendor(&pools.packages).or(fallback_vendor),
    }
    .ok_or_else(|| {
        format!(
            "tenant {tenant}: no package names its vendor, and the file has not exactly one \
             vendor; name it with --vendor ID"
        )
    })?;
    let packages: Vec<PackageRecord> = pools
        .packages
        .into_iter()
        .map(|p| PackageRecord {
            vendor_id: if p.vendor_id.is_empty() {
                vendor.to_string()
            } else {
                p.vendor_id
            },
            ..p
        })
        .collect();
    let leases = pools::leases(
        tenant,
        &parts.borrows,
        &packages,
        &pools.counters,
        s.now,
        anomalies,
    );
    let (charges, spend, rounding) = pools::ledger(tenant, &parts.charges, &packages, anomalies);
    let mut vendors = BTreeSet::from([vendor.clone()]);
    vendors.extend(
        packages
            .iter()
            .filter_map(|p| VendorId::parse(&p.vendor_id).ok()),
    );
    Ok(Draft {
        id: tenant.clone(),
        tenant: accounts::tenant_record(tenant, &vendor, parts.row, s.now),
        restrictions: pools.restrictions,
        settings: SettingsRecord {
            signature_policy: if s.signing_secret {
                SignaturePolicy::V1
            } else {
                SignaturePolicy::Off
            },
            default_lease_seconds: lease_seconds(),
            anonymous_status: true,
        },
        keys: accounts::keys(tenant, &parts.keys, s.now, digest, anomalies),
        users: accounts::users(tenant, &parts.users, s.now, anomalies),
        packages,
        leases,
        charges,
        spend,
        vendors,
        rounding,
    })
}

impl Draft {
    /// Sum of the imported charges.
    pub fn charged(&self) -> Money {
        self.charges
            .iter()
            .fold(Money::ZERO, |sum, c| sum + c.amount)
    }
}

#[cfg(test)]
mod tests;
