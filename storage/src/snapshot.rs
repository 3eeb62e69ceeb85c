//! The backup file format: a self-checking stream of data-directory files and store
//! entries.
//!
//! ```text
//! header  "PERMETRIX-BACKUP" (16 bytes) ++ u32 format version
//! frames  'F' name data        one file of the data directory (server.key)
//!         'T' name             the entries that follow belong to this tree
//!         'K' key value        one entry
//!         'E' u64 count hash   end: entries written, then SHA-256 of every byte before
//!                              the hash
//! ```
//!
//! Names, keys and values are `u32` little-endian length + bytes; file data is `u64`
//! length + bytes. A file that was cut short, altered or appended to fails [`verify`]
//! before anything is restored from it.
use std::io::{self, BufRead, Read, Write};

use sha2::{Digest, Sha256};

/// The first bytes of every backup file.
pub const MAGIC: &[u8; 16] = b"PERMETRIX-BACKUP";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

const FILE: u8 = b'F';
const TREE: u8 = b'T';
const ENTRY: u8 = b'K';
const END: u8 = b'E';

/// What a snapshot holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Store entries (all trees).
    pub entries: u64,
    /// Data-directory files.
    pub files: u64,
    /// Bytes of the whole snapshot.
    pub bytes: u64,
}

/// Writes a snapshot, hashing as it goes.
pub struct SnapshotWriter<'a> {
    out: &'a mut dyn Write,
    hash: Sha256,
    stats: SnapshotStats,
}

impl<'a> SnapshotWriter<'a> {
    /// Starts a snapshot on `out` (writes the header).
    pub fn new(out: &'a mut dyn Write) -> io::Result<Self> {
        let mut w = SnapshotWriter {
            out,
            hash: Sha256::new(),
            stats: SnapshotStats::default(),
        };
        w.put(MAGIC)?;
        w.put(&VERSION.to_le_bytes())?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hash.update(bytes);
        self.stats.bytes += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    fn put_short(&mut self, bytes: &[u8]) -> io::Result<()> {
        let len = u32::try_from(bytes.len()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "a key or value exceeds 4 GiB")
        })?;
        self.put(&len.to_le_bytes())?;
        self.put(bytes)
    }

    /// Adds a file of the data directory (`name` is a bare file name).
    pub fn file(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        check_file_name(name)?;
        self.put(&[FILE])?;
        self.put_short(name.as_bytes())?;
        self.put(&(data.len() as u64).to_le_bytes())?;
        self.put(data)?;
        self.stats.files += 1;
        Ok(())
    }

    /// Starts the entries of tree `name`.
    pub fn tree(&mut self, name: &[u8]) -> io::Result<()> {
        self.put(&[TREE])?;
        self.put_short(name)
    }

    /// Adds one entry to the current tree.
    pub fn entry(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.put(&[ENTRY])?;
        self.put_short(key)?;
        self.put_short(value)?;
        self.stats.entries += 1;
        Ok(())
    }

    /// Writes the end frame and flushes; the snapshot is complete.
    pub fn finish(mut self) -> io::Result<SnapshotStats> {
        self.put(&[END])?;
        let count = self.stats.entries;
        self.put(&count.to_le_bytes())?;
        let digest: [u8; 32] = self.hash.finalize_reset().into();
        self.out.write_all(&digest)?;
        self.out.flush()?;
        self.stats.bytes += 32;
        Ok(self.stats)
    }
}

/// Only bare names: a backup must never write outside the directory it restores into.
fn check_file_name(name: &str) -> io::Result<()> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "the backup names a file '{name}' that is not a bare file name; the file was \
             not written by permetrix"
        )))
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// One item read back from a snapshot.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    /// A data-directory file.
    File {
        /// Bare file name.
        name: String,
        /// Contents.
        data: Vec<u8>,
    },
    /// The entries that follow belong to this tree.
    Tree(Vec<u8>),
    /// One entry of the current tree.
    Entry {
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
    },
}

/// Reads a snapshot item by item. The checksum is known only at the end: call
/// [`verify`] on the whole file before acting on what it contains.
pub struct SnapshotReader<R> {
    input: R,
    hash: Sha256,
    entries: u64,
    done: bool,
}

