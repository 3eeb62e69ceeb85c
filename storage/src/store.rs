use crate::backend::PlatformBackend;
use crate::records::{
    ChargeRecord, IdempotencyRecord, IdempotentOperation, LeaseRecord, MoreRequestRecord,
    NonceRecord, OutboxRecord, PackageRecord, RestrictionRecord, SettingsRecord, SpendRecord,
    UsageRecord,
};
use crate::snapshot::SnapshotWriter;
use crate::{BorrowId, Durability, Durable, Epoch, StorageError, TenantId, Timestamp};

/// The storage backend. Everything above `storage` talks to this trait, never to sled,
/// so that a replicated backend (one owner per tenant, fenced by an epoch) can replace
/// the embedded store without touching the actors. Platform records are reached through
/// the raw [`PlatformBackend`] interface every backend provides, and read and written
/// only by the verbs of [`crate::Platform`].
pub trait Store: PlatformBackend + 'static {
    /// Reads every record of one tenant: what an actor needs to rebuild its state.
    fn load_tenant(&self, tenant: &TenantId) -> Result<TenantRecords, StorageError>;

    /// Applies one tenant's mutations atomically, as its owner under `epoch`
    /// ([`crate::ownership`]). They are visible to the tenant's own reads at once; the
    /// returned ticket resolves once they are durable, or with
    /// [`StorageError::Fenced`] if `epoch` is no longer the tenant's current one (then
    /// none of them is written). A store with a single owner takes [`Epoch::SOLE`].
    fn append(
        &self,
        tenant: &TenantId,
        epoch: Epoch,
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

    /// Reads a tenant's webhook outbox in order, starting after sequence number
    /// `after_seq`, at most `limit` events. Read by the delivery worker without the
    /// tenant's actor: what it returns may include writes not yet durable (the actor
    /// says how far they are).
    fn outbox(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>, StorageError>;

    /// A tenant's requests for more seats, in id order.
    fn more_requests(&self, tenant: &TenantId) -> Result<Vec<MoreRequestRecord>, StorageError>;

    /// One request for more seats.
    fn more_request(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<MoreRequestRecord>, StorageError>;

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
    /// Append an event to the webhook outbox (never overwrites: the sequence number is
    /// new).
    AppendOutbox(OutboxRecord),
    /// Remove an outbox event by sequence number (delivered, or dropped from a full
    /// outbox).
    DeleteOutbox(u64),
    /// Remember a v2 signature nonce (with the borrow it signed).
    PutNonce(NonceRecord),
    /// Forget a nonce whose window has passed.
    DeleteNonce {
        /// Vendor whose secret signed it.
        vendor_id: String,
        /// The nonce.
        nonce: String,
    },
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
    /// The newest webhook outbox event, to continue the outbox's sequence.
    pub outbox_head: Option<OutboxRecord>,
    /// The sequence number of the oldest outbox event still stored.
    pub outbox_oldest: Option<u64>,
    /// Remembered v2 signature nonces.
    pub nonces: Vec<NonceRecord>,
}
