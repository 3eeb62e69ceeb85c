//! Tenant API keys, the keys imported from the old license server, and when keys were
//! last used.
use super::{Keyed, Platform, Stored, Written, insert, put, put_at};
use crate::backend::{PlatformKey, Table};
use crate::records::{ApiKeyRecord, KeyUsageRecord, LegacyKeyRecord};
use crate::{Durable, StorageError, TenantId, Timestamp};

impl Stored for ApiKeyRecord {
    const TABLE: Table = Table::ApiKeys;
}

impl Keyed for ApiKeyRecord {
    fn key(&self) -> PlatformKey<'_> {
        PlatformKey::scoped(&self.tenant_id, &self.key_id)
    }
}

impl Stored for KeyUsageRecord {
    const TABLE: Table = Table::KeyUsage;
}

impl Stored for LegacyKeyRecord {
    const TABLE: Table = Table::LegacyKeys;
}

/// A use of a tenant API key, to record with [`Platform::record_key_use`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUse {
    /// The key's tenant.
    pub tenant: TenantId,
    /// The key's id.
    pub key_id: String,
    /// When it was used.
    pub at: Timestamp,
}

impl Platform {
    /// One tenant API key, revoked or not.
    pub fn api_key(
        &self,
        tenant: &TenantId,
        key_id: &str,
    ) -> Result<Option<ApiKeyRecord>, StorageError> {
        self.get(PlatformKey::scoped(tenant.as_str(), key_id))
    }

    /// A tenant's API keys, revoked ones included, in key id order.
    pub fn tenant_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKeyRecord>, StorageError> {
        self.records(Some(tenant.as_str()))
    }

    /// Adds a tenant API key; [`StorageError::AlreadyExists`] if the tenant has a key
    /// with its id.
    pub fn add_api_key(&self, key: &ApiKeyRecord) -> Result<Durable, StorageError> {
        self.apply(&[insert(key)])
    }

    /// Revokes a tenant API key as of `at`; a key revoked before keeps its first
    /// revocation time (and nothing is written). `None` if the tenant has no such key.
    pub fn revoke_api_key(
        &self,
        tenant: &TenantId,
        key_id: &str,
        at: Timestamp,
    ) -> Result<Option<Durable>, StorageError> {
        match self.api_key(tenant, key_id)? {
            Some(key) if key.revoked_at.is_some() => Ok(Some(Durable::done())),
            found => self.replace(found, |key| key.revoked_at = Some(at)),
        }
    }

    /// Replaces a key: adds `new` and revokes `old` as of `at`, in one atomic write, so
    /// that no moment has both or neither. [`StorageError::AlreadyExists`] if the
    /// tenant has a key with the new id.
    pub fn rotate_api_key(
        &self,
        old: &ApiKeyRecord,
        new: &ApiKeyRecord,
        at: Timestamp,
    ) -> Result<Durable, StorageError> {
        let revoked = ApiKeyRecord {
            revoked_at: Some(old.revoked_at.unwrap_or(at)),
            ..old.clone()
        };
        self.apply(&[insert(new), put(&revoked)])
    }

    /// The imported key whose keyed digest is `digest`, if there is one (one read:
    /// the digest is the entry's id).
    pub fn legacy_key(&self, digest: &[u8; 32]) -> Result<Option<LegacyKeyRecord>, StorageError> {
        self.get(PlatformKey::new(&hex::encode(digest)))
    }

    /// When a tenant API key was last used, as last recorded.
    pub fn key_usage(
        &self,
        tenant: &TenantId,
        key_id: &str,
    ) -> Result<Option<KeyUsageRecord>, StorageError> {
        self.get(PlatformKey::scoped(tenant.as_str(), key_id))
    }

    /// Records when keys were last used, in one atomic write. A use no later than the
    /// one recorded is skipped, so the recorded time only moves forward (as long as
    /// one caller records at a time).
    pub fn record_key_use(&self, uses: &[KeyUse]) -> Result<Written, StorageError> {
        let mut records = Vec::with_capacity(uses.len());
        for u in uses {
            let stored = self.key_usage(&u.tenant, &u.key_id)?;
            if stored.is_none_or(|s| s.last_used_at < u.at) {
                records.push((u, KeyUsageRecord { last_used_at: u.at }));
            }
        }
        let writes: Vec<_> = records
            .iter()
            .map(|(u, record)| put_at(PlatformKey::scoped(u.tenant.as_str(), &u.key_id), record))
            .collect();
        self.apply_all(&writes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::platform;
    use super::*;
    use crate::records::Scope;

    fn key(key_id: &str) -> ApiKeyRecord {
        ApiKeyRecord {
            key_id: key_id.into(),
            tenant_id: "acme".into(),
            name: "ci".into(),
            scope: Scope::Borrow,
            digest: [3; 32],
            created_at: Timestamp::from_secs(1),
            revoked_at: None,
            expires_at: Some(Timestamp::from_secs(1_000)),
        }
    }

    #[tokio::test]
    async fn a_key_is_added_once_and_revoked_once() {
        let (_dir, platform) = platform();
        let acme = TenantId::parse("acme").unwrap();
        platform
            .add_api_key(&key("k1"))
            .unwrap()
            .wait()
            .await
            .unwrap();
        let again = platform.add_api_key(&key("k1"));
        assert!(matches!(again, Err(StorageError::AlreadyExists { .. })));
        // The same key id under another tenant is another key.
        let other = ApiKeyRecord {
            tenant_id: "acme-2".into(),
            ..key("k1")
        };
        platform.add_api_key(&other).unwrap();
        platform.add_api_key(&key("k0")).unwrap();
        let ids: Vec<_> = platform.tenant_api_keys(&acme).unwrap();
        let ids: Vec<_> = ids.iter().map(|k| k.key_id.as_str()).collect();
        assert_eq!(ids, ["k0", "k1"]);

        let first = Timestamp::from_secs(5);
        let revoked = platform
            .revoke_api_key(&acme, "k1", first)
            .unwrap()
            .unwrap();
        revoked.wait().await.unwrap();
        let again = platform.revoke_api_key(&acme, "k1", Timestamp::from_secs(9));
        assert!(again.unwrap().unwrap().is_done());
        let stored = platform.api_key(&acme, "k1").unwrap().unwrap();
        assert_eq!(stored.revoked_at, Some(first));
        assert!(
            platform
                .revoke_api_key(&acme, "nope", first)
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn recorded_key_use_only_moves_forward() {
        let (_dir, platform) = platform();
        let acme = TenantId::parse("acme").unwrap();
        let used = |key_id: &str, secs| KeyUse {
            tenant: acme.clone(),
            key_id: key_id.into(),
            at: Timestamp::from_secs(secs),
        };
        let written = platform.record_key_use(&[used("k1", 10), used("k2", 10)]);
        let written = written.unwrap();
        assert_eq!(written.records, 2);
        written.durable.wait().await.unwrap();
        let written = platform
            .record_key_use(&[used("k1", 9), used("k2", 11)])
            .unwrap();
        assert_eq!(written.records, 1);
        let at = |key_id| {
            platform
                .key_usage(&acme, key_id)
                .unwrap()
                .map(|u| u.last_used_at)
        };
        assert_eq!(at("k1"), Some(Timestamp::from_secs(10)));
        assert_eq!(at("k2"), Some(Timestamp::from_secs(11)));
        let nothing = platform.record_key_use(&[used("k1", 10)]).unwrap();
        assert_eq!(nothing.records, 0);
        assert!(nothing.durable.is_done());
    }
}
