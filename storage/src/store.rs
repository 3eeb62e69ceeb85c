use crate::codec::{self, Record};
use crate::records::{
    ChargeRecord, IdempotencyRecord, IdempotentOperation, LeaseRecord, MoreRequestRecord,
    PackageRecord, RestrictionRecord, SettingsRecord, SpendRecord, UsageRecord,
};
use crate::snapshot::SnapshotWriter;
use crate::{BorrowId, Durability, Durable, StorageError, TenantId, Timestamp};

/// The storage backend. Everything above `storage` talks to this trait, never to sled,
/// so that a replicated backend (one owner per tenant, fenced by an epoch) can replace
/// the embedded store without touching the actors.
pub trait Store: Send + Sync + 'static {
    /// Reads every record of one tenant: what an actor needs to rebuild its state.
    fn load_tenant(&self, tenant: &TenantId) -> Result<TenantRecords, StorageError>;

    /// Applies one tenant's mutations atomically. They are visible to readers at once;
    /// the returned ticket resolves once they are durable.
    fn append(
        &self,
        tenant: &TenantId,
        mutations: &[TenantMutation],
    ) -> Result<Durable, StorageError>;

    /// Reads a tenant's ledger in order, starting after sequence number `after_seq`,
    /// at most `limit` charges.
    fn charges(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<ChargeRecord>, StorageError>;

    /// Reads one pool's usage history in time order: events at or after `start`
    /// (`(at, seq)`, inclusive) and before `end`, at most `limit`. Page on by passing
    /// `(last.at, last.seq + 1)`.
    fn usage_events(
        &self,
        tenant: &TenantId,
        product_id: &str,
        start: (Timestamp, u64),
        end: Timestamp,
        limit: usize,
    ) -> Result<Vec<UsageRecord>, StorageError>;

    /// The last usage event of one pool before `before` (what was in use then).
    fn usage_before(
        &self,
        tenant: &TenantId,
        product_id: &str,
        before: Timestamp,
    ) -> Result<Option<UsageRecord>, StorageError>;

    /// A tenant's requests for more seats, in id order.
    fn more_requests(&self, tenant: &TenantId) -> Result<Vec<MoreRequestRecord>, StorageError>;

    /// One request for more seats.
    fn more_request(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<MoreRequestRecord>, StorageError>;

    /// Reads one platform record.
    fn platform_get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StorageError>;

    /// Reads every platform record of `table` whose key starts with `prefix`, in key
    /// order.
    fn platform_scan(
        &self,
        table: Table,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StorageError>;

    /// Applies platform writes atomically (all or none); an [`PlatformOp::Insert`] on an
    /// existing key fails the whole batch with [`StorageError::AlreadyExists`].
    fn platform_apply(&self, ops: Vec<PlatformOp>) -> Result<Durable, StorageError>;

    /// The durability mode writes are acknowledged under.
    fn durability(&self) -> Durability;

    /// Flushes and syncs everything written so far and stops accepting writes.
    fn shutdown(&self) -> Result<(), StorageError>;

    /// Whether the store serves reads and writes now. A backend that hit an I/O error
    /// answers [`StorageError::Unavailable`] here (and to every call) until it has
    /// recovered.
    fn available(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Changes whenever the backend was reopened after a failure. State loaded under an
    /// older incarnation may hold writes that never became durable: reload it.
    fn incarnation(&self) -> u64 {
        0
    }

    /// Writes a consistent snapshot of everything stored (no write is half in it; every
    /// write in it is durable) as store entries of `out`; returns the number of entries.
    fn export(&self, out: &mut SnapshotWriter<'_>) -> Result<u64, StorageError> {
        let _ = out;
        Err(StorageError::Unavailable(
            "this storage backend cannot write snapshots; use its own backup tools".into(),
        ))
    }
}

/// A platform table (one sled tree each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    /// `vendor_id` → [`crate::records::VendorRecord`].
    Vendors,
    /// `tenant_id` → [`crate::records::TenantRecord`].
    Tenants,
    /// `vendor_id/tenant_id` → empty: the vendor's customers.
    VendorTenants,
    /// `tenant_id/key_id` → [`crate::records::ApiKeyRecord`].
    ApiKeys,
    /// `package_id` → [`crate::records::PackageIndexRecord`].
    Packages,
    /// Named singletons (operator token hash, …).
    Meta,
    /// `tenant_id/username` → [`crate::records::UserRecord`].
    Users,
    /// `hex(session digest)` → [`crate::records::SessionRecord`].
    Sessions,
    /// `tenant_id/key_id` → [`crate::records::KeyUsageRecord`].
    KeyUsage,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 9] = [
        Table::Vendors,
        Table::Tenants,
        Table::VendorTenants,
        Table::ApiKeys,
        Table::Packages,
        Table::Meta,
        Table::Users,
        Table::Sessions,
        Table::KeyUsage,
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
        }
    }

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
        }
    }
}

