//! Vendors, tenants and the package index.
use super::hosts::index_writes;
use super::{Keyed, Platform, Stored, insert, put};
use crate::backend::{PlatformKey, PlatformWrite, Table};
use crate::records::{
    ApiKeyRecord, Lifecycle, PackageIndexRecord, SealedSecret, TenantRecord, VendorRecord,
};
use crate::{Durable, StorageError, TenantId, Timestamp, VendorId};

impl Stored for VendorRecord {
    const TABLE: Table = Table::Vendors;
}

impl Keyed for VendorRecord {
    fn key(&self) -> PlatformKey<'_> {
        PlatformKey::new(&self.vendor_id)
    }
}

impl Stored for TenantRecord {
    const TABLE: Table = Table::Tenants;
}

impl Keyed for TenantRecord {
    fn key(&self) -> PlatformKey<'_> {
        PlatformKey::new(&self.tenant_id)
    }
}

impl Stored for PackageIndexRecord {
    const TABLE: Table = Table::Packages;
}

impl Keyed for PackageIndexRecord {
    fn key(&self) -> PlatformKey<'_> {
        PlatformKey::new(&self.package_id)
    }
}

impl Platform {
    /// A vendor, live or deleted.
    pub fn vendor(&self, id: &VendorId) -> Result<Option<VendorRecord>, StorageError> {
        self.get(PlatformKey::new(id.as_str()))
    }

    /// Every vendor, live or deleted, in id order.
    pub fn vendors(&self) -> Result<Vec<VendorRecord>, StorageError> {
        self.records(None)
    }

    fn live_vendor(&self, id: &VendorId) -> Result<Option<VendorRecord>, StorageError> {
        Ok(self
            .vendor(id)?
            .filter(|v| v.lifecycle == Lifecycle::Active))
    }

    /// Creates a vendor; [`StorageError::AlreadyExists`] if its id is taken (by a live
    /// or a deleted vendor).
    pub fn create_vendor(&self, vendor: &VendorRecord) -> Result<Durable, StorageError> {
        self.apply(&[insert(vendor)])
    }

    /// Gives a live vendor a new request-signing secret. The old one keeps verifying
    /// until `previous_until` if given, and stops at once otherwise. `None` if there is
    /// no live vendor `id`.
    pub fn rotate_signing_secret(
        &self,
        id: &VendorId,
        secret: SealedSecret,
        previous_until: Option<Timestamp>,
    ) -> Result<Option<Durable>, StorageError> {
        self.replace(self.live_vendor(id)?, |vendor| {
            let old = std::mem::replace(&mut vendor.signing_secret, secret);
            vendor.previous_signing_secret = previous_until.map(|until| (old, until));
        })
    }

    /// Sets the portal password of a live vendor (an argon2id PHC string). `None` if
    /// there is no live vendor `id`.
    pub fn set_vendor_password(
        &self,
        id: &VendorId,
        password_hash: String,
    ) -> Result<Option<Durable>, StorageError> {
        self.replace(self.live_vendor(id)?, |vendor| {
            vendor.password_hash = Some(password_hash);
        })
    }

    /// Soft-deletes a vendor: the record stays (for audit), marked deleted. `None` if
    /// there is no vendor `id`.
    pub fn soft_delete_vendor(&self, id: &VendorId) -> Result<Option<Durable>, StorageError> {
        self.replace(self.vendor(id)?, |vendor| {
            vendor.lifecycle = Lifecycle::Deleted;
        })
    }

    /// A tenant, live or deleted.
    pub fn tenant(&self, id: &TenantId) -> Result<Option<TenantRecord>, StorageError> {
        self.get(PlatformKey::new(id.as_str()))
    }

    /// A live tenant.
    pub fn live_tenant(&self, id: &TenantId) -> Result<Option<TenantRecord>, StorageError> {
        Ok(self
            .tenant(id)?
            .filter(|t| t.lifecycle == Lifecycle::Active))
    }

    /// Every tenant, live or deleted, in id order.
    pub fn tenants(&self) -> Result<Vec<TenantRecord>, StorageError> {
        self.records(None)
    }

