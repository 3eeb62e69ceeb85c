//! The write-ahead journal: what makes a tenant write durable.
//!
//! A tenant write is applied to sled in memory (so reads see it at once) and appended,
//! as one [`JournalEntryRecord`], to an in-memory buffer. The group commit's flusher
//! writes the buffer to `<data-dir>/journal` and makes it durable with one
//! `fdatasync`; only then are the batch's tickets resolved. sled is flushed and synced
//! at each checkpoint (every few seconds and at shutdown), after which the entries it
//! now holds are dropped. On open, whatever the journals hold is replayed onto sled.
//!
//! # Replay marks
//!
//! sled writes its log buffers out whenever they fill or a batch rolls them, so after a
//! crash the database may hold writes the journal never made durable, later than the
//! journal's last entry. Replaying an older entry over them would undo part of them (a
//! lease put back that a later, unjournaled return had removed, while that return's
//! usage event stays): a history that disagrees with itself. So every entry carries a
//! `seq`, and each write also records its tenant's latest `seq` in the `journal_marks`
//! tree, after the write's records. sled recovers a prefix of its log, so a tenant's mark
//! `m` means sled holds every entry of that tenant up to `m` whole, and nothing after
//! `m + 1`: replay skips the tenant's entries up to `m` and applies the rest in order.
//!
//! # Failures
//!
//! Until its entry is durable, the values a write replaced are kept in memory
//! ([`Applied`]). When the journal cannot be written, the store is taken out of service
//! and [`Journal::close`] hands back every write that never became durable, to be undone
//! in sled's memory before sled is closed (closing flushes it): a write refused with
//! `storage_unavailable` must not become durable later, when the disk recovers.
//!
//! # Format (version 1)
//!
//! A 12-byte header, `PMXJRNL\0` and the format version (u32, little-endian), then
//! entries, each `[payload length: u32 LE][CRC-32 of the payload: u32 LE][payload]`,
//! the payload a [`JournalEntryRecord`] as [`crate::codec`] encodes records (a schema
//! version byte, then bincode).
//!
//! # Recovery
//!
//! The flusher finishes one write + `fdatasync` before it starts the next, so at most
//! the last write can be incomplete after a crash: a tail that does not check out is
//! the torn end of an unacknowledged write, and is cut off (and logged). An entry that
//! does not check out *followed by* one that does is damage, not a crash; the store is
//! refused with what to do. (This is also why the next batch's write does not overlap
//! the previous `fdatasync`: two writes in flight could leave a hole before a whole
//! entry, which could not be told apart from damage.)
//!
//! # Checkpoints and rotation
//!
//! A checkpoint renames `journal` to `journal.old` and starts a new `journal` (the
//! flusher waits for the file lock meanwhile, a few hundred microseconds), flushes and
//! syncs sled, which now holds every entry of `journal.old` (each was applied before it
//! was appended), then deletes `journal.old`. A crash at any point leaves both files
//! to replay, oldest first. If a checkpoint fails after the rename, `journal.old` stays
//! until one succeeds.
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::StorageError;
use crate::codec;
use crate::records::JournalEntryRecord;

/// The journal being written.
pub(crate) const FILE: &str = "journal";
/// The journal a checkpoint is retiring.
pub(crate) const RETIRED: &str = "journal.old";
const MAGIC: &[u8; 8] = b"PMXJRNL\0";
/// The format this build writes and reads.
const FORMAT: u32 = 1;
const HEADER_LEN: usize = 12;
/// Length and checksum in front of every entry.
const FRAME_LEN: usize = 8;
/// No entry is longer (one tenant write is a few records); a longer length is damage.
const MAX_ENTRY: usize = 64 << 20;

/// The tree of replay marks: tenant id → the `seq` of its latest entry sled holds.
pub(crate) const MARKS_TREE: &str = "journal_marks";

