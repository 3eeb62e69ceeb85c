use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLockReadGuard, RwLockWriteGuard};

use crate::backend::Table;
use crate::codec;
use crate::group_commit::{GroupCommit, SyncTarget};
use crate::keys;
use crate::layout::{self, IdRange, Order, TenantSource, record_of};
use crate::records::{
    ChargeRecord, FormatRecord, JournalEntryRecord, MoreRequestRecord, OutboxRecord, UsageRecord,
};
use crate::store::{Store, TenantMutation, TenantRecords};
use crate::{Durability, Durable, Epoch, FlushObserver, StorageError, TenantId, Timestamp};

mod backup;
mod checkpoint;
mod gate;
mod journal;
mod modes;
mod platform;
mod seat_change;

use checkpoint::Checkpoints;
use gate::WriteGate;
pub(crate) use journal::MARKS_TREE;
use journal::{Applied, Journal};

/// Identifies a permetrix store; checked at every open.
pub(crate) const MAGIC: &str = "permetrix";
/// Layout version of the trees and keys (not of single records: those carry their own).
/// Snapshots carry the same trees, so it is the layout of a snapshot's store entries too.
pub(crate) const LAYOUT: u32 = 1;
/// The format marker's key in [`META_TREE`].
pub(crate) const FORMAT_KEY: &[u8] = b"format";
/// The tree of every tenant's records.
pub(crate) const TENANT_TREE: &str = "tenant_state";
/// The tree of the format marker and the checkpoint number.
pub(crate) const META_TREE: &str = "meta";

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
    /// Each tenant's latest journal entry that sled holds (see the journal's docs).
    marks: sled::Tree,
    /// The `seq` of the next journal entry.
    next_seq: AtomicU64,
    platform: Vec<sled::Tree>,
    commit: GroupCommit,
    /// Makes writes to tables [`crate::backend::Table::flushed_apart`] durable with
    /// sled's flush on a thread of its own: a delivery record never makes the tenants'
    /// group commit wait for sled to write everything since the last checkpoint.
    apart: GroupCommit,
    durability: Durability,
    sync: Arc<SledSync>,
    /// Writers share their stripe of it; a snapshot takes it whole, so that no write is
    /// half in a snapshot. Held only while a batch is applied, never while waiting for
    /// a flush.
    gate: WriteGate,
    checkpoints: Checkpoints,
    /// See [`crate::backend::PlatformBackend::credentials_generation`].
    credentials: AtomicU64,
}

/// What makes writes durable: the journal for tenant writes, sled's flush + `fsync`
/// for platform writes and checkpoints. sled's `flush()` stops at `sync_file_range`,
/// which leaves drive caches and file metadata unsynced, so the database file is
/// `fsync`ed after it.
struct SledSync {
    db: sled::Db,
    file: File,
    journal: Journal,
    /// A platform write was applied since the last flush: platform records are not
    /// journaled (rare, and written in sled transactions across trees), so the next
    /// group commit flushes sled too.
    platform_dirty: AtomicBool,
    /// Set by the first failed flush. After a failed `fsync` the kernel may have dropped
    /// the dirty pages and cleared the error, so a later `fsync` that succeeds proves
    /// nothing: every later flush of this database fails too, until it is reopened.
    failed: AtomicBool,
}

impl SledSync {
    fn check(&self) -> Result<(), String> {
        if self.failed.load(Ordering::Acquire) {
            return Err(
                "an earlier flush of this database failed; nothing written since \
                        is trusted until the store is reopened"
                    .into(),
            );
        }
        Ok(())
    }

    fn watch(&self, result: Result<(), String>) -> Result<(), String> {
        if result.is_err() {
            self.failed.store(true, Ordering::Release);
        }
        result
    }

    fn flush_database(&self) -> Result<(), String> {
        self.db
            .flush()
            .map_err(|e| format!("sled flush: {e}"))
            .and_then(|_| {
                self.file
                    .sync_all()
                    .map_err(|e| format!("fsync of the database file: {e}"))
            })
    }

    /// Makes everything applied so far durable in sled itself (checkpoints, snapshots).
    fn sync_database(&self) -> Result<(), String> {
        self.check()?;
        self.watch(self.flush_database())
    }
}

impl SyncTarget for SledSync {
    /// The group commit: the batch's journal entries with one `fdatasync`; sled's
    /// flush only if the batch holds a platform write.
    fn sync(&self) -> Result<(), String> {
        self.check()?;
        let result = self
            .journal
            .write_pending()
            .map(drop)
            .map_err(|e| format!("writing the journal: {e}"))
            .and_then(|()| {
                if self.platform_dirty.swap(false, Ordering::AcqRel) {
                    self.flush_database()
                } else {
                    Ok(())
                }
            });
        self.watch(result)
    }
}

