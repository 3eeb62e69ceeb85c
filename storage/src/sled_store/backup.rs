//! Snapshots of a sled store: every tree exported under the exclusive write gate, and a
//! snapshot restored into a new data directory.
use std::fs::{self, File};
use std::io::{BufReader, Write};
use std::path::Path;

use super::{LAYOUT, SledStore, check_format, sled_err};
use crate::StorageError;
use crate::snapshot::{self, Item, SnapshotReader, SnapshotStats, SnapshotWriter};

/// Entries applied per sled batch while restoring.
const RESTORE_BATCH: usize = 10_000;

impl SledStore {
    /// Writes every tree to `out`. Writers wait meanwhile (they take the gate shared);
    /// readers do not.
    pub(super) fn export_trees(&self, out: &mut SnapshotWriter<'_>) -> Result<u64, StorageError> {
        let _gate = self.exclusive_gate();
        // Whatever was applied before the gate closed becomes durable first, so the
        // snapshot never holds a write whose flush could still fail.
        self.sync
            .sync_database()
            .map_err(StorageError::FlushFailed)?;
        let write_err = |e| StorageError::io("writing the snapshot", e);
        let mut entries = 0u64;
        let mut names = self.db.tree_names();
        // The replay marks describe this database's journal, which a snapshot does not
        // carry.
        names.retain(|n| n.as_ref() != super::MARKS_TREE.as_bytes());
        names.sort();
        for name in names {
            let tree = self
                .db
                .open_tree(&name)
                .map_err(sled_err("opening a tree for the snapshot"))?;
            out.tree(&name).map_err(write_err)?;
            for item in tree.iter() {
                let (k, v) = item.map_err(sled_err("reading the store for the snapshot"))?;
                out.entry(&k, &v).map_err(write_err)?;
                entries += 1;
            }
        }
        Ok(entries)
    }

    /// Restores the snapshot file `from` into `data_dir`, which must not exist or be
    /// empty. The whole file is verified before anything is written; data-directory
    /// files in it (the server key) are written with mode 0600. On failure the new
    /// directory's contents are removed again.
    pub fn restore(from: &Path, data_dir: &Path) -> Result<SnapshotStats, StorageError> {
        let open = || {
            File::open(from)
                .map(BufReader::new)
                .map_err(|e| StorageError::io(format!("opening the backup {}", from.display()), e))
        };
        let stats = snapshot::verify(open()?).map_err(|e| bad_backup(from, e))?;
        if data_dir.exists() {
            let mut entries = fs::read_dir(data_dir)
                .map_err(|e| StorageError::io(format!("reading {}", data_dir.display()), e))?;
            if entries.next().is_some() {
                return Err(StorageError::Foreign(format!(
                    "{} is not empty; restore into a new or empty directory (a restore never \
                     overwrites a store)",
                    data_dir.display()
                )));
            }
        }
        fs::create_dir_all(data_dir).map_err(|e| {
            StorageError::io(format!("creating data directory {}", data_dir.display()), e)
        })?;
        let result = import(open()?, from, data_dir);
        if result.is_err() {
            // Leave no half-restored store behind for a server to start on.
            if let Ok(entries) = fs::read_dir(data_dir) {
                for entry in entries.flatten() {
                    let path = entry.path();
                    let _ = if path.is_dir() {
                        fs::remove_dir_all(&path)
                    } else {
                        fs::remove_file(&path)
                    };
                }
            }
        }
        result.map(|()| stats)
    }
}

fn bad_backup(from: &Path, e: std::io::Error) -> StorageError {
    StorageError::Foreign(format!("cannot restore {}: {e}", from.display()))
}

