//! The offline side of `permetrix run`: where the token is kept, and what happens to
//! the seat and the token when the command has finished.
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::api::{Api, CallError, Seat};
use super::say;

/// The command finds the token's path in this variable.
pub const TOKEN_FILE_ENV: &str = "PERMETRIX_OFFLINE_TOKEN_FILE";

/// `$XDG_STATE_HOME/permetrix/offline/<borrow id>.jwt` (`XDG_STATE_HOME` defaulting to
/// `~/.local/state`); `None` without a home directory.
pub fn default_token_path(borrow_id: &str) -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    token_path(var("XDG_STATE_HOME"), var("HOME"), borrow_id)
}

fn token_path(
    state_home: Option<OsString>,
    home: Option<OsString>,
    borrow_id: &str,
) -> Option<PathBuf> {
    let state = state_home
        .map(PathBuf::from)
        .or_else(|| home.map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(
        state
            .join("permetrix/offline")
            .join(format!("{borrow_id}.jwt")),
    )
}

/// Writes the token to `path` readable by its owner only (0600), creating missing
/// directories (0700).
pub fn store_token(path: &Path, token: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` applies only to a file created now: an existing one is narrowed too.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(token.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Returns the seat early if the broker answers, and then deletes the token, whose
/// seat is gone; if the broker is out of reach the seat stays checked out until its
/// end, and the token with it.
pub async fn finish(api: &Api, seat: &Seat, token_file: &Path) {
    let until = seat
        .offline
        .as_ref()
        .map_or("the end of the checkout", |c| c.expires_at.as_str());
    match api.give_back(&seat.id).await {
        Ok(()) => say("seat returned early"),
        Err(e @ (CallError::Transport(_) | CallError::Refused { status: 503, .. })) => {
            say(format_args!(
                "could not reach the broker to return the seat ({e}); it stays checked out \
                 until {until}, when the broker frees it, and the token in {} stays valid \
                 until then",
                token_file.display()
            ));
            return;
        }
        Err(e) => say(format_args!("the seat is already gone: {e}")),
    }
    match fs::remove_file(token_file) {
        Ok(()) => say(format_args!("deleted the token {}", token_file.display())),
        Err(e) => say(format_args!(
            "could not delete the token {}: {e}",
            token_file.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_path_follows_xdg_state_home() {
        let os = |s: &str| Some(OsString::from(s));
        assert_eq!(
            token_path(os("/s"), os("/home/ann"), "b1"),
            Some(PathBuf::from("/s/permetrix/offline/b1.jwt"))
        );
        assert_eq!(
            token_path(None, os("/home/ann"), "b1"),
            Some(PathBuf::from(
                "/home/ann/.local/state/permetrix/offline/b1.jwt"
            ))
        );
        assert_eq!(token_path(None, None, "b1"), None);
    }

    #[test]
    fn tokens_are_stored_for_their_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/permetrix/offline/b1.jwt");
        store_token(&path, "a.b.c").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "a.b.c\n");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        // An existing, wider file is narrowed.
        let loose = dir.path().join("loose.jwt");
        fs::write(&loose, "old").unwrap();
        fs::set_permissions(&loose, fs::Permissions::from_mode(0o644)).unwrap();
        store_token(&loose, "x.y.z").unwrap();
        assert_eq!(mode(&loose), 0o600);
        assert_eq!(fs::read_to_string(&loose).unwrap(), "x.y.z\n");
    }
}
