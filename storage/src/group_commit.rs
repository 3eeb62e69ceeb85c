//! Group commit: many writers, one flush + fsync per batch.
//!
//! A writer applies its mutation to the store's in-memory structures, then joins the
//! *open batch* (one short mutex hold) and wakes the flusher thread. The flusher swaps
//! in a fresh open batch, makes it durable (the sled store: its journal entries written
//! and `fdatasync`ed), and resolves the batch it took: every
//! ticket of that batch wakes once, with the outcome. Writes that arrive while an fsync
//! runs join the next batch, so the batch size follows the load and the cost is one
//! fsync per batch, not per request.
//!
//! Why a batch object rather than one "durable through N" watch channel: with a shared
//! channel every flush wakes every waiting ticket, including those of the next batch,
//! which wake only to wait again (about one wasted cross-thread wake-up per write under
//! load). A ticket here waits on its own batch only.
//!
//! Correctness of the hand-over: a writer's mutation is applied before it joins a
//! batch, and the flusher takes a batch (under the same mutex) before it flushes, so
//! every write of a batch is in memory before that batch's flush starts.
//!
//! Writers never block: they return a [`Durable`] ticket and the caller awaits it
//! wherever it likes (a tenant actor hands it to the HTTP worker that asked, so the
//! flusher wakes that worker directly and the actor's mailbox moves on).
use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::StorageError;

/// When a write is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// After flush + fsync of the batch that contains it (the default).
    Strict,
    /// At once; the store is flushed and synced every `interval`. A crash loses up to one
    /// interval of acknowledged writes: for benchmarks and throwaway deployments only.
    Relaxed {
        /// Flush period.
        interval: Duration,
    },
}

/// What one flush did, for metrics.
#[derive(Clone, Copy, Debug)]
pub struct FlushReport {
    /// Writes covered by this flush.
    pub batch_size: u64,
    /// Time spent in flush + fsync.
    pub duration: Duration,
    /// Whether it succeeded.
    pub ok: bool,
}

/// Receives a report after every flush (the HTTP layer turns them into metrics).
pub trait FlushObserver: Send + Sync + 'static {
    /// Called on the flusher thread after every flush attempt; keep it cheap.
    fn flushed(&self, report: FlushReport);
}

/// Something that can make everything written so far durable.
pub(crate) trait SyncTarget: Send + Sync + 'static {
    fn sync(&self) -> Result<(), String>;
}

impl<T: SyncTarget> SyncTarget for Arc<T> {
    fn sync(&self) -> Result<(), String> {
        T::sync(self)
    }
}

/// Why a batch is not durable.
#[derive(Clone, Debug)]
enum Failure {
    Flush(Arc<str>),
    ShuttingDown,
    /// The tenant's ownership moved on; the write was not made.
    Fenced(Arc<str>),
}

/// The writes that one flush covers.
#[derive(Default)]
struct Batch {
    writes: AtomicU64,
    /// Set once, by the flusher, before `done` is notified.
    outcome: OnceLock<Result<(), Failure>>,
    done: Notify,
}

impl Batch {
    fn resolve(&self, outcome: Result<(), Failure>) {
        // Only the flusher resolves, once per batch; a second set cannot happen.
        let _ = self.outcome.set(outcome);
        self.done.notify_waiters();
    }
}

struct Open {
    batch: Arc<Batch>,
    /// The flusher has made its final flush: no batch will be flushed again.
    closed: bool,
}

struct Shared {
    open: Mutex<Open>,
    stopping: AtomicBool,
    /// The last flush failed (shutdown reports it).
    last_failure: Mutex<Option<Arc<str>>>,
    mode: Durability,
    target: Box<dyn SyncTarget>,
    observer: Option<Arc<dyn FlushObserver>>,
    /// Flushes so far, counted before their batch resolves.
    flushes: AtomicU64,
}

impl Shared {
    fn open(&self) -> MutexGuard<'_, Open> {
        // A panic while holding this lock leaves `Open` consistent (two plain fields).
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the open batch if it has writes, leaving a fresh one open.
    fn take(&self) -> Option<Arc<Batch>> {
        let mut open = self.open();
        if open.batch.writes.load(Ordering::Relaxed) == 0 {
            return None;
        }
        Some(std::mem::take(&mut open.batch))
    }
}

