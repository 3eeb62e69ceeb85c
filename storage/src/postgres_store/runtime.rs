//! The store's own thread: a current-thread tokio runtime that drives the database
//! connections, the group committer and the lease renewer.
//!
//! The server's runtimes (one per actix arbiter) must never wait for the database, and
//! the [`crate::Store`] trait is synchronous. So the connections' I/O runs here, and a
//! caller thread that needs an answer polls the client's request future itself
//! ([`block_on`]): a `tokio_postgres::Client` only talks to its connection task through
//! channels, so its futures need no runtime, and the caller blocks only itself.
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, JoinHandle, Thread};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::StorageError;

/// The runtime thread; stopped (its tasks dropped, connections closed) on drop.
pub(super) struct Runtime {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Runtime {
    pub(super) fn start() -> Result<Self, StorageError> {
        let (ready, handle) = std::sync::mpsc::sync_channel(1);
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name("permetrix-postgres".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(rt.handle().clone()));
                // Runs the spawned tasks until the store stops; a dropped sender stops too.
                let _ = rt.block_on(stopped);
            })
            .map_err(|e| StorageError::io("starting the PostgreSQL thread", e))?;
        let handle = handle
            .recv()
            .map_err(|_| StorageError::Unavailable("the PostgreSQL thread did not start".into()))?
            .map_err(|e| StorageError::io("starting the PostgreSQL runtime", e))?;
        Ok(Runtime {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub(super) fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// Runs `future` on the runtime of `handle` and waits for its output (for work that
/// needs the runtime itself, such as opening a connection).
pub(super) fn run_on<F>(handle: &Handle, future: F) -> Result<F::Output, StorageError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv().map_err(|_| StorageError::ShuttingDown)
}

impl Drop for Runtime {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` to completion on the calling thread, parking it in between. Only for
/// futures that need no runtime (a client's requests); never call it on the runtime
/// thread.
pub(super) fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            // A wake-up before the park leaves a token: the park returns at once.
            Poll::Pending => thread::park(),
        }
    }
}
