//! The PostgreSQL store: tenants spread over several brokers that share one database,
//! each tenant owned by one broker at a time and fenced by an epoch (`SCALE-OUT.md`).
//!
//! # Schema (version 1, `postgres_store/migrations/v1.sql`)
//!
//! - `brokers(node, machine_id, address, started_at, lease_until)`: one row per broker
//!   registration, its lease on the database clock.
//! - `tenant_owner(tenant, owner, epoch)`: the owner of each tenant; the epoch only
//!   grows.
//! - `tenant_records(tenant, kind, id, value)`: the tenant records a later write
//!   replaces, and `tenant_log` (same columns): the append-only ones, inserted once
//!   ([`crate::layout`] says which kind is which). Values are the codec's bytes.
//! - `platform(tbl, scope, id, value)` and `platform_version(version)`.
//! - `schema_version(version, applied_at)`: the migrations applied ([`schema`]).
//!
//! # Threads
//!
//! The store runs its own thread ([`runtime`]): the group committer ([`commit`]), the
//! lease renewer ([`lease`]) and the connections' I/O live there. [`Store::append`]
//! queues and returns its ticket at once; every other call waits on the calling thread
//! for its round trips, over a connection of a small pool, and never on a runtime of
//! the server.
//!
//! # Reads see the tenant's own writes
//!
//! A write is in the database only once its batch commits. A read of a tenant (its
//! load, ledger, usage, requests for more seats) first waits until that tenant's writes
//! queued before it have settled, so it sees them, and never a write that then fails.
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::layout;
use crate::records::{ChargeRecord, MoreRequestRecord, OutboxRecord, UsageRecord};
use crate::snapshot::SnapshotWriter;
use crate::store::{Store, TenantMutation, TenantRecords};
use crate::{Durability, Durable, Epoch, FlushObserver, StorageError, TenantId, Timestamp};

mod commit;
mod connect;
mod lease;
mod ownership;
mod platform;
mod pool;
mod reads;
mod runtime;
mod schema;
mod snapshot;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ownership;

use commit::{Committer, Rec};
use connect::Connector;
use lease::Lease;
use pool::Pool;
use reads::PgSource;
use runtime::Runtime;
pub use snapshot::PgRestore;

/// Connections of the pool for reads, ownership and platform writes (the committer and
/// the lease renewer have their own).
const POOL_SIZE: usize = 4;

/// How to connect a [`PgStore`].
#[derive(Clone)]
pub struct PgConfig {
    /// How long a broker's lease lasts without renewal (renewed every quarter of it).
    /// Its tenants are unavailable for about this long after the broker dies.
    pub lease_ttl: Duration,
    /// The Fly machine this broker runs on (`FLY_MACHINE_ID`), if any.
    pub machine_id: Option<String>,
    /// Where other brokers reach this one (`--advertise`).
    pub advertise: String,
    /// `Strict`: a write is acknowledged once its commit is durable
    /// (`synchronous_commit = on`). `Relaxed`: once it is committed
    /// (`synchronous_commit = off`: a crash of the database may lose the last commits);
    /// the interval is not used.
    pub durability: Durability,
    /// Receives one report per batch (its size and commit latency).
    pub observer: Option<Arc<dyn FlushObserver>>,
}

impl PgConfig {
    /// A 10-second lease, strict durability, off Fly.
    pub fn new(advertise: impl Into<String>) -> Self {
        PgConfig {
            lease_ttl: Duration::from_secs(10),
            machine_id: None,
            advertise: advertise.into(),
            durability: Durability::Strict,
            observer: None,
        }
    }
}