    /// The ids of a vendor's tenants (live or deleted), in id order.
    pub fn vendor_tenant_ids(&self, vendor: &VendorId) -> Result<Vec<TenantId>, StorageError> {
        self.store
            .platform_scan(Table::VendorTenants, Some(vendor.as_str()))?
            .into_iter()
            .map(|(id, _)| {
                TenantId::parse(&id)
                    .map_err(|e| StorageError::Foreign(format!("corrupt vendor index entry: {e}")))
            })
            .collect()
    }

    /// Creates a tenant with its first admin key (which must belong to it) and its
    /// custom hosts (sorted, each once), and lists it among its vendor's tenants, in one
    /// atomic write; [`StorageError::AlreadyExists`] if the tenant id is taken (by any
    /// vendor's tenant, live or deleted), the key id is, or a host is another tenant's
    /// ([`StorageError::is_host_taken`]).
    pub fn create_tenant(
        &self,
        tenant: &TenantRecord,
        admin_key: &ApiKeyRecord,
    ) -> Result<Durable, StorageError> {
        debug_assert_eq!(admin_key.tenant_id, tenant.tenant_id);
        debug_assert!(tenant.custom_hosts.windows(2).all(|w| w[0] < w[1]));
        let mut writes = vec![
            insert(tenant),
            PlatformWrite::Put {
                table: Table::VendorTenants,
                key: PlatformKey::scoped(&tenant.vendor_id, &tenant.tenant_id),
                value: Vec::new(),
            },
            insert(admin_key),
        ];
        writes.extend(index_writes(&tenant.tenant_id, &[], &tenant.custom_hosts));
        self.apply(&writes)
    }

    /// Soft-deletes a tenant: the record stays (for audit), marked deleted, and its
    /// custom hosts are released (another tenant may claim them). `None` if there is no
    /// tenant `id`.
    pub fn soft_delete_tenant(&self, id: &TenantId) -> Result<Option<Durable>, StorageError> {
        let Some(mut tenant) = self.tenant(id)? else {
            return Ok(None);
        };
        tenant.lifecycle = Lifecycle::Deleted;
        let released = std::mem::take(&mut tenant.custom_hosts);
        let mut writes = vec![put(&tenant)];
        writes.extend(index_writes(&tenant.tenant_id, &released, &[]));
        self.apply(&writes).map(Some)
    }

    /// Where a package lives.
    pub fn package(&self, package_id: &str) -> Result<Option<PackageIndexRecord>, StorageError> {
        self.get(PlatformKey::new(package_id))
    }

    /// Records where a package lives; [`StorageError::AlreadyExists`] if its id is
    /// taken.
    pub fn index_package(&self, entry: &PackageIndexRecord) -> Result<Durable, StorageError> {
        self.apply(&[insert(entry)])
    }

