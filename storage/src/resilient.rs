//! [`ResilientStore`]: the sled store, taken out of service on an I/O error and reopened
//! from disk once the fault clears.
//!
//! sled keeps the first I/O error it meets and fails every later write with it, and after
//! a failed `fsync` nothing written since the last good one can be trusted (the kernel
//! may have dropped the dirty pages and cleared the error). So on the first failure — a
//! write, a read or a flush — every call answers [`StorageError::Unavailable`] instead of
//! serving memory that may be ahead of the disk. A recovery thread closes the database
//! and reopens it from disk, retrying with back-off until the fault clears (the disk has
//! room again, the volume is writable again). Reopening bumps [`Store::incarnation`],
//! which makes every tenant actor reload its state: whatever never became durable is gone
//! from memory as well.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};

use arc_swap::ArcSwapOption;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::backend::{PlatformBackend, PlatformKey, PlatformWrite, Table, touches_credentials};
use crate::records::{ChargeRecord, MoreRequestRecord, OutboxRecord, UsageRecord};
use crate::snapshot::SnapshotWriter;
use crate::store::{Store, TenantMutation, TenantRecords};
use crate::{
    Durability, Durable, Epoch, FlushObserver, FlushReport, SledConfig, SledStore, StorageError,
    TenantId, Timestamp,
};

/// First wait between reopen attempts; doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(50);
/// Longest wait between reopen attempts.
const MAX_RETRY: Duration = Duration::from_secs(1);
/// How long a retired database may stay borrowed by calls in progress before the
/// reopen is tried anyway (sled refuses it while the old one is still open).
const RETIRE_WAIT: Duration = Duration::from_secs(5);
/// Period of durability checkpoints ([`SledStore::checkpoint`]); each is also a probe of
/// the disk, so a store that sees no traffic still notices a failed disk.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);

/// A [`SledStore`] that survives I/O errors. See the module documentation.
pub struct ResilientStore {
    inner: Arc<Inner>,
    recovery: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    /// How to reopen; its observer reports failed flushes back to us.
    config: SledConfig,
    durability: Durability,
    /// The database in service; `None` while it is being reopened. An `ArcSwap`, not a
    /// lock: every store call of every tenant reads it, so it must not be a shared lock
    /// on the borrow path.
    current: ArcSwapOption<SledStore>,
    /// Set on the first failure, cleared once a reopened database is in service.
    failed: AtomicBool,
    incarnation: AtomicU64,
    /// See [`PlatformBackend::credentials_generation`]: moved on by every credential
    /// write and by every reopen (a reopened database may lack writes that were
    /// visible but never durable).
    credentials: AtomicU64,
    last_error: Mutex<String>,
    stopping: AtomicBool,
    /// Wakes the recovery thread (failure or stop).
    wake: Condvar,
    wake_lock: Mutex<()>,
}

/// Forwards flush reports and takes the store out of service when one failed.
struct FailureWatch {
    store: Weak<Inner>,
    next: Option<Arc<dyn FlushObserver>>,
}

impl FlushObserver for FailureWatch {
    fn flushed(&self, report: FlushReport) {
        if !report.ok
            && let Some(inner) = self.store.upgrade()
        {
            inner.fail("a flush to disk failed");
        }
        if let Some(next) = &self.next {
            next.flushed(report);
        }
    }
}

impl ResilientStore {
    /// Opens the store (see [`SledStore::open`]: a foreign or corrupt directory is
    /// refused here) and starts the recovery thread.
    pub fn open(config: SledConfig) -> Result<Self, StorageError> {
        let mut first_error = None;
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let mut config = config;
            config.observer = Some(Arc::new(FailureWatch {
                store: weak.clone(),
                next: config.observer.take(),
            }));
            let current = match SledStore::open(config.clone()) {
                Ok(store) => Some(Arc::new(store)),
                Err(e) => {
                    first_error = Some(e);
                    None
                }
            };
            Inner {
                durability: config.durability,
                config,
                current: ArcSwapOption::new(current),
                failed: AtomicBool::new(false),
                incarnation: AtomicU64::new(0),
                credentials: AtomicU64::new(0),
                last_error: Mutex::new(String::new()),
                stopping: AtomicBool::new(false),
                wake: Condvar::new(),
                wake_lock: Mutex::new(()),
            }
        });
        if let Some(e) = first_error {
            return Err(e);
        }
        let worker = Arc::clone(&inner);
        let recovery = thread::Builder::new()
            .name("permetrix-store-recovery".into())
            .spawn(move || recover(&worker))
            .map_err(|e| StorageError::io("starting the store recovery thread", e))?;
        Ok(ResilientStore {
            inner,
            recovery: Mutex::new(Some(recovery)),
        })
    }

    fn current(&self) -> Result<Arc<SledStore>, StorageError> {
        self.inner.current()
    }

    /// Passes `result` through, taking the store out of service if it is an I/O failure.
    fn watch<T>(&self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if let Err(e) = &result
            && matches!(e, StorageError::Io { .. } | StorageError::FlushFailed(_))
        {
            self.inner.fail(&e.to_string());
        }
        result
    }
}

