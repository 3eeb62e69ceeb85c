use std::sync::Arc;

use crate::codec::{self, Record};
use crate::records::{
    AdminTokenRecord, ApiKeyRecord, KeyUsageRecord, Lifecycle, PackageIndexRecord, SessionRecord,
    TenantRecord, UserRecord, VendorRecord,
};
use crate::store::{PlatformOp, Store, Table};
use crate::{Durable, StorageError, TenantId, VendorId};

const ADMIN_TOKEN_KEY: &str = "admin_token";

/// Typed access to the platform tables of a [`Store`].
#[derive(Clone)]
pub struct Platform {
    store: Arc<dyn Store>,
}

impl Platform {
    /// Wraps a store.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Platform { store }
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn get<R: Record>(&self, table: Table, key: &str) -> Result<Option<R>, StorageError> {
        self.store
            .platform_get(table, key)?
            .map(|bytes| codec::decode(&bytes).map_err(StorageError::from))
            .transpose()
    }

    fn scan<R: Record>(&self, table: Table, prefix: &str) -> Result<Vec<R>, StorageError> {
        self.store
            .platform_scan(table, prefix)?
            .into_iter()
            .map(|(_, bytes)| codec::decode(&bytes).map_err(StorageError::from))
            .collect()
    }

    /// Applies writes atomically.
    pub fn write(&self, ops: Vec<PlatformOp>) -> Result<Durable, StorageError> {
        self.store.platform_apply(ops)
    }

    /// A vendor, live or deleted.
    pub fn vendor(&self, id: &VendorId) -> Result<Option<VendorRecord>, StorageError> {
        self.get(Table::Vendors, id.as_str())
    }

    /// Every vendor.
    pub fn vendors(&self) -> Result<Vec<VendorRecord>, StorageError> {
        self.scan(Table::Vendors, "")
    }

    /// A tenant, live or deleted.
    pub fn tenant(&self, id: &TenantId) -> Result<Option<TenantRecord>, StorageError> {
        self.get(Table::Tenants, id.as_str())
    }

    /// A live tenant.
    pub fn live_tenant(&self, id: &TenantId) -> Result<Option<TenantRecord>, StorageError> {
        Ok(self
            .tenant(id)?
            .filter(|t| t.lifecycle == Lifecycle::Active))
    }

    /// Every tenant.
    pub fn tenants(&self) -> Result<Vec<TenantRecord>, StorageError> {
        self.scan(Table::Tenants, "")
    }

    /// The ids of a vendor's tenants (live or deleted), in id order.
    pub fn vendor_tenant_ids(&self, vendor: &VendorId) -> Result<Vec<TenantId>, StorageError> {
        let prefix = format!("{vendor}/");
        self.store
            .platform_scan(Table::VendorTenants, &prefix)?
            .into_iter()
            .filter_map(|(key, _)| key.strip_prefix(&prefix).map(TenantId::parse))
            .map(|id| {
                id.map_err(|e| StorageError::Foreign(format!("corrupt vendor index entry: {e}")))
            })
            .collect()
    }

    /// Key for [`Table::VendorTenants`].
    pub fn vendor_tenant_key(vendor: &VendorId, tenant: &TenantId) -> String {
        format!("{vendor}/{tenant}")
    }

    /// Key for [`Table::ApiKeys`].
    pub fn api_key_key(tenant: &TenantId, key_id: &str) -> String {
        format!("{tenant}/{key_id}")
    }

    /// One tenant API key.
    pub fn api_key(
        &self,
        tenant: &TenantId,
        key_id: &str,
    ) -> Result<Option<ApiKeyRecord>, StorageError> {
        self.get(Table::ApiKeys, &Self::api_key_key(tenant, key_id))
    }

    /// A tenant's API keys, revoked ones included.
    pub fn tenant_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, StorageError> {
        self.scan(Table::ApiKeys, &format!("{tenant}/"))
    }

    /// Where a package lives.
    pub fn package(&self, package_id: &str) -> Result<Option<PackageIndexRecord>, StorageError> {
        self.get(Table::Packages, package_id)
    }

    /// The operator token hash, if one was stored.
    pub fn admin_token(&self) -> Result<Option<AdminTokenRecord>, StorageError> {
        self.get(Table::Meta, ADMIN_TOKEN_KEY)
    }

    /// Stores the operator token hash.
    pub fn set_admin_token(&self, record: &AdminTokenRecord) -> Result<Durable, StorageError> {
        self.write(vec![PlatformOp::put(Table::Meta, ADMIN_TOKEN_KEY, record)])
    }

    /// Key for [`Table::Users`] (usernames never contain `/`).
    pub fn user_key(tenant: &TenantId, username: &str) -> String {
        format!("{tenant}/{username}")
    }

    /// One tenant portal user.
    pub fn user(
        &self,
        tenant: &TenantId,
        username: &str,
    ) -> Result<Option<UserRecord>, StorageError> {
        self.get(Table::Users, &Self::user_key(tenant, username))
    }

    /// A tenant's portal users, in name order.
    pub fn tenant_users(&self, tenant: &TenantId) -> Result<Vec<UserRecord>, StorageError> {
        self.scan(Table::Users, &format!("{tenant}/"))
    }

    /// A portal session by the hex digest of its token.
    pub fn session(&self, digest_hex: &str) -> Result<Option<SessionRecord>, StorageError> {
        self.get(Table::Sessions, digest_hex)
    }

    /// Every portal session with its key (for purging expired ones).
    pub fn sessions(&self) -> Result<Vec<(String, SessionRecord)>, StorageError> {
        self.store
            .platform_scan(Table::Sessions, "")?
            .into_iter()
            .map(|(key, bytes)| Ok((key, codec::decode(&bytes)?)))
            .collect()
    }

    /// When a tenant API key was last used, as last persisted.
    pub fn key_usage(
        &self,
        tenant: &TenantId,
        key_id: &str,
    ) -> Result<Option<KeyUsageRecord>, StorageError> {
        self.get(Table::KeyUsage, &Self::api_key_key(tenant, key_id))
    }
}