/// One applied write whose entry is not durable yet, and how to undo it in memory.
pub(super) struct Applied {
    /// The entry (its keys are the keys written).
    pub(super) entry: JournalEntryRecord,
    /// `(position in entry.writes, the value it replaced)`, in the order applied.
    pub(super) replaced: Vec<(usize, Option<sled::IVec>)>,
    /// The tenant's replay mark before this write (`None`: none yet, or the write failed
    /// before the mark was set).
    pub(super) mark_before: Option<Option<sled::IVec>>,
}

impl Applied {
    /// Puts back, in sled's memory, what this write replaced.
    pub(super) fn undo(&self, state: &sled::Tree, marks: &sled::Tree) -> sled::Result<()> {
        if let Some(mark) = &self.mark_before {
            put_or_remove(marks, self.entry.tenant.as_bytes(), mark.as_deref())?;
        }
        for (i, value) in self.replaced.iter().rev() {
            put_or_remove(state, &self.entry.writes[*i].0, value.as_deref())?;
        }
        Ok(())
    }
}

/// Puts `value` at `key`, or removes the key when `None`; returns the value it replaced.
pub(super) fn put_or_remove(
    tree: &sled::Tree,
    key: &[u8],
    value: Option<&[u8]>,
) -> sled::Result<Option<sled::IVec>> {
    match value {
        Some(value) => tree.insert(key, value),
        None => tree.remove(key),
    }
}

/// `writes` (puts and removes, in order) as one atomic sled batch.
pub(super) fn batch_of(writes: &[(Vec<u8>, Option<Vec<u8>>)]) -> sled::Batch {
    let mut batch = sled::Batch::default();
    for (key, value) in writes {
        match value {
            Some(value) => batch.insert(key.as_slice(), value.as_slice()),
            None => batch.remove(key.as_slice()),
        }
    }
    batch
}

/// Entries appended since the last write, in order.
#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    applied: Vec<Applied>,
}

/// The file being written and whether the journal still takes writes.
struct Active {
    /// Positioned at its end.
    file: File,
    /// Writes whose journal write failed: never durable, to be undone.
    lost: Vec<Applied>,
}

/// The journal of one store.
pub(super) struct Journal {
    dir: PathBuf,
    pending: Mutex<Pending>,
    /// Held while a write is made durable and while the file is rotated.
    active: Mutex<Active>,
    /// Set by [`Journal::close`]: nothing is written or acknowledged any more.
    closed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A buffer and a file handle: valid after any panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn io_err(what: String) -> impl FnOnce(io::Error) -> StorageError {
    move |e| StorageError::io(what, e)
}

/// `[length][crc][payload]` of one entry.
pub(crate) fn frame(entry: &JournalEntryRecord, out: &mut Vec<u8>) {
    let payload = codec::encode(entry);
    // Entries are a few records; a length past u32 cannot be built by one write.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..].copy_from_slice(&FORMAT.to_le_bytes());
    h
}

/// The payload of the entry at `at`, if a whole one with a matching checksum starts
/// there.
fn entry_at(bytes: &[u8], at: usize) -> Option<&[u8]> {
    let head = bytes.get(at..at.checked_add(FRAME_LEN)?)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len == 0 || len > MAX_ENTRY {
        return None;
    }
    let start = at + FRAME_LEN;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    (crc32fast::hash(payload) == crc).then_some(payload)
}

/// What a journal file holds.
pub(super) struct Contents {
    /// The entries, in order.
    pub(super) entries: Vec<JournalEntryRecord>,
    /// Where the whole entries end; anything after it is a torn tail.
    pub(super) end: usize,
}

/// Reads the entries of `bytes` (a whole journal file); refuses damage that a crash
/// cannot explain.
pub(super) fn parse(bytes: &[u8], path: &Path) -> Result<Contents, StorageError> {
    if bytes.len() < HEADER_LEN {
        // A journal whose header never reached the disk holds nothing.
        return Ok(Contents {
            entries: Vec::new(),
            end: 0,
        });
    }
    if &bytes[..8] != MAGIC {
        return Err(StorageError::Foreign(format!(
            "{} is not a permetrix journal; move it out of the data directory",
            path.display()
        )));
    }
    let format = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if format != FORMAT {
        return Err(StorageError::Foreign(format!(
            "{} is a journal of format {format}; this build reads format {FORMAT}: run the \
             permetrix version that wrote it",
            path.display()
        )));
    }
    let mut entries = Vec::new();
    let mut at = HEADER_LEN;
    while let Some(payload) = entry_at(bytes, at) {
        let entry = codec::decode::<JournalEntryRecord>(payload)
            .map_err(|e| StorageError::Foreign(format!("{} at byte {at}: {e}", path.display())))?;
        entries.push(entry);
        at += FRAME_LEN + payload.len();
    }
    if at < bytes.len() && (at + 1..bytes.len()).any(|p| entry_at(bytes, p).is_some()) {
        return Err(StorageError::Foreign(format!(
            "{} is damaged at byte {at}, and whole entries follow the damage, so it is not \
             the torn end of a crash. Restore a backup (permetrix restore), or, to keep \
             the store and lose the acknowledged writes after the damage, truncate the \
             file to {at} bytes (truncate -s {at} {}) and start again",
            path.display(),
            path.display()
        )));
    }
    Ok(Contents { entries, end: at })
}

/// Reads `path` if it exists; cuts a torn tail off. `None` if there is no such file.
fn recover_file(path: &Path) -> Result<Option<Vec<JournalEntryRecord>>, StorageError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(format!("reading {}", path.display()), e)),
    };
    let contents = parse(&bytes, path)?;
    if contents.end < bytes.len() {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_err(format!("opening {}", path.display())))?;
        file.set_len(contents.end as u64)
            .and_then(|()| file.sync_all())
            .map_err(io_err(format!(
                "cutting the torn tail off {}",
                path.display()
            )))?;
        tracing::warn!(
            path = %path.display(),
            kept_bytes = contents.end,
            cut_bytes = bytes.len() - contents.end,
            entries = contents.entries.len(),
            "cut off the torn end of the journal (a write a crash interrupted; it was never acknowledged)"
        );
    }
    Ok(Some(contents.entries))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all())
}