/// The group-commit flusher of one store.
pub(crate) struct GroupCommit {
    shared: Arc<Shared>,
    thread: Thread,
    join: Mutex<Option<JoinHandle<()>>>,
}

impl GroupCommit {
    pub(crate) fn start(
        mode: Durability,
        target: Box<dyn SyncTarget>,
        observer: Option<Arc<dyn FlushObserver>>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            open: Mutex::new(Open {
                batch: Arc::default(),
                closed: false,
            }),
            stopping: AtomicBool::new(false),
            last_failure: Mutex::new(None),
            mode,
            target,
            observer,
            flushes: AtomicU64::new(0),
        });
        let worker = Arc::clone(&shared);
        let join = thread::Builder::new()
            .name("permetrix-flusher".into())
            .spawn(move || run(&worker))?;
        Ok(GroupCommit {
            shared,
            thread: join.thread().clone(),
            join: Mutex::new(Some(join)),
        })
    }

    /// Registers a write that has been applied; returns its durability ticket.
    pub(crate) fn register(&self) -> Result<Durable, StorageError> {
        if self.shared.stopping.load(Ordering::Acquire) {
            return Err(StorageError::ShuttingDown);
        }
        let batch = {
            let open = self.shared.open();
            if open.closed {
                return Err(StorageError::ShuttingDown);
            }
            open.batch.writes.fetch_add(1, Ordering::Relaxed);
            Arc::clone(&open.batch)
        };
        match self.shared.mode {
            Durability::Relaxed { .. } => Ok(Durable::done()),
            Durability::Strict => {
                // Costs a syscall only if the flusher is parked (the first write after
                // an idle spell); under load it is busy flushing the previous batch.
                self.thread.unpark();
                Ok(Durable(Inner::Pending(batch)))
            }
        }
    }

    /// How many batches this flusher has flushed; a ticket resolves after its batch is
    /// counted.
    #[cfg(test)]
    pub(crate) fn flushes(&self) -> u64 {
        self.shared.flushes.load(Ordering::Relaxed)
    }

    /// Final flush; later writes are refused.
    pub(crate) fn shutdown(&self) -> Result<(), StorageError> {
        self.shared.stopping.store(true, Ordering::Release);
        self.thread.unpark();
        let handle = self.join.lock().ok().and_then(|mut j| j.take());
        if let Some(handle) = handle {
            handle
                .join()
                .map_err(|_| StorageError::FlushFailed("the flusher thread panicked".into()))?;
        }
        let failure = self
            .shared
            .last_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match failure {
            Some(e) => Err(StorageError::FlushFailed(e.to_string())),
            None => Ok(()),
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        if self.shared.stopping.load(Ordering::Acquire) {
            // Shut down explicitly already; its outcome was reported then.
            return;
        }
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "final flush on drop failed");
        }
    }
}

fn flush(shared: &Shared, batch: &Batch) {
    let started = Instant::now();
    let result = shared.target.sync();
    shared.flushes.fetch_add(1, Ordering::Relaxed);
    let report = FlushReport {
        batch_size: batch.writes.load(Ordering::Relaxed),
        duration: started.elapsed(),
        ok: result.is_ok(),
    };
    let outcome = result.map_err(|e| {
        tracing::error!(error = %e, batch = report.batch_size, "storage flush failed; the batch is not acknowledged");
        Arc::<str>::from(e.as_str())
    });
    *shared
        .last_failure
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = outcome.clone().err();
    batch.resolve(outcome.map_err(Failure::Flush));
    if let Some(observer) = &shared.observer {
        observer.flushed(report);
    }
}

fn run(shared: &Shared) {
    loop {
        if let Some(batch) = shared.take() {
            flush(shared, &batch);
            if shared.mode == Durability::Strict {
                // Writes that arrived during this flush form the next batch at once.
                continue;
            }
        }
        if shared.stopping.load(Ordering::Acquire) {
            break;
        }
        match shared.mode {
            Durability::Strict => thread::park(),
            Durability::Relaxed { interval } => thread::park_timeout(interval),
        }
    }
    // Close under the lock, so that no write joins a batch after this; then flush the
    // writes that joined meanwhile.
    let last = {
        let mut open = shared.open();
        open.closed = true;
        std::mem::take(&mut open.batch)
    };
    if last.writes.load(Ordering::Relaxed) > 0 {
        flush(shared, &last);
    } else {
        last.resolve(Err(Failure::ShuttingDown));
    }
}

