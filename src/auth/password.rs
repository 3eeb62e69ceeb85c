//! argon2id for passwords and the operator token, always off the request thread.
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

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
}
