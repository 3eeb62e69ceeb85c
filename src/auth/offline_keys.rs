//! The Ed25519 keys that sign vendors' offline tokens: one key set per vendor, created
//! on the vendor's first offline checkout, rotated on request, published as JWKS.
//!
//! The private half is stored sealed with the server key (like signing secrets) and
//! unsealed once per process into [`OfflineKeys`], so that an offline borrow costs one
//! signature and no decryption. A key stays published until the last token it signed
//! expires: before a checkout is granted, the key's publication is extended durably
//! past the checkout's end, in steps of [`PUBLICATION_SLACK`] so that steady borrowing
//! writes the key record about once a day rather than once per borrow.
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use permetrix_client::offline_token::{self, JwkSet, SigningKey};
use permetrix_storage::records::{Lifecycle, OfflineKeyRecord, OfflineKeySetRecord};
use permetrix_storage::{Platform, StorageError, Timestamp, VendorId};
use secrecy::ExposeSecret;

use super::secrets::{ServerSecrets, random_hex};
use crate::http::error::{ApiError, Result};

/// How far beyond a token's expiry its key's publication is recorded, so that the
/// next borrows find it long enough already.
pub const PUBLICATION_SLACK: Duration = Duration::from_secs(24 * 3600);

/// A vendor's signing key, unsealed.
pub struct ActiveKey {
    /// The key.
    pub key: SigningKey,
    /// Milliseconds until which the key is durably recorded as published.
    published_until: AtomicI64,
}

impl ActiveKey {
    fn new(key: SigningKey, published_until: Option<Timestamp>) -> Self {
        ActiveKey {
            key,
            published_until: AtomicI64::new(published_until.map_or(i64::MIN, Timestamp::millis)),
        }
    }

    fn published_through(&self, until: Timestamp) -> bool {
        self.published_until.load(Ordering::Acquire) >= until.millis()
    }
}

/// What a rotation did.
pub struct Rotated {
    /// The new signing key's id.
    pub kid: String,
    /// The previous signing key's id and until when it stays published (`None`: it
    /// signed no token that is still valid, and is no longer published).
    pub previous: Option<(String, Option<Timestamp>)>,
}

/// The platform records and secrets the keys live in.
pub struct KeyStore<'a> {
    /// Where key sets are stored.
    pub platform: &'a Platform,
    /// Seals and unseals private keys.
    pub secrets: &'a ServerSecrets,
    /// The time now.
    pub now: Timestamp,
}

/// The unsealed signing keys, by vendor.
#[derive(Default)]
pub struct OfflineKeys {
    signing: DashMap<String, Arc<ActiveKey>>,
    /// Serialises the writes of key sets (each is a read-modify-write of the vendor's
    /// one record): creation, rotation, publication.
    writes: tokio::sync::Mutex<()>,
}

fn unavailable(detail: &str) -> ApiError {
    ApiError::Unavailable {
        code: "offline_keys_unavailable",
        detail: detail.into(),
        retry_after: Duration::from_secs(1),
    }
}

impl OfflineKeys {
    /// The key that signs `vendor`'s tokens, published at least until `until`: loaded
    /// (or created, for the vendor's first) and its publication extended as needed.
    pub async fn key_for(
        &self,
        store: &KeyStore<'_>,
        vendor: &VendorId,
        until: Timestamp,
    ) -> Result<Arc<ActiveKey>> {
        if let Some(key) = self.signing.get(vendor.as_str())
            && key.published_through(until)
        {
            return Ok(Arc::clone(&key));
        }
        let _write = self.writes.lock().await;
        let cached = self.signing.get(vendor.as_str()).map(|k| Arc::clone(&k));
        // A write is due anyway: read the stored set, so that a rotation made by
        // another broker of the same database is taken up here too.
        let key = self.load_or_create(store, vendor, cached).await?;
        self.extend(store, vendor, &key, until).await?;
        Ok(key)
    }

    /// Makes sure `key` stays published until `until` (a token it signed expires then).
    /// Nothing is written when it already is.
    pub async fn publish(
        &self,
        store: &KeyStore<'_>,
        vendor: &VendorId,
        key: &ActiveKey,
        until: Timestamp,
    ) -> Result<()> {
        if key.published_through(until) {
            return Ok(());
        }
        let _write = self.writes.lock().await;
        self.extend(store, vendor, key, until).await
    }