/// The flush of [`SledStore::apart`]: sled's flush + `fsync`, nothing journaled.
struct DatabaseFlush(Arc<SledSync>);

impl SyncTarget for DatabaseFlush {
    fn sync(&self) -> Result<(), String> {
        self.0.sync_database()
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
            .open_tree(TENANT_TREE)
            .map_err(sled_err("opening tree tenant_state"))?;
        let platform = Table::ALL
            .iter()
            .map(|t| {
                db.open_tree(t.name())
                    .map_err(sled_err(format!("opening tree {}", t.name())))
            })
            .collect::<Result<Vec<_>, _>>()?;

        let marks = db
            .open_tree(MARKS_TREE)
            .map_err(sled_err("opening tree journal_marks"))?;
        let (journal, next_seq) = Journal::open(path, &tenant_state, &marks)?;
        let db_file = path.join("db");
        let file = File::open(&db_file)
            .map_err(|e| StorageError::io(format!("opening {} for fsync", db_file.display()), e))?;
        let sync = Arc::new(SledSync {
            db: db.clone(),
            file,
            journal,
            platform_dirty: AtomicBool::new(false),
            failed: AtomicBool::new(false),
        });
        let commit = GroupCommit::start(
            config.durability,
            Box::new(Arc::clone(&sync)),
            config.observer.clone(),
        )
        .map_err(|e| StorageError::io("starting the flusher thread", e))?;
        // Its flushes are not the tenants' commits: the flush metrics stay theirs.
        let apart = GroupCommit::start(
            config.durability,
            Box::new(DatabaseFlush(Arc::clone(&sync))),
            None,
        )
        .map_err(|e| StorageError::io("starting the platform flusher thread", e))?;

        Ok(SledStore {
            db,
            tenant_state,
            marks,
            next_seq: AtomicU64::new(next_seq),
            platform,
            commit,
            apart,
            durability: config.durability,
            sync,
            gate: WriteGate::new(),
            checkpoints,
            credentials: AtomicU64::new(0),
        })
    }

