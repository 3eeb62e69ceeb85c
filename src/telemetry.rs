//! Logging setup: `tracing` to stderr, text or JSON; `RUST_LOG` overrides the level.
//!
//! Every request logs one line (`request_log`): request id, tenant, host, method,
//! route pattern, status and duration. In JSON each line is one object with those
//! fields at the top level, plus the `request` span (id and tenant) for lines logged
//! while handling a request.
use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the global subscriber (once per process).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // A log destination that fails (stderr to a file on a full disk) must not panic
        // the thread that logs, which is what reporting the failure with eprintln! does.
        .log_internal_errors(false)
        .with_writer(std::io::stderr);
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
}