/// A broker's view of the shared PostgreSQL store: [`Store`] and [`crate::Ownership`]
/// at once.
pub struct PgStore {
    committer: Committer,
    lease: Arc<Lease>,
    pool: Pool,
    durability: Durability,
    acquisitions: AtomicU64,
    releases: AtomicU64,
    /// Kept for its drop, last: the thread stops after everything that runs on it.
    _runtime: Runtime,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`,
    /// `sslmode` as in libpq: disable, prefer, require, verify-full), creates or
    /// migrates its schema, and registers this broker with a fresh lease.
    pub fn connect(url: &str, config: PgConfig) -> Result<Self, StorageError> {
        let runtime = Runtime::start()?;
        let connector = Arc::new(Connector::new(url, config.durability)?);
        let pool = Pool::new(Arc::clone(&connector), runtime.handle().clone(), POOL_SIZE);
        let target = connector.target().to_owned();
        let lease = Arc::new(Lease::new(
            config.lease_ttl,
            config.machine_id,
            config.advertise,
        ));
        let node = lease.new_node();
        let sent = pool.get()?.transaction("BEGIN", |c| {
            schema::migrate(c, &target)?;
            ownership::register(c, &lease, &node)
        })?;
        lease.registered(node, sent);
        runtime
            .handle()
            .spawn(lease::renew(Arc::clone(&lease), Arc::clone(&connector)));
        let committer = Committer::start(
            runtime.handle(),
            connector,
            Arc::clone(&lease),
            config.observer,
        );
        tracing::info!(database = %target, node = %lease.node(), "connected to the PostgreSQL store");
        Ok(PgStore {
            committer,
            lease,
            pool,
            durability: config.durability,
            acquisitions: AtomicU64::new(0),
            releases: AtomicU64::new(0),
            _runtime: runtime,
        })
    }

    /// This broker's current registration (`<machine id or address>:<uuid>`); a new one
    /// after [`crate::Ownership::rejoin`].
    pub fn node(&self) -> String {
        self.lease.node().to_string()
    }

    /// Runs `read` over a pooled connection once `tenant`'s queued writes have settled.
    fn read<T>(
        &self,
        tenant: &TenantId,
        read: impl FnOnce(&mut PgSource<'_>) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        self.committer.settle(tenant);
        let mut conn = self.pool.get()?;
        read(&mut PgSource(&mut conn))
    }
}

impl Store for PgStore {
    fn load_tenant(&self, tenant: &TenantId) -> Result<TenantRecords, StorageError> {
        self.committer.settle(tenant);
        // What the caller writes next is made on top of this load.
        self.committer.clear_poison(tenant);
        self.pool
            .get()?
            .transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", |c| {
                layout::load(&mut PgSource(c), tenant)
            })
    }

    fn append(
        &self,
        tenant: &TenantId,
        epoch: Epoch,
        mutations: &[TenantMutation],
    ) -> Result<Durable, StorageError> {
        if mutations.is_empty() {
            return Ok(Durable::done());
        }
        let records = mutations
            .iter()
            .map(|m| Rec::new(tenant, layout::record_of(tenant, m)))
            .collect::<Result<Vec<_>, _>>()?;
        self.committer.append(tenant, epoch, records)
    }

    fn charges(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<ChargeRecord>, StorageError> {
        self.read(tenant, |src| layout::charges(src, tenant, after_seq, limit))
    }

    fn usage_events(
        &self,
        tenant: &TenantId,
        product_id: &str,
        start: (Timestamp, u64),
        end: Timestamp,
        limit: usize,
    ) -> Result<Vec<UsageRecord>, StorageError> {
        self.read(tenant, |src| {
            layout::usage_events(src, tenant, product_id, start, end, limit)
        })
    }

    fn usage_before(
        &self,
        tenant: &TenantId,
        product_id: &str,
        before: Timestamp,
    ) -> Result<Option<UsageRecord>, StorageError> {
        self.read(tenant, |src| {
            layout::usage_before(src, tenant, product_id, before)
        })
    }

    fn outbox(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>, StorageError> {
        self.read(tenant, |src| layout::outbox(src, tenant, after_seq, limit))
    }

    fn more_requests(&self, tenant: &TenantId) -> Result<Vec<MoreRequestRecord>, StorageError> {
        self.read(tenant, |src| layout::more_requests(src, tenant))
    }

    fn more_request(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<MoreRequestRecord>, StorageError> {
        self.read(tenant, |src| layout::more_request(src, tenant, id))
    }

    fn durability(&self) -> Durability {
        self.durability
    }

    /// Commits everything queued and refuses later writes. The lease stays (see
    /// [`crate::Ownership::leave`] to hand the tenants over).
    fn shutdown(&self) -> Result<(), StorageError> {
        self.committer.close();
        Ok(())
    }

    fn export(&self, out: &mut SnapshotWriter<'_>) -> Result<u64, StorageError> {
        self.export_snapshot(out)
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.committer.close();
        self.lease.stop();
    }
}
