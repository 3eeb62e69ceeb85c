//! Whether each drafted tenant and vendor is new to the store, already imported with
//! the same data (a second run changes nothing), half imported by a run that stopped
//! between its two writes, or in conflict: an id that exists with other data is a
//! refusal naming it, never a merge.
use permetrix_storage::records::{
    ApiKeyRecord, ChargeRecord, LeaseRecord, LegacyKeyRecord, PackageIndexRecord, PackageRecord,
    RestrictionRecord, TenantRecord, UserRecord, VendorRecord,
};
use permetrix_storage::{BorrowId, TenantRecords};

use super::plan::{Draft, VendorDraft};

/// What the store holds that a draft touches, read before anything is written.
#[derive(Clone, Debug, Default)]
pub struct Existing {
    /// The tenant record, if the id is taken.
    pub tenant: Option<TenantRecord>,
    /// The tenant's state.
    pub state: TenantRecords,
    /// Its whole ledger, in order.
    pub charges: Vec<ChargeRecord>,
    /// Its API keys.
    pub keys: Vec<ApiKeyRecord>,
    /// Lookup entries under the digests of the draft's keys, in the draft's order.
    pub key_lookups: Vec<Option<LegacyKeyRecord>>,
    /// Its users.
    pub users: Vec<UserRecord>,
    /// Index entries under the draft's package ids, in the draft's order.
    pub package_index: Vec<Option<PackageIndexRecord>>,
}

/// What to do with a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Create it.
    New,
    /// Imported before with the same data: nothing to write.
    Unchanged,
    /// A run stopped after writing its state and before its records: finish it.
    Resume {
        /// Leases of that run the file no longer holds.
        stale_leases: Vec<BorrowId>,
        /// Charges that run wrote already (the ledger continues after them).
        charges_done: u64,
    },
    /// Refused: the reason names what differs.
    Conflict(String),
}

/// Compares a draft with what the store holds.
pub fn tenant(d: &Draft, e: &Existing) -> Verdict {
    let id = &d.id;
    let conflict = |what: String| {
        Verdict::Conflict(format!(
            "tenant {id} already exists with different data ({what}); nothing of it was \
             written. Delete it first, or import into another data directory"
        ))
    };
    if let Some(t) = &e.tenant {
        return match same_tenant(d, t, e) {
            Ok(()) => Verdict::Unchanged,
            Err(what) => conflict(what),
        };
    }
    for (p, owner) in d.packages.iter().zip(&e.package_index) {
        if let Some(owner) = owner {
            return Verdict::Conflict(format!(
                "package id {} of tenant {id} belongs to tenant {} already",
                p.package_id, owner.tenant_id
            ));
        }
    }
    for (k, lookup) in d.keys.iter().zip(&e.key_lookups) {
        if let Some(l) = lookup {
            return Verdict::Conflict(format!(
                "API key {} of tenant {id} is the same key as {} of tenant {} in the store",
                k.key.key_id, l.key_id, l.tenant_id
            ));
        }
    }
    let s = &e.state;
    let leftover = !s.packages.is_empty()
        || !s.leases.is_empty()
        || s.ledger_head.is_some()
        || s.settings.is_some();
    if !leftover {
        return Verdict::New;
    }
    if let Some(p) = s
        .packages
        .iter()
        .find(|p| !d.packages.iter().any(|n| n.product_id == p.product_id))
    {
        return Verdict::Conflict(format!(
            "tenant {id} has no tenant record but a pool '{}' in the store (an import that \
             stopped halfway, from a file that has changed since) that this file does not \
             have; restore the backup taken before the import",
            p.product_name
        ));
    }
    // The ledger is append-only: what the earlier run wrote must be where this one's
    // ledger starts.
    if e.charges.len() > d.charges.len()
        || e.charges
            .iter()
            .zip(&d.charges)
            .any(|(a, b)| a.hash != b.hash)
    {
        return Verdict::Conflict(format!(
            "tenant {id} has no tenant record but a ledger in the store (an import that \
             stopped halfway, from a file that has changed since) that differs from this \
             file's; restore the backup taken before the import"
        ));
    }
    let stale_leases = s
        .leases
        .iter()
        .filter(|l| !d.leases.iter().any(|n| n.id == l.id))
        .map(|l| l.id)
        .collect();
    Verdict::Resume {
        stale_leases,
        charges_done: e.charges.len() as u64,
    }
}

fn differ(what: &str, stored: impl std::fmt::Debug, file: impl std::fmt::Debug) -> String {
    format!("{what}: the store has {stored:?}, the file {file:?}")
}