    /// The tenant tree as the shared readers of [`layout`] see it.
    fn source(&self) -> SledSource<'_> {
        SledSource(&self.tenant_state)
    }

    /// The raw tenant tree, for the test-only tampering helpers.
    #[cfg(any(test, feature = "test-support"))]
    pub(crate) fn tenant_tree(&self) -> &sled::Tree {
        &self.tenant_state
    }

    /// Test-only: journals `mutations` of `tenant` without applying them to sled, as a
    /// crash after the journal's `fdatasync` and before sled wrote them leaves things.
    #[cfg(test)]
    pub(crate) fn journal_only(
        &self,
        tenant: &TenantId,
        mutations: &[TenantMutation],
    ) -> Result<Durable, StorageError> {
        let writes = mutations.iter().map(|m| record_of(tenant, m)).collect();
        self.sync.journal.append(Applied {
            entry: JournalEntryRecord {
                tenant: tenant.to_string(),
                seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
                writes,
            },
            replaced: Vec::new(),
            mark_before: None,
        });
        self.commit.register()
    }

    /// Makes everything written so far durable and records a checkpoint beside the
    /// database, so that a later open notices if the database loses any of it. Returns
    /// the checkpoint number. Called periodically and at shutdown.
    /// The journal is rotated first, and its retired part dropped once sled holds it.
    pub fn checkpoint(&self) -> Result<u64, StorageError> {
        self.sync.journal.rotate()?;
        let number = self.checkpoints.write(&self.sync)?;
        self.sync.journal.drop_retired()?;
        Ok(number)
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

    /// Takes the store out of service after a failure, for good: undoes in sled's memory
    /// every write whose journal entry never became durable (sled flushes its memory
    /// when it is closed, and a refused write must not reach the disk that way), and
    /// makes every later write and flush fail. Waits for writes in progress.
    pub fn abandon(&self) {
        let _all = self.exclusive_gate();
        self.sync.failed.store(true, Ordering::Release);
        let unwritten = self.sync.journal.close();
        let mut undone = 0usize;
        for applied in unwritten.iter().rev() {
            match applied.undo(&self.tenant_state, &self.marks) {
                Ok(()) => undone += 1,
                Err(e) => {
                    tracing::error!(error = %e, tenant = %applied.entry.tenant, "undoing a write that never became durable failed")
                }
            }
        }
        if !unwritten.is_empty() {
            tracing::warn!(
                undone,
                "undid in memory the writes that never became durable"
            );
        }
    }

    /// Applies one tenant write to sled in memory and queues its journal entry; the
    /// caller holds the tenant's stripe of the gate. `mutations` are what `writes`
    /// encode (empty for the store's own repairs).
    fn write_entry(
        &self,
        tenant: &TenantId,
        mutations: &[TenantMutation],
        writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<Durable, StorageError> {
        if self.sync.journal.is_closed() {
            return Err(StorageError::Unavailable(
                "the store failed and is being reopened from disk; nothing was written, retry \
                 shortly"
                    .into(),
            ));
        }
        let mut applied = Applied {
            entry: JournalEntryRecord {
                tenant: tenant.to_string(),
                seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
                writes,
            },
            replaced: Vec::with_capacity(mutations.len()),
            mark_before: None,
        };
        let written = self
            .apply(mutations, &applied.entry.writes, &mut applied.replaced)
            .and_then(|()| {
                // After the records: sled recovers a prefix, so the mark never claims a
                // write it does not hold.
                let mark = applied.entry.seq.to_be_bytes();
                self.marks.insert(tenant.as_str().as_bytes(), &mark)
            });
        match written {
            Ok(before) => {
                applied.mark_before = Some(before);
                self.sync.journal.append(applied);
                self.commit.register()
            }
            Err(e) => {
                self.sync.journal.lose(applied);
                Err(StorageError::io(
                    format!("writing state of tenant {tenant}"),
                    e,
                ))
            }
        }
    }

    /// Applies one tenant write (`writes` are `mutations` as records) to sled in
    /// memory, without flushing, recording in `replaced` what each write replaced.
    fn apply(
        &self,
        mutations: &[TenantMutation],
        writes: &[(Vec<u8>, Option<Vec<u8>>)],
        replaced: &mut Vec<(usize, Option<sled::IVec>)>,
    ) -> Result<(), sled::Error> {
        let mut put = |i: usize| -> Result<(), sled::Error> {
            let (key, value) = &writes[i];
            let before = journal::put_or_remove(&self.tenant_state, key, value.as_deref())?;
            replaced.push((i, before));
            Ok(())
        };
        if writes.len() == 1 {
            // One record needs no batch. sled's `apply_batch` takes the database-wide
            // concurrency-control lock exclusively, pins the log and rolls its IO buffer
            // before and after so that recovery sees the batch whole; a single insert or
            // remove is atomic by itself. Heartbeats and settings are single records; plain borrows and
            // returns are written as ordered pairs (`seat_change`); only the rest
            // (overage bookings, idempotent borrows) pays for a batch.
            return put(0);
        }
        if let Some(order) = seat_change::seat_change_order(mutations) {
            return order.into_iter().flatten().try_for_each(put);
        }
        // A batch does not say what it replaced: read it first (the tenant's writes are
        // serialised by its actor, so nothing changes in between).
        for (i, (key, _)) in writes.iter().enumerate() {
            replaced.push((i, self.tenant_state.get(key)?));
        }
        self.tenant_state.apply_batch(journal::batch_of(writes))
    }
}

/// Ordered scans of one tenant's records in the `tenant_state` tree.
struct SledSource<'a>(&'a sled::Tree);

