//! Notice of a graceful shutdown, for responses that would otherwise never end.
//!
//! actix-web drains in-flight requests on SIGTERM, but a live event stream is never
//! "finished": without a notice it would hold the shutdown until its timeout. Streams
//! subscribe here and end themselves when the notice is given.
use tokio::sync::watch;

/// Broadcasts "the server is stopping" to long-lived responses.
pub struct Shutdown(watch::Sender<bool>);

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown(watch::channel(false).0)
    }
}

impl Shutdown {
    /// Tells every subscriber to finish.
    pub fn begin(&self) {
        self.0.send_replace(true);
    }

    /// A receiver whose value turns `true` when the shutdown begins.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }
}

/// Gives the notice (calls `begin`, which calls [`Shutdown::begin`]) on SIGTERM or
/// SIGINT, the signals actix-web stops on. Must run inside the server's runtime.
pub fn notify_on_signals(begin: impl FnOnce() + 'static) {
    actix_rt::spawn(async move {
        wait_for_signal().await;
        tracing::info!("stop signal received; ending live event streams");
        begin();
    });
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; event streams end on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
