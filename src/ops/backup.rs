//! Backups: `permetrix backup` and `permetrix restore`.
//!
//! sled locks its files, so no second process can read a live store. A running server
//! therefore listens on a Unix socket in its data directory (`control.sock`; whoever may
//! use it may read the data directory anyway). `permetrix backup --data-dir DIR` asks the
//! server found there for a snapshot; with no server running it opens the store itself.
//!
//! The server writes the snapshot to a file in the data directory first: the store's
//! write gate is held only while entries are copied to local disk (writers wait for that
//! long, readers never), not while a possibly slow client reads them. The snapshot holds
//! `server.key` (without it the restored API keys and vendor signing secrets are
//! useless), so the backup file is written with mode 0600 and is as secret as the data
//! directory itself.
//!
//! A PostgreSQL store is backed up from the database (one consistent read, while
//! brokers run) and holds no key: the deployment's `PERMETRIX_SERVER_KEY` is kept apart.
//! A snapshot of either store restores into either store; that is how a single-machine
//! deployment moves to several brokers.
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use permetrix_storage::snapshot::{self, SnapshotStats, SnapshotWriter};
use permetrix_storage::{Ownership, PgConfig, PgStore, SledConfig, SledStore, Store};
use secrecy::ExposeSecret;

use crate::auth::secrets::KEY_FILE;
use crate::store_choice::StoreKind;
use crate::store_choice::connect_postgres;

/// The control socket's file name inside the data directory.
pub const CONTROL_SOCKET: &str = "control.sock";
/// Where the server assembles a snapshot before sending it.
const PARTIAL: &str = "backup-in-progress.partial";
const REQUEST: &str = "backup 1";
/// A client that stops reading for this long is dropped.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
/// How a backup or restore names itself among the brokers of a PostgreSQL store (it
/// owns no tenant and serves nothing).
const TOOL_ADVERTISE: &str = "permetrix-backup:0";

/// Writes a complete snapshot of `store` (and the data directory's key file, if it has
/// one) to `out`.
fn write_snapshot(
    store: &dyn Store,
    data_dir: Option<&Path>,
    out: &mut dyn Write,
) -> anyhow::Result<SnapshotStats> {
    let mut w = SnapshotWriter::new(out).context("writing the snapshot header")?;
    match data_dir.map(|dir| fs::read(dir.join(KEY_FILE))) {
        None => {}
        Some(Ok(key)) => w.file(KEY_FILE, &key).context("writing the server key")?,
        Some(Err(e)) if e.kind() == io::ErrorKind::NotFound => {
            tracing::warn!("the data directory has no {KEY_FILE}; the backup holds none");
        }
        Some(Err(e)) => return Err(e).context(format!("reading {KEY_FILE}")),
    }
    store.export(&mut w).context("copying the store")?;
    w.finish().context("finishing the snapshot")
}

