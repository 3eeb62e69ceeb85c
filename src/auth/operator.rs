//! The operator token.
//!
//! Stored only as an argon2id hash. Verifying argon2 on every admin request would be
//! slow, so once a token has verified (or was given in `PERMETRIX_ADMIN_TOKEN`), its
//! SHA-256 is kept in memory and later requests compare that in constant time.
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use permetrix_storage::Platform;
use permetrix_storage::records::AdminTokenRecord;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use super::password;
use crate::auth::secrets::random_hex;

/// Verifies the operator token.
pub struct OperatorToken {
    hash: Option<String>,
    verified: ArcSwapOption<[u8; 32]>,
    /// Bounds concurrent argon2 work from unauthenticated callers.
    argon_slots: Arc<Semaphore>,
}

/// How the token was set up at start.
pub enum TokenSetup {
    /// Taken from `PERMETRIX_ADMIN_TOKEN`.
    FromEnv,
    /// Generated now; shown once.
    Generated(SecretString),
    /// Hash found in the store.
    Stored,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl OperatorToken {
    /// Sets up the token: from the environment, from the store, or newly generated.
    pub async fn init(
        platform: &Platform,
        from_env: Option<SecretString>,
    ) -> anyhow::Result<(Self, TokenSetup)> {
        let stored = platform.admin_token()?;
        let (token, setup) = match (from_env, stored) {
            (Some(token), stored) => {
                let plain = token.expose_secret().to_owned();
                let same = stored.as_ref().is_some_and(|s| {
                    let (h, p) = (s.hash.clone(), plain.clone());
                    password::verify(&p, Some(&h))
                });
                if !same {
                    let hash = hash_blocking(plain.clone()).await?;
                    let rec = AdminTokenRecord {
                        hash,
                        set_at: permetrix_storage::Timestamp::now(),
                    };
                    platform.set_admin_token(&rec)?.wait().await?;
                }
                (Some(plain), TokenSetup::FromEnv)
            }
            (None, Some(_)) => (None, TokenSetup::Stored),
            (None, None) => {
                let plain = format!("pmx_o_{}", random_hex::<32>());
                let hash = hash_blocking(plain.clone()).await?;
                let rec = AdminTokenRecord {
                    hash,
                    set_at: permetrix_storage::Timestamp::now(),
                };
                platform.set_admin_token(&rec)?.wait().await?;
                (
                    Some(plain.clone()),
                    TokenSetup::Generated(SecretString::from(plain)),
                )
            }
        };
        let hash = platform.admin_token()?.map(|r| r.hash);
        let op = OperatorToken {
            hash,
            verified: ArcSwapOption::from(token.map(|t| Arc::new(digest(&t)))),
            argon_slots: Arc::new(Semaphore::new(2)),
        };
        Ok((op, setup))
    }

    /// Whether `token` is the operator token. Fast once the token has been seen.
    pub async fn verify(&self, token: &str) -> bool {
        let d = digest(token);
        if let Some(known) = self.verified.load_full() {
            return bool::from(known.ct_eq(&d));
        }
        let Some(hash) = self.hash.clone() else {
            return false;
        };
        let Ok(_slot) = self.argon_slots.acquire().await else {
            return false;
        };
        let t = token.to_owned();
        let ok = actix_web::web::block(move || password::verify(&t, Some(&hash)))
            .await
            .unwrap_or(false);
        if ok {
            self.verified.store(Some(Arc::new(d)));
        }
        ok
    }

    /// Whether `token` is known to be the operator token without any slow work.
    pub fn verify_cached(&self, token: &str) -> Option<bool> {
        self.verified
            .load_full()
            .map(|known| bool::from(known.ct_eq(&digest(token))))
    }
}

/// `PERMETRIX_METRICS_TOKEN`: a bearer token that reads `/metrics` and nothing else,
/// so that a scraper need not hold the operator token. Kept as its SHA-256, compared in
/// constant time.
pub struct MetricsToken([u8; 32]);

impl MetricsToken {
    /// The token as configured; an empty one is no token.
    pub fn new(token: &str) -> Option<Self> {
        (!token.is_empty()).then(|| MetricsToken(digest(token)))
    }

    /// Whether `token` is the metrics token.
    pub fn matches(&self, token: &str) -> bool {
        bool::from(self.0.ct_eq(&digest(token)))
    }
}

async fn hash_blocking(plain: String) -> anyhow::Result<String> {
    actix_web::web::block(move || password::hash(&plain))
        .await
        .map_err(|e| anyhow::anyhow!("argon2 worker failed: {e}"))?
}
