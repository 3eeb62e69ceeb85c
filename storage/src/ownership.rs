//! Which broker owns a tenant: the seam between one machine and several.
//!
//! Every tenant is owned by exactly one broker at a time, and only its owner writes its
//! state (`SCALE-OUT.md`). Ownership is fenced by an [`Epoch`] that only grows: every
//! write batch of a tenant carries the epoch its owner acquired it under
//! ([`crate::Store::append`]), and a backend shared by several brokers refuses a batch
//! whose epoch is no longer current with [`crate::StorageError::Fenced`]. A broker that
//! cannot prove its own lease ([`Ownership::lease_holds`]) must stop answering from
//! memory.
//!
//! One machine with an embedded store is the degenerate case: [`SoleOwner`] owns every
//! tenant under [`Epoch::SOLE`] and never loses its lease.
use std::fmt;
use std::sync::Arc;

use crate::{StorageError, Store, TenantId, TenantRecords};

/// A tenant's ownership generation: raised by one on every acquisition, never lowered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(u64);

impl Epoch {
    /// The epoch of a store with a single owner (the embedded store): never fenced.
    pub const SOLE: Epoch = Epoch(0);

    /// An epoch as stored by a backend.
    pub const fn new(value: u64) -> Self {
        Epoch(value)
    }

    /// The stored value.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Another broker, as far as routing a request to it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broker {
    /// Its registration: `<machine id>:<uuid of that start>`; a restarted broker is a
    /// new node.
    pub node: String,
    /// The Fly machine id it runs on (`fly-replay: instance=<id>`), when on Fly.
    pub machine_id: Option<String>,
    /// Where other brokers reach it (`--advertise`), for peer forwarding off Fly.
    pub address: String,
}

/// Where a tenant lives now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// This broker owns it, under this epoch.
    Local(Epoch),
    /// Another broker owns it and its lease holds.
    Remote(Broker),
    /// Nobody owns it (never acquired, released, or its owner's lease lapsed).
    Unowned,
}

/// The outcome of asking to own a tenant.
#[derive(Debug)]
pub enum Acquisition {
    /// This broker owns the tenant now; its state was loaded in the same step, so no
    /// write of a previous owner can be missing from it.
    Acquired {
        /// The epoch every write batch of this ownership carries.
        epoch: Epoch,
        /// Everything stored for the tenant.
        records: Box<TenantRecords>,
    },
    /// Another broker owns it and its lease holds: route the request there.
    OwnedBy(Broker),
}

/// Ownership of tenants by brokers. Calls may wait for a database round trip: callers
/// keep them off threads that must not block.
pub trait Ownership: Send + Sync + 'static {
    /// Where `tenant` lives now (no change is made).
    fn locate(&self, tenant: &TenantId) -> Result<Location, StorageError>;

    /// Takes ownership of `tenant` if it is unowned, released, or its owner's lease
    /// lapsed, and loads its state in the same step; else names its owner.
    fn acquire(&self, tenant: &TenantId) -> Result<Acquisition, StorageError>;

    /// Whether [`Ownership::acquire`] waits on another machine (a database round trip),
    /// so that callers give it a blocking thread of its own. When it is a local read, it
    /// runs where the request runs, as the request's other store reads do: a blocking
    /// thread per concurrent activation costs memory that stays (each thread keeps its
    /// own allocator heap), about 180 MB when 100,000 tenants were activated at once.
    fn acquire_waits_on_the_network(&self) -> bool {
        true
    }

    /// Gives up ownership acquired under `epoch`, after its last write is durable, so
    /// that the next request anywhere acquires it at once. Releasing a tenant this
    /// broker no longer owns under `epoch` is not an error.
    fn release(&self, tenant: &TenantId, epoch: Epoch) -> Result<(), StorageError>;

    /// Whether this broker may still answer from the state it holds: its lease is
    /// proven within the lease time. Once false, every tenant's state in memory must be
    /// dropped; it stays false until [`Ownership::rejoin`].
    fn lease_holds(&self) -> bool;

    /// After the lease was lost ([`Ownership::lease_holds`] turned false) and the caller
    /// dropped every tenant's state: registers this broker again, under a new node id,
    /// with a fresh lease. Nothing owned under the old registration is owned any more.
    fn rejoin(&self) -> Result<(), StorageError>;

    /// Graceful shutdown: once every write made so far is durable, releases every
    /// tenant this broker still owns and ends its lease, so that other brokers acquire
    /// them at once. [`Ownership::lease_holds`] is false afterwards.
    fn leave(&self) -> Result<(), StorageError>;

    /// Ownership changes and fenced writes since start, for metrics.
    fn counters(&self) -> OwnershipCounters {
        OwnershipCounters::default()
    }
}

/// Counts of ownership events since the broker started (monotonic; for metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OwnershipCounters {
    /// Tenants acquired by this broker.
    pub acquisitions: u64,
    /// Tenants released by this broker (passivation, shutdown).
    pub releases: u64,
    /// Writes refused because the tenant's ownership had moved on.
    pub fenced_writes: u64,
    /// Times this broker's lease lapsed before it could renew it.
    pub leases_lost: u64,
}

/// One broker that owns every tenant of its store, under [`Epoch::SOLE`]: the embedded
/// store on one machine.
pub struct SoleOwner {
    store: Arc<dyn Store>,
}

impl SoleOwner {
    /// The sole owner of `store`'s tenants.
    pub fn new(store: Arc<dyn Store>) -> Self {
        SoleOwner { store }
    }
}

impl Ownership for SoleOwner {
    fn locate(&self, _tenant: &TenantId) -> Result<Location, StorageError> {
        Ok(Location::Local(Epoch::SOLE))
    }

    fn acquire(&self, tenant: &TenantId) -> Result<Acquisition, StorageError> {
        Ok(Acquisition::Acquired {
            epoch: Epoch::SOLE,
            records: Box::new(self.store.load_tenant(tenant)?),
        })
    }

    fn acquire_waits_on_the_network(&self) -> bool {
        false
    }

    fn release(&self, _tenant: &TenantId, _epoch: Epoch) -> Result<(), StorageError> {
        Ok(())
    }

    fn lease_holds(&self) -> bool {
        true
    }

    fn rejoin(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn leave(&self) -> Result<(), StorageError> {
        Ok(())
    }
}
