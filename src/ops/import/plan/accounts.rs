//! The tenant record, its keys and its users.
use std::collections::BTreeSet;

use permetrix_storage::records::{
    ApiKeyRecord, KeyUsageRecord, LegacyKeyRecord, Lifecycle, TenantRecord, UserRecord,
};
use permetrix_storage::{ImportedKey, TenantId, Timestamp, VendorId};

use super::KeyDigest;
use crate::auth::secrets::random_hex;
use crate::ops::import::anomalies::Anomalies;
use crate::ops::import::rows::{KeyRow, PasswordSource, TenantRow, UserRow};

pub(super) fn tenant_record(
    tenant: &TenantId,
    vendor: &VendorId,
    row: Option<&TenantRow>,
    now: Timestamp,
) -> TenantRecord {
    TenantRecord {
        tenant_id: tenant.to_string(),
        vendor_id: vendor.to_string(),
        company_name: row.map_or_else(|| tenant.to_string(), |t| t.company_name.clone()),
        domain: row.and_then(|t| t.domain.clone()),
        crm_id: row.and_then(|t| t.crm_id.clone()),
        created_at: row.and_then(|t| t.created_at).unwrap_or(now),
        lifecycle: Lifecycle::Active,
        custom_hosts: Vec::new(),
    }
}

/// The old keys, each under its own id, with the keyed digest of its SHA-256. A key
/// revoked in the file is revoked as of the import (the file does not say when).
pub(super) fn keys(
    tenant: &TenantId,
    rows: &[&KeyRow],
    now: Timestamp,
    digest: KeyDigest<'_>,
    anomalies: &mut Anomalies,
) -> Vec<ImportedKey> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for k in rows {
        if !seen.insert(k.sha256_hex.clone()) {
            anomalies.skip(
                &k.origin,
                "its key_hash is another key's: one key cannot be two",
            );
            continue;
        }
        out.push(ImportedKey {
            key: ApiKeyRecord {
                key_id: k.id.clone(),
                tenant_id: tenant.to_string(),
                name: k.name.clone(),
                scope: k.scope,
                digest: digest(&k.sha256_hex),
                created_at: k.created_at.unwrap_or(now),
                revoked_at: k.revoked.then_some(now),
                expires_at: k.expires_at,
            },
            lookup: LegacyKeyRecord {
                tenant_id: tenant.to_string(),
                key_id: k.id.clone(),
                environment: k.environment.clone(),
            },
            last_used: k.last_used_at.map(|at| KeyUsageRecord { last_used_at: at }),
        });
    }
    out
}

/// The portal users; a name that folds to one already taken is skipped.
pub(super) fn users(
    tenant: &TenantId,
    rows: &[&UserRow],
    now: Timestamp,
    anomalies: &mut Anomalies,
) -> Vec<UserRecord> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for u in rows {
        if !seen.insert(u.username.clone()) {
            anomalies.skip(
                &u.origin,
                format!(
                    "user name '{}' is taken in this tenant (names are case-folded)",
                    u.username
                ),
            );
            continue;
        }
        out.push(UserRecord {
            user_id: random_hex::<16>(),
            tenant_id: tenant.to_string(),
            username: u.username.clone(),
            password_hash: match &u.password {
                PasswordSource::Imported(hash) => Some(hash.clone()),
                PasswordSource::NotSet => None,
            },
            role: u.role,
            created_at: u.created_at.unwrap_or(now),
        });
    }
    out
}
