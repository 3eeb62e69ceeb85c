//! Server-side secret material: the sealing key for vendor signing secrets and the
//! pepper for API-key digests.
//!
//! Both come from `<data-dir>/server.key` (created with mode 0600 on first start), or
//! from the deployment key `PERMETRIX_SERVER_KEY` that every broker of a shared store is
//! given ([`ServerSecrets::load`]). A copy of the database alone therefore reveals no
//! signing secret and allows no offline guessing of API keys; back the key up
//! separately from the data.
use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit};
use hmac::{Hmac, Mac};
use permetrix_storage::records::SealedSecret;
use secrecy::{ExposeSecret, SecretBox, SecretSlice, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Name of the key file inside the data directory.
pub const KEY_FILE: &str = "server.key";

/// What the sealing key and the pepper are derived from a deployment key with.
const SEAL_LABEL: &[u8] = b"permetrix server key v1: seal";
const PEPPER_LABEL: &[u8] = b"permetrix server key v1: pepper";

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
    /// The server's secrets (see `docs/decisions.md`, "The server key"):
    /// - a store shared by several brokers needs the deployment key
    ///   (`PERMETRIX_SERVER_KEY`), the same on every broker and never stored;
    /// - the embedded store reads `<dir>/server.key`, created if missing; a deployment
    ///   key given as well is used, and refused if it disagrees with an existing file.
    pub fn load(
        dir: &Path,
        deployment_key: Option<&SecretString>,
        shared_store: bool,
    ) -> anyhow::Result<Self> {
        let Some(key) = deployment_key else {
            if shared_store {
                bail!(
                    "PERMETRIX_SERVER_KEY is not set: with a store shared by several brokers every \
                     broker needs the same server key, 64 hex characters (generate one with \
                     `openssl rand -hex 32` and keep it as a secret of the deployment)"
                );
            }
            return Self::load_or_create(dir);
        };
        let secrets = Self::from_deployment_key(key.expose_secret())?;
        let path = dir.join(KEY_FILE);
        if !shared_store && path.exists() {
            let file = Self::load_or_create(dir)?;
            if !secrets.same_keys(&file) {
                bail!(
                    "PERMETRIX_SERVER_KEY disagrees with {}: the store's credentials depend on the \
                     key file; unset PERMETRIX_SERVER_KEY, or set it to the file's contents",
                    path.display()
                );
            }
        }
        Ok(secrets)
    }

    /// The secrets of a deployment key: 64 hex characters, from which the sealing key
    /// and the pepper are derived; or the 128 hex characters of a `server.key` file, so
    /// that a store moved from one machine to a shared store keeps its credentials.
    pub fn from_deployment_key(key: &str) -> anyhow::Result<Self> {
        let bytes = hex::decode(key.trim()).ok();
        match bytes.as_deref() {
            Some(master) if master.len() == 32 => {
                let derive = |label: &[u8]| -> [u8; 32] {
                    let mut mac = <Hmac<Sha256>>::new_from_slice(master)
                        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
                    mac.update(label);
                    mac.finalize().into_bytes().into()
                };
                Ok(Self::from_keys(derive(SEAL_LABEL), derive(PEPPER_LABEL)))
            }
            Some(file) if file.len() == 64 => Ok(Self::from_file_bytes(file)),
            _ => bail!(
                "PERMETRIX_SERVER_KEY is not a server key: expected 64 hex characters (or the 128 \
                 of a server.key file)"
            ),
        }
    }

    fn from_keys(seal: [u8; 32], pepper: [u8; 32]) -> Self {
        ServerSecrets {
            seal_key: SecretBox::new(Box::new(seal)),
            pepper: SecretBox::new(Box::new(pepper)),
        }
    }

    /// The keys of a `server.key` file: the sealing key, then the pepper.
    fn from_file_bytes(bytes: &[u8]) -> Self {
        let mut seal = [0u8; 32];
        let mut pepper = [0u8; 32];
        seal.copy_from_slice(&bytes[..32]);
        pepper.copy_from_slice(&bytes[32..]);
        Self::from_keys(seal, pepper)
    }

    /// Whether `other` holds the same keys (compared in constant time).
    fn same_keys(&self, other: &ServerSecrets) -> bool {
        let seal = self
            .seal_key
            .expose_secret()
            .ct_eq(other.seal_key.expose_secret());
        let pepper = self
            .pepper
            .expose_secret()
            .ct_eq(other.pepper.expose_secret());
        (seal & pepper).into()
    }

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
        Ok(Self::from_file_bytes(&bytes))
    }

    /// Keys for tests and tools that need no file.
    pub fn ephemeral() -> Self {
        Self::from_keys(random_bytes(), random_bytes())
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

/// What the keyed digest of an imported key covers: the old server stored the lowercase
/// hex SHA-256 of each whole key string, and nothing else. Prefixed so that it can never
/// equal the digest of a `pmx_…` key's secret.
pub fn legacy_key_material(sha256_hex: &str) -> String {
    format!("legacy-sha256:{sha256_hex}")
}

impl ServerSecrets {
    /// Keyed digest of a key imported from the old license server, from the lowercase
    /// hex SHA-256 of the whole key (what the old file holds).
    pub fn legacy_key_digest(&self, sha256_hex: &str) -> [u8; 32] {
        self.key_digest(&legacy_key_material(sha256_hex))
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

    fn key(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn a_shared_store_needs_a_well_formed_deployment_key_and_never_writes_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = ServerSecrets::load(dir.path(), None, true).err().unwrap();
        assert!(
            missing.to_string().contains("PERMETRIX_SERVER_KEY"),
            "{missing}"
        );
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(63)] {
            assert!(
                ServerSecrets::load(dir.path(), Some(&key(bad)), true).is_err(),
                "{bad}"
            );
        }
        let hex = "0f".repeat(32);
        let a = ServerSecrets::load(dir.path(), Some(&key(&hex)), true).unwrap();
        let b = ServerSecrets::load(dir.path(), Some(&key(&hex)), true).unwrap();
        assert_eq!(a.key_digest("x"), b.key_digest("x"));
        assert!(b.unseal(&a.seal(b"secret")).is_ok());
        assert!(!dir.path().join(KEY_FILE).exists());
    }

    #[test]
    fn with_the_embedded_store_a_deployment_key_must_agree_with_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = ServerSecrets::load(dir.path(), None, false).unwrap();
        let contents = fs::read_to_string(dir.path().join(KEY_FILE)).unwrap();
        let same = ServerSecrets::load(dir.path(), Some(&key(&contents)), false).unwrap();
        assert_eq!(same.key_digest("x"), file.key_digest("x"));
        let other = ServerSecrets::load(dir.path(), Some(&key(&"0f".repeat(32))), false);
        assert!(other.err().unwrap().to_string().contains("disagrees"));
    }
}
