//! Server-side secret material: the sealing key for vendor signing secrets and the
//! pepper for API-key digests.
//!
//! Both come from `<data-dir>/server.key` (created with mode 0600 on first start). A copy
//! of the sled database alone therefore reveals no signing secret and allows no offline
//! guessing of API keys; back the key file up separately from the data.
use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit};
use hmac::{Hmac, Mac};
use permetrix_storage::records::SealedSecret;
use secrecy::{ExposeSecret, SecretBox, SecretSlice};
use sha2::Sha256;

/// Name of the key file inside the data directory.
pub const KEY_FILE: &str = "server.key";

/// The server's secret keys.
pub struct ServerSecrets {
    seal_key: SecretBox<[u8; 32]>,
    pepper: SecretBox<[u8; 32]>,
}

/// Fills a buffer from the OS's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS RNG failing leaves no safe way to continue; every secret depends on it.
    if let Err(e) = getrandom::fill(&mut buf) {
        panic!("the operating system's random number generator failed: {e}");
    }
    buf
}

/// `n` random bytes as lowercase hex.
pub fn random_hex<const N: usize>() -> String {
    hex::encode(random_bytes::<N>())
}

impl ServerSecrets {
    /// Reads `<dir>/server.key`, creating it if missing.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(KEY_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let text = random_hex::<64>();
                write_private(&path, &text)
                    .with_context(|| format!("creating the server key file {}", path.display()))?;
                text
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("reading the server key file {}", path.display()));
            }
        };
        let bytes = hex::decode(text.trim()).ok().filter(|b| b.len() == 64);
        let Some(bytes) = bytes else {
            bail!(
                "{} is not a permetrix server key (expected 128 hex characters); restore it from \
                 your backup, or move it away to start a new store",
                path.display()
            );
        };
        let mut seal = [0u8; 32];
        let mut pepper = [0u8; 32];
        seal.copy_from_slice(&bytes[..32]);
        pepper.copy_from_slice(&bytes[32..]);
        Ok(ServerSecrets {
            seal_key: SecretBox::new(Box::new(seal)),
            pepper: SecretBox::new(Box::new(pepper)),
        })
    }

    /// Keys for tests and tools that need no file.
    pub fn ephemeral() -> Self {
        ServerSecrets {
            seal_key: SecretBox::new(Box::new(random_bytes())),
            pepper: SecretBox::new(Box::new(random_bytes())),
        }
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.seal_key.expose_secret().into())
    }

    /// Encrypts a secret for storage.
    pub fn seal(&self, plaintext: &[u8]) -> SealedSecret {
        let nonce: [u8; 24] = random_bytes();
        // Encryption with a valid key and nonce into a Vec cannot fail.
        let ciphertext = self
            .cipher()
            .encrypt(&nonce.into(), plaintext)
            .unwrap_or_default();
        SealedSecret {
            nonce: nonce.to_vec(),
            ciphertext,
        }
    }

    /// Decrypts a stored secret.
    pub fn unseal(&self, sealed: &SealedSecret) -> anyhow::Result<SecretSlice<u8>> {
        let nonce: [u8; 24] = sealed
            .nonce
            .as_slice()
            .try_into()
            .context("sealed secret has a malformed nonce")?;
        let plain = self
            .cipher()
            .decrypt(&nonce.into(), sealed.ciphertext.as_slice())
            .map_err(|_| {
                anyhow::anyhow!(
                    "a sealed secret does not decrypt with this server key; was server.key replaced?"
                )
            })?;
        Ok(SecretSlice::from(plain))
    }

    /// Keyed digest of an API-key secret (HMAC-SHA256 with the pepper).
    pub fn key_digest(&self, secret: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256>>::new_from_slice(self.pepper.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_round_trip_and_do_not_contain_the_plaintext() {
        let s = ServerSecrets::ephemeral();
        let sealed = s.seal(b"vendor-signing-secret-0123456789abcdef");
        assert!(!sealed.ciphertext.windows(6).any(|w| w == b"vendor"));
        let plain = s.unseal(&sealed).unwrap();
        assert_eq!(
            plain.expose_secret(),
            b"vendor-signing-secret-0123456789abcdef"
        );
        assert!(ServerSecrets::ephemeral().unseal(&sealed).is_err());
    }

    #[test]
    fn the_key_file_is_created_once_and_reread() {
        let dir = tempfile::tempdir().unwrap();
        let a = ServerSecrets::load_or_create(dir.path()).unwrap();
        let b = ServerSecrets::load_or_create(dir.path()).unwrap();
        assert_eq!(a.key_digest("x"), b.key_digest("x"));
        fs::write(dir.path().join(KEY_FILE), "garbage").unwrap();
        assert!(ServerSecrets::load_or_create(dir.path()).is_err());
    }
}
