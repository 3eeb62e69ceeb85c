//! Durability checkpoints: a database that lost writes which had been durable is refused
//! at open instead of served.
//!
//! sled reads its log until the first record that does not check out and takes that for
//! the torn end of a crash, so a damaged or truncated file opens as an older state,
//! silently. To notice, the store periodically (and at every clean shutdown) writes a
//! checkpoint number into the database, makes it durable, and only then records the same
//! number in `<data-dir>/checkpoint`. Normally the database's number is at least the
//! file's; if it is smaller, the database lost durable writes.
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{SledSync, sled_err};
use crate::StorageError;

/// The file beside the database.
pub(crate) const FILE: &str = "checkpoint";
/// The key in the `meta` tree.
const KEY: &[u8] = b"checkpoint";

pub(super) struct Checkpoints {
    meta: sled::Tree,
    file: PathBuf,
    /// The last number written; the lock also keeps two checkpoints from interleaving.
    last: Mutex<u64>,
}

impl Checkpoints {
    /// Compares the database's checkpoint with the one recorded beside it.
    pub(super) fn open(db: &sled::Db, dir: &Path) -> Result<Self, StorageError> {
        let meta = db
            .open_tree("meta")
            .map_err(sled_err("opening tree meta"))?;
        let file = dir.join(FILE);
        let stored = match meta.get(KEY).map_err(sled_err("reading the checkpoint"))? {
            None => 0,
            Some(v) => <[u8; 8]>::try_from(v.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| {
                    StorageError::Foreign(format!(
                        "{}: the stored checkpoint is unreadable; the database is damaged: \
                         restore a backup (permetrix restore)",
                        dir.display()
                    ))
                })?,
        };
        let recorded = match fs::read_to_string(&file) {
            Ok(text) => Some(text.trim().parse::<u64>().map_err(|_| {
                StorageError::Foreign(format!(
                    "{} is not a checkpoint file; delete it if it is not permetrix's",
                    file.display()
                ))
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(StorageError::io(format!("reading {}", file.display()), e)),
        };
        if let Some(recorded) = recorded
            && recorded > stored
        {
            return Err(StorageError::Foreign(format!(
                "{}: the database has lost writes that were durable (it reaches checkpoint \
                 {stored}, but checkpoint {recorded} was completed): its files are damaged or \
                 were replaced by an older copy. Restore a backup (permetrix restore); if you \
                 replaced the files on purpose, delete {} to accept them",
                dir.display(),
                file.display()
            )));
        }
        Ok(Checkpoints {
            meta,
            file,
            last: Mutex::new(stored),
        })
    }

    /// Makes everything written so far durable under a new checkpoint number, then
    /// records the number beside the database.
    pub(super) fn write(&self, sync: &SledSync) -> Result<u64, StorageError> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let next = *last + 1;
        self.meta
            .insert(KEY, &next.to_be_bytes())
            .map_err(sled_err("writing the checkpoint"))?;
        sync.sync_database().map_err(StorageError::FlushFailed)?;
        let tmp = self.file.with_extension("tmp");
        let recorded = File::create(&tmp)
            .and_then(|mut f| {
                writeln!(f, "{next}")?;
                f.sync_all()
            })
            .and_then(|()| fs::rename(&tmp, &self.file))
            .and_then(|()| match self.file.parent() {
                Some(dir) => File::open(dir).and_then(|d| d.sync_all()),
                None => Ok(()),
            });
        recorded.map_err(|e| StorageError::io(format!("recording {}", self.file.display()), e))?;
        *last = next;
        Ok(next)
    }
}
