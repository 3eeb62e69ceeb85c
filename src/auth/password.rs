//! Password hashes: argon2id for passwords and the operator token, always off the
//! request thread; and, for portal users imported from the old license server, passlib's
//! `pbkdf2_sha256` ([`passlib`]), accepted until the first login replaces it.
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

pub mod passlib;

/// argon2id with OWASP's recommended minimum (19 MiB, 2 passes, 1 lane).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a secret to a PHC string (blocking: call inside `web::block`).
pub fn hash(secret: &str) -> anyhow::Result<String> {
    hasher()
        .hash_password(secret.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password failed: {e}"))
}

/// Verifies a secret against a PHC string (blocking: call inside `web::block`). With
/// `None` it verifies against a dummy hash, so unknown users cost as much as known ones.
pub fn verify(secret: &str, phc: Option<&str>) -> bool {
    let parsed = match phc.map(PasswordHash::new) {
        Some(Ok(p)) => p,
        Some(Err(_)) | None => {
            let _ = hasher().hash_password(secret.as_bytes());
            return false;
        }
    };
    hasher().verify_password(secret.as_bytes(), &parsed).is_ok()
}

/// What checking a portal user's password found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Wrong password, unknown user, or a user without a password.
    Wrong,
    /// Right, against an argon2id hash.
    Right,
    /// Right, against an imported hash that is to be replaced by argon2id now.
    RightUpgrade,
}

/// Verifies a portal user's password against the stored hash, whichever kind it is
/// (blocking: call inside `web::block`). `None` (an unknown user, or one whose password
/// was never set) costs a dummy argon2id check, as before imported hashes existed.
pub fn verify_stored(secret: &str, stored: Option<&str>) -> Verdict {
    match stored.filter(|s| s.starts_with(passlib::PREFIX)) {
        Some(imported) => match passlib::Pbkdf2Sha256::parse(imported) {
            Ok(h) if h.verify(secret.as_bytes()) => Verdict::RightUpgrade,
            Ok(_) => Verdict::Wrong,
            // Checked at import; unreadable now means damaged: refuse at a known cost.
            Err(_) => {
                verify(secret, None);
                Verdict::Wrong
            }
        },
        None if verify(secret, stored) => Verdict::Right,
        None => Verdict::Wrong,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_secret() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", Some(&h)));
        assert!(!verify("wrong", Some(&h)));
        assert!(!verify("correct horse", None));
        assert!(!verify("x", Some("not a phc string")));
    }

    #[test]
    fn stored_hashes_of_either_kind_verify_and_imported_ones_ask_for_an_upgrade() {
        let argon = hash("correct horse").unwrap();
        assert_eq!(verify_stored("correct horse", Some(&argon)), Verdict::Right);
        assert_eq!(verify_stored("wrong", Some(&argon)), Verdict::Wrong);
        let imported = passlib::tests::DERIVED;
        assert_eq!(
            verify_stored(imported.0, Some(imported.1)),
            Verdict::RightUpgrade
        );
        assert_eq!(verify_stored("wrong", Some(imported.1)), Verdict::Wrong);
        assert_eq!(verify_stored("x", None), Verdict::Wrong);
        assert_eq!(verify_stored("x", Some("$pbkdf2-sha256$x")), Verdict::Wrong);
    }
}