    /// Records (with the write lock held) that `key` is published past `until`.
    async fn extend(
        &self,
        store: &KeyStore<'_>,
        vendor: &VendorId,
        key: &ActiveKey,
        until: Timestamp,
    ) -> Result<()> {
        if key.published_through(until) {
            return Ok(());
        }
        let target = until.plus(PUBLICATION_SLACK);
        let Some(durable) =
            store
                .platform
                .publish_offline_key_until(vendor, key.key.kid(), target)?
        else {
            // Rotated out and dropped by another broker: the next borrow loads the
            // stored signing key.
            self.signing
                .remove_if(vendor.as_str(), |_, k| k.key.kid() == key.key.kid());
            return Err(unavailable(
                "the offline token key was rotated meanwhile; retry",
            ));
        };
        durable.wait().await?;
        key.published_until
            .fetch_max(target.millis(), Ordering::AcqRel);
        Ok(())
    }

    /// The vendor's signing key from the store (`cached` if that is still the one), or
    /// a new one if it has none.
    async fn load_or_create(
        &self,
        store: &KeyStore<'_>,
        vendor: &VendorId,
        cached: Option<Arc<ActiveKey>>,
    ) -> Result<Arc<ActiveKey>> {
        if store
            .platform
            .vendor(vendor)?
            .is_none_or(|v| v.lifecycle != Lifecycle::Active)
        {
            return Err(ApiError::Conflict {
                code: "offline_limit_reached",
                detail: format!(
                    "the vendor '{vendor}' of this tool no longer exists; offline checkout is unavailable"
                ),
            });
        }
        let set = match store.platform.offline_keys(vendor)? {
            Some(set) => set,
            None => match self.create(store, vendor).await? {
                Some(set) => set,
                // Another broker stored a first key meanwhile: that one signs.
                None => store
                    .platform
                    .offline_keys(vendor)?
                    .ok_or_else(|| unavailable("the offline token key is being created; retry"))?,
            },
        };
        if let Some(cached) =
            cached.filter(|c| set.signing_key().is_some_and(|k| k.kid == c.key.kid()))
        {
            return Ok(cached);
        }
        let key = Arc::new(unseal(store, &set)?);
        self.signing
            .insert(vendor.as_str().to_owned(), Arc::clone(&key));
        Ok(key)
    }

    /// Stores a first key for `vendor`; `None` if another broker stored one first.
    async fn create(
        &self,
        store: &KeyStore<'_>,
        vendor: &VendorId,
    ) -> Result<Option<OfflineKeySetRecord>> {
        let (record, _) = new_key(store, vendor)?;
        match store
            .platform
            .rotate_offline_key(vendor, record.clone(), store.now)
        {
            Ok(durable) => durable.wait().await?,
            Err(StorageError::AlreadyExists { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(vendor = %vendor, kid = %record.kid, "created the vendor's offline token key");
        Ok(Some(OfflineKeySetRecord {
            vendor_id: vendor.to_string(),
            keys: vec![record],
        }))
    }

    /// Replaces `vendor`'s signing key with a new one; the previous one stays
    /// published until the last token it signed expires.
    pub async fn rotate(&self, store: &KeyStore<'_>, vendor: &VendorId) -> Result<Rotated> {
        let _write = self.writes.lock().await;
        let previous = store
            .platform
            .offline_keys(vendor)?
            .and_then(|set| set.signing_key().cloned());
        let (record, key) = new_key(store, vendor)?;
        store
            .platform
            .rotate_offline_key(vendor, record.clone(), store.now)?
            .wait()
            .await?;
        self.signing.insert(
            vendor.as_str().to_owned(),
            Arc::new(ActiveKey::new(key, None)),
        );
        tracing::info!(vendor = %vendor, kid = %record.kid, "rotated the vendor's offline token key");
        Ok(Rotated {
            kid: record.kid,
            previous: previous.map(|p| {
                let until = p.published_until.filter(|u| *u > store.now);
                (p.kid, until)
            }),
        })
    }

    /// Forgets a vendor's unsealed key (the vendor was deleted).
    pub fn forget(&self, vendor: &str) {
        self.signing.remove(vendor);
    }
}

/// A new key for `vendor`: the record to store (private half sealed) and the key.
fn new_key(store: &KeyStore<'_>, vendor: &VendorId) -> Result<(OfflineKeyRecord, SigningKey)> {
    let generated = offline_token::generate_key().map_err(ApiError::internal)?;
    let kid = format!("{vendor}.{}", random_hex::<8>());
    let key = SigningKey::from_pkcs8(&kid, &generated.pkcs8).map_err(ApiError::internal)?;
    let record = OfflineKeyRecord {
        kid,
        public_key: generated.public_key,
        private_key: Some(store.secrets.seal(&generated.pkcs8)),
        created_at: store.now,
        retired_at: None,
        published_until: None,
    };
    Ok((record, key))
}

/// The signing key of `set`, unsealed.
fn unseal(store: &KeyStore<'_>, set: &OfflineKeySetRecord) -> Result<ActiveKey> {
    let record = set
        .signing_key()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("an offline key set without keys")))?;
    let sealed = record.private_key.as_ref().ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!(
            "the signing offline key has no private half"
        ))
    })?;
    let pkcs8 = store.secrets.unseal(sealed).map_err(ApiError::internal)?;
    let key =
        SigningKey::from_pkcs8(&record.kid, pkcs8.expose_secret()).map_err(ApiError::internal)?;
    Ok(ActiveKey::new(key, record.published_until))
}