/// Creates an empty journal at `path` (replacing any file there) and makes it durable.
fn create(path: &Path) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(&header())?;
    file.sync_all()?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(file)
}

/// The `seq` a mark holds.
fn mark_value(bytes: &[u8], tenant: &[u8]) -> Result<u64, StorageError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| {
            StorageError::Foreign(format!(
                "the replay mark of tenant {} is unreadable; the database is damaged: \
                 restore a backup (permetrix restore)",
                String::from_utf8_lossy(tenant)
            ))
        })
}

/// The highest `seq` any mark holds.
fn highest_mark(marks: &sled::Tree) -> Result<u64, StorageError> {
    let mut highest = 0;
    for item in marks.iter() {
        let (tenant, value) = item.map_err(|e| StorageError::io("reading the replay marks", e))?;
        highest = highest.max(mark_value(&value, &tenant)?);
    }
    Ok(highest)
}

impl Journal {
    /// Replays the journals in `dir` onto `state` (the retired one first, each entry
    /// only if `marks` says sled lacks it), then opens the journal for appending.
    /// Returns it with the `seq` the next entry takes.
    pub(super) fn open(
        dir: &Path,
        state: &sled::Tree,
        marks: &sled::Tree,
    ) -> Result<(Journal, u64), StorageError> {
        let path = dir.join(FILE);
        let mut highest = highest_mark(marks)?;
        let (mut replayed, mut held) = (0usize, 0usize);
        let mut seen: HashMap<String, u64> = HashMap::new();
        for name in [RETIRED, FILE] {
            let Some(entries) = recover_file(&dir.join(name))? else {
                continue;
            };
            for entry in entries {
                highest = highest.max(entry.seq);
                let mark = match seen.get(&entry.tenant) {
                    Some(mark) => *mark,
                    None => marks
                        .get(entry.tenant.as_bytes())
                        .map_err(|e| StorageError::io("reading a replay mark", e))?
                        .map_or(Ok(0), |v| mark_value(&v, entry.tenant.as_bytes()))?,
                };
                if entry.seq <= mark {
                    held += 1;
                    seen.insert(entry.tenant.clone(), mark);
                    continue;
                }
                replay(state, marks, &entry)?;
                replayed += 1;
                seen.insert(entry.tenant.clone(), entry.seq);
            }
        }
        if replayed + held > 0 {
            tracing::info!(
                replayed,
                already_held = held,
                "replayed the journal onto the database"
            );
        }
        let file = if path.exists() {
            let file = OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(io_err(format!("opening {}", path.display())))?;
            let len = file
                .metadata()
                .map_err(io_err(format!("reading {}", path.display())))?
                .len();
            if len < HEADER_LEN as u64 {
                create(&path).map_err(io_err(format!("creating {}", path.display())))?
            } else {
                file
            }
        } else {
            create(&path).map_err(io_err(format!("creating {}", path.display())))?
        };
        let journal = Journal {
            dir: dir.to_owned(),
            pending: Mutex::new(Pending::default()),
            active: Mutex::new(Active {
                file,
                lost: Vec::new(),
            }),
            closed: AtomicBool::new(false),
        };
        Ok((journal, highest + 1))
    }