/// The server side: answers backup requests on `<data-dir>/control.sock`.
pub struct ControlSocket {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlSocket {
    /// Binds the socket (replacing one left behind by a server that was killed: the
    /// store's lock proves no other server uses this directory) and serves requests one
    /// at a time on a thread of its own.
    pub fn start(data_dir: &Path, store: Arc<dyn Store>) -> anyhow::Result<ControlSocket> {
        let path = data_dir.join(CONTROL_SOCKET);
        let _ = fs::remove_file(&path);
        let _ = fs::remove_file(data_dir.join(PARTIAL));
        let listener = UnixListener::bind(&path).with_context(|| {
            format!(
                "binding the control socket {} (live backups need it; a data-dir path must be \
                 shorter than about 100 bytes)",
                path.display()
            )
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let dir = data_dir.to_owned();
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("permetrix-control".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if flag.load(Ordering::Acquire) {
                        break;
                    }
                    match conn {
                        Ok(stream) => serve(stream, store.as_ref(), &dir),
                        Err(e) => tracing::warn!(error = %e, "control socket accept failed"),
                    }
                }
            })
            .context("starting the control socket thread")?;
        Ok(ControlSocket {
            path,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops serving and removes the socket file (before the store closes).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the blocking accept; a backup in progress finishes first.
        match UnixStream::connect(&self.path) {
            Ok(_) => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
            // The socket file is gone (the data directory was removed or replaced under
            // the server): nothing can wake the accept, and waiting would hang the
            // shutdown. The thread ends with the process.
            Err(e) => tracing::warn!(
                socket = %self.path.display(),
                error = %e,
                "the control socket could not be woken; not waiting for its thread"
            ),
        }
        let _ = fs::remove_file(&self.path);
    }
}

fn serve(stream: UnixStream, store: &dyn Store, data_dir: &Path) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut line = String::new();
    let mut reader = BufReader::new(&stream);
    if reader.read_line(&mut line).is_err() || line.trim() != REQUEST {
        // A wake-up at shutdown, or something that does not speak the protocol.
        return;
    }
    let mut out = &stream;
    let partial = data_dir.join(PARTIAL);
    let started = Instant::now();
    let made = create_private(&partial)
        .context("creating the snapshot file in the data directory")
        .and_then(|f| {
            let mut w = BufWriter::new(f);
            let stats = write_snapshot(store, Some(data_dir), &mut w)?;
            w.into_inner()
                .map_err(|e| e.into_error())
                .context("writing the snapshot file")?;
            Ok(stats)
        });
    let result = made.and_then(|stats| {
        let copy_started = Instant::now();
        out.write_all(b"ok\n")?;
        let mut file = File::open(&partial).context("reopening the snapshot file")?;
        io::copy(&mut file, &mut out).context("sending the snapshot")?;
        out.flush()?;
        Ok((stats, copy_started))
    });
    let _ = fs::remove_file(&partial);
    match result {
        Ok((stats, copy_started)) => tracing::info!(
            entries = stats.entries,
            bytes = stats.bytes,
            snapshot_ms = copy_started.duration_since(started).as_millis() as u64,
            "backup sent"
        ),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "backup failed");
            let _ = writeln!(out, "error {}", format!("{e:#}").replace('\n', " "));
        }
    }
}

/// `permetrix backup`: reads the PostgreSQL store, or asks the server running on
/// `data_dir` for a snapshot (or reads the stopped store), and writes it to `out`
/// atomically (mode 0600).
pub fn backup(
    data_dir: &Path,
    store: &StoreKind,
    out: &Path,
) -> anyhow::Result<(SnapshotStats, &'static str)> {
    let partial = partial_path(out);
    let mut file =
        create_private(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let result = match store.database_url() {
        Some(url) => from_database(url, &mut file).map(|()| "the PostgreSQL store"),
        None => from_data_dir(data_dir, &mut file),
    };
    let finished = result.and_then(|source| {
        file.sync_all().context("syncing the backup file")?;
        let stats = snapshot::verify(BufReader::new(File::open(&partial)?))
            .context("checking the backup file just written")?;
        fs::rename(&partial, out).with_context(|| format!("renaming to {}", out.display()))?;
        sync_parent(out);
        Ok((stats, source))
    });
    if finished.is_err() {
        let _ = fs::remove_file(&partial);
    }
    finished
}

fn from_data_dir(data_dir: &Path, file: &mut File) -> anyhow::Result<&'static str> {
    match UnixStream::connect(data_dir.join(CONTROL_SOCKET)) {
        Ok(stream) => from_server(stream, file).map(|()| "the running server"),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            from_stopped_store(data_dir, file).map(|()| "the stopped store")
        }
        Err(e) => Err(e).context(format!(
            "connecting to the server's control socket in {}",
            data_dir.display()
        )),
    }
}

/// One consistent read of the whole database, while brokers go on writing.
fn from_database(url: &str, out: &mut File) -> anyhow::Result<()> {
    let store = connect_postgres(url, PgConfig::new(TOOL_ADVERTISE))?;
    let mut w = BufWriter::new(out);
    write_snapshot(store.as_ref(), None, &mut w)?;
    w.flush().context("writing the backup file")?;
    store.leave().context("ending the backup's lease")?;
    Ok(())
}

