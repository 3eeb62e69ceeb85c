//! The platform tables in sled: one tree per [`Table`], keyed by `scope/id` (scoped
//! tables) or `id`. Scopes (tenant and vendor ids) never contain `/`, so one scope's
//! prefix never matches another's.
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{SledStore, sled_err};
use crate::backend::{PlatformBackend, PlatformKey, PlatformWrite, Table};
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
        // Platform writes (accounts, keys, provisioning) are rare and off the borrow path.
        let _gate = self.write_gate(b"\0platform");
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
            Ok(()) => self.commit.register(),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => {
                Err(StorageError::io("writing platform records", e))
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
    }
}