impl<R: BufRead> SnapshotReader<R> {
    /// Checks the header.
    pub fn new(mut input: R) -> io::Result<Self> {
        let mut hash = Sha256::new();
        let mut magic = [0u8; 16];
        input.read_exact(&mut magic).map_err(|_| not_a_backup())?;
        if &magic != MAGIC {
            return Err(not_a_backup());
        }
        hash.update(magic);
        let mut version = [0u8; 4];
        input.read_exact(&mut version).map_err(|_| truncated())?;
        hash.update(version);
        let version = u32::from_le_bytes(version);
        if version != VERSION {
            return Err(invalid(format!(
                "the backup has format version {version}; this build reads version {VERSION}: \
                 restore it with the permetrix version that wrote it"
            )));
        }
        Ok(SnapshotReader {
            input,
            hash,
            entries: 0,
            done: false,
        })
    }

    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        (&mut self.input)
            .take(n as u64)
            .read_to_end(&mut buf)
            .map_err(|_| truncated())?;
        if buf.len() != n {
            return Err(truncated());
        }
        self.hash.update(&buf);
        Ok(buf)
    }

    fn array<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut buf = [0u8; N];
        self.input.read_exact(&mut buf).map_err(|_| truncated())?;
        self.hash.update(buf);
        Ok(buf)
    }

    fn short(&mut self) -> io::Result<Vec<u8>> {
        let len = u32::from_le_bytes(self.array()?);
        self.take(len as usize)
    }

    /// The next item, or `None` after a verified end frame.
    pub fn next_item(&mut self) -> io::Result<Option<Item>> {
        if self.done {
            return Ok(None);
        }
        let [tag] = self.array::<1>()?;
        match tag {
            FILE => {
                let name = String::from_utf8(self.short()?)
                    .map_err(|_| invalid("a file name in the backup is not UTF-8"))?;
                check_file_name(&name)?;
                let len = u64::from_le_bytes(self.array()?);
                let len = usize::try_from(len).map_err(|_| truncated())?;
                let data = self.take(len)?;
                Ok(Some(Item::File { name, data }))
            }
            TREE => Ok(Some(Item::Tree(self.short()?))),
            ENTRY => {
                let key = self.short()?;
                let value = self.short()?;
                self.entries += 1;
                Ok(Some(Item::Entry { key, value }))
            }
            END => {
                let count = u64::from_le_bytes(self.array()?);
                let expected: [u8; 32] = self.hash.finalize_reset().into();
                let mut found = [0u8; 32];
                self.input.read_exact(&mut found).map_err(|_| truncated())?;
                if found != expected || count != self.entries {
                    return Err(corrupt());
                }
                let mut rest = [0u8; 1];
                if self.input.read(&mut rest)? != 0 {
                    return Err(invalid(
                        "the backup has data after its end frame; it was altered or two files \
                         were concatenated",
                    ));
                }
                self.done = true;
                Ok(None)
            }
            other => Err(invalid(format!(
                "the backup holds an unknown frame type {other:#04x}; it is corrupt"
            ))),
        }
    }
}

fn not_a_backup() -> io::Error {
    invalid("this file is not a permetrix backup (its header does not match)")
}

/// A length that runs past the end of the file: the file was cut short, or the length
/// itself was altered. The stream cannot tell which, so the message names both.
fn truncated() -> io::Error {
    invalid(
        "the backup ends early: it was cut short while being written or copied, or a length \
         in it is corrupt; take the backup again or use another copy",
    )
}

fn corrupt() -> io::Error {
    invalid("the backup's checksum does not match its contents: it is corrupt or was altered")
}

/// Reads a whole snapshot and checks its checksum; returns what it holds.
pub fn verify(input: impl BufRead) -> io::Result<SnapshotStats> {
    let mut reader = SnapshotReader::new(input)?;
    let mut stats = SnapshotStats::default();
    while let Some(item) = reader.next_item()? {
        match item {
            Item::File { .. } => stats.files += 1,
            Item::Entry { .. } => stats.entries += 1,
            Item::Tree(_) => {}
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = SnapshotWriter::new(&mut out).unwrap();
        w.file("server.key", b"secret").unwrap();
        w.tree(b"tenants").unwrap();
        w.entry(b"acme", b"record").unwrap();
        w.entry(b"globex", b"").unwrap();
        let stats = w.finish().unwrap();
        assert_eq!((stats.entries, stats.files), (2, 1));
        assert_eq!(stats.bytes, out.len() as u64);
        out
    }

    #[test]
    fn a_snapshot_reads_back_item_by_item() {
        let bytes = sample();
        let mut r = SnapshotReader::new(bytes.as_slice()).unwrap();
        let mut items = Vec::new();
        while let Some(item) = r.next_item().unwrap() {
            items.push(item);
        }
        assert_eq!(
            items,
            vec![
                Item::File {
                    name: "server.key".into(),
                    data: b"secret".to_vec()
                },
                Item::Tree(b"tenants".to_vec()),
                Item::Entry {
                    key: b"acme".to_vec(),
                    value: b"record".to_vec()
                },
                Item::Entry {
                    key: b"globex".to_vec(),
                    value: Vec::new()
                },
            ]
        );
    }

    #[test]
    fn any_flipped_byte_truncation_or_trailing_data_is_refused() {
        let bytes = sample();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(
                verify(bad.as_slice()).is_err(),
                "flip at {i} went unnoticed"
            );
        }
        for cut in 0..bytes.len() {
            assert!(
                verify(&bytes[..cut]).is_err(),
                "cut at {cut} went unnoticed"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(verify(longer.as_slice()).is_err());
        assert_eq!(verify(bytes.as_slice()).unwrap().entries, 2);
    }

    #[test]
    fn file_names_that_leave_the_directory_are_refused() {
        let mut out = Vec::new();
        let mut w = SnapshotWriter::new(&mut out).unwrap();
        for bad in ["../x", "a/b", "", "..", "/etc/passwd"] {
            assert!(w.file(bad, b"").is_err(), "{bad}");
        }
    }
}
