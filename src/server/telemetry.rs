//! Logging setup: `tracing` to stderr, text or JSON; `RUST_LOG` overrides the level.
//!
//! Every request logs one line (`request_log`): request id, tenant, host, method,
//! route pattern, status and duration. In JSON each line is one object with those
//! fields at the top level, plus the `request` span (id and tenant) for lines logged
//! while handling a request.
//!
//! Lines are formatted on the thread that logs and written by one background thread
//! (`tracing-appender`), through a buffer that is flushed whenever no line is waiting:
//! an HTTP worker does not wait for stderr, and a burst of requests costs one `write` per
//! burst instead of one per line. Lines are never dropped: when the writer falls more
//! than [`BUFFERED_LINES`] behind, loggers wait for it.
use std::io::BufWriter;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Lines that may wait for the writer thread before loggers are held up.
pub const BUFFERED_LINES: usize = 16_384;

/// Flushes the lines still waiting when dropped: keep it until the process exits.
#[must_use = "log lines still waiting are lost when the guard is dropped"]
pub struct LogGuard {
    _flush_on_drop: WorkerGuard,
}

/// Installs the global subscriber (once per process).
pub fn init(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("permetrix-log")
        .finish(BufWriter::with_capacity(64 * 1024, std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // A log destination that fails (stderr to a file on a full disk) must not panic
        // the thread that logs, which is what reporting the failure with eprintln! does.
        .log_internal_errors(false)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .with_ansi(false)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    LogGuard {
        _flush_on_drop: guard,
    }
}