    /// Forgets where a package lives (nothing happens if it was never recorded).
    pub fn unindex_package(&self, package_id: &str) -> Result<Durable, StorageError> {
        self.apply(&[PlatformWrite::Delete {
            table: PackageIndexRecord::TABLE,
            key: PlatformKey::new(package_id),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::platform;
    use super::*;
    use crate::test_records;

    fn sealed(byte: u8) -> SealedSecret {
        SealedSecret {
            nonce: vec![byte; 12],
            ciphertext: vec![byte; 48],
        }
    }

    fn vendor(id: &str) -> VendorRecord {
        VendorRecord {
            vendor_id: id.into(),
            vendor_name: id.to_uppercase(),
            contact_email: None,
            api_key_digest: [1; 32],
            signing_secret: sealed(1),
            previous_signing_secret: None,
            password_hash: None,
            created_at: Timestamp::from_secs(1),
            lifecycle: Lifecycle::Active,
        }
    }

    fn tenant(id: &str, vendor: &str) -> TenantRecord {
        TenantRecord {
            vendor_id: vendor.into(),
            ..test_records::tenant(id, Timestamp::from_secs(1))
        }
    }

    fn admin_key(tenant: &str, key_id: &str) -> ApiKeyRecord {
        test_records::admin_key(tenant, key_id, Timestamp::from_secs(1))
    }

    #[tokio::test]
    async fn a_vendor_is_created_once_rotated_and_soft_deleted() {
        let (_dir, platform) = platform();
        let id = VendorId::parse("vector").unwrap();
        platform.create_vendor(&vendor("vector")).unwrap();
        let again = platform.create_vendor(&vendor("vector"));
        assert!(matches!(again, Err(StorageError::AlreadyExists { .. })));

        let until = Timestamp::from_secs(99);
        let rotated = platform.rotate_signing_secret(&id, sealed(2), Some(until));
        rotated.unwrap().unwrap().wait().await.unwrap();
        let stored = platform.vendor(&id).unwrap().unwrap();
        assert_eq!(stored.signing_secret, sealed(2));
        assert_eq!(stored.previous_signing_secret, Some((sealed(1), until)));
        // Without an overlap the old secret stops at once.
        platform
            .rotate_signing_secret(&id, sealed(3), None)
            .unwrap();
        let stored = platform.vendor(&id).unwrap().unwrap();
        assert_eq!(stored.previous_signing_secret, None);

        platform.set_vendor_password(&id, "phc".into()).unwrap();
        let stored = platform.vendor(&id).unwrap().unwrap();
        assert_eq!(stored.password_hash.as_deref(), Some("phc"));

        platform.soft_delete_vendor(&id).unwrap().unwrap();
        let stored = platform.vendor(&id).unwrap().unwrap();
        assert_eq!(stored.lifecycle, Lifecycle::Deleted);
        // A deleted vendor's secrets and password no longer change.
        assert!(
            platform
                .rotate_signing_secret(&id, sealed(4), None)
                .unwrap()
                .is_none()
        );
        assert!(
            platform
                .set_vendor_password(&id, "x".into())
                .unwrap()
                .is_none()
        );
        assert_eq!(platform.vendors().unwrap(), vec![stored]);

        let unknown = VendorId::parse("nobody").unwrap();
        assert!(platform.soft_delete_vendor(&unknown).unwrap().is_none());
    }

    #[tokio::test]
    async fn a_tenant_comes_with_its_admin_key_and_vendor_index_entry() {
        let (_dir, platform) = platform();
        let (acme, vector) = (
            TenantId::parse("acme").unwrap(),
            VendorId::parse("vector").unwrap(),
        );
        platform
            .create_tenant(&tenant("acme", "vector"), &admin_key("acme", "k1"))
            .unwrap()
            .wait()
            .await
            .unwrap();
        platform
            .create_tenant(&tenant("beta", "vector"), &admin_key("beta", "k1"))
            .unwrap();
        platform
            .create_tenant(&tenant("other", "elsewhere"), &admin_key("other", "k1"))
            .unwrap();
        assert_eq!(
            platform.api_key(&acme, "k1").unwrap(),
            Some(admin_key("acme", "k1"))
        );
        let ids = platform.vendor_tenant_ids(&vector).unwrap();
        assert_eq!(ids, vec![acme.clone(), TenantId::parse("beta").unwrap()]);

        // Taken by another vendor's tenant: nothing of the second attempt lands.
        let taken = platform.create_tenant(&tenant("acme", "elsewhere"), &admin_key("acme", "k2"));
        assert!(matches!(taken, Err(StorageError::AlreadyExists { .. })));
        assert_eq!(platform.tenant_api_keys(&acme).unwrap().len(), 1);
        let elsewhere = VendorId::parse("elsewhere").unwrap();
        assert_eq!(platform.vendor_tenant_ids(&elsewhere).unwrap().len(), 1);

        platform.soft_delete_tenant(&acme).unwrap().unwrap();
        assert!(platform.live_tenant(&acme).unwrap().is_none());
        let deleted = platform.tenant(&acme).unwrap().unwrap();
        assert_eq!(deleted.lifecycle, Lifecycle::Deleted);
        assert_eq!(platform.tenants().unwrap().len(), 3);
        let unknown = TenantId::parse("nobody").unwrap();
        assert!(platform.soft_delete_tenant(&unknown).unwrap().is_none());
    }

    #[tokio::test]
    async fn a_package_index_entry_is_unique_until_forgotten() {
        let (_dir, platform) = platform();
        let entry = PackageIndexRecord {
            package_id: "p1".into(),
            tenant_id: "acme".into(),
            vendor_id: "vector".into(),
        };
        platform.index_package(&entry).unwrap();
        let again = platform.index_package(&entry);
        assert!(matches!(again, Err(StorageError::AlreadyExists { .. })));
        assert_eq!(platform.package("p1").unwrap(), Some(entry.clone()));
        platform.unindex_package("p1").unwrap();
        assert_eq!(platform.package("p1").unwrap(), None);
        platform.index_package(&entry).unwrap();
    }
}
