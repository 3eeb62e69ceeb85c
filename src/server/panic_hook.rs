//! The server's panic hook: one log line per panic, and a backtrace at most once a
//! minute, resolved off the panicking thread.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds between two panics reported with a backtrace.
const BACKTRACE_EVERY: u64 = 60;

/// Installs the server's panic hook. Every panic is one log line (message, location,
/// thread). A backtrace (when `RUST_BACKTRACE` asks for one) is captured at most once a
/// minute and resolved on a thread of its own: the default hook resolves it on the
/// panicking thread, and a tenant actor panicking on every request would then stall its
/// arbiter thread, and every tenant placed there, for hundreds of milliseconds per
/// request.
pub fn install_panic_hook() {
    static LAST_BACKTRACE: AtomicU64 = AtomicU64::new(0);
    let (tx, rx) = std::sync::mpsc::channel::<(String, std::backtrace::Backtrace)>();
    let reporter = std::thread::Builder::new()
        .name("permetrix-panic-report".into())
        .spawn(move || {
            for (what, backtrace) in rx {
                tracing::error!("backtrace of the panic {what}:\n{backtrace}");
            }
        });
    let tx = reporter.ok().map(|_| std::sync::Mutex::new(tx));
    std::panic::set_hook(Box::new(move |info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        tracing::error!(panic = %what, %location, %thread, "panic");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = LAST_BACKTRACE.load(Ordering::Relaxed);
        if now >= last + BACKTRACE_EVERY
            && LAST_BACKTRACE
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            && let Some(tx) = &tx
        {
            // Capturing is cheap (frame addresses); resolving them is not.
            let backtrace = std::backtrace::Backtrace::capture();
            if backtrace.status() == std::backtrace::BacktraceStatus::Captured
                && let Ok(tx) = tx.lock()
            {
                let _ = tx.send((format!("'{what}' at {location}"), backtrace));
            }
        }
    }));
}