/// One platform write.
#[derive(Clone, Debug)]
pub enum PlatformOp {
    /// Insert or overwrite.
    Put {
        /// Table.
        table: Table,
        /// Key.
        key: String,
        /// Encoded value.
        value: Vec<u8>,
    },
    /// Insert; the batch fails if the key exists.
    Insert {
        /// Table.
        table: Table,
        /// Key.
        key: String,
        /// Encoded value.
        value: Vec<u8>,
    },
    /// Remove (no error if absent).
    Delete {
        /// Table.
        table: Table,
        /// Key.
        key: String,
    },
}

impl PlatformOp {
    /// Insert or overwrite `record` under `key`.
    pub fn put<R: Record>(table: Table, key: impl Into<String>, record: &R) -> Self {
        PlatformOp::Put {
            table,
            key: key.into(),
            value: codec::encode(record),
        }
    }

    /// Insert `record` under `key`, failing if it exists.
    pub fn insert<R: Record>(table: Table, key: impl Into<String>, record: &R) -> Self {
        PlatformOp::Insert {
            table,
            key: key.into(),
            value: codec::encode(record),
        }
    }

    /// Insert an empty marker (index entries).
    pub fn mark(table: Table, key: impl Into<String>) -> Self {
        PlatformOp::Put {
            table,
            key: key.into(),
            value: Vec::new(),
        }
    }
}

/// One change to a tenant's durable state.
#[derive(Clone, Debug)]
pub enum TenantMutation {
    /// Create or replace a package.
    PutPackage(PackageRecord),
    /// Record an active borrow (also used to extend its lease).
    PutLease(LeaseRecord),
    /// Remove an active borrow (returned or expired).
    DeleteLease(BorrowId),
    /// Append a charge to the ledger (never overwrites: the sequence number is new).
    AppendCharge(ChargeRecord),
    /// Replace the tenant's settings.
    PutSettings(SettingsRecord),
    /// Replace the restriction of one pool.
    PutRestriction(RestrictionRecord),
    /// Replace one pool's spend counter for one month.
    PutSpend(SpendRecord),
    /// Remember an idempotency key and its outcome.
    PutIdempotency(IdempotencyRecord),
    /// Forget an idempotency key (older than its retention).
    DeleteIdempotency {
        /// Operation the key was used on.
        operation: IdempotentOperation,
        /// The key.
        key: String,
    },
    /// Append an event to the usage history (never overwrites: `(at, seq)` is new).
    AppendUsage(UsageRecord),
    /// Create or replace a request for more seats.
    PutMoreRequest(MoreRequestRecord),
}

/// Everything stored for one tenant, as loaded at activation.
#[derive(Clone, Debug, Default)]
pub struct TenantRecords {
    /// Packages (pools).
    pub packages: Vec<PackageRecord>,
    /// Active borrows.
    pub leases: Vec<LeaseRecord>,
    /// Settings, if ever changed from the defaults.
    pub settings: Option<SettingsRecord>,
    /// Customer restrictions.
    pub restrictions: Vec<RestrictionRecord>,
    /// Spend counters (all months).
    pub spend: Vec<SpendRecord>,
    /// The last charge in the ledger, to continue the hash chain.
    pub ledger_head: Option<ChargeRecord>,
    /// Remembered idempotency keys.
    pub idempotency: Vec<IdempotencyRecord>,
    /// The latest usage event (highest `seq`), to continue the usage history.
    pub usage_head: Option<UsageRecord>,
}
