//! What an import from the old license server writes to the platform tables for one
//! tenant, in one atomic write.
use super::{Platform, insert, insert_at, put_at};
use crate::backend::{PlatformKey, PlatformWrite, Table};
use crate::records::{
    ApiKeyRecord, KeyUsageRecord, LegacyKeyRecord, PackageIndexRecord, TenantRecord, UserRecord,
    VendorRecord,
};
use crate::{Durable, StorageError};

/// An imported API key: its record (whose digest is the keyed digest of the old
/// key's SHA-256), its lookup entry, and when the old server last saw it used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedKey {
    /// The key as the tenant lists it.
    pub key: ApiKeyRecord,
    /// Finds the key from the one a client sends.
    pub lookup: LegacyKeyRecord,
    /// Last use recorded by the old server.
    pub last_used: Option<KeyUsageRecord>,
}

/// The platform records of one imported tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedTenant {
    /// Vendors its packages need that the import creates with it.
    pub new_vendors: Vec<VendorRecord>,
    /// The tenant.
    pub tenant: TenantRecord,
    /// A fresh admin key (the old file holds none).
    pub admin_key: ApiKeyRecord,
    /// The old server's keys.
    pub keys: Vec<ImportedKey>,
    /// Portal users.
    pub users: Vec<UserRecord>,
    /// Where each of its packages lives.
    pub packages: Vec<PackageIndexRecord>,
}

impl Platform {
    /// Writes an imported tenant's platform records in one atomic write: the tenant
    /// exists with all of them or not at all. [`StorageError::AlreadyExists`] (and
    /// nothing written) if any id is taken: a new vendor, the tenant,
    /// a key id, an imported key's digest, a user name or a package id.
    pub fn import_tenant(&self, t: &ImportedTenant) -> Result<Durable, StorageError> {
        debug_assert!(t.keys.iter().all(|k| k.key.tenant_id == t.tenant.tenant_id));
        let digests: Vec<String> = t.keys.iter().map(|k| hex::encode(k.key.digest)).collect();
        let mut writes: Vec<PlatformWrite<'_>> = Vec::new();
        writes.extend(t.new_vendors.iter().map(insert));
        writes.push(insert(&t.tenant));
        writes.push(PlatformWrite::Put {
            table: Table::VendorTenants,
            key: PlatformKey::scoped(&t.tenant.vendor_id, &t.tenant.tenant_id),
            value: Vec::new(),
        });
        writes.push(insert(&t.admin_key));
        for (k, digest) in t.keys.iter().zip(&digests) {
            writes.push(insert(&k.key));
            writes.push(insert_at(PlatformKey::new(digest), &k.lookup));
            if let Some(used) = &k.last_used {
                let key = PlatformKey::scoped(&t.tenant.tenant_id, &k.key.key_id);
                writes.push(put_at(key, used));
            }
        }
        writes.extend(t.users.iter().map(insert));
        writes.extend(t.packages.iter().map(insert));
        self.apply(&writes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::platform;
    use super::*;
    use crate::records::UserRole;
    use crate::{TenantId, Timestamp, test_records};

    fn imported(tenant: &str, digest: u8) -> ImportedTenant {
        let at = Timestamp::from_secs(1);
        let mut key = test_records::admin_key(tenant, "key_0123", at);
        key.digest = [digest; 32];
        ImportedTenant {
            new_vendors: Vec::new(),
            tenant: test_records::tenant(tenant, at),
            admin_key: test_records::admin_key(tenant, "adm1", at),
            keys: vec![ImportedKey {
                key,
                lookup: LegacyKeyRecord {
                    tenant_id: tenant.into(),
                    key_id: "key_0123".into(),
                    environment: Some("live".into()),
                },
                last_used: Some(KeyUsageRecord { last_used_at: at }),
            }],
            users: vec![UserRecord {
                user_id: "u1".into(),
                tenant_id: tenant.into(),
                username: "ann".into(),
                password_hash: None,
                role: UserRole::Admin,
                created_at: at,
            }],
            packages: vec![PackageIndexRecord {
                package_id: format!("pkg-{tenant}"),
                tenant_id: tenant.into(),
                vendor_id: "vector".into(),
            }],
        }
    }

    #[tokio::test]
    async fn an_imported_tenant_lands_whole_or_not_at_all() {
        let (_dir, platform) = platform();
        let acme = TenantId::parse("acme").unwrap();
        platform
            .import_tenant(&imported("acme", 7))
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert!(platform.live_tenant(&acme).unwrap().is_some());
        assert_eq!(platform.tenant_api_keys(&acme).unwrap().len(), 2);
        let lookup = platform.legacy_key(&[7; 32]).unwrap().unwrap();
        assert_eq!(
            (lookup.tenant_id.as_str(), lookup.key_id.as_str()),
            ("acme", "key_0123")
        );
        assert!(platform.key_usage(&acme, "key_0123").unwrap().is_some());
        assert_eq!(
            platform.user(&acme, "ann").unwrap().unwrap().password_hash,
            None
        );
        assert!(platform.package("pkg-acme").unwrap().is_some());

        // The same imported key digest under another tenant: nothing of it lands.
        let taken = platform.import_tenant(&imported("globex", 7));
        assert!(matches!(taken, Err(StorageError::AlreadyExists { .. })));
        let globex = TenantId::parse("globex").unwrap();
        assert!(platform.tenant(&globex).unwrap().is_none());
        assert!(platform.user(&globex, "ann").unwrap().is_none());
        assert!(platform.package("pkg-globex").unwrap().is_none());
        platform.import_tenant(&imported("globex", 8)).unwrap();
    }

    #[tokio::test]
    async fn a_rotated_key_is_replaced_in_one_write() {
        let (_dir, platform) = platform();
        let acme = TenantId::parse("acme").unwrap();
        platform.import_tenant(&imported("acme", 7)).unwrap();
        let old = platform.api_key(&acme, "key_0123").unwrap().unwrap();
        let new = test_records::admin_key("acme", "k2", Timestamp::from_secs(2));
        let at = Timestamp::from_secs(3);
        platform
            .rotate_api_key(&old, &new, at)
            .unwrap()
            .wait()
            .await
            .unwrap();
        let old = platform.api_key(&acme, "key_0123").unwrap().unwrap();
        assert_eq!(old.revoked_at, Some(at));
        assert_eq!(platform.api_key(&acme, "k2").unwrap(), Some(new.clone()));
        let again = platform.rotate_api_key(&old, &new, at);
        assert!(matches!(again, Err(StorageError::AlreadyExists { .. })));
    }
}