/// The published public keys: one live vendor's, or every live vendor's.
pub fn jwks(platform: &Platform, vendor: Option<&VendorId>, now: Timestamp) -> Result<JwkSet> {
    let sets = match vendor {
        Some(v) => platform.offline_keys(v)?.into_iter().collect(),
        None => platform.all_offline_keys()?,
    };
    let mut keys = Vec::new();
    for set in sets {
        let live = VendorId::parse(&set.vendor_id)
            .ok()
            .map(|id| platform.vendor(&id))
            .transpose()?
            .flatten()
            .is_some_and(|v| v.lifecycle == Lifecycle::Active);
        if live {
            keys.extend(
                set.published(now)
                    .map(|k| offline_token::jwk(&k.kid, &k.public_key)),
            );
        }
    }
    Ok(JwkSet { keys })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use permetrix_storage::records::VendorRecord;
    use permetrix_storage::{SledConfig, SledStore};

    use super::*;

    fn hours(h: u64) -> Duration {
        Duration::from_secs(h * 3600)
    }

    /// A platform with one active vendor, and the secrets that seal its keys.
    async fn platform() -> (tempfile::TempDir, Platform, ServerSecrets, VendorId) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(SledConfig::new(dir.path())).unwrap();
        let platform = Platform::new(Arc::new(store));
        let secrets = ServerSecrets::ephemeral();
        let vendor = VendorRecord {
            vendor_id: "vector".into(),
            vendor_name: "Vector".into(),
            contact_email: None,
            api_key_digest: [0; 32],
            signing_secret: secrets.seal(b"signing secret of at least 32 characters"),
            previous_signing_secret: None,
            password_hash: None,
            created_at: Timestamp::from_secs(0),
            lifecycle: Lifecycle::Active,
        };
        platform
            .create_vendor(&vendor)
            .unwrap()
            .wait()
            .await
            .unwrap();
        (dir, platform, secrets, VendorId::parse("vector").unwrap())
    }

    #[tokio::test]
    async fn a_rotation_by_another_broker_is_taken_up_when_a_publication_is_due() {
        let (_dir, platform, secrets, vendor) = platform().await;
        let at = |h| KeyStore {
            platform: &platform,
            secrets: &secrets,
            now: Timestamp::from_secs(0).plus(hours(h)),
        };
        let (here, there) = (OfflineKeys::default(), OfflineKeys::default());
        let first = here
            .key_for(&at(0), &vendor, at(0).now.plus(hours(1)))
            .await
            .unwrap();
        let rotated = there.rotate(&at(0), &vendor).await.unwrap();
        assert_ne!(rotated.kid, first.key.kid());

        // Still published through the slack: this broker signs on with its key...
        let same = here
            .key_for(&at(1), &vendor, at(1).now.plus(hours(1)))
            .await
            .unwrap();
        assert_eq!(same.key.kid(), first.key.kid());
        // ...and once a publication is due, it reads the set and signs with the new key.
        let later = at(1).now.plus(hours(48));
        let new = here.key_for(&at(1), &vendor, later).await.unwrap();
        assert_eq!(new.key.kid(), rotated.kid);
        let published: Vec<_> = jwks(&platform, Some(&vendor), at(1).now)
            .unwrap()
            .keys
            .into_iter()
            .filter_map(|k| k.common.key_id)
            .collect();
        assert_eq!(published, [first.key.kid().to_owned(), rotated.kid]);
    }
}