    /// Queues the entry of an applied write for the next write.
    pub(super) fn append(&self, applied: Applied) {
        let mut pending = lock(&self.pending);
        frame(&applied.entry, &mut pending.bytes);
        pending.applied.push(applied);
    }

    /// Keeps a write that failed half-applied, to be undone with the lost ones.
    pub(super) fn lose(&self, applied: Applied) {
        lock(&self.active).lost.push(applied);
    }

    /// Whether [`Journal::close`] was called.
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Writes what was queued and makes it durable (`fdatasync`). Returns whether
    /// there was anything to write. On failure the file is cut back to where it was,
    /// so that no entry of the failed write can be replayed later.
    pub(super) fn write_pending(&self) -> io::Result<bool> {
        let mut active = lock(&self.active);
        if self.is_closed() {
            return Err(io::Error::other(
                "the journal was closed after a failure; the store is being reopened",
            ));
        }
        let Pending { bytes, applied } = std::mem::take(&mut *lock(&self.pending));
        if bytes.is_empty() {
            return Ok(false);
        }
        let file = &mut active.file;
        // The length, not the position: a journal reopened for appending is at 0.
        let start = file.metadata()?.len();
        let written = file.write_all(&bytes).and_then(|()| file.sync_data());
        if let Err(e) = written {
            if let Err(cut) = file
                .set_len(start)
                .and_then(|()| file.seek(SeekFrom::Start(start)))
            {
                tracing::error!(error = %cut, "cutting a failed write off the journal failed");
            }
            active.lost.extend(applied);
            return Err(e);
        }
        Ok(true)
    }

    /// Stops the journal for good (after a failure) and returns every applied write
    /// whose entry never became durable, oldest first, for the caller to undo. A write
    /// in progress finishes first; none starts after.
    pub(super) fn close(&self) -> Vec<Applied> {
        let mut active = lock(&self.active);
        self.closed.store(true, Ordering::Release);
        let mut unwritten = std::mem::take(&mut active.lost);
        unwritten.extend(std::mem::take(&mut lock(&self.pending).applied));
        unwritten
    }

    /// Test-only: every later write of the journal fails, as on a failing disk.
    #[cfg(test)]
    pub(super) fn fail_writes(&self) {
        let path = self.dir.join(FILE);
        // A read-only handle: writing through it fails with EBADF.
        lock(&self.active).file = File::open(&path).expect("the journal opens read-only");
    }

    /// Retires the journal being written and starts a new one, so that a checkpoint
    /// may drop the retired one once sled holds it. Keeps a retired journal that an
    /// earlier checkpoint left (the new one then keeps growing until one completes).
    pub(super) fn rotate(&self) -> Result<(), StorageError> {
        let mut active = lock(&self.active);
        let (path, retired) = (self.dir.join(FILE), self.dir.join(RETIRED));
        if retired.exists() {
            return Ok(());
        }
        fs::rename(&path, &retired).map_err(io_err(format!("retiring {}", path.display())))?;
        active.file = create(&path).map_err(io_err(format!("creating {}", path.display())))?;
        Ok(())
    }

