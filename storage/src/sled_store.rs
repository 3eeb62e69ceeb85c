use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::codec::{self, Record};
use crate::group_commit::{GroupCommit, SyncTarget};
use crate::keys;
use crate::records::{FormatRecord, LeaseRecord};
use crate::store::{PlatformOp, Store, Table, TenantMutation, TenantRecords};
use crate::{Durability, Durable, FlushObserver, StorageError, TenantId, Timestamp};

/// Identifies a permetrix store; checked at every open.
const MAGIC: &str = "permetrix";
/// Layout version of the trees and keys (not of single records: those carry their own).
const LAYOUT: u32 = 1;
const FORMAT_KEY: &[u8] = b"format";

/// How to open a [`SledStore`].
#[derive(Clone)]
pub struct SledConfig {
    /// Data directory (created if missing).
    pub path: PathBuf,
    /// When writes are acknowledged.
    pub durability: Durability,
    /// sled page cache size in bytes (sled's default of 1 GiB is too much for a
    /// small machine, so it is always set explicitly).
    pub cache_capacity: u64,
    /// Receives one report per flush.
    pub observer: Option<Arc<dyn FlushObserver>>,
}

impl SledConfig {
    /// Strict durability, 64 MiB cache.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SledConfig {
            path: path.into(),
            durability: Durability::Strict,
            cache_capacity: 64 * 1024 * 1024,
            observer: None,
        }
    }
}

/// The embedded store: one sled database in the data directory.
pub struct SledStore {
    db: sled::Db,
    tenant_state: sled::Tree,
    platform: Vec<sled::Tree>,
    commit: GroupCommit,
    durability: Durability,
}

/// Flush sled's buffers, then fsync its file: sled's `flush()` stops at
/// `sync_file_range`, which leaves drive caches and file metadata unsynced.
struct SledSync {
    db: sled::Db,
    file: File,
}

impl SyncTarget for SledSync {
    fn sync(&self) -> Result<(), String> {
        self.db.flush().map_err(|e| format!("sled flush: {e}"))?;
        self.file
            .sync_all()
            .map_err(|e| format!("fsync of the database file: {e}"))
    }
}

fn sled_err(context: impl Into<String>) -> impl FnOnce(sled::Error) -> StorageError {
    let context = context.into();
    move |e| StorageError::io(context, e)
}

impl SledStore {
    /// Opens (or creates) the store in `config.path` and checks that it is a permetrix
    /// store of a layout this build reads.
    pub fn open(config: SledConfig) -> Result<Self, StorageError> {
        let path = &config.path;
        check_directory(path)?;
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(config.cache_capacity)
            .mode(sled::Mode::HighThroughput)
            // Our flusher owns flushing; sled's own timer would only add fsyncs.
            .flush_every_ms(None)
            .open()
            .map_err(|e| open_error(path, e))?;
        check_format(&db, path)?;

        let tenant_state = db
            .open_tree("tenant_state")
            .map_err(sled_err("opening tree tenant_state"))?;
        let platform = Table::ALL
            .iter()
            .map(|t| {
                db.open_tree(t.name())
                    .map_err(sled_err(format!("opening tree {}", t.name())))
            })
            .collect::<Result<Vec<_>, _>>()?;

        let db_file = path.join("db");
        let file = File::open(&db_file)
            .map_err(|e| StorageError::io(format!("opening {} for fsync", db_file.display()), e))?;
        let commit = GroupCommit::start(
            config.durability,
            Box::new(SledSync {
                db: db.clone(),
                file,
            }),
            config.observer.clone(),
        )
        .map_err(|e| StorageError::io("starting the flusher thread", e))?;

        Ok(SledStore {
            db,
            tenant_state,
            platform,
            commit,
            durability: config.durability,
        })
    }

    fn tree(&self, table: Table) -> &sled::Tree {
        &self.platform[table.index()]
    }

    fn decode_range<R: Record>(&self, prefix: Vec<u8>) -> Result<Vec<R>, StorageError> {
        self.tenant_state
            .scan_prefix(prefix)
            .map(|item| {
                let (_, v) = item.map_err(sled_err("scanning tenant state"))?;
                Ok(codec::decode(&v)?)
            })
            .collect()
    }
}