/// Whether the stored tenant is this draft, imported earlier. Times the import chose
/// (lease expiry, creation and revocation times it had to supply) and what changed by
/// use since (a password upgraded at login, keys created in permetrix) do not count.
fn same_tenant(d: &Draft, t: &TenantRecord, e: &Existing) -> Result<(), String> {
    let fields = |t: &TenantRecord| {
        (
            t.vendor_id.clone(),
            t.company_name.clone(),
            t.domain.clone(),
            t.crm_id.clone(),
            t.lifecycle,
        )
    };
    if fields(t) != fields(&d.tenant) {
        return Err(differ("tenant", fields(t), fields(&d.tenant)));
    }
    let packages = |ps: &[PackageRecord]| {
        let mut v: Vec<PackageRecord> = ps
            .iter()
            .map(|p| PackageRecord {
                created_at: Default::default(),
                ..p.clone()
            })
            .collect();
        v.sort_by(|a, b| a.product_id.cmp(&b.product_id));
        v
    };
    if packages(&e.state.packages) != packages(&d.packages) {
        return Err(differ(
            "pools",
            packages(&e.state.packages),
            packages(&d.packages),
        ));
    }
    let restrictions = |rs: &[RestrictionRecord]| {
        let mut v: Vec<RestrictionRecord> = rs
            .iter()
            .filter(|r| {
                **r != RestrictionRecord {
                    product_id: r.product_id.clone(),
                    ..Default::default()
                }
            })
            .cloned()
            .collect();
        v.sort_by(|a, b| a.product_id.cmp(&b.product_id));
        v
    };
    if restrictions(&e.state.restrictions) != restrictions(&d.restrictions) {
        return Err(differ(
            "restrictions",
            restrictions(&e.state.restrictions),
            restrictions(&d.restrictions),
        ));
    }
    if e.state.settings.as_ref() != Some(&d.settings) {
        return Err(differ("settings", &e.state.settings, &d.settings));
    }
    let leases = |ls: &[LeaseRecord]| {
        let mut v: Vec<_> = ls
            .iter()
            .map(|l| {
                (
                    l.id,
                    l.product_id.clone(),
                    l.user.clone(),
                    l.borrowed_at,
                    l.is_overage,
                )
            })
            .collect();
        v.sort();
        v
    };
    if leases(&e.state.leases) != leases(&d.leases) {
        return Err(format!(
            "held seats: the store holds {} borrow(s) of it, the file {}, or others",
            e.state.leases.len(),
            d.leases.len()
        ));
    }
    let hashes = |cs: &[ChargeRecord]| cs.iter().map(|c| c.hash).collect::<Vec<_>>();
    if hashes(&e.charges) != hashes(&d.charges) {
        return Err(format!(
            "ledger: the store has {} charge(s), the file {}, or others",
            e.charges.len(),
            d.charges.len()
        ));
    }
    for k in &d.keys {
        let stored = e.keys.iter().find(|s| s.key_id == k.key.key_id);
        let same = stored.is_some_and(|s| {
            (
                s.digest,
                &s.name,
                s.scope,
                s.expires_at,
                s.revoked_at.is_some(),
            ) == (
                k.key.digest,
                &k.key.name,
                k.key.scope,
                k.key.expires_at,
                k.key.revoked_at.is_some(),
            )
        });
        if !same {
            return Err(format!("API key {}", k.key.key_id));
        }
    }
    for u in &d.users {
        let stored = e.users.iter().find(|s| s.username == u.username);
        let same = stored.is_some_and(|s| {
            s.role == u.role
                && (s.password_hash == u.password_hash
                    || s.password_hash
                        .as_deref()
                        .is_some_and(|h| h.starts_with("$argon2")))
        });
        if !same {
            return Err(format!("user {}", u.username));
        }
    }
    Ok(())
}

/// What to do with a vendor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VendorVerdict {
    /// Create it (with the first tenant that needs it).
    New,
    /// It exists with the same data: use it.
    Existing,
    /// Refused.
    Conflict(String),
}

/// Compares a vendor draft with the stored vendor. `secret_matches` says whether the
/// stored signing secret is the one given with `--signing-secret` (`None`: none given).
pub fn vendor(
    d: &VendorDraft,
    stored: Option<&VendorRecord>,
    secret_matches: Option<bool>,
) -> VendorVerdict {
    let Some(v) = stored else {
        return VendorVerdict::New;
    };
    let id = &d.id;
    if v.lifecycle != permetrix_storage::records::Lifecycle::Active {
        return VendorVerdict::Conflict(format!("vendor {id} exists in the store and is deleted"));
    }
    if d.described && (v.vendor_name != d.name || v.contact_email != d.contact_email) {
        return VendorVerdict::Conflict(format!(
            "vendor {id} already exists with different data ({}); nothing was written",
            differ(
                "name and contact",
                (&v.vendor_name, &v.contact_email),
                (&d.name, &d.contact_email)
            )
        ));
    }
    if secret_matches == Some(false) {
        return VendorVerdict::Conflict(format!(
            "vendor {id} already exists with another signing secret; rotate it to the old one \
             first (POST /api/admin/vendors/{id}/rotate-signing-secret with signing_secret), \
             or leave out --signing-secret"
        ));
    }
    VendorVerdict::Existing
}

#[cfg(test)]
mod tests;
