//! Storage faults must reach the store as errors, never kill the process.
//!
//! A write beyond the process's file-size limit (`RLIMIT_FSIZE`, e.g. systemd's
//! `LimitFSIZE=` or a container's ulimit) raises `SIGXFSZ`, whose default action ends the
//! process. With the signal caught, the write fails with `EFBIG` instead: the store
//! takes itself out of service, requests get `503 storage_unavailable`, and the store is
//! reopened once the limit is raised again.
use tokio::signal::unix::{SignalKind, signal};

/// Catches `SIGXFSZ` for the rest of the process's life and logs each occurrence. Must
/// run inside the server's runtime.
pub fn survive_file_size_limit() -> std::io::Result<()> {
    let mut stream = signal(SignalKind::from_raw(libc::SIGXFSZ))?;
    actix_rt::spawn(async move {
        while stream.recv().await.is_some() {
            tracing::error!(
                "a write exceeded the file-size limit (SIGXFSZ); storage fails until the limit \
                 is raised"
            );
        }
    });
    Ok(())
}
