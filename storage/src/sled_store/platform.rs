//! The platform tables in sled: one tree per [`Table`], keyed by `scope/id` (scoped
//! tables) or `id`. Scopes (tenant and vendor ids) never contain `/`, so one scope's
//! prefix never matches another's.
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{SledStore, sled_err};
use std::sync::atomic::Ordering;

use crate::backend::{PlatformBackend, PlatformKey, PlatformWrite, Table, touches_credentials};
use crate::{Durable, StorageError};

/// The sled key of `key` in `table`.
fn sled_key(table: Table, key: PlatformKey<'_>) -> Vec<u8> {
    debug_assert_eq!(key.scope.is_some(), table.scoped(), "{}", table.name());
    key.to_string().into_bytes()
}

impl SledStore {
    fn tree(&self, table: Table) -> &sled::Tree {
        &self.platform[table.index()]
    }
}

impl PlatformBackend for SledStore {
    fn platform_get(
        &self,
        table: Table,
        key: PlatformKey<'_>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .tree(table)
            .get(sled_key(table, key))
            .map_err(sled_err(format!("reading {} '{key}'", table.name())))?
            .map(|v| v.to_vec()))
    }

    fn platform_scan(
        &self,
        table: Table,
        scope: Option<&str>,
    ) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        debug_assert_eq!(scope.is_some(), table.scoped(), "{}", table.name());
        let prefix = scope.map(|s| format!("{s}/")).unwrap_or_default();
        self.tree(table)
            .scan_prefix(prefix.as_bytes())
            .map(|item| {
                let (k, v) = item.map_err(sled_err(format!("scanning {}", table.name())))?;
                let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                Ok((id, v.to_vec()))
            })
            .collect()
    }

    fn platform_apply(&self, writes: &[PlatformWrite<'_>]) -> Result<Durable, StorageError> {
        let _gate = self.write_gate(b"\0platform");
        let result = if let [single] = writes {
            // One record is atomic by itself. A sled transaction takes the database-wide
            // concurrency-control lock exclusively, which every tenant write would wait
            // for; webhook progress is written once per delivery, so it must not.
            self.apply_single(single)
        } else {
            self.apply_transaction(writes)
        };
        if touches_credentials(writes) {
            // After the write is visible, whatever its outcome: a reader that read
            // under the old number may have seen the records before it.
            self.credentials.fetch_add(1, Ordering::AcqRel);
        }
        result?;
        // Platform records are not journalled: sled's flush makes them durable.
        if writes.iter().all(|w| w.table().flushed_apart()) {
            return self.apart.register();
        }
        // Before joining a batch, so that the batch's flush sees it. In the tenants'
        // batch, not apart: a tenant write after it (a new tenant's first packages)
        // must not be durable without it.
        self.sync.platform_dirty.store(true, Ordering::Release);
        self.commit.register()
    }

    /// This process is the only writer of the database.
    fn credentials_generation(&self) -> Option<u64> {
        Some(self.credentials.load(Ordering::Acquire))
    }
}

