//! `last_used_at` of tenant API keys, without a durable write per request.
//!
//! Every successful key verification updates an in-memory entry (one sharded-map write,
//! no allocation once the key has an entry). [`KeyUsage::flush`] records the entries in
//! one batch: periodically ([`PERSIST_EVERY`]) and at shutdown. A crash loses at most one interval of `last_used_at` precision, never a
//! key. Listings merge the pending value with the stored one, so they are exact.
//!
//! The map holds one entry per key used since the last flush, at most `capacity`;
//! beyond that, further keys are not tracked until the next flush.
use std::time::Duration;

use dashmap::DashMap;
use permetrix_storage::{KeyUse, Platform, StorageError, TenantId, Timestamp};

/// How often pending usage is written.
pub const PERSIST_EVERY: Duration = Duration::from_secs(60);

/// Pending `last_used_at` updates, keyed by the key's stored digest.
pub struct KeyUsage {
    pending: DashMap<[u8; 32], KeyUse>,
    capacity: usize,
    /// One flush at a time, so that the stored value only moves forward.
    flushing: tokio::sync::Mutex<()>,
}

impl KeyUsage {
    /// Tracks at most `capacity` keys between flushes.
    pub fn new(capacity: usize) -> Self {
        KeyUsage {
            pending: DashMap::new(),
            capacity,
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    /// Notes that the key with stored digest `digest` was used at `now`.
    pub fn touch(&self, digest: &[u8; 32], tenant: &TenantId, key_id: &str, now: Timestamp) {
        if let Some(mut p) = self.pending.get_mut(digest) {
            if p.at < now {
                p.at = now;
            }
            return;
        }
        if self.pending.len() >= self.capacity {
            return;
        }
        self.pending.insert(
            *digest,
            KeyUse {
                tenant: tenant.clone(),
                key_id: key_id.to_owned(),
                at: now,
            },
        );
    }

    /// Keys with usage not yet written.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The latest use of a key: pending or stored.
    pub fn last_used(
        &self,
        platform: &Platform,
        tenant: &TenantId,
        key_id: &str,
        digest: &[u8; 32],
    ) -> Result<Option<Timestamp>, StorageError> {
        let stored = platform.key_usage(tenant, key_id)?.map(|u| u.last_used_at);
        let pending = self.pending.get(digest).map(|p| p.at);
        Ok(stored.max(pending))
    }

    /// Writes every pending update in one durable batch; returns how many keys.
    pub async fn flush(&self, platform: &Platform) -> Result<usize, StorageError> {
        let _one_at_a_time = self.flushing.lock().await;
        let digests: Vec<[u8; 32]> = self.pending.iter().map(|e| *e.key()).collect();
        let uses: Vec<KeyUse> = digests
            .iter()
            .filter_map(|digest| self.pending.remove(digest).map(|(_, u)| u))
            .collect();
        let written = platform.record_key_use(&uses)?;
        written.durable.wait().await?;
        Ok(written.records)
    }
}