/// A durability ticket: resolves once the write it was issued for is on disk.
pub struct Durable(Inner);

enum Inner {
    Done,
    Pending(Arc<Batch>),
    /// A write whose flush failed (test stores only: see [`Durable::failed`]).
    #[cfg(any(test, feature = "test-support"))]
    Failed(Arc<str>),
}

impl Durable {
    /// A ticket for a write that is durable already (or needs no durability).
    pub fn done() -> Self {
        Durable(Inner::Done)
    }

    /// Test stores only (feature `test-support`): a ticket whose flush failed with
    /// `reason`, for tests of what happens when an applied write never becomes durable.
    #[cfg(any(test, feature = "test-support"))]
    pub fn failed(reason: &str) -> Self {
        Durable(Inner::Failed(reason.into()))
    }

    /// Test stores only (feature `test-support`): a ticket that stays pending until its
    /// gate opens, for tests of what waits on durability.
    #[cfg(any(test, feature = "test-support"))]
    pub fn gated() -> (Self, DurableGate) {
        let batch = Arc::new(Batch::default());
        (
            Durable(Inner::Pending(Arc::clone(&batch))),
            DurableGate(batch),
        )
    }

    /// Whether awaiting would return at once.
    pub fn is_done(&self) -> bool {
        matches!(self.0, Inner::Done)
    }

    /// Waits until the write is durable, or reports why it never will be.
    pub async fn wait(&self) -> Result<(), StorageError> {
        let batch = match &self.0 {
            Inner::Done => return Ok(()),
            Inner::Pending(batch) => batch,
            #[cfg(any(test, feature = "test-support"))]
            Inner::Failed(e) => return Err(StorageError::FlushFailed(e.to_string())),
        };
        loop {
            if let Some(outcome) = batch.outcome.get() {
                return match outcome {
                    Ok(()) => Ok(()),
                    Err(Failure::Flush(e)) => Err(StorageError::FlushFailed(e.to_string())),
                    Err(Failure::ShuttingDown) => Err(StorageError::ShuttingDown),
                    Err(Failure::Fenced(tenant)) => Err(StorageError::Fenced {
                        tenant: tenant.to_string(),
                    }),
                };
            }
            let mut notified = pin!(batch.done.notified());
            // Register before the second look, so a resolve in between is not missed.
            notified.as_mut().enable();
            if batch.outcome.get().is_none() {
                notified.await;
            }
        }
    }
}

/// The outcome of one write, for a store whose writers of one batch can fare
/// differently (the PostgreSQL store fences each tenant's part of a batch on its own).
/// Settled exactly once; dropping it unsettled answers its ticket
/// [`StorageError::ShuttingDown`].
pub(crate) struct Settle(Arc<Batch>);

impl Settle {
    /// A write not yet settled, and its ticket.
    pub(crate) fn new() -> (Settle, Durable) {
        let batch = Arc::new(Batch::default());
        batch.writes.store(1, Ordering::Relaxed);
        (Settle(Arc::clone(&batch)), Durable(Inner::Pending(batch)))
    }

    /// The write is durable.
    pub(crate) fn durable(self) {
        self.0.resolve(Ok(()));
    }

    /// The write was not made: `tenant` is owned under a newer epoch now.
    pub(crate) fn fenced(self, tenant: &str) {
        self.0.resolve(Err(Failure::Fenced(tenant.into())));
    }

    /// The write is not durable, for `reason`.
    pub(crate) fn failed(self, reason: Arc<str>) {
        self.0.resolve(Err(Failure::Flush(reason)));
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        if self.0.outcome.get().is_none() {
            self.0.resolve(Err(Failure::ShuttingDown));
        }
    }
}

/// Opens a ticket made by [`Durable::gated`]: the write it stands for is durable.
#[cfg(any(test, feature = "test-support"))]
pub struct DurableGate(Arc<Batch>);

#[cfg(any(test, feature = "test-support"))]
impl DurableGate {
    /// Resolves the ticket as durable.
    pub fn open(&self) {
        self.0.resolve(Ok(()));
    }
}