impl SledStore {
    /// Several records (accounts, keys, provisioning) are rare and off the borrow path:
    /// one transaction.
    fn apply_transaction(&self, writes: &[PlatformWrite<'_>]) -> Result<(), StorageError> {
        let trees: Vec<&sled::Tree> = self.platform.iter().collect();
        let result = trees.as_slice().transaction(|txs| {
            for write in writes {
                match write {
                    PlatformWrite::Put { table, key, value } => {
                        txs[table.index()].insert(sled_key(*table, *key), value.as_slice())?;
                    }
                    PlatformWrite::Insert { table, key, value } => {
                        let tx = &txs[table.index()];
                        let sled_key = sled_key(*table, *key);
                        if tx.get(&sled_key)?.is_some() {
                            return Err(ConflictableTransactionError::Abort(
                                StorageError::AlreadyExists {
                                    table: table.name(),
                                    key: key.to_string(),
                                },
                            ));
                        }
                        tx.insert(sled_key, value.as_slice())?;
                    }
                    PlatformWrite::Delete { table, key } => {
                        txs[table.index()].remove(sled_key(*table, *key))?;
                    }
                }
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => {
                Err(StorageError::io("writing platform records", e))
            }
        }
    }

    fn apply_single(&self, write: &PlatformWrite<'_>) -> Result<(), StorageError> {
        let context =
            |table: Table, key: PlatformKey<'_>| format!("writing {} '{key}'", table.name());
        match write {
            PlatformWrite::Put { table, key, value } => self
                .tree(*table)
                .insert(sled_key(*table, *key), value.as_slice())
                .map(drop)
                .map_err(sled_err(context(*table, *key))),
            PlatformWrite::Delete { table, key } => self
                .tree(*table)
                .remove(sled_key(*table, *key))
                .map(drop)
                .map_err(sled_err(context(*table, *key))),
            PlatformWrite::Insert { table, key, value } => {
                let swapped = self
                    .tree(*table)
                    .compare_and_swap(
                        sled_key(*table, *key),
                        None as Option<&[u8]>,
                        Some(value.as_slice()),
                    )
                    .map_err(sled_err(context(*table, *key)))?;
                swapped.map_err(|_| StorageError::AlreadyExists {
                    table: table.name(),
                    key: key.to_string(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SledConfig;

    fn put<'a>(table: Table, key: PlatformKey<'a>, value: &[u8]) -> PlatformWrite<'a> {
        PlatformWrite::Put {
            table,
            key,
            value: value.to_vec(),
        }
    }

    /// The layout existing data directories hold: `scope/id` in scoped tables, `id` in
    /// the others.
    #[tokio::test]
    async fn keys_are_laid_out_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(SledConfig::new(dir.path())).unwrap();
        store
            .platform_apply(&[
                put(Table::ApiKeys, PlatformKey::scoped("acme", "k1"), b"a"),
                put(Table::ApiKeys, PlatformKey::scoped("acme-2", "k2"), b"b"),
                put(Table::Vendors, PlatformKey::new("vector"), b"v"),
            ])
            .unwrap()
            .wait()
            .await
            .unwrap();
        let raw = store.tree(Table::ApiKeys);
        assert_eq!(raw.get(b"acme/k1").unwrap().as_deref(), Some(&b"a"[..]));
        assert_eq!(raw.get(b"acme-2/k2").unwrap().as_deref(), Some(&b"b"[..]));
        let vendors = store.tree(Table::Vendors);
        assert_eq!(vendors.get(b"vector").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(
            store.platform_scan(Table::ApiKeys, Some("acme")).unwrap(),
            vec![("k1".to_owned(), b"a".to_vec())]
        );
    }

    #[tokio::test]
    async fn an_insert_on_an_existing_key_fails_the_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(SledConfig::new(dir.path())).unwrap();
        let insert = || PlatformWrite::Insert {
            table: Table::Packages,
            key: PlatformKey::new("p1"),
            value: b"first".to_vec(),
        };
        store.platform_apply(&[insert()]).unwrap();
        let again = store.platform_apply(&[
            put(Table::VendorTenants, PlatformKey::scoped("v", "other"), b""),
            insert(),
        ]);
        match again {
            Err(StorageError::AlreadyExists { table, key }) => {
                assert_eq!((table, key.as_str()), ("packages", "p1"));
            }
            other => panic!("expected AlreadyExists, got {:?}", other.map(|_| ())),
        }
        // The first write of the failed batch did not land either.
        assert!(
            store
                .platform_scan(Table::VendorTenants, Some("v"))
                .unwrap()
                .is_empty()
        );
        let stored = store.platform_get(Table::Packages, PlatformKey::new("p1"));
        assert_eq!(stored.unwrap(), Some(b"first".to_vec()));
        // Alone, too (one record is written without a transaction).
        let alone = store.platform_apply(&[PlatformWrite::Insert {
            table: Table::Packages,
            key: PlatformKey::new("p1"),
            value: b"second".to_vec(),
        }]);
        assert!(matches!(alone, Err(StorageError::AlreadyExists { .. })));
        let stored = store.platform_get(Table::Packages, PlatformKey::new("p1"));
        assert_eq!(stored.unwrap(), Some(b"first".to_vec()));
        store
            .platform_apply(&[PlatformWrite::Delete {
                table: Table::Packages,
                key: PlatformKey::new("p1"),
            }])
            .unwrap();
        assert_eq!(
            store
                .platform_get(Table::Packages, PlatformKey::new("p1"))
                .unwrap(),
            None
        );
    }
}
