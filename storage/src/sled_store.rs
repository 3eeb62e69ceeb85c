use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLockReadGuard, RwLockWriteGuard};

use crate::backend::Table;
use crate::codec::{self, Record};
use crate::group_commit::{GroupCommit, SyncTarget};
use crate::keys;
use crate::records::{
    ChargeRecord, FormatRecord, LeaseRecord, MoreRequestRecord, PackageRecord, UsageRecord,
};
use crate::store::{Store, TenantMutation, TenantRecords};
use crate::{Durability, Durable, Epoch, FlushObserver, StorageError, TenantId, Timestamp};

mod backup;
mod checkpoint;
mod gate;
mod modes;
mod platform;
mod seat_change;

use checkpoint::Checkpoints;
use gate::WriteGate;

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
    sync: Arc<SledSync>,
    /// Writers share their stripe of it; a snapshot takes it whole, so that no write is
    /// half in a snapshot. Held only while a batch is applied, never while waiting for
    /// a flush.
    gate: WriteGate,
    checkpoints: Checkpoints,
}

/// Flush sled's buffers, then fsync its file: sled's `flush()` stops at
/// `sync_file_range`, which leaves drive caches and file metadata unsynced.
struct SledSync {
    db: sled::Db,
    file: File,
    /// Set by the first failed flush. After a failed `fsync` the kernel may have dropped
    /// the dirty pages and cleared the error, so a later `fsync` that succeeds proves
    /// nothing: every later flush of this database fails too, until it is reopened.
    failed: AtomicBool,
}

impl SyncTarget for SledSync {
    fn sync(&self) -> Result<(), String> {
        if self.failed.load(Ordering::Acquire) {
            return Err(
                "an earlier flush of this database failed; nothing written since \
                        is trusted until the store is reopened"
                    .into(),
            );
        }
        let result = self
            .db
            .flush()
            .map_err(|e| format!("sled flush: {e}"))
            .and_then(|_| {
                self.file
                    .sync_all()
                    .map_err(|e| format!("fsync of the database file: {e}"))
            });
        if result.is_err() {
            self.failed.store(true, Ordering::Release);
        }
        result
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
        let fresh = check_directory(path)?;
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(config.cache_capacity)
            .mode(sled::Mode::HighThroughput)
            // Our flusher owns flushing; sled's own timer would only add fsyncs.
            .flush_every_ms(None)
            .open()
            .map_err(|e| open_error(path, e))?;
        check_format(&db, path, fresh)?;
        let checkpoints = Checkpoints::open(&db, path)?;
        modes::make_private(path);

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
        let sync = Arc::new(SledSync {
            db: db.clone(),
            file,
            failed: AtomicBool::new(false),
        });
        let commit = GroupCommit::start(
            config.durability,
            Box::new(Arc::clone(&sync)),
            config.observer.clone(),
        )
        .map_err(|e| StorageError::io("starting the flusher thread", e))?;

        Ok(SledStore {
            db,
            tenant_state,
            platform,
            commit,
            durability: config.durability,
            sync,
            gate: WriteGate::new(),
            checkpoints,
        })
    }

    /// The usage event with the highest `seq`: the last one of some pool (events are
    /// appended with non-decreasing time, so each pool's last key holds its highest seq).
    fn usage_head(
        &self,
        tenant: &TenantId,
        packages: &[PackageRecord],
    ) -> Result<Option<UsageRecord>, StorageError> {
        let mut head: Option<UsageRecord> = None;
        for p in packages {
            let last = self
                .tenant_state
                .scan_prefix(keys::usage_prefix(tenant, &p.product_id))
                .next_back()
                .transpose()
                .map_err(sled_err(format!("reading the usage head of {tenant}")))?;
            if let Some((_, v)) = last {
                let record: UsageRecord = codec::decode(&v)?;
                if head.as_ref().is_none_or(|h| record.seq > h.seq) {
                    head = Some(record);
                }
            }
        }
        Ok(head)
    }

