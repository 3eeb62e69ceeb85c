//! Verified API keys kept in memory, so that an authenticated request reads nothing
//! from the store.
//!
//! An entry is found by the keyed digest of the presented secret (which the store holds
//! too), so a hit proves the presented key equals the stored one, as the constant-time
//! comparison of a store read does. Every entry carries the store's credentials
//! generation ([`Platform::credentials_generation`]) at the moment its records were
//! read, and counts only while that generation is current: every write of a key, an
//! imported key, a tenant or a vendor moves it on once the write is visible, so a
//! revocation, rotation or soft delete takes effect on the next request without this
//! module knowing which verbs change keys. A read that raced such a write is cached
//! under the generation before it and so never counts. A backend that cannot tell
//! (another process may write the same records) answers `None`: nothing is cached.
//!
//! Revocation and expiry are still checked on every request, from the cached record.
//! The map holds at most `capacity` entries; when it is full it is emptied (keys in
//! use come back on their next request), which keeps memory bounded without an
//! eviction order to maintain.
use std::sync::Arc;

use dashmap::DashMap;
use permetrix_storage::records::ApiKeyRecord;
use permetrix_storage::{Platform, VendorId};

/// What a verified digest stands for.
#[derive(Clone, Debug)]
pub enum CachedKey {
    /// A tenant API key (its own or imported), revoked or not.
    Tenant(Arc<ApiKeyRecord>),
    /// The key of an active vendor.
    Vendor(VendorId),
}

struct Entry {
    generation: u64,
    key: CachedKey,
}

/// Verified API keys by the keyed digest of their secret.
pub struct KeyCache {
    entries: DashMap<[u8; 32], Entry>,
    capacity: usize,
}

impl KeyCache {
    /// Holds at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        KeyCache {
            entries: DashMap::new(),
            capacity,
        }
    }

    /// The generation to read under, to pass to [`KeyCache::insert`] after the read;
    /// `None` when nothing may be cached.
    pub fn generation(platform: &Platform) -> Option<u64> {
        platform.credentials_generation()
    }

    /// The key whose digest is `digest`, if it was verified under the current
    /// generation of `platform`.
    pub fn get(&self, platform: &Platform, digest: &[u8; 32]) -> Option<CachedKey> {
        let current = Self::generation(platform)?;
        let entry = self.entries.get(digest)?;
        (entry.generation == current).then(|| entry.key.clone())
    }

    /// Remembers that `digest` verified to `key` from records read under `generation`
    /// (taken before the read).
    pub fn insert(&self, generation: Option<u64>, digest: [u8; 32], key: CachedKey) {
        let Some(generation) = generation else { return };
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&digest) {
            self.entries.clear();
        }
        self.entries.insert(digest, Entry { generation, key });
    }

    /// Keys held (current or stale).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use permetrix_storage::records::Scope;
    use permetrix_storage::{SledConfig, SledStore, TenantId, Timestamp};

    fn record(key_id: &str, digest: u8) -> ApiKeyRecord {
        ApiKeyRecord {
            key_id: key_id.into(),
            tenant_id: "acme".into(),
            name: "ci".into(),
            scope: Scope::Borrow,
            digest: [digest; 32],
            created_at: Timestamp::from_secs(1),
            revoked_at: None,
            expires_at: None,
        }
    }

    fn tenant_key(found: Option<CachedKey>) -> Option<Arc<ApiKeyRecord>> {
        match found? {
            CachedKey::Tenant(r) => Some(r),
            CachedKey::Vendor(_) => None,
        }
    }

    #[tokio::test]
    async fn an_entry_counts_until_a_credential_write_and_the_map_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(SledConfig::new(dir.path())).unwrap();
        let platform = Platform::new(Arc::new(store));
        let cache = KeyCache::new(2);
        let k1 = record("k1", 1);
        platform.add_api_key(&k1).unwrap().wait().await.unwrap();

        let generation = KeyCache::generation(&platform);
        assert!(generation.is_some(), "the sled store is its only writer");
        cache.insert(
            generation,
            k1.digest,
            CachedKey::Tenant(Arc::new(k1.clone())),
        );
        assert_eq!(
            tenant_key(cache.get(&platform, &k1.digest)).as_deref(),
            Some(&k1)
        );
        assert!(cache.get(&platform, &[9; 32]).is_none());

        // Key usage is no credential: the entry still counts after it is recorded.
        let acme = TenantId::parse("acme").unwrap();
        let used = permetrix_storage::KeyUse {
            tenant: acme.clone(),
            key_id: "k1".into(),
            at: Timestamp::from_secs(5),
        };
        platform.record_key_use(&[used]).unwrap();
        assert!(cache.get(&platform, &k1.digest).is_some());

        // A revocation (any key write) retires every entry read before it.
        platform
            .revoke_api_key(&acme, "k1", Timestamp::from_secs(9))
            .unwrap()
            .unwrap();
        assert!(cache.get(&platform, &k1.digest).is_none());

        // A read that started before a write is cached under the older generation:
        // it never counts.
        let stale = KeyCache::generation(&platform);
        platform.add_api_key(&record("k2", 2)).unwrap();
        cache.insert(stale, k1.digest, CachedKey::Tenant(Arc::new(k1.clone())));
        assert!(cache.get(&platform, &k1.digest).is_none());

        // Bounded: a third key empties the full map first.
        let now = KeyCache::generation(&platform);
        for d in 1..=3u8 {
            cache.insert(now, [d; 32], CachedKey::Tenant(Arc::new(record("k", d))));
        }
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&platform, &[3; 32]).is_some());
    }

    #[test]
    fn nothing_is_cached_without_a_generation() {
        let cache = KeyCache::new(8);
        cache.insert(
            None,
            [1; 32],
            CachedKey::Vendor(VendorId::parse("v").unwrap()),
        );
        assert!(cache.is_empty());
    }
}
