//! Idempotency keys: a retried borrow or return with the same `Idempotency-Key`
//! answers the original outcome instead of acting again.
//!
//! A key is remembered only when its request succeeded, in the same atomic write as
//! the change it acknowledges (a lease, a return), so a retry after a crash or a lost
//! response finds either both or neither. Refusals are not remembered: they changed
//! nothing, so retrying one is a new attempt. Keys are kept for [`KEY_RETENTION`] and
//! are scoped to the tenant and the operation (borrow or return).
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use permetrix_storage::records::{IdempotencyRecord, IdempotentOperation, IdempotentOutcome};
use permetrix_storage::{BorrowId, TenantMutation, Timestamp};
use sha2::{Digest, Sha256};

use super::DomainError;
use super::borrow::BorrowRequest;

/// How long a key is remembered.
pub const KEY_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// Expired keys are forgotten in batches: at most this late, so that one timer serves
/// many of them.
const PRUNE_SLACK: Duration = Duration::from_secs(60);

/// A client's `Idempotency-Key`: 1–255 visible ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses a key as sent in the header.
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let ok = !value.is_empty()
            && value.len() <= MAX_KEY_LEN
            && value.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(IdempotencyKey(value.to_owned()))
        } else {
            Err(DomainError::Invalid(format!(
                "Idempotency-Key must be 1-{MAX_KEY_LEN} visible ASCII characters (a UUID is a good choice)"
            )))
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short public reference to the key (the first 12 hex digits of its SHA-256):
    /// lets a client find its own entry in a queue listing without revealing the key,
    /// which would allow replaying its outcome.
    pub fn reference(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A key together with what it was used for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyTicket {
    /// The key.
    pub key: IdempotencyKey,
    /// The operation.
    pub operation: IdempotentOperation,
    /// SHA-256 of the request's meaning.
    pub fingerprint: [u8; 32],
}

fn fingerprint(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().into()
}

impl IdempotencyTicket {
    /// A borrow: tool, user and lease length (or the offline checkout) must match on
    /// retry (the wait may differ).
    pub fn borrow(key: IdempotencyKey, req: &BorrowRequest) -> Self {
        let lease = req.lease_seconds.map(|s| s.get().to_be_bytes().to_vec());
        let mut parts: Vec<&[u8]> = vec![
            b"borrow",
            req.tool.as_str().as_bytes(),
            req.user.as_str().as_bytes(),
            lease.as_deref().unwrap_or(b"default"),
        ];
        // Only offline borrows add parts, so that keys remembered before offline
        // checkout existed still match their retries.
        let hours = req.offline.as_ref().map(|o| o.hours.get().to_be_bytes());
        if let (Some(offline), Some(hours)) = (&req.offline, &hours) {
            parts.extend([b"offline".as_slice(), hours.as_slice()]);
            if let Some(f) = &offline.fingerprint {
                parts.push(f.as_bytes());
            }
        }
        let fingerprint = fingerprint(&parts);
        IdempotencyTicket {
            key,
            operation: IdempotentOperation::Borrow,
            fingerprint,
        }
    }

    /// A return: the borrow id must match on retry.
    pub fn return_of(key: IdempotencyKey, id: BorrowId) -> Self {
        IdempotencyTicket {
            key,
            operation: IdempotentOperation::Return,
            fingerprint: fingerprint(&[b"return", id.as_bytes()]),
        }
    }
}

/// Remembered keys, by key and by age.
#[derive(Clone, Debug, Default)]
pub(crate) struct IdempotencyIndex {
    records: HashMap<(IdempotentOperation, String), IdempotencyRecord>,
    by_age: BTreeSet<(Timestamp, IdempotentOperation, String)>,
}

impl IdempotencyIndex {
    pub(crate) fn insert(&mut self, record: IdempotencyRecord) {
        let k = (record.operation, record.key.clone());
        if let Some(old) = self.records.remove(&k) {
            self.by_age
                .remove(&(old.created_at, old.operation, old.key));
        }
        self.by_age
            .insert((record.created_at, record.operation, record.key.clone()));
        self.records.insert(k, record);
    }

    /// The remembered outcome of `ticket`'s key, if the key was used before (and is
    /// within its retention). A key used with a different request is refused.
    pub(crate) fn outcome(
        &self,
        ticket: &IdempotencyTicket,
        now: Timestamp,
    ) -> Result<Option<IdempotentOutcome>, DomainError> {
        let k = (ticket.operation, ticket.key.as_str().to_owned());
        match self.records.get(&k) {
            Some(r) if r.created_at >= retention_cutoff(now) => {
                if r.fingerprint == ticket.fingerprint {
                    Ok(Some(r.outcome.clone()))
                } else {
                    Err(DomainError::IdempotencyKeyReused)
                }
            }
            _ => Ok(None),
        }
    }

    /// Remembers `outcome` for `ticket`'s key; returns the record to persist with the
    /// change it acknowledges.
    pub(crate) fn remember(
        &mut self,
        ticket: &IdempotencyTicket,
        outcome: IdempotentOutcome,
        now: Timestamp,
    ) -> TenantMutation {
        let record = IdempotencyRecord {
            key: ticket.key.as_str().to_owned(),
            operation: ticket.operation,
            fingerprint: ticket.fingerprint,
            created_at: now,
            outcome,
        };
        self.insert(record.clone());
        TenantMutation::PutIdempotency(record)
    }

    /// Forgets keys older than [`KEY_RETENTION`]; returns the deletions to persist.
    pub(crate) fn forget_old(&mut self, now: Timestamp) -> Vec<TenantMutation> {
        let cutoff = retention_cutoff(now);
        let mut out = Vec::new();
        while let Some((at, op, key)) = self.by_age.first().cloned() {
            if at >= cutoff {
                break;
            }
            self.by_age.pop_first();
            self.records.remove(&(op, key.clone()));
            out.push(TenantMutation::DeleteIdempotency { operation: op, key });
        }
        out
    }

    /// When the oldest key is due to be forgotten (with some slack, so that one timer
    /// forgets a batch).
    pub(crate) fn next_expiry(&self) -> Option<Timestamp> {
        self.by_age
            .first()
            .map(|(at, _, _)| at.plus(KEY_RETENTION).plus(PRUNE_SLACK))
    }

    /// Number of remembered keys.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }
}

fn retention_cutoff(now: Timestamp) -> Timestamp {
    Timestamp::from_millis(
        now.millis()
            .saturating_sub(i64::try_from(KEY_RETENTION.as_millis()).unwrap_or(i64::MAX)),
    )
}