impl TenantSource for SledSource<'_> {
    fn scan(
        &mut self,
        tenant: &TenantId,
        kind: u8,
        ids: IdRange<'_>,
        order: Order,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StorageError> {
        let start = keys::key(tenant, kind, ids.start);
        let end = match ids.end {
            Some(end) => keys::key(tenant, kind, end),
            None => keys::kind_prefix(tenant, kind + 1),
        };
        if start >= end {
            return Ok(Vec::new());
        }
        let range = self.0.range(start..end);
        let items: Box<dyn Iterator<Item = _>> = match order {
            Order::Forward => Box::new(range),
            Order::Backward => Box::new(range.rev()),
        };
        items
            .take(limit)
            .map(|item| {
                let (_, v) = item.map_err(sled_err(format!("reading the state of {tenant}")))?;
                Ok(v.to_vec())
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
        StorageError::InUse(format!(
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
        .open_tree(META_TREE)
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

impl Store for SledStore {
    fn load_tenant(&self, tenant: &TenantId) -> Result<TenantRecords, StorageError> {
        let mut records = layout::load(&mut self.source(), tenant)?;
        if let Some(head) = &records.usage_head
            && self.roll_back_torn_seat_change(tenant, head, &records.leases)?
        {
            records.usage_head = layout::usage_head(&mut self.source(), tenant, &records.packages)?;
        }
        Ok(records)
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
        let writes: Vec<_> = mutations.iter().map(|m| record_of(tenant, m)).collect();
        // Applied first, journaled second: every entry the journal holds is in sled's
        // memory, so a checkpoint's flush covers all of a retired journal.
        self.write_entry(tenant, mutations, writes)
    }

    fn charges(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<ChargeRecord>, StorageError> {
        layout::charges(&mut self.source(), tenant, after_seq, limit)
    }

    fn usage_events(
        &self,
        tenant: &TenantId,
        product_id: &str,
        start: (Timestamp, u64),
        end: Timestamp,
        limit: usize,
    ) -> Result<Vec<UsageRecord>, StorageError> {
        layout::usage_events(&mut self.source(), tenant, product_id, start, end, limit)
    }

    fn usage_before(
        &self,
        tenant: &TenantId,
        product_id: &str,
        before: Timestamp,
    ) -> Result<Option<UsageRecord>, StorageError> {
        layout::usage_before(&mut self.source(), tenant, product_id, before)
    }

    fn outbox(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>, StorageError> {
        layout::outbox(&mut self.source(), tenant, after_seq, limit)
    }

    fn more_requests(&self, tenant: &TenantId) -> Result<Vec<MoreRequestRecord>, StorageError> {
        layout::more_requests(&mut self.source(), tenant)
    }

    fn more_request(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<MoreRequestRecord>, StorageError> {
        layout::more_request(&mut self.source(), tenant, id)
    }

    fn durability(&self) -> Durability {
        self.durability
    }

    fn shutdown(&self) -> Result<(), StorageError> {
        let apart = self.apart.shutdown();
        self.commit.shutdown()?;
        apart?;
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
mod journal_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::charge;
    use crate::records::*;
    use crate::test_records::{lease, package};
    use crate::{BorrowId, Money};

    fn open(dir: &Path) -> SledStore {
        SledStore::open(SledConfig::new(dir)).unwrap()
    }

    /// A delivery record or cursor is made durable by the flusher apart: the tenants'
    /// group commit does not flush sled for it. A vendor record still goes with the
    /// tenants' batch, so that a tenant write after it is never durable without it.
    #[tokio::test]
    async fn webhook_progress_is_flushed_apart_from_the_tenants_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(open(dir.path()));
        let platform = crate::Platform::new(Arc::clone(&store) as Arc<dyn Store>);
        let acme = TenantId::parse("acme").unwrap();
        let (tenants, apart) = (store.commit.flushes(), store.apart.flushes());
        platform
            .set_webhook_cursor("wh_1", &acme, 7)
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(store.commit.flushes(), tenants);
        assert_eq!(store.apart.flushes(), apart + 1);
        assert!(!store.sync.platform_dirty.load(Ordering::Acquire));

        platform
            .create_vendor(&VendorRecord {
                vendor_id: "vector".into(),
                vendor_name: "Vector".into(),
                contact_email: None,
                api_key_digest: [1; 32],
                signing_secret: SealedSecret {
                    nonce: vec![1; 24],
                    ciphertext: vec![1; 48],
                },
                previous_signing_secret: None,
                password_hash: None,
                created_at: Timestamp::from_secs(1),
                lifecycle: Lifecycle::Active,
            })
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(store.commit.flushes(), tenants + 1);
        assert_eq!(store.apart.flushes(), apart + 1);

        store.shutdown().unwrap();
        drop(platform);
        let store = Arc::try_unwrap(store).ok().unwrap();
        drop(store);
        let platform = crate::Platform::new(Arc::new(open(dir.path())));
        let cursor = platform.webhook_cursor("wh_1", &acme).unwrap().unwrap();
        assert_eq!(cursor.delivered_seq, 7);
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
        let mut request = crate::conformance::request("acme.01");
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

    /// The backend conformance suite (`crate::conformance`), as the PostgreSQL store
    /// runs it too.
    mod conformance {
        use super::*;
        use crate::conformance;

        fn fresh() -> (tempfile::TempDir, SledStore) {
            let dir = tempfile::tempdir().unwrap();
            let store = open(dir.path());
            (dir, store)
        }

        #[tokio::test]
        async fn every_mutation_kind_round_trips() {
            let (_dir, store) = fresh();
            conformance::every_mutation_kind_round_trips(&store, Epoch::SOLE).await;
        }

        #[tokio::test]
        async fn ledger_and_usage_page() {
            let (_dir, store) = fresh();
            conformance::ledger_and_usage_page(&store, Epoch::SOLE).await;
        }

        #[tokio::test]
        async fn outbox_reads_in_order() {
            let (_dir, store) = fresh();
            conformance::outbox_reads_in_order(&store, Epoch::SOLE).await;
        }

        #[tokio::test]
        async fn requests_are_found_and_replaced() {
            let (_dir, store) = fresh();
            conformance::requests_are_found_and_replaced(&store, Epoch::SOLE).await;
        }

        #[tokio::test]
        async fn platform_records_behave() {
            let (_dir, store) = fresh();
            conformance::platform_records_behave(&store).await;
        }
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