/// Refuses directories that hold something other than a sled database, before sled
/// writes its files into them.
fn check_directory(path: &Path) -> Result<(), StorageError> {
    if !path.exists() {
        return std::fs::create_dir_all(path).map_err(|e| {
            StorageError::io(format!("creating data directory {}", path.display()), e)
        });
    }
    if !path.is_dir() {
        return Err(StorageError::Foreign(format!(
            "{} is not a directory; pass --data-dir pointing at a permetrix data directory",
            path.display()
        )));
    }
    let mut entries = std::fs::read_dir(path)
        .map_err(|e| StorageError::io(format!("reading {}", path.display()), e))?;
    let empty = entries.next().is_none();
    if !empty && !path.join("conf").exists() && !path.join("db").exists() {
        return Err(StorageError::Foreign(format!(
            "{} is not empty and holds no permetrix store; pass --data-dir pointing at an \
             empty directory or an existing permetrix data directory",
            path.display()
        )));
    }
    Ok(())
}

fn open_error(path: &Path, e: sled::Error) -> StorageError {
    let text = e.to_string();
    if text.contains("lock") {
        StorageError::Foreign(format!(
            "the data directory {} is in use by another process (sled: {text}); stop the \
             other permetrix or pass a different --data-dir",
            path.display()
        ))
    } else {
        StorageError::Foreign(format!(
            "cannot open the store in {} (sled: {text}); the directory is corrupt or not a \
             permetrix store: restore a backup or pass a different --data-dir",
            path.display()
        ))
    }
}

fn check_format(db: &sled::Db, path: &Path) -> Result<(), StorageError> {
    let meta = db
        .open_tree("meta")
        .map_err(sled_err("opening tree meta"))?;
    match meta
        .get(FORMAT_KEY)
        .map_err(sled_err("reading the format marker"))?
    {
        Some(bytes) => {
            let format: FormatRecord = codec::decode(&bytes).map_err(|e| {
                StorageError::Foreign(format!(
                    "{}: the format marker is unreadable ({e}); this is not a permetrix store",
                    path.display()
                ))
            })?;
            if format.magic != MAGIC || format.layout > LAYOUT {
                return Err(StorageError::Foreign(format!(
                    "{} holds a store of layout {} ('{}'); this build reads layout {LAYOUT}: \
                     run a newer permetrix or pass a different --data-dir",
                    path.display(),
                    format.layout,
                    format.magic
                )));
            }
            Ok(())
        }
        None => {
            // A database with trees but no marker was written by something else.
            let foreign = db
                .tree_names()
                .iter()
                .any(|n| n.as_ref() != b"__sled__default" && n.as_ref() != b"meta")
                || !db.is_empty();
            if foreign {
                return Err(StorageError::Foreign(format!(
                    "{} is a sled database without a permetrix format marker; pass a \
                     different --data-dir",
                    path.display()
                )));
            }
            let marker = FormatRecord {
                magic: MAGIC.into(),
                layout: LAYOUT,
                created_at: Timestamp::now(),
            };
            meta.insert(FORMAT_KEY, codec::encode(&marker))
                .map_err(sled_err("writing the format marker"))?;
            db.flush().map_err(sled_err("flushing the format marker"))?;
            Ok(())
        }
    }
}

/// The key and value (`None` = remove) a tenant mutation writes.
fn record_of(tenant: &TenantId, m: &TenantMutation) -> (Vec<u8>, Option<Vec<u8>>) {
    match m {
        TenantMutation::PutPackage(p) => (
            keys::key(tenant, keys::PACKAGE, p.product_id.as_bytes()),
            Some(codec::encode(p)),
        ),
        TenantMutation::PutLease(l) => (
            keys::key(tenant, keys::LEASE, l.id.as_bytes()),
            Some(codec::encode(l)),
        ),
        TenantMutation::DeleteLease(id) => (keys::key(tenant, keys::LEASE, id.as_bytes()), None),
        TenantMutation::AppendCharge(c) => (keys::charge(tenant, c.seq), Some(codec::encode(c))),
        TenantMutation::PutSettings(s) => (
            keys::key(tenant, keys::SETTINGS, b""),
            Some(codec::encode(s)),
        ),
        TenantMutation::PutRestriction(r) => (
            keys::key(tenant, keys::RESTRICTION, r.product_id.as_bytes()),
            Some(codec::encode(r)),
        ),
        TenantMutation::PutSpend(s) => (
            keys::spend(tenant, &s.product_id, s.month),
            Some(codec::encode(s)),
        ),
    }
}

