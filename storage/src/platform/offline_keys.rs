//! The keys that sign vendors' offline tokens: one record per vendor, holding the
//! signing key and the rotated-out keys that are still published.
use super::{Keyed, Platform, Stored, insert, put};
use crate::backend::{PlatformKey, Table};
use crate::records::{OfflineKeyRecord, OfflineKeySetRecord};
use crate::{Durable, StorageError, Timestamp, VendorId};

impl Stored for OfflineKeySetRecord {
    const TABLE: Table = Table::OfflineKeys;
}

impl Keyed for OfflineKeySetRecord {
    fn key(&self) -> PlatformKey<'_> {
        PlatformKey::new(&self.vendor_id)
    }
}

impl OfflineKeySetRecord {
    /// The key that signs now (the newest).
    pub fn signing_key(&self) -> Option<&OfflineKeyRecord> {
        self.keys.last()
    }

    /// The keys a verifier needs at `now`: the signing key, and each rotated-out key
    /// until the last token it signed has expired.
    pub fn published(&self, now: Timestamp) -> impl Iterator<Item = &OfflineKeyRecord> {
        self.keys
            .iter()
            .filter(move |k| k.retired_at.is_none() || k.published_until.is_some_and(|u| u > now))
    }
}

impl Platform {
    /// A vendor's offline token keys, if it has any.
    pub fn offline_keys(
        &self,
        vendor: &VendorId,
    ) -> Result<Option<OfflineKeySetRecord>, StorageError> {
        self.get(PlatformKey::new(vendor.as_str()))
    }

    /// Every vendor's offline token keys, in vendor id order.
    pub fn all_offline_keys(&self) -> Result<Vec<OfflineKeySetRecord>, StorageError> {
        self.records(None)
    }

    /// Makes `key` the vendor's signing key. The previous signing key is rotated out
    /// (its private half dropped, published until its last token expires); rotated-out
    /// keys whose tokens have all expired by `at` are removed. A vendor's first key is
    /// inserted: [`StorageError::AlreadyExists`] if another one was created meanwhile.
    pub fn rotate_offline_key(
        &self,
        vendor: &VendorId,
        key: OfflineKeyRecord,
        at: Timestamp,
    ) -> Result<Durable, StorageError> {
        let Some(mut set) = self.offline_keys(vendor)? else {
            let set = OfflineKeySetRecord {
                vendor_id: vendor.to_string(),
                keys: vec![key],
            };
            return self.apply(&[insert(&set)]);
        };
        for old in &mut set.keys {
            if old.retired_at.is_none() {
                old.retired_at = Some(at);
                old.private_key = None;
            }
        }
        set.keys
            .retain(|k| k.published_until.is_some_and(|u| u > at));
        set.keys.push(key);
        self.apply(&[put(&set)])
    }

    /// Records that a token signed with key `kid` of `vendor` expires at `until`: the
    /// key stays published at least until then. Never moves the date back. `None` if
    /// the vendor has no such key.
    pub fn publish_offline_key_until(
        &self,
        vendor: &VendorId,
        kid: &str,
        until: Timestamp,
    ) -> Result<Option<Durable>, StorageError> {
        let found = self
            .offline_keys(vendor)?
            .filter(|set| set.keys.iter().any(|k| k.kid == kid));
        self.replace(found, |set| {
            for k in set.keys.iter_mut().filter(|k| k.kid == kid) {
                k.published_until = k.published_until.max(Some(until));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::platform;
    use super::*;
    use crate::records::SealedSecret;

    fn key(kid: &str, at: i64) -> OfflineKeyRecord {
        OfflineKeyRecord {
            kid: kid.into(),
            public_key: [7; 32],
            private_key: Some(SealedSecret {
                nonce: vec![1; 24],
                ciphertext: vec![2; 64],
            }),
            created_at: Timestamp::from_secs(at),
            retired_at: None,
            published_until: None,
        }
    }

    fn kids<'a>(keys: impl Iterator<Item = &'a OfflineKeyRecord>) -> Vec<&'a str> {
        keys.map(|k| k.kid.as_str()).collect()
    }

    #[tokio::test]
    async fn rotation_keeps_a_key_published_until_its_last_token_expires() {
        let (_dir, platform) = platform();
        let vector = VendorId::parse("vector").unwrap();
        assert_eq!(platform.offline_keys(&vector).unwrap(), None);
        platform
            .rotate_offline_key(&vector, key("k1", 10), Timestamp::from_secs(10))
            .unwrap()
            .wait()
            .await
            .unwrap();

        let until = |secs| Timestamp::from_secs(secs);
        platform
            .publish_offline_key_until(&vector, "k1", until(500))
            .unwrap()
            .unwrap();
        platform
            .publish_offline_key_until(&vector, "k1", until(400))
            .unwrap()
            .unwrap();
        assert!(
            platform
                .publish_offline_key_until(&vector, "nope", until(1))
                .unwrap()
                .is_none()
        );
        platform
            .rotate_offline_key(&vector, key("k2", 100), until(100))
            .unwrap();
        let set = platform.offline_keys(&vector).unwrap().unwrap();
        assert_eq!(set.signing_key().unwrap().kid, "k2");
        let old = &set.keys[0];
        assert_eq!(old.retired_at, Some(until(100)));
        assert_eq!(old.published_until, Some(until(500)), "never moves back");
        assert_eq!(old.private_key, None, "a retired key signs nothing");
        assert_eq!(kids(set.published(until(499))), ["k1", "k2"]);
        assert_eq!(kids(set.published(until(500))), ["k2"]);

        // k2 signed nothing: the next rotation drops it at once, and k1 once expired.
        platform
            .rotate_offline_key(&vector, key("k3", 600), until(600))
            .unwrap();
        let set = platform.offline_keys(&vector).unwrap().unwrap();
        assert_eq!(kids(set.keys.iter()), ["k3"]);
        assert_eq!(platform.all_offline_keys().unwrap(), [set]);
    }
}
