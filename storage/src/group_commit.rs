//! Group commit: many writers, one flush + fsync per batch.
//!
//! A writer applies its mutation to the store's in-memory structures, then takes a
//! sequence number with one atomic increment and wakes the flusher thread. The flusher
//! reads the highest sequence number handed out, flushes and `fsync`s, and publishes
//! "durable through N" on a watch channel. Every ticket with a sequence number ≤ N
//! resolves at once. Writes that arrive while an fsync runs form the next batch, so the
//! batch size follows the load and the cost is one fsync per batch, not per request.
//!
//! Writers never block: they return a [`Durable`] ticket and the caller awaits it
//! wherever it likes (a tenant actor awaits it outside its mailbox loop).
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use tokio::sync::watch;

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

#[derive(Clone, Debug, Default)]
struct FlushState {
    /// Every sequence number ≤ this has been through a flush attempt.
    processed: u64,
    /// Ranges `(from, through]` whose flush failed: not durable, never acknowledged.
    failed: Vec<(u64, u64)>,
    /// The last failure, for the error message.
    last_error: Option<Arc<str>>,
    /// The flusher has stopped; no further progress.
    stopped: bool,
}

/// Failure ranges kept for waiters that have not looked yet; older ones are long gone.
const KEPT_FAILURES: usize = 256;

struct Shared {
    written: AtomicU64,
    stopping: AtomicBool,
    state: watch::Sender<FlushState>,
    mode: Durability,
    target: Box<dyn SyncTarget>,
    observer: Option<Arc<dyn FlushObserver>>,
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
        let (state, _) = watch::channel(FlushState::default());
        let shared = Arc::new(Shared {
            written: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            state,
            mode,
            target,
            observer,
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
        // Release: the flusher's Acquire load of `written` happens-after the write.
        let seq = self.shared.written.fetch_add(1, Ordering::AcqRel) + 1;
        match self.shared.mode {
            Durability::Relaxed { .. } => Ok(Durable::done()),
            Durability::Strict => {
                let rx = self.shared.state.subscribe();
                self.thread.unpark();
                Ok(Durable(Inner::Pending { seq, rx }))
            }
        }
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
        let state = self.shared.state.borrow();
        match (&state.last_error, state.failed.last()) {
            (Some(e), Some(&(_, through))) if through >= state.processed => {
                Err(StorageError::FlushFailed(e.to_string()))
            }
            _ => Ok(()),
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

fn run(shared: &Shared) {
    let mut processed = 0u64;
    loop {
        let target = shared.written.load(Ordering::Acquire);
        if target == processed {
            if shared.stopping.load(Ordering::Acquire) {
                break;
            }
            match shared.mode {
                Durability::Strict => thread::park(),
                Durability::Relaxed { interval } => thread::park_timeout(interval),
            }
            continue;
        }
        let started = Instant::now();
        let result = shared.target.sync();
        let report = FlushReport {
            batch_size: target - processed,
            duration: started.elapsed(),
            ok: result.is_ok(),
        };
        let from = processed;
        processed = target;
        shared.state.send_modify(|s| {
            s.processed = target;
            if let Err(e) = &result {
                s.failed.push((from, target));
                if s.failed.len() > KEPT_FAILURES {
                    s.failed.remove(0);
                }
                s.last_error = Some(Arc::from(e.as_str()));
            }
        });
        if let Err(e) = &result {
            tracing::error!(error = %e, batch = report.batch_size, "storage flush failed; the batch is not acknowledged");
        }
        if let Some(observer) = &shared.observer {
            observer.flushed(report);
        }
    }
    shared.state.send_modify(|s| s.stopped = true);
}

/// A durability ticket: resolves once the write it was issued for is on disk.
pub struct Durable(Inner);

enum Inner {
    Done,
    Pending {
        seq: u64,
        rx: watch::Receiver<FlushState>,
    },
}

impl Durable {
    /// A ticket for a write that is durable already (or needs no durability).
    pub fn done() -> Self {
        Durable(Inner::Done)
    }

    /// Whether awaiting would return at once.
    pub fn is_done(&self) -> bool {
        matches!(self.0, Inner::Done)
    }

    /// Waits until the write is durable, or reports why it never will be.
    pub async fn wait(self) -> Result<(), StorageError> {
        let (seq, mut rx) = match self.0 {
            Inner::Done => return Ok(()),
            Inner::Pending { seq, rx } => (seq, rx),
        };
        loop {
            {
                let s = rx.borrow_and_update();
                if s.failed
                    .iter()
                    .any(|&(from, through)| seq > from && seq <= through)
                {
                    let msg = s.last_error.as_deref().unwrap_or("unknown error");
                    return Err(StorageError::FlushFailed(msg.to_owned()));
                }
                if s.processed >= seq {
                    return Ok(());
                }
                if s.stopped {
                    return Err(StorageError::ShuttingDown);
                }
            }
            if rx.changed().await.is_err() {
                return Err(StorageError::ShuttingDown);
            }
        }
    }
}

impl fmt::Debug for Durable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Done => f.write_str("Durable::Done"),
            Inner::Pending { seq, .. } => write!(f, "Durable::Pending({seq})"),
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
}
