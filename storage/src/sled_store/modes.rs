//! The data directory's modes: its owner's alone.
use std::path::Path;

/// Makes the data directory its owner's alone: 0700 for it and every directory in it,
/// 0600 for every file, whatever mode an operator or an older release created them
/// with. Files sled creates later get their mode from the process's umask, which
/// `permetrix serve` sets to 077.
///
/// Best effort: an entry the process may not change (a volume's `lost+found`, owned by
/// root) is logged and left as it is; it holds none of the store.
pub(super) fn make_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let set = |path: &Path, mode: u32| {
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
            tracing::warn!(path = %path.display(), error = %e, "cannot restrict the mode of a file in the data directory");
        }
    };
    set(dir, 0o700);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => make_private(&entry.path()),
            Ok(kind) if kind.is_file() => set(&entry.path(), 0o600),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_directory_is_made_private() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        drop(crate::SledStore::open(crate::SledConfig::new(&dir)).unwrap());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let expected = if entry.path().is_dir() { 0o700 } else { 0o600 };
            assert_eq!(mode(&entry.path()), expected, "{}", entry.path().display());
        }
    }
}
