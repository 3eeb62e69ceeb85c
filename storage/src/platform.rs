//! [`Platform`]: the typed verbs on platform records, over the raw
//! [`PlatformBackend`](crate::backend::PlatformBackend) interface of any backend.
//!
//! Each verb chooses the tables and keys, encodes the records and applies its writes as
//! one atomic batch, so the layout of platform records is written once, here, whatever
//! the backend. A verb that creates something fails with
//! [`StorageError::AlreadyExists`] when its id is taken; a verb that changes an existing
//! record answers `None` when there is none. Writing verbs return the [`Durable`] ticket
//! of their write: acknowledge only once it resolves.
//!
//! By area: vendors, tenants and the package index in `accounts`; the custom-host index
//! in `hosts`; tenant API keys, imported keys and their last use in `keys`; portal users
//! and sessions in `portal`; vendors' OAuth clients in `oauth`; webhook endpoints, their
//! cursors and deliveries in `webhooks`; vendors' offline token keys in `offline_keys`;
//! what an import from the old license server writes in `import`; the operator token
//! here.
use std::sync::Arc;

use crate::backend::{PlatformKey, PlatformWrite, Table};
use crate::codec::{self, Record};
use crate::records::AdminTokenRecord;
use crate::{Durable, StorageError, Store};

mod accounts;
mod hosts;
mod import;
mod keys;
mod oauth;
mod offline_keys;
mod portal;
mod webhooks;

pub use import::{ImportedKey, ImportedTenant};
pub use keys::KeyUse;

const ADMIN_TOKEN_KEY: &str = "admin_token";

/// Typed access to the platform records of a [`Store`]: vendors, tenants, API keys,
/// the package index, portal users and sessions, the operator token.
#[derive(Clone)]
pub struct Platform {
    store: Arc<dyn Store>,
}

/// What a verb that writes many records at once wrote.
pub struct Written {
    /// How many records were written (0: nothing was, and `durable` is resolved).
    pub records: usize,
    /// Resolves once the writes are durable.
    pub durable: Durable,
}

/// A record type kept in one platform table.
trait Stored: Record {
    const TABLE: Table;
}

/// A platform record whose key follows from its own fields.
trait Keyed: Stored {
    fn key(&self) -> PlatformKey<'_>;
}

impl Stored for AdminTokenRecord {
    const TABLE: Table = Table::Meta;
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

    fn get<R: Stored>(&self, key: PlatformKey<'_>) -> Result<Option<R>, StorageError> {
        self.store
            .platform_get(R::TABLE, key)?
            .map(|bytes| codec::decode(&bytes).map_err(StorageError::from))
            .transpose()
    }

    /// Every record under `scope`, with its id.
    fn scan<R: Stored>(&self, scope: Option<&str>) -> Result<Vec<(String, R)>, StorageError> {
        self.store
            .platform_scan(R::TABLE, scope)?
            .into_iter()
            .map(|(id, bytes)| Ok((id, codec::decode(&bytes)?)))
            .collect()
    }

    /// Every record under `scope`.
    fn records<R: Stored>(&self, scope: Option<&str>) -> Result<Vec<R>, StorageError> {
        Ok(self.scan(scope)?.into_iter().map(|(_, r)| r).collect())
    }

    fn apply(&self, writes: &[PlatformWrite<'_>]) -> Result<Durable, StorageError> {
        self.store.platform_apply(writes)
    }

    /// Applies `writes` unless there are none.
    fn apply_all(&self, writes: &[PlatformWrite<'_>]) -> Result<Written, StorageError> {
        let durable = if writes.is_empty() {
            Durable::done()
        } else {
            self.apply(writes)?
        };
        Ok(Written {
            records: writes.len(),
            durable,
        })
    }

    /// Writes `found` back with `change` applied; `None` if nothing was found.
    fn replace<R: Keyed>(
        &self,
        found: Option<R>,
        change: impl FnOnce(&mut R),
    ) -> Result<Option<Durable>, StorageError> {
        let Some(mut record) = found else {
            return Ok(None);
        };
        change(&mut record);
        self.apply(&[put(&record)]).map(Some)
    }

    /// See [`crate::backend::PlatformBackend::credentials_generation`]: while it
    /// stays the same, API keys, imported keys, tenants and vendors read earlier are
    /// still what is stored; `None`: they may change elsewhere at any time.
    pub fn credentials_generation(&self) -> Option<u64> {
        self.store.credentials_generation()
    }

    /// The operator token hash, if one was stored.
    pub fn admin_token(&self) -> Result<Option<AdminTokenRecord>, StorageError> {
        self.get(PlatformKey::new(ADMIN_TOKEN_KEY))
    }

    /// Stores the operator token hash, replacing any earlier one.
    pub fn set_admin_token(&self, record: &AdminTokenRecord) -> Result<Durable, StorageError> {
        self.apply(&[put_at(PlatformKey::new(ADMIN_TOKEN_KEY), record)])
    }
}

/// Insert `record`; the batch fails if its key exists.
fn insert<R: Keyed>(record: &R) -> PlatformWrite<'_> {
    insert_at(record.key(), record)
}

/// Insert `record` under `key`; the batch fails if the key exists.
fn insert_at<'a, R: Stored>(key: PlatformKey<'a>, record: &R) -> PlatformWrite<'a> {
    PlatformWrite::Insert {
        table: R::TABLE,
        key,
        value: codec::encode(record),
    }
}

/// Insert or overwrite `record`.
fn put<R: Keyed>(record: &R) -> PlatformWrite<'_> {
    put_at(record.key(), record)
}

/// Insert or overwrite `record` under `key`.
fn put_at<'a, R: Stored>(key: PlatformKey<'a>, record: &R) -> PlatformWrite<'a> {
    PlatformWrite::Put {
        table: R::TABLE,
        key,
        value: codec::encode(record),
    }
}

/// Remove the record of type `R` under `key`.
fn delete<R: Stored>(key: PlatformKey<'_>) -> PlatformWrite<'_> {
    PlatformWrite::Delete {
        table: R::TABLE,
        key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SledConfig, SledStore, Timestamp};

    /// A platform over a fresh sled store in a temporary directory.
    pub(super) fn platform() -> (tempfile::TempDir, Platform) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(SledConfig::new(dir.path())).unwrap();
        (dir, Platform::new(Arc::new(store)))
    }

    #[tokio::test]
    async fn the_operator_token_is_replaced() {
        let (_dir, platform) = platform();
        assert_eq!(platform.admin_token().unwrap(), None);
        for hash in ["first", "second"] {
            let record = AdminTokenRecord {
                hash: hash.into(),
                set_at: Timestamp::from_secs(1),
            };
            platform
                .set_admin_token(&record)
                .unwrap()
                .wait()
                .await
                .unwrap();
            assert_eq!(platform.admin_token().unwrap(), Some(record));
        }
    }
}
