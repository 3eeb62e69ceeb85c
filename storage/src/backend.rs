//! The raw platform interface a storage backend implements.
//!
//! Platform records (vendors, tenants, API keys, users, sessions, …) are encoded bytes
//! stored under a [`PlatformKey`] in one of a fixed set of [`Table`]s. A backend gets,
//! scans and atomically applies writes; it knows nothing of what the records mean. The
//! verbs above it ([`crate::Platform`]) choose tables and keys, encode records and keep
//! the rules, so a verb added later works on every backend unchanged.
//!
//! A key is structured (an optional scope and an id), not a string a backend must
//! parse: the sled store joins the two with `/`, a SQL store can keep them as columns.
//!
//! Only backends (and test doubles that wrap one) use this module; services above
//! `storage` speak the verbs of [`crate::Platform`].
use std::fmt;

use crate::{Durable, StorageError};

/// Raw access to the platform tables. [`crate::Store`] requires it, so every backend
/// provides it.
pub trait PlatformBackend: Send + Sync {
    /// Reads one record.
    fn platform_get(
        &self,
        table: Table,
        key: PlatformKey<'_>,
    ) -> Result<Option<Vec<u8>>, StorageError>;

    /// Reads every record of `table` under `scope` (`Some` exactly for the tables that
    /// are [`Table::scoped`]; `None` reads a whole unscoped table), as `(id, value)` in
    /// byte order of the id.
    fn platform_scan(
        &self,
        table: Table,
        scope: Option<&str>,
    ) -> Result<Vec<(String, Vec<u8>)>, StorageError>;

    /// Applies writes atomically (all or none), in order. A [`PlatformWrite::Insert`]
    /// whose key exists fails the whole batch with [`StorageError::AlreadyExists`]. The
    /// writes are visible to readers at once; the ticket resolves once they are durable.
    fn platform_apply(&self, writes: &[PlatformWrite<'_>]) -> Result<Durable, StorageError>;

    /// A number that moves on after every write to a table that holds credentials
    /// ([`Table::holds_credentials`]), once the write is visible to readers; `None` if
    /// such records can change without this process noticing (another process writes
    /// them too). What was read from those tables under one number may be kept in
    /// memory while the number stays the same, and never when it is `None`.
    fn credentials_generation(&self) -> Option<u64> {
        None
    }
}

/// A platform table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    /// `vendor_id` → [`crate::records::VendorRecord`].
    Vendors,
    /// `tenant_id` → [`crate::records::TenantRecord`].
    Tenants,
    /// scope `vendor_id`, id `tenant_id` → empty: the vendor's customers.
    VendorTenants,
    /// scope `tenant_id`, id `key_id` → [`crate::records::ApiKeyRecord`].
    ApiKeys,
    /// `package_id` → [`crate::records::PackageIndexRecord`].
    Packages,
    /// Named singletons (the operator token hash).
    Meta,
    /// scope `tenant_id`, id `username` → [`crate::records::UserRecord`].
    Users,
    /// hex of the session token's keyed digest → [`crate::records::SessionRecord`].
    Sessions,
    /// scope `tenant_id`, id `key_id` → [`crate::records::KeyUsageRecord`].
    KeyUsage,
    /// host name → [`crate::records::CustomHostRecord`]: each custom host once, so an
    /// insert of a taken host fails.
    CustomHosts,
    /// hex of an imported key's digest → [`crate::records::LegacyKeyRecord`].
    LegacyKeys,
    /// scope `vendor_id`, id `client_id` → [`crate::records::OAuthClientRecord`].
    OAuthClients,
    /// scope `vendor_id`, id endpoint id → [`crate::records::WebhookEndpointRecord`].
    WebhookEndpoints,
    /// scope endpoint id, id `tenant_id` → [`crate::records::WebhookCursorRecord`].
    WebhookCursors,
    /// scope endpoint id, id `<tenant_id>.<seq>` →
    /// [`crate::records::WebhookDeliveryRecord`].
    WebhookDeliveries,
    /// `vendor_id` → [`crate::records::OfflineKeySetRecord`]: the keys that sign a
    /// vendor's offline tokens.
    OfflineKeys,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 16] = [
        Table::Vendors,
        Table::Tenants,
        Table::VendorTenants,
        Table::ApiKeys,
        Table::Packages,
        Table::Meta,
        Table::Users,
        Table::Sessions,
        Table::KeyUsage,
        Table::CustomHosts,
        Table::LegacyKeys,
        Table::OAuthClients,
        Table::WebhookEndpoints,
        Table::WebhookCursors,
        Table::WebhookDeliveries,
        Table::OfflineKeys,
    ];