impl Inner {
    fn current(&self) -> Result<Arc<SledStore>, StorageError> {
        if !self.failed.load(Ordering::Acquire)
            && let Some(store) = self.current.load_full()
        {
            return Ok(store);
        }
        Err(self.unavailable())
    }

    fn unavailable(&self) -> StorageError {
        let why = lock(&self.last_error).clone();
        StorageError::Unavailable(format!(
            "the store hit an I/O error ({why}) and is being reopened from disk; nothing was \
             read or written, retry shortly"
        ))
    }

    fn fail(&self, why: &str) {
        if !self.failed.swap(true, Ordering::AcqRel) {
            tracing::error!(error = %why, "storage failed; refusing reads and writes until the store is reopened from disk");
            *lock(&self.last_error) = why.to_owned();
            let _guard = lock(&self.wake_lock);
            self.wake.notify_all();
        }
    }

    /// Sleeps up to `timeout`, or until woken by a failure or a stop.
    fn pause(&self, timeout: Duration) {
        let guard = lock(&self.wake_lock);
        if !self.stopping.load(Ordering::Acquire) {
            let _ = self.wake.wait_timeout(guard, timeout);
        }
    }
}

/// The recovery thread: checkpoints periodically; on a failure, retires the database
/// and reopens it.
fn recover(inner: &Inner) {
    loop {
        {
            let guard = lock(&inner.wake_lock);
            if !inner.failed.load(Ordering::Acquire) && !inner.stopping.load(Ordering::Acquire) {
                let _ = inner.wake.wait_timeout(guard, CHECKPOINT_EVERY);
            }
        }
        if inner.stopping.load(Ordering::Acquire) {
            return;
        }
        if !inner.failed.load(Ordering::Acquire) {
            if let Ok(store) = inner.current()
                && let Err(e) = store.checkpoint()
            {
                inner.fail(&format!("writing a checkpoint: {e}"));
            }
            continue;
        }
        let old = inner.current.swap(None);
        if let Some(old) = old {
            retire(old);
        }
        let started = Instant::now();
        let mut delay = FIRST_RETRY;
        let mut attempts = 0u32;
        loop {
            if inner.stopping.load(Ordering::Acquire) {
                return;
            }
            attempts += 1;
            match SledStore::open(inner.config.clone()) {
                Ok(store) => {
                    inner.current.store(Some(Arc::new(store)));
                    let incarnation = inner.incarnation.fetch_add(1, Ordering::AcqRel) + 1;
                    inner.credentials.fetch_add(1, Ordering::AcqRel);
                    inner.failed.store(false, Ordering::Release);
                    tracing::warn!(
                        incarnation,
                        attempts,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "storage reopened from disk; tenants reload their state"
                    );
                    break;
                }
                Err(e) => {
                    if attempts == 1 || attempts.is_power_of_two() {
                        tracing::error!(error = %e, attempts, "reopening the store failed; retrying");
                    }
                    *lock(&inner.last_error) = e.to_string();
                    inner.pause(delay);
                    delay = (delay * 2).min(MAX_RETRY);
                }
            }
        }
    }
}