    /// The raw tenant tree, for the test-only tampering helpers.
    #[cfg(feature = "test-support")]
    pub(crate) fn tenant_tree(&self) -> &sled::Tree {
        &self.tenant_state
    }

    /// Makes everything written so far durable and records a checkpoint beside the
    /// database, so that a later open notices if the database loses any of it. Returns
    /// the checkpoint number. Called periodically and at shutdown.
    pub fn checkpoint(&self) -> Result<u64, StorageError> {
        self.checkpoints.write(&self.sync)
    }

    /// Whether a flush of this database has failed: it must be reopened before anything
    /// written to it can be acknowledged again.
    pub fn has_failed(&self) -> bool {
        self.sync.failed.load(Ordering::Acquire)
    }

    fn write_gate(&self, key: &[u8]) -> RwLockReadGuard<'_, ()> {
        self.gate.shared(key)
    }

    fn exclusive_gate(&self) -> Vec<RwLockWriteGuard<'_, ()>> {
        self.gate.exclusive()
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
/// writes its files into them. Returns whether the directory is new (created now, or
/// empty): only then may a store without a format marker be initialised.
fn check_directory(path: &Path) -> Result<bool, StorageError> {
    if !path.exists() {
        return std::fs::create_dir_all(path).map(|()| true).map_err(|e| {
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
    Ok(empty)
}

fn open_error(path: &Path, e: sled::Error) -> StorageError {
    let text = e.to_string();
    if let sled::Error::Io(io) = e
        && !text.contains("lock")
    {
        // The disk refused (full, read-only, a file-size limit): not a damaged store.
        return StorageError::io(
            format!(
                "opening the store in {} (check free space, permissions and limits)",
                path.display()
            ),
            io,
        );
    }
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

fn check_format(db: &sled::Db, path: &Path, fresh: bool) -> Result<(), StorageError> {
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
            if !fresh {
                // sled reads a database whose files were damaged as an empty one; serving
                // that would silently drop every tenant.
                return Err(StorageError::Foreign(format!(
                    "{} holds database files but no readable permetrix store: the files are \
                     corrupt or were not written by permetrix. Restore a backup \
                     (permetrix restore) or pass a different --data-dir; if the directory \
                     is left over from a first start that was interrupted, it holds no data \
                     and may be deleted",
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
        TenantMutation::PutIdempotency(r) => (
            keys::idempotency(tenant, r.operation, &r.key),
            Some(codec::encode(r)),
        ),
        TenantMutation::DeleteIdempotency { operation, key } => {
            (keys::idempotency(tenant, *operation, key), None)
        }
        TenantMutation::AppendUsage(u) => (
            keys::usage(tenant, &u.product_id, u.at, u.seq),
            Some(codec::encode(u)),
        ),
        TenantMutation::PutMoreRequest(r) => (
            keys::key(tenant, keys::REQUEST, r.id.as_bytes()),
            Some(codec::encode(r)),
        ),
        TenantMutation::PutNonce(n) => (
            keys::nonce(tenant, &n.vendor_id, &n.nonce),
            Some(codec::encode(n)),
        ),
        TenantMutation::DeleteNonce { vendor_id, nonce } => {
            (keys::nonce(tenant, vendor_id, nonce), None)
        }
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
        let packages: Vec<PackageRecord> =
            self.decode_range(keys::kind_prefix(tenant, keys::PACKAGE))?;
        let mut usage_head = self.usage_head(tenant, &packages)?;
        if let Some(head) = &usage_head
            && self.roll_back_torn_seat_change(tenant, head, &leases)?
        {
            usage_head = self.usage_head(tenant, &packages)?;
        }
        Ok(TenantRecords {
            packages,
            leases,
            settings: self
                .decode_range(keys::kind_prefix(tenant, keys::SETTINGS))?
                .pop(),
            restrictions: self.decode_range(keys::kind_prefix(tenant, keys::RESTRICTION))?,
            spend: self.decode_range(keys::kind_prefix(tenant, keys::SPEND))?,
            ledger_head,
            idempotency: self.decode_range(keys::kind_prefix(tenant, keys::IDEMPOTENCY))?,
            usage_head,
            nonces: self.decode_range(keys::kind_prefix(tenant, keys::NONCE))?,
        })
    }

    /// The embedded store has one owner, this process: every epoch is accepted
    /// ([`crate::SoleOwner`] hands out only [`Epoch::SOLE`]).
    fn append(
        &self,
        tenant: &TenantId,
        _epoch: Epoch,
        mutations: &[TenantMutation],
    ) -> Result<Durable, StorageError> {
        let _gate = self.write_gate(tenant.as_str().as_bytes());
        let context = || format!("writing state of tenant {tenant}");
        if let [single] = mutations {
            // One record needs no batch. sled's `apply_batch` takes the database-wide
            // concurrency-control lock exclusively, pins the log and rolls its IO buffer
            // before and after so that recovery sees the batch whole; a single insert or
            // remove is atomic by itself. Heartbeats and settings are single records; plain borrows and
            // returns are written as ordered pairs (`seat_change`); only the rest
            // (overage bookings, idempotent borrows) pays for a batch.
            match record_of(tenant, single) {
                (key, Some(value)) => self.tenant_state.insert(key, value).map(drop),
                (key, None) => self.tenant_state.remove(key).map(drop),
            }
            .map_err(sled_err(context()))?;
        } else if let Some(change) = seat_change::seat_change(mutations) {
            self.write_seat_change(tenant, change)
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
    ) -> Result<Vec<ChargeRecord>, StorageError> {
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

    fn usage_events(
        &self,
        tenant: &TenantId,
        product_id: &str,
        start: (Timestamp, u64),
        end: Timestamp,
        limit: usize,
    ) -> Result<Vec<UsageRecord>, StorageError> {
        let from = keys::usage(tenant, product_id, start.0, start.1);
        let until = keys::usage(tenant, product_id, end, 0);
        if from >= until {
            return Ok(Vec::new());
        }
        self.tenant_state
            .range(from..until)
            .take(limit)
            .map(|item| {
                let (_, v) = item.map_err(sled_err(format!("reading the usage of {tenant}")))?;
                Ok(codec::decode(&v)?)
            })
            .collect()
    }

    fn usage_before(
        &self,
        tenant: &TenantId,
        product_id: &str,
        before: Timestamp,
    ) -> Result<Option<UsageRecord>, StorageError> {
        let from = keys::usage_prefix(tenant, product_id);
        let until = keys::usage(tenant, product_id, before, 0);
        self.tenant_state
            .range(from..until)
            .next_back()
            .transpose()
            .map_err(sled_err(format!("reading the usage of {tenant}")))?
            .map(|(_, v)| codec::decode(&v).map_err(StorageError::from))
            .transpose()
    }

    fn more_requests(&self, tenant: &TenantId) -> Result<Vec<MoreRequestRecord>, StorageError> {
        self.decode_range(keys::kind_prefix(tenant, keys::REQUEST))
    }

    fn more_request(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<MoreRequestRecord>, StorageError> {
        self.tenant_state
            .get(keys::key(tenant, keys::REQUEST, id.as_bytes()))
            .map_err(sled_err(format!("reading request {id} of {tenant}")))?
            .map(|v| codec::decode(&v).map_err(StorageError::from))
            .transpose()
    }

    fn durability(&self) -> Durability {
        self.durability
    }

    fn shutdown(&self) -> Result<(), StorageError> {
        self.commit.shutdown()?;
        self.checkpoint()?;
        self.db.flush().map_err(sled_err("final flush")).map(|_| ())
    }

    fn available(&self) -> Result<(), StorageError> {
        if self.has_failed() {
            return Err(StorageError::Unavailable(
                "a flush of the database failed; restart permetrix once the disk is healthy".into(),
            ));
        }
        Ok(())
    }

    fn export(&self, out: &mut crate::snapshot::SnapshotWriter<'_>) -> Result<u64, StorageError> {
        self.export_trees(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::*;
    use crate::test_records::{lease, package};
    use crate::{BorrowId, Money};

    fn open(dir: &Path) -> SledStore {
        SledStore::open(SledConfig::new(dir)).unwrap()
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
            store
                .append(&acme, Epoch::SOLE, &muts)
                .unwrap()
                .wait()
                .await
                .unwrap();
            store
                .append(&acme, Epoch::SOLE, &[TenantMutation::DeleteLease(l1.id)])
                .unwrap()
                .wait()
                .await
                .unwrap();
            store
                .append(&acme2, Epoch::SOLE, &[TenantMutation::PutLease(lease("x"))])
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

    fn usage(seq: u64, product: &str, at_ms: i64, in_use: u32) -> UsageRecord {
        UsageRecord {
            seq,
            at: Timestamp::from_millis(at_ms),
            product_id: product.into(),
            kind: UsageKind::Borrow,
            borrow_id: BorrowId::random(),
            user: "dev1".into(),
            is_overage: false,
            amount: Money::ZERO,
            in_use,
        }
    }

    #[tokio::test]
    async fn usage_history_reads_by_pool_and_time_window() {
        let dir = tempfile::tempdir().unwrap();
        let acme = TenantId::parse("acme").unwrap();
        let events = [
            usage(1, "ecu", 1_000, 1),
            usage(2, "ecu-2", 1_000, 1),
            usage(3, "ecu", 2_000, 2),
            usage(4, "ecu", 2_000, 1),
            UsageRecord {
                kind: UsageKind::Return,
                ..usage(5, "ecu", 3_000, 0)
            },
        ];
        {
            let store = open(dir.path());
            let mut muts: Vec<_> = events
                .iter()
                .cloned()
                .map(TenantMutation::AppendUsage)
                .collect();
            muts.push(TenantMutation::PutPackage(package(
                "ecu",
                1,
                Timestamp::from_secs(1),
            )));
            muts.push(TenantMutation::PutPackage(package(
                "ecu-2",
                1,
                Timestamp::from_secs(1),
            )));
            store
                .append(&acme, Epoch::SOLE, &muts)
                .unwrap()
                .wait()
                .await
                .unwrap();
            store.shutdown().unwrap();
        }
        let store = open(dir.path());
        let seqs = |v: Vec<UsageRecord>| v.iter().map(|u| u.seq).collect::<Vec<_>>();
        let t = Timestamp::from_millis;
        // [2000, 3000): both events of 2000, in sequence order; not the other pool's.
        let window = store.usage_events(&acme, "ecu", (t(2_000), 0), t(3_000), 10);
        assert_eq!(seqs(window.unwrap()), vec![3, 4]);
        // Paging resumes after the last event returned.
        let page = store.usage_events(&acme, "ecu", (t(0), 0), t(10_000), 2);
        assert_eq!(seqs(page.unwrap()), vec![1, 3]);
        let rest = store.usage_events(&acme, "ecu", (t(2_000), 4), t(10_000), 10);
        assert_eq!(seqs(rest.unwrap()), vec![4, 5]);
        let before = store.usage_before(&acme, "ecu", t(2_000)).unwrap();
        assert_eq!(before.map(|u| u.seq), Some(1));
        assert!(
            store
                .usage_before(&acme, "ecu", t(1_000))
                .unwrap()
                .is_none()
        );
        let head = store.load_tenant(&acme).unwrap().usage_head;
        assert_eq!(head.map(|u| u.seq), Some(5));
    }

    #[tokio::test]
    async fn requests_for_more_seats_are_stored_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let acme = TenantId::parse("acme").unwrap();
        let mut request = MoreRequestRecord {
            id: "acme.01".into(),
            product_id: "ecu".into(),
            product_name: "ECU".into(),
            package_id: "pkg-ecu".into(),
            vendor_id: "v".into(),
            requested_total: Some(30),
            requested_overage: None,
            message: Some("release crunch".into()),
            limits_before: (20, 5, 15),
            created_at: Timestamp::from_secs(1),
            status: RequestStatus::Pending,
            decided_at: None,
            decision_note: None,
            applied: None,
        };
        let put = |r: &MoreRequestRecord| [TenantMutation::PutMoreRequest(r.clone())];
        store
            .append(&acme, Epoch::SOLE, &put(&request))
            .unwrap()
            .wait()
            .await
            .unwrap();
        request.status = RequestStatus::Approved;
        store
            .append(&acme, Epoch::SOLE, &put(&request))
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(store.more_requests(&acme).unwrap(), vec![request.clone()]);
        assert_eq!(store.more_request(&acme, "acme.01").unwrap(), Some(request));
        assert!(store.more_request(&acme, "acme.02").unwrap().is_none());
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
                store
                    .append(&acme, Epoch::SOLE, &[m])
                    .unwrap()
                    .wait()
                    .await
                    .unwrap();
            }
            // ...several take one atomic batch.
            let muts = [
                TenantMutation::AppendCharge(charge(1)),
                TenantMutation::PutLease(c.clone()),
                TenantMutation::DeleteLease(b.id),
            ];
            store
                .append(&acme, Epoch::SOLE, &muts)
                .unwrap()
                .wait()
                .await
                .unwrap();
            store.shutdown().unwrap();
        }
        let loaded = open(dir.path()).load_tenant(&acme).unwrap();
        assert_eq!(loaded.leases, vec![c]);
        assert_eq!(loaded.ledger_head.map(|h| h.seq), Some(1));
    }

    #[tokio::test]
    async fn nonces_are_stored_with_the_tenant_and_forgotten_when_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let acme = TenantId::parse("acme").unwrap();
        let nonce = |n: &str| NonceRecord {
            vendor_id: "vector".into(),
            nonce: n.into(),
            expires_at: Timestamp::from_secs(600),
        };
        {
            let store = open(dir.path());
            let muts = [
                TenantMutation::PutNonce(nonce("a")),
                TenantMutation::PutNonce(nonce("b")),
            ];
            store
                .append(&acme, Epoch::SOLE, &muts)
                .unwrap()
                .wait()
                .await
                .unwrap();
            let forget = TenantMutation::DeleteNonce {
                vendor_id: "vector".into(),
                nonce: "a".into(),
            };
            store
                .append(&acme, Epoch::SOLE, &[forget])
                .unwrap()
                .wait()
                .await
                .unwrap();
            store.shutdown().unwrap();
        }
        let loaded = open(dir.path()).load_tenant(&acme).unwrap();
        assert_eq!(loaded.nonces, vec![nonce("b")]);
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
    fn refuses_a_database_that_lost_a_completed_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open(dir.path());
            assert_eq!(store.checkpoint().unwrap(), 1);
            store.shutdown().unwrap();
        }
        // A clean shutdown checkpoints; reopening is fine.
        let store = open(dir.path());
        assert_eq!(store.checkpoint().unwrap(), 3);
        drop(store);
        // The database now claims less than was completed: as if its tail were lost.
        std::fs::write(dir.path().join(checkpoint::FILE), "7\n").unwrap();
        let err = SledStore::open(SledConfig::new(dir.path())).err().unwrap();
        assert!(
            err.to_string().contains("lost writes that were durable"),
            "{err}"
        );
        std::fs::remove_file(dir.path().join(checkpoint::FILE)).unwrap();
        open(dir.path());
    }

    #[test]
    fn refuses_database_files_without_a_readable_marker() {
        // What sled makes of damaged files: a database with nothing in it.
        let dir = tempfile::tempdir().unwrap();
        drop(sled::Config::new().path(dir.path()).open().unwrap());
        let err = SledStore::open(SledConfig::new(dir.path())).err().unwrap();
        assert!(
            err.to_string().contains("no readable permetrix store"),
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
