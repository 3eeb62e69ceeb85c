//! Storage for permetrix.
//!
//! This crate owns everything that touches the disk and nothing that knows about HTTP
//! or actors. Its public surface is small:
//!
//! - [`Store`] — the backend trait: load one tenant's records, append a batch of one
//!   tenant's mutations durably, read and write platform records. [`SledStore`] is the
//!   embedded implementation; a replicated SQL backend can implement the same trait.
//! - [`records`] — the versioned record types (`serde` + `bincode`, one schema version
//!   byte in front of every value, see [`codec`]).
//! - [`Durable`] — the ticket a mutation returns: awaiting it resolves once the write is
//!   on disk. In strict mode many tenants' writes share one flush + fsync
//!   ([`group_commit`]); awaiting never blocks the thread that wrote.
//! - [`Platform`] — the platform verbs, one method each with typed arguments: create a
//!   vendor, create a tenant with its first admin key, add or revoke an API key, add a
//!   portal user, store a session, rotate a signing secret, record key use, … Nothing
//!   above `storage` names a table or a key: a backend provides only the raw
//!   [`backend::PlatformBackend`] interface (get, scan, apply atomically), and every
//!   verb works on every backend.
//! - [`ResilientStore`] — the sled store as the server runs it: taken out of service on
//!   an I/O error (every call answers [`StorageError::Unavailable`]) and reopened from
//!   disk once the fault clears; [`Store::incarnation`] tells the actors to reload.
//! - [`snapshot`] — the self-checking backup file format; [`Store::export`] writes a
//!   consistent snapshot of a live store, [`SledStore::restore`] brings one back.
//!
//! # Layout (sled)
//!
//! - tree `tenant_state`: every tenant's records under the key prefix
//!   `<tenant_id> 0x00 <kind byte> <id>`; one tenant's mutations are applied with one
//!   atomic `apply_batch`. The overage ledger (kind `C`, keyed by a big-endian sequence
//!   number) is append-only: no code path deletes or rewrites a charge. So is the usage
//!   history (kind `U`, keyed by pool, time and sequence number). Requests for more
//!   seats are kind `Q`. The webhook outbox (kind `O`, keyed by a big-endian sequence
//!   number) is append-only too; its actor deletes events once delivered.
//! - one tree per platform table ([`backend::Table`]), keyed by `<scope>/<id>` in
//!   tables listed per tenant or vendor and by `<id>` in the others.
//! - tree `meta`: the format marker that identifies a permetrix data directory.
//!
//! # Invariants
//!
//! - A [`Durable`] resolves `Ok` only after the write it belongs to is on disk
//!   (strict mode): a tenant write in the journal (`<data-dir>/journal`, made durable
//!   with one `fdatasync` per group commit and replayed onto sled at open), a platform
//!   write in sled itself (flushed, then the database file `fsync`ed: sled's own
//!   `flush()` uses `sync_file_range` on Linux, which does not flush drive caches or
//!   metadata). sled is flushed and synced at every checkpoint, after which the journal
//!   entries it holds are dropped.
//! - Restart rebuilds exactly what was acknowledged: [`Store::load_tenant`] returns every
//!   record of a tenant, and the ledger head needed to continue its hash chain.
//! - After a failed flush nothing more is acknowledged from that database: every later
//!   flush of it fails too, until it is reopened from disk.
//! - A directory that holds database files but no readable format marker is refused at
//!   open: sled reads damaged files as an empty store, and serving that would silently
//!   drop every tenant.
#![warn(missing_docs)]

pub mod backend;
pub mod codec;
#[cfg(test)]
mod conformance;
mod error;
pub mod group_commit;
mod ids;
mod keys;
mod layout;
mod money;
pub mod ownership;
mod platform;
mod postgres_store;
pub mod records;
mod resilient;
mod sled_store;
pub mod snapshot;
mod store;
#[cfg(any(test, feature = "test-support"))]
pub mod test_records;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
mod timestamp;

pub use error::StorageError;
#[cfg(any(test, feature = "test-support"))]
pub use group_commit::DurableGate;
pub use group_commit::{Durability, Durable, FlushObserver, FlushReport};
pub use ids::{BorrowId, CustomHost, IdError, KeyId, MAX_HOST_LEN, PackageId, TenantId, VendorId};
pub use money::{Money, MoneyError};
pub use ownership::{
    Acquisition, Broker, Epoch, Location, Ownership, OwnershipCounters, SoleOwner,
};
pub use platform::{ImportedKey, ImportedTenant, KeyUse, Platform, Written};
pub use postgres_store::{PgConfig, PgRestore, PgStore};
pub use resilient::ResilientStore;
pub use sled_store::{SledConfig, SledStore};
pub use store::{Store, TenantMutation, TenantRecords};
pub use timestamp::Timestamp;