/// Closes a failed database: undoes what never became durable and stops its flusher,
/// then waits (bounded) for calls still holding it, so that its file lock is released
/// before the reopen.
fn retire(old: Arc<SledStore>) {
    old.abandon();
    if let Err(e) = old.shutdown() {
        tracing::debug!(error = %e, "final flush of the failed store failed, as expected");
    }
    let deadline = Instant::now() + RETIRE_WAIT;
    while Arc::strong_count(&old) > 1 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    drop(old);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every value behind these locks is valid after any partial update.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PlatformBackend for ResilientStore {
    fn platform_get(
        &self,
        table: Table,
        key: PlatformKey<'_>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let store = self.current()?;
        self.watch(store.platform_get(table, key))
    }

    fn platform_scan(
        &self,
        table: Table,
        scope: Option<&str>,
    ) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let store = self.current()?;
        self.watch(store.platform_scan(table, scope))
    }

    fn platform_apply(&self, writes: &[PlatformWrite<'_>]) -> Result<Durable, StorageError> {
        let store = self.current()?;
        let result = store.platform_apply(writes);
        if touches_credentials(writes) {
            self.inner.credentials.fetch_add(1, Ordering::AcqRel);
        }
        self.watch(result)
    }

    fn credentials_generation(&self) -> Option<u64> {
        Some(self.inner.credentials.load(Ordering::Acquire))
    }
}

impl Store for ResilientStore {
    fn load_tenant(&self, tenant: &TenantId) -> Result<TenantRecords, StorageError> {
        let store = self.current()?;
        self.watch(store.load_tenant(tenant))
    }

    fn append(
        &self,
        tenant: &TenantId,
        epoch: Epoch,
        mutations: &[TenantMutation],
    ) -> Result<Durable, StorageError> {
        let store = self.current()?;
        self.watch(store.append(tenant, epoch, mutations))
    }

    fn charges(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<ChargeRecord>, StorageError> {
        let store = self.current()?;
        self.watch(store.charges(tenant, after_seq, limit))
    }

    fn usage_events(
        &self,
        tenant: &TenantId,
        product_id: &str,
        start: (Timestamp, u64),
        end: Timestamp,
        limit: usize,
    ) -> Result<Vec<UsageRecord>, StorageError> {
        let store = self.current()?;
        self.watch(store.usage_events(tenant, product_id, start, end, limit))
    }

    fn usage_before(
        &self,
        tenant: &TenantId,
        product_id: &str,
        before: Timestamp,
    ) -> Result<Option<UsageRecord>, StorageError> {
        let store = self.current()?;
        self.watch(store.usage_before(tenant, product_id, before))
    }

    fn outbox(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>, StorageError> {
        let store = self.current()?;
        self.watch(store.outbox(tenant, after_seq, limit))
    }

    fn more_requests(&self, tenant: &TenantId) -> Result<Vec<MoreRequestRecord>, StorageError> {
        let store = self.current()?;
        self.watch(store.more_requests(tenant))
    }

    fn more_request(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<MoreRequestRecord>, StorageError> {
        let store = self.current()?;
        self.watch(store.more_request(tenant, id))
    }

    fn durability(&self) -> Durability {
        self.inner.durability
    }

    fn shutdown(&self) -> Result<(), StorageError> {
        self.inner.stopping.store(true, Ordering::Release);
        {
            let _guard = lock(&self.inner.wake_lock);
            self.inner.wake.notify_all();
        }
        let handle = lock(&self.recovery).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        match self.inner.current.load_full() {
            Some(store) => store.shutdown(),
            None => Err(self.inner.unavailable()),
        }
    }

    fn available(&self) -> Result<(), StorageError> {
        self.current().map(|_| ())
    }

    fn incarnation(&self) -> u64 {
        self.inner.incarnation.load(Ordering::Acquire)
    }

    fn export(&self, out: &mut SnapshotWriter<'_>) -> Result<u64, StorageError> {
        let store = self.current()?;
        self.watch(store.export(out))
    }
}

impl Drop for ResilientStore {
    fn drop(&mut self) {
        self.inner.stopping.store(true, Ordering::Release);
        let _guard = lock(&self.inner.wake_lock);
        self.inner.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_records::lease;

    /// A failure takes the store out of service; the recovery thread reopens it and
    /// the incarnation moves on; what was durable is still there.
    #[tokio::test]
    async fn a_failure_is_answered_unavailable_until_the_store_is_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let store = ResilientStore::open(SledConfig::new(dir.path())).unwrap();
        let acme = TenantId::parse("acme").unwrap();
        let kept = lease("ecu");
        store
            .append(
                &acme,
                Epoch::SOLE,
                &[TenantMutation::PutLease(kept.clone())],
            )
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(store.incarnation(), 0);

        store.inner.fail("injected by the test");
        assert!(matches!(
            store.append(
                &acme,
                Epoch::SOLE,
                &[TenantMutation::PutLease(lease("ecu"))]
            ),
            Err(StorageError::Unavailable(_))
        ));
        assert!(matches!(
            store.load_tenant(&acme),
            Err(StorageError::Unavailable(_))
        ));

        // Bounded wait for the recovery thread.
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.available().is_err() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        store.available().unwrap();
        assert_eq!(store.incarnation(), 1);
        assert_eq!(store.load_tenant(&acme).unwrap().leases, vec![kept]);
        store.shutdown().unwrap();
    }

    #[test]
    fn start_up_errors_are_returned_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
        let err = ResilientStore::open(SledConfig::new(dir.path()))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("holds no permetrix store"),
            "{err}"
        );
    }
}