impl Store for SledStore {
    fn load_tenant(&self, tenant: &TenantId) -> Result<TenantRecords, StorageError> {
        let ledger_head = self
            .tenant_state
            .scan_prefix(keys::kind_prefix(tenant, keys::CHARGE))
            .next_back()
            .transpose()
            .map_err(sled_err(format!("reading the ledger head of {tenant}")))?
            .map(|(_, v)| codec::decode(&v))
            .transpose()?;
        let leases: Vec<LeaseRecord> = self.decode_range(keys::kind_prefix(tenant, keys::LEASE))?;
        Ok(TenantRecords {
            packages: self.decode_range(keys::kind_prefix(tenant, keys::PACKAGE))?,
            leases,
            settings: self
                .decode_range(keys::kind_prefix(tenant, keys::SETTINGS))?
                .pop(),
            restrictions: self.decode_range(keys::kind_prefix(tenant, keys::RESTRICTION))?,
            spend: self.decode_range(keys::kind_prefix(tenant, keys::SPEND))?,
            ledger_head,
        })
    }

    fn append(
        &self,
        tenant: &TenantId,
        mutations: &[TenantMutation],
    ) -> Result<Durable, StorageError> {
        let context = || format!("writing state of tenant {tenant}");
        if let [single] = mutations {
            // One record needs no batch. sled's `apply_batch` pins the log and rolls its
            // IO buffer before and after (a log write on sled's IO threads each time) so
            // that recovery sees the batch whole; a single insert or remove is atomic by
            // itself. Plain borrows and returns are single records: this halves their
            // CPU cost (BENCHMARKS.md, "apply_batch").
            match record_of(tenant, single) {
                (key, Some(value)) => self.tenant_state.insert(key, value).map(drop),
                (key, None) => self.tenant_state.remove(key).map(drop),
            }
            .map_err(sled_err(context()))?;
        } else {
            let mut batch = sled::Batch::default();
            for m in mutations {
                match record_of(tenant, m) {
                    (key, Some(value)) => batch.insert(key, value),
                    (key, None) => batch.remove(key),
                }
            }
            self.tenant_state
                .apply_batch(batch)
                .map_err(sled_err(context()))?;
        }
        self.commit.register()
    }