    /// The table's name (sled tree name, error messages).
    pub fn name(self) -> &'static str {
        match self {
            Table::Vendors => "vendors",
            Table::Tenants => "tenants",
            Table::VendorTenants => "vendor_tenants",
            Table::ApiKeys => "api_keys",
            Table::Packages => "packages",
            Table::Meta => "platform_meta",
            Table::Users => "users",
            Table::Sessions => "sessions",
            Table::KeyUsage => "api_key_usage",
            Table::CustomHosts => "custom_hosts",
            Table::LegacyKeys => "legacy_api_keys",
            Table::OAuthClients => "oauth_clients",
            Table::WebhookEndpoints => "webhook_endpoints",
            Table::WebhookCursors => "webhook_cursors",
            Table::WebhookDeliveries => "webhook_deliveries",
            Table::OfflineKeys => "offline_keys",
        }
    }

    /// Whether the table's keys carry a scope (the tenant or vendor its records are
    /// listed by).
    pub fn scoped(self) -> bool {
        matches!(
            self,
            Table::VendorTenants
                | Table::ApiKeys
                | Table::Users
                | Table::KeyUsage
                | Table::OAuthClients
                | Table::WebhookEndpoints
                | Table::WebhookCursors
                | Table::WebhookDeliveries
        )
    }

    /// Whether the table's records decide what an API key verifies to: the keys
    /// themselves, imported keys, and the tenants and vendors they belong to (a soft
    /// delete).
    pub fn holds_credentials(self) -> bool {
        matches!(
            self,
            Table::ApiKeys | Table::LegacyKeys | Table::Tenants | Table::Vendors
        )
    }

    /// Whether the table holds bookkeeping written often and off any request's path,
    /// which no other record depends on and whose loss repeats work but loses nothing:
    /// webhook progress (a lost cursor or delivery record means an event is delivered
    /// again, and deliveries are at least once) and API-key usage. A backend may make
    /// writes that touch only such tables durable apart from the others, so that they
    /// never hold up a tenant's write (the sled store: its own flusher).
    pub fn flushed_apart(self) -> bool {
        matches!(
            self,
            Table::WebhookCursors | Table::WebhookDeliveries | Table::KeyUsage
        )
    }

    /// Position in [`Table::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            Table::Vendors => 0,
            Table::Tenants => 1,
            Table::VendorTenants => 2,
            Table::ApiKeys => 3,
            Table::Packages => 4,
            Table::Meta => 5,
            Table::Users => 6,
            Table::Sessions => 7,
            Table::KeyUsage => 8,
            Table::CustomHosts => 9,
            Table::LegacyKeys => 10,
            Table::OAuthClients => 11,
            Table::WebhookEndpoints => 12,
            Table::WebhookCursors => 13,
            Table::WebhookDeliveries => 14,
            Table::OfflineKeys => 15,
        }
    }
}

/// Where a platform record lives within its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PlatformKey<'a> {
    /// The tenant or vendor the record is listed by, in [`Table::scoped`] tables;
    /// `None` in the others. Never contains `/`.
    pub scope: Option<&'a str>,
    /// The record's id within its scope.
    pub id: &'a str,
}

impl<'a> PlatformKey<'a> {
    /// A key of an unscoped table.
    pub fn new(id: &'a str) -> Self {
        PlatformKey { scope: None, id }
    }

    /// A key of a scoped table.
    pub fn scoped(scope: &'a str, id: &'a str) -> Self {
        PlatformKey {
            scope: Some(scope),
            id,
        }
    }
}

/// `scope/id`, or `id` (error messages).
impl fmt::Display for PlatformKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scope {
            Some(scope) => write!(f, "{scope}/{}", self.id),
            None => f.write_str(self.id),
        }
    }
}

impl PlatformWrite<'_> {
    /// The table written.
    pub fn table(&self) -> Table {
        match self {
            PlatformWrite::Put { table, .. }
            | PlatformWrite::Insert { table, .. }
            | PlatformWrite::Delete { table, .. } => *table,
        }
    }
}

/// Whether any of `writes` goes to a table that [`Table::holds_credentials`].
pub fn touches_credentials(writes: &[PlatformWrite<'_>]) -> bool {
    writes.iter().any(|w| w.table().holds_credentials())
}

/// One platform write.
#[derive(Clone, Debug)]
pub enum PlatformWrite<'a> {
    /// Insert or overwrite.
    Put {
        /// Table.
        table: Table,
        /// Key.
        key: PlatformKey<'a>,
        /// Encoded value.
        value: Vec<u8>,
    },
    /// Insert; the batch fails if the key exists.
    Insert {
        /// Table.
        table: Table,
        /// Key.
        key: PlatformKey<'a>,
        /// Encoded value.
        value: Vec<u8>,
    },
    /// Remove (no error if absent).
    Delete {
        /// Table.
        table: Table,
        /// Key.
        key: PlatformKey<'a>,
    },
}