impl fmt::Debug for Durable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Done => f.write_str("Durable::Done"),
            Inner::Pending(b) => write!(
                f,
                "Durable::Pending(batch of {})",
                b.writes.load(Ordering::Relaxed)
            ),
            #[cfg(any(test, feature = "test-support"))]
            Inner::Failed(e) => write!(f, "Durable::Failed({e})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct CountingTarget {
        syncs: Arc<AtomicUsize>,
        fail: Arc<AtomicBool>,
    }

    impl SyncTarget for CountingTarget {
        fn sync(&self) -> Result<(), String> {
            self.syncs.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                Err("disk on fire".into())
            } else {
                Ok(())
            }
        }
    }

    fn start(mode: Durability) -> (GroupCommit, Arc<AtomicUsize>, Arc<AtomicBool>) {
        let syncs = Arc::new(AtomicUsize::new(0));
        let fail = Arc::new(AtomicBool::new(false));
        let target = CountingTarget {
            syncs: syncs.clone(),
            fail: fail.clone(),
        };
        let gc = GroupCommit::start(mode, Box::new(target), None).unwrap();
        (gc, syncs, fail)
    }

    #[tokio::test]
    async fn strict_tickets_resolve_after_a_sync() {
        let (gc, syncs, _) = start(Durability::Strict);
        let tickets: Vec<_> = (0..100).map(|_| gc.register().unwrap()).collect();
        for t in tickets {
            t.wait().await.unwrap();
        }
        let n = syncs.load(Ordering::SeqCst);
        assert!((1..=100).contains(&n), "{n} syncs for 100 writes");
    }

    #[tokio::test]
    async fn a_failed_sync_fails_its_tickets_and_later_ones_recover() {
        let (gc, _, fail) = start(Durability::Strict);
        fail.store(true, Ordering::SeqCst);
        let t = gc.register().unwrap();
        assert!(matches!(t.wait().await, Err(StorageError::FlushFailed(_))));
        fail.store(false, Ordering::SeqCst);
        gc.register().unwrap().wait().await.unwrap();
    }

    #[tokio::test]
    async fn relaxed_tickets_are_immediate_and_shutdown_syncs() {
        let (gc, syncs, _) = start(Durability::Relaxed {
            interval: Duration::from_secs(3600),
        });
        let t = gc.register().unwrap();
        assert!(t.is_done());
        gc.shutdown().unwrap();
        assert_eq!(syncs.load(Ordering::SeqCst), 1);
        assert!(matches!(gc.register(), Err(StorageError::ShuttingDown)));
    }

    /// A target whose syncs block until the test releases them.
    struct GatedTarget {
        entered: Mutex<std::sync::mpsc::Sender<()>>,
        release: Mutex<std::sync::mpsc::Receiver<()>>,
    }

    impl SyncTarget for GatedTarget {
        fn sync(&self) -> Result<(), String> {
            let _ = self.entered.lock().unwrap().send(());
            self.release
                .lock()
                .unwrap()
                .recv()
                .map_err(|e| e.to_string())
        }
    }

    fn resolved(t: &Durable) -> bool {
        match &t.0 {
            Inner::Done | Inner::Failed(_) => true,
            Inner::Pending(b) => b.outcome.get().is_some(),
        }
    }

    #[tokio::test]
    async fn a_write_that_arrives_during_a_flush_waits_for_the_next_flush() {
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel();
        let target = GatedTarget {
            entered: Mutex::new(entered_tx),
            release: Mutex::new(release_rx),
        };
        let gc = GroupCommit::start(Durability::Strict, Box::new(target), None).unwrap();
        let first = gc.register().unwrap();
        entered.recv().unwrap(); // the first flush has taken its batch
        let second = gc.register().unwrap();
        release.send(()).unwrap();
        first.wait().await.unwrap();
        entered.recv().unwrap(); // the second flush is running, not finished
        assert!(
            !resolved(&second),
            "resolved by a flush that began before it"
        );
        release.send(()).unwrap();
        second.wait().await.unwrap();
        drop(release);
        gc.shutdown().unwrap();
    }

    #[tokio::test]
    async fn shutdown_flushes_what_was_written_and_refuses_later_writes() {
        let (gc, syncs, _) = start(Durability::Strict);
        let tickets: Vec<_> = (0..10).map(|_| gc.register().unwrap()).collect();
        gc.shutdown().unwrap();
        for t in tickets {
            t.wait().await.unwrap();
        }
        assert!(syncs.load(Ordering::SeqCst) >= 1);
        assert!(matches!(gc.register(), Err(StorageError::ShuttingDown)));
    }
}
