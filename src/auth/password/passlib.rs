//! passlib's `pbkdf2_sha256` hashes, as the old license server stored its users'
//! passwords: `$pbkdf2-sha256$<rounds>$<salt>$<checksum>`, salt and checksum in
//! passlib's "adapted base64" (the standard alphabet with `.` in place of `+`, no
//! padding), the checksum being 32 bytes of PBKDF2-HMAC-SHA256. Only the format is
//! parsed here; the key derivation is the `pbkdf2` crate's, the comparison `subtle`'s.
use base64ct::{Base64Unpadded, Encoding};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;

/// How every hash of this kind starts.
pub const PREFIX: &str = "$pbkdf2-sha256$";
/// More rounds than any passlib default (29,000) by far; a bound on what one login may
/// cost, since the rounds come from the imported file.
pub const MAX_ROUNDS: u32 = 5_000_000;
/// passlib's own bound on salts.
const MAX_SALT: usize = 1024;

/// A parsed `pbkdf2_sha256` hash.
#[derive(Clone, PartialEq, Eq)]
pub struct Pbkdf2Sha256 {
    rounds: u32,
    salt: Vec<u8>,
    checksum: [u8; 32],
}

impl std::fmt::Debug for Pbkdf2Sha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pbkdf2Sha256(rounds = {}, ..)", self.rounds)
    }
}

/// Why a string is not a usable `pbkdf2_sha256` hash.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FormatError {
    /// Not `$pbkdf2-sha256$<rounds>$<salt>$<checksum>`.
    #[error("not a passlib pbkdf2_sha256 hash ($pbkdf2-sha256$<rounds>$<salt>$<checksum>)")]
    Shape,
    /// Rounds not a number from 1 to [`MAX_ROUNDS`].
    #[error("its rounds are not a number from 1 to {MAX_ROUNDS}")]
    Rounds,
    /// Salt not adapted base64, or longer than passlib allows.
    #[error("its salt is not passlib's adapted base64 (at most 1024 bytes)")]
    Salt,
    /// Checksum not 32 bytes of adapted base64.
    #[error("its checksum is not 32 bytes of passlib's adapted base64")]
    Checksum,
}

/// Decodes passlib's adapted base64.
fn ab64_decode(text: &str) -> Option<Vec<u8>> {
    if text.contains('+') {
        // passlib never writes '+': it stands for '.', which must have been altered.
        return None;
    }
    Base64Unpadded::decode_vec(&text.replace('.', "+")).ok()
}

impl Pbkdf2Sha256 {
    /// Parses a stored hash.
    pub fn parse(text: &str) -> Result<Self, FormatError> {
        let rest = text.strip_prefix(PREFIX).ok_or(FormatError::Shape)?;
        let mut fields = rest.split('$');
        let (Some(rounds), Some(salt), Some(checksum), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(FormatError::Shape);
        };
        let rounds = rounds
            .parse::<u32>()
            .ok()
            .filter(|r| (1..=MAX_ROUNDS).contains(r) && !rounds.starts_with(['+', '0']))
            .ok_or(FormatError::Rounds)?;
        let salt = ab64_decode(salt)
            .filter(|s| s.len() <= MAX_SALT)
            .ok_or(FormatError::Salt)?;
        let checksum = ab64_decode(checksum)
            .and_then(|c| <[u8; 32]>::try_from(c).ok())
            .ok_or(FormatError::Checksum)?;
        Ok(Pbkdf2Sha256 {
            rounds,
            salt,
            checksum,
        })
    }

    /// The iteration count.
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Whether `password` (its UTF-8 bytes, as passlib hashes a `str`) is the one
    /// hashed, compared in constant time (blocking: as costly as the rounds say).
    pub fn verify(&self, password: &[u8]) -> bool {
        let mut derived = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password, &self.salt, self.rounds, &mut derived);
        derived.ct_eq(&self.checksum).into()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// From passlib's documentation of `pbkdf2_sha256` (the checksum re-derived
    /// independently: Python's `hashlib.pbkdf2_hmac("sha256", b"password", salt, 8000)`).
    const DOCUMENTED: (&str, &str) = (
        "password",
        "$pbkdf2-sha256$8000$XAuBMIYQQogxRg$tRRlz8hYn63B9LYiCd6PRo6FMiunY9ozmMMI3srxeRE",
    );

    /// Derived with Python's `hashlib.pbkdf2_hmac` and encoded by hand (standard base64,
    /// `+` → `.`, padding stripped): a non-ASCII password, 29,000 rounds, and a salt
    /// whose encoding is all `.` (`+`) and `/`, so the alphabet is exercised.
    pub(crate) const DERIVED: (&str, &str) = (
        "Pässwort 1",
        "$pbkdf2-sha256$29000$..................../w$oqCfOxmhYxDRf9M/Kc30wl7iVXn.Kn18YxpeSihhOJo",
    );

    #[test]
    fn known_hashes_verify_their_password_and_no_other() {
        for (password, text) in [DOCUMENTED, DERIVED] {
            let h = Pbkdf2Sha256::parse(text).unwrap();
            assert!(h.verify(password.as_bytes()), "{text}");
            assert!(!h.verify(b"Password"), "{text}");
            assert!(!h.verify(b""), "{text}");
        }
        let derived = Pbkdf2Sha256::parse(DERIVED.1).unwrap();
        assert_eq!(derived.rounds(), 29_000);
        assert_eq!(
            derived.salt,
            [[0xfb, 0xef, 0xbe].repeat(5), vec![0xff]].concat()
        );
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        let cases = [
            ("pending", FormatError::Shape),
            (
                "$pbkdf2-sha512$8000$XAuBMIYQQogxRg$tRRl",
                FormatError::Shape,
            ),
            ("$pbkdf2-sha256$8000$XAuBMIYQQogxRg", FormatError::Shape),
            ("$pbkdf2-sha256$8000$a$b$c", FormatError::Shape),
            ("$pbkdf2-sha256$0$XAuBMIYQQogxRg$tRRl", FormatError::Rounds),
            (
                "$pbkdf2-sha256$08000$XAuBMIYQQogxRg$tRRl",
                FormatError::Rounds,
            ),
            (
                "$pbkdf2-sha256$99999999$XAuBMIYQQogxRg$tRRl",
                FormatError::Rounds,
            ),
            ("$pbkdf2-sha256$x$XAuBMIYQQogxRg$tRRl", FormatError::Rounds),
            ("$pbkdf2-sha256$8000$XAu+MIYQQogxRg$tRRl", FormatError::Salt),
            ("$pbkdf2-sha256$8000$XAu!$tRRl", FormatError::Salt),
            (
                "$pbkdf2-sha256$8000$XAuBMIYQQogxRg$tRRlz8hY",
                FormatError::Checksum,
            ),
            (
                "$pbkdf2-sha256$8000$XAuBMIYQQogxRg$tRRlz8hYn63B9LYiCd6PRo6FMiunY9ozmMMI3srxeRE=",
                FormatError::Checksum,
            ),
        ];
        for (text, reason) in cases {
            assert_eq!(Pbkdf2Sha256::parse(text), Err(reason), "{text}");
        }
    }
}