fn from_server(stream: UnixStream, out: &mut File) -> anyhow::Result<()> {
    let mut w = &stream;
    w.write_all(format!("{REQUEST}\n").as_bytes())
        .context("asking the server for a snapshot")?;
    let mut reader = BufReader::new(&stream);
    let mut status = String::new();
    reader
        .read_line(&mut status)
        .context("reading the server's answer")?;
    let status = status.trim_end();
    if status != "ok" {
        match status.strip_prefix("error ") {
            Some(why) => bail!("the server could not write a snapshot: {why}"),
            None => bail!(
                "the control socket answered something other than a snapshot; is a permetrix \
                 server of the same version running there?"
            ),
        }
    }
    io::copy(&mut reader, out).context("receiving the snapshot")?;
    Ok(())
}

fn from_stopped_store(data_dir: &Path, out: &mut File) -> anyhow::Result<()> {
    if !data_dir.join("db").exists() {
        bail!(
            "{} holds no permetrix store; pass the --data-dir of the store to back up",
            data_dir.display()
        );
    }
    let store = SledStore::open(SledConfig::new(data_dir)).with_context(|| {
        format!(
            "no server answers on {}, so the store was opened directly, which failed; if a \
             server is running there, it is one without a control socket: stop it and retry",
            data_dir.join(CONTROL_SOCKET).display()
        )
    })?;
    let mut w = BufWriter::new(out);
    write_snapshot(&store, Some(data_dir), &mut w)?;
    w.flush().context("writing the backup file")?;
    store.shutdown().context("closing the store")?;
    Ok(())
}

/// What `permetrix restore` did.
pub struct Restored {
    /// What the snapshot held.
    pub stats: SnapshotStats,
    /// Whether the snapshot's `server.key` is in place beside the store: `false` for a
    /// snapshot without one, and always for a PostgreSQL store, where the key is the
    /// deployment's `PERMETRIX_SERVER_KEY`.
    pub key_in_place: bool,
    /// Whether the snapshot held a `server.key`.
    pub had_key: bool,
}

/// `permetrix restore`: the snapshot into a new data directory or an empty PostgreSQL
/// database.
pub fn restore(
    from: &Path,
    data_dir: Option<&Path>,
    store: &StoreKind,
) -> anyhow::Result<Restored> {
    match store {
        StoreKind::Sled => {
            let Some(data_dir) = data_dir else {
                bail!("say where to restore: --data-dir DIR, or --store postgres://…");
            };
            let stats = SledStore::restore(from, data_dir)?;
            Ok(Restored {
                had_key: stats.files > 0,
                key_in_place: stats.files > 0,
                stats,
            })
        }
        StoreKind::Postgres(url) => {
            let restored = PgStore::restore(url.expose_secret(), from)
                .context("restoring into the PostgreSQL store")?;
            Ok(Restored {
                had_key: restored.skipped_files.iter().any(|f| f == KEY_FILE),
                key_in_place: false,
                stats: restored.stats,
            })
        }
    }
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".partial");
    out.with_file_name(name)
}

fn create_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// Makes the rename durable (best effort: not every filesystem syncs directories).
fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(dir) = File::open(parent)
    {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn stopping_does_not_hang_when_the_socket_file_was_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SledStore::open(SledConfig::new(dir.path().join("store"))).unwrap());
        let control = ControlSocket::start(dir.path(), store).unwrap();
        fs::remove_file(dir.path().join(CONTROL_SOCKET)).unwrap();
        let (done, stopped) = mpsc::channel();
        std::thread::spawn(move || {
            control.stop();
            let _ = done.send(());
        });
        // Generous: stop() returns at once, or never (it used to wait on the accept).
        assert!(
            stopped.recv_timeout(Duration::from_secs(30)).is_ok(),
            "stop() hung"
        );
    }
}