    fn charges(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<crate::records::ChargeRecord>, StorageError> {
        let start = keys::charge(tenant, after_seq.saturating_add(1));
        let end = keys::kind_prefix(tenant, keys::CHARGE + 1);
        self.tenant_state
            .range(start..end)
            .take(limit)
            .map(|item| {
                let (_, v) = item.map_err(sled_err(format!("reading the ledger of {tenant}")))?;
                Ok(codec::decode(&v)?)
            })
            .collect()
    }

    fn platform_get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .tree(table)
            .get(key.as_bytes())
            .map_err(sled_err(format!("reading {} '{key}'", table.name())))?
            .map(|v| v.to_vec()))
    }

    fn platform_scan(
        &self,
        table: Table,
        prefix: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        self.tree(table)
            .scan_prefix(prefix.as_bytes())
            .map(|item| {
                let (k, v) = item.map_err(sled_err(format!("scanning {}", table.name())))?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
            })
            .collect()
    }

    fn platform_apply(&self, ops: Vec<PlatformOp>) -> Result<Durable, StorageError> {
        use sled::Transactional;
        use sled::transaction::{ConflictableTransactionError, TransactionError};
        let trees: Vec<&sled::Tree> = self.platform.iter().collect();
        let result = trees.as_slice().transaction(|txs| {
            for op in &ops {
                match op {
                    PlatformOp::Put { table, key, value } => {
                        txs[table.index()].insert(key.as_bytes(), value.as_slice())?;
                    }
                    PlatformOp::Insert { table, key, value } => {
                        let tx = &txs[table.index()];
                        if tx.get(key.as_bytes())?.is_some() {
                            return Err(ConflictableTransactionError::Abort(
                                StorageError::AlreadyExists {
                                    table: table.name(),
                                    key: key.clone(),
                                },
                            ));
                        }
                        tx.insert(key.as_bytes(), value.as_slice())?;
                    }
                    PlatformOp::Delete { table, key } => {
                        txs[table.index()].remove(key.as_bytes())?;
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

    fn durability(&self) -> Durability {
        self.durability
    }

    fn shutdown(&self) -> Result<(), StorageError> {
        self.commit.shutdown()?;
        self.db.flush().map_err(sled_err("final flush")).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::*;
    use crate::{BorrowId, Money, Platform};

    fn open(dir: &Path) -> SledStore {
        SledStore::open(SledConfig::new(dir)).unwrap()
    }

    fn lease(product: &str) -> LeaseRecord {
        LeaseRecord {
            id: BorrowId::random(),
            product_id: product.into(),
            user: "dev1".into(),
            borrowed_at: Timestamp::from_secs(1),
            lease_expires_at: Timestamp::from_secs(3601),
            lease_seconds: 3600,
            is_overage: false,
        }
    }

    fn charge(seq: u64) -> ChargeRecord {
        ChargeRecord {
            seq,
            id: format!("c{seq}"),
            product_id: "ecu".into(),
            product_name: "ECU".into(),
            borrow_id: BorrowId::random(),
            user: "dev1".into(),
            charged_at: Timestamp::from_secs(seq as i64),
            amount: Money::from_cents(50_000),
            prev_hash: [0; 32],
            hash: [seq as u8; 32],
        }
    }

    #[tokio::test]
    async fn tenant_state_survives_reopen_and_stays_separate() {
        let dir = tempfile::tempdir().unwrap();
        let acme = TenantId::parse("acme").unwrap();
        let acme2 = TenantId::parse("acme-2").unwrap();
        let (l1, l2) = (lease("ecu"), lease("ecu"));
        {
            let store = open(dir.path());
            let muts = [
                TenantMutation::PutLease(l1.clone()),
                TenantMutation::PutLease(l2.clone()),
                TenantMutation::AppendCharge(charge(1)),
                TenantMutation::AppendCharge(charge(2)),
            ];
            store.append(&acme, &muts).unwrap().wait().await.unwrap();
            store
                .append(&acme, &[TenantMutation::DeleteLease(l1.id)])
                .unwrap()
                .wait()
                .await
                .unwrap();
            store
                .append(&acme2, &[TenantMutation::PutLease(lease("x"))])
                .unwrap()
                .wait()
                .await
                .unwrap();
            store.shutdown().unwrap();
        }
        let store = open(dir.path());
        let loaded = store.load_tenant(&acme).unwrap();
        assert_eq!(loaded.leases, vec![l2]);
        assert_eq!(loaded.ledger_head.map(|c| c.seq), Some(2));
        let charges = store.charges(&acme, 1, 10).unwrap();
        assert_eq!(charges.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![2]);
        assert_eq!(store.load_tenant(&acme2).unwrap().leases.len(), 1);
    }

    #[tokio::test]
    async fn single_and_batched_appends_both_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let acme = TenantId::parse("acme").unwrap();
        let (a, b, c) = (lease("ecu"), lease("ecu"), lease("ecu"));
        {
            let store = open(dir.path());
            // Single records take the plain insert/remove path...
            for m in [
                TenantMutation::PutLease(a.clone()),
                TenantMutation::PutLease(b.clone()),
                TenantMutation::DeleteLease(a.id),
            ] {
                store.append(&acme, &[m]).unwrap().wait().await.unwrap();
            }
            // ...several take one atomic batch.
            let muts = [
                TenantMutation::AppendCharge(charge(1)),
                TenantMutation::PutLease(c.clone()),
                TenantMutation::DeleteLease(b.id),
            ];
            store.append(&acme, &muts).unwrap().wait().await.unwrap();
            store.shutdown().unwrap();
        }
        let loaded = open(dir.path()).load_tenant(&acme).unwrap();
        assert_eq!(loaded.leases, vec![c]);
        assert_eq!(loaded.ledger_head.map(|h| h.seq), Some(1));
    }

    #[tokio::test]
    async fn platform_insert_refuses_existing_keys_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(open(dir.path()));
        let platform = Platform::new(store.clone());
        let rec = PackageIndexRecord {
            package_id: "p1".into(),
            tenant_id: "acme".into(),
            vendor_id: "v".into(),
        };
        platform
            .write(vec![PlatformOp::insert(Table::Packages, "p1", &rec)])
            .unwrap()
            .wait()
            .await
            .unwrap();
        let again = platform.write(vec![
            PlatformOp::mark(Table::VendorTenants, "v/other"),
            PlatformOp::insert(Table::Packages, "p1", &rec),
        ]);
        assert!(matches!(again, Err(StorageError::AlreadyExists { .. })));
        // The first op of the failed batch did not land either.
        assert!(
            store
                .platform_scan(Table::VendorTenants, "")
                .unwrap()
                .is_empty()
        );
        assert_eq!(platform.package("p1").unwrap(), Some(rec));
    }

    #[test]
    fn refuses_a_foreign_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
        let err = SledStore::open(SledConfig::new(dir.path())).err().unwrap();
        assert!(
            err.to_string().contains("holds no permetrix store"),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_second_open_of_the_same_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _first = open(dir.path());
        let err = SledStore::open(SledConfig::new(dir.path())).err().unwrap();
        assert!(err.to_string().contains("in use"), "{err}");
    }
}