fn import(input: BufReader<File>, from: &Path, data_dir: &Path) -> Result<(), StorageError> {
    let db = sled::Config::new()
        .path(data_dir)
        .cache_capacity(64 * 1024 * 1024)
        .flush_every_ms(None)
        .open()
        .map_err(sled_err(format!(
            "creating a store in {}",
            data_dir.display()
        )))?;
    let mut reader = SnapshotReader::new(input).map_err(|e| bad_backup(from, e))?;
    let mut tree: Option<sled::Tree> = None;
    let mut batch = sled::Batch::default();
    let mut pending = 0usize;
    let apply = |tree: &Option<sled::Tree>, batch: &mut sled::Batch| -> Result<(), StorageError> {
        if let Some(t) = tree {
            t.apply_batch(std::mem::take(batch))
                .map_err(sled_err("writing restored entries"))?;
        }
        Ok(())
    };
    while let Some(item) = reader.next_item().map_err(|e| bad_backup(from, e))? {
        match item {
            Item::File { name, data } => write_private(&data_dir.join(&name), &data)?,
            Item::Tree(name) => {
                apply(&tree, &mut batch)?;
                pending = 0;
                tree = Some(
                    db.open_tree(&name)
                        .map_err(sled_err("creating a tree while restoring"))?,
                );
            }
            Item::Entry { key, value } => {
                if tree.is_none() {
                    return Err(bad_backup(
                        from,
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "an entry comes before any tree",
                        ),
                    ));
                }
                batch.insert(key, value);
                pending += 1;
                if pending == RESTORE_BATCH {
                    apply(&tree, &mut batch)?;
                    pending = 0;
                }
            }
        }
    }
    apply(&tree, &mut batch)?;
    // The snapshot must be of a permetrix store this build reads.
    check_format(&db, data_dir, false).map_err(|e| {
        StorageError::Foreign(format!(
            "the backup {} is not of a store this build reads (layout {LAYOUT}): {e}",
            from.display()
        ))
    })?;
    db.flush()
        .map_err(sled_err("flushing the restored store"))?;
    let db_file = data_dir.join("db");
    File::open(&db_file)
        .and_then(|f| f.sync_all())
        .map_err(|e| StorageError::io(format!("syncing {}", db_file.display()), e))?;
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), StorageError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut f| {
            f.write_all(data)?;
            f.sync_all()
        })
        .map_err(|e| StorageError::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_records::lease;
    use crate::{SledConfig, Store, TenantId, TenantMutation};

    #[tokio::test]
    async fn a_snapshot_restores_into_an_equal_store() {
        let src = tempfile::tempdir().unwrap();
        let acme = TenantId::parse("acme").unwrap();
        let leases = [lease("ecu"), lease("ecu")];
        let file = src.path().join("snap");
        {
            let store = SledStore::open(SledConfig::new(src.path().join("data"))).unwrap();
            for l in &leases {
                store
                    .append(
                        &acme,
                        crate::Epoch::SOLE,
                        &[TenantMutation::PutLease(l.clone())],
                    )
                    .unwrap()
                    .wait()
                    .await
                    .unwrap();
            }
            let mut out = File::create(&file).unwrap();
            let mut w = SnapshotWriter::new(&mut out).unwrap();
            w.file("server.key", b"k").unwrap();
            let entries = store.export(&mut w).unwrap();
            assert!(entries >= 3, "{entries}");
            w.finish().unwrap();
        }
        let dst = tempfile::tempdir().unwrap();
        let target = dst.path().join("restored");
        let stats = SledStore::restore(&file, &target).unwrap();
        assert_eq!(stats.files, 1);
        assert_eq!(fs::read(target.join("server.key")).unwrap(), b"k");
        let store = SledStore::open(SledConfig::new(&target)).unwrap();
        let mut loaded = store.load_tenant(&acme).unwrap().leases;
        loaded.sort_by_key(|l| l.id.to_string());
        let mut expected = leases.to_vec();
        expected.sort_by_key(|l| l.id.to_string());
        assert_eq!(loaded, expected);

        // Never over an existing store.
        let err = SledStore::restore(&file, &target).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
    }

    #[test]
    fn a_damaged_snapshot_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("snap");
        let mut bytes = Vec::new();
        let mut w = SnapshotWriter::new(&mut bytes).unwrap();
        w.tree(b"t").unwrap();
        w.entry(b"k", b"v").unwrap();
        w.finish().unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&file, &bytes).unwrap();
        let target = dir.path().join("restored");
        let err = SledStore::restore(&file, &target).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        assert!(!target.exists());
    }

    #[test]
    fn a_snapshot_of_something_else_is_refused_and_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("snap");
        let mut bytes = Vec::new();
        let mut w = SnapshotWriter::new(&mut bytes).unwrap();
        w.tree(b"not-ours").unwrap();
        w.entry(b"k", b"v").unwrap();
        w.finish().unwrap();
        fs::write(&file, &bytes).unwrap();
        let target = dir.path().join("restored");
        let err = SledStore::restore(&file, &target).unwrap_err();
        assert!(err.to_string().contains("format marker"), "{err}");
        assert_eq!(fs::read_dir(&target).unwrap().count(), 0);
    }
}