    /// Deletes the retired journal: sled holds all of it durably now.
    pub(super) fn drop_retired(&self) -> Result<(), StorageError> {
        let retired = self.dir.join(RETIRED);
        match fs::remove_file(&retired) {
            Ok(()) => {
                sync_dir(&self.dir).map_err(io_err(format!("syncing {}", self.dir.display())))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(
                format!("deleting {}", retired.display()),
                e,
            )),
        }
    }
}

/// Applies one entry to `state`, then moves its tenant's mark to it.
fn replay(
    state: &sled::Tree,
    marks: &sled::Tree,
    entry: &JournalEntryRecord,
) -> Result<(), StorageError> {
    let failed = |e| StorageError::io("replaying the journal onto the database", e);
    state.apply_batch(batch_of(&entry.writes)).map_err(failed)?;
    marks
        .insert(entry.tenant.as_bytes(), &entry.seq.to_be_bytes())
        .map(drop)
        .map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8) -> JournalEntryRecord {
        JournalEntryRecord {
            tenant: "acme".into(),
            seq: u64::from(n),
            writes: vec![(vec![n], Some(vec![n; 3])), (vec![n, 1], None)],
        }
    }

    fn file_of(entries: &[JournalEntryRecord]) -> Vec<u8> {
        let mut bytes = header().to_vec();
        for e in entries {
            frame(e, &mut bytes);
        }
        bytes
    }

    #[test]
    fn whole_entries_parse_and_a_torn_tail_is_left_out() {
        let path = Path::new("journal");
        let whole = file_of(&[entry(1), entry(2)]);
        let parsed = parse(&whole, path).unwrap();
        assert_eq!(parsed.entries, vec![entry(1), entry(2)]);
        assert_eq!(parsed.end, whole.len());
        // Every cut inside the last entry is a torn tail.
        let first_end = file_of(&[entry(1)]).len();
        for cut in first_end + 1..whole.len() {
            let parsed = parse(&whole[..cut], path).unwrap();
            assert_eq!(parsed.entries, vec![entry(1)], "cut at {cut}");
            assert_eq!(parsed.end, first_end);
        }
        // So are zeros the file system left after the last entry.
        let mut zeros = whole.clone();
        zeros.extend_from_slice(&[0; 64]);
        assert_eq!(parse(&zeros, path).unwrap().end, whole.len());
        // A header that never reached the disk: an empty journal.
        assert!(parse(&whole[..5], path).unwrap().entries.is_empty());
    }

    #[test]
    fn damage_followed_by_whole_entries_is_refused() {
        let path = Path::new("journal");
        let mut bytes = file_of(&[entry(1), entry(2), entry(3)]);
        let second = file_of(&[entry(1)]).len();
        bytes[second + FRAME_LEN + 2] ^= 0xff;
        let err = parse(&bytes, path).err().unwrap().to_string();
        assert!(err.contains(&format!("damaged at byte {second}")), "{err}");
        assert!(err.contains(&format!("truncate -s {second}")), "{err}");
        // Damage in the last entry is indistinguishable from a tear: cut off.
        let mut bytes = file_of(&[entry(1), entry(2)]);
        bytes[second + FRAME_LEN + 2] ^= 0xff;
        assert_eq!(parse(&bytes, path).unwrap().entries, vec![entry(1)]);
    }

    #[test]
    fn a_foreign_file_or_a_newer_format_is_refused() {
        let path = Path::new("journal");
        let err = parse(b"hello world, not a journal", path).err().unwrap();
        assert!(err.to_string().contains("not a permetrix journal"), "{err}");
        let mut newer = file_of(&[]);
        newer[8] = 2;
        let err = parse(&newer, path).err().unwrap();
        assert!(err.to_string().contains("format 2"), "{err}");
    }
}
