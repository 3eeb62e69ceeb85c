//! What start-up checks in the data directory beyond the store itself.
use std::path::Path;

use anyhow::bail;
use permetrix_storage::Platform;

use crate::auth::secrets::KEY_FILE;

/// Everything this process creates from now on (the store's files, the control socket,
/// a restored directory) is readable by its owner only: umask 077. The store holds
/// digests and sealed secrets, and its files are no one else's business. Called by the
/// commands that write the data directory, never by `permetrix run`, whose child
/// command must keep the user's umask.
pub fn private_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// A store with vendors but no `server.key` beside it would come up with a new key, and
/// every API key and vendor signing secret would stop working without a word: refuse.
pub fn require_key_for_existing_data(data_dir: &Path, platform: &Platform) -> anyhow::Result<()> {
    let key = data_dir.join(KEY_FILE);
    if key.exists() || platform.vendors()?.is_empty() {
        return Ok(());
    }
    bail!(
        "{} is missing, but the store in {} holds vendors whose keys and signing secrets \
         depend on it: restore server.key from your backup (permetrix restore brings it back \
         with the store). Starting with a new key would make every credential invalid",
        key.display(),
        data_dir.display()
    )
}
