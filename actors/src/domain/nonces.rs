//! v2 signature nonces a tenant has seen.
//!
//! The edge verifies a signature; the nonce is checked and recorded here, in the
//! tenant's actor, so that "seen" and "recorded" are one step in the tenant's serial
//! order. A granted borrow writes its nonce in the same write as its lease (no write of
//! its own, no extra fsync), so a restart remembers it; a refused borrow changed
//! nothing and its nonce is remembered in memory only. A nonce is kept until its signed
//! timestamp has left the window, then forgotten (and deleted from storage).
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use permetrix_storage::records::NonceRecord;
use permetrix_storage::{TenantMutation, Timestamp};

use super::DomainError;

/// How far a signed timestamp may be from the server's clock (API.md: ±300 s).
pub const SIGNATURE_WINDOW: Duration = Duration::from_secs(300);
/// Most nonces one tenant remembers; beyond, new ones are refused as replays until old
/// ones age out (memory stays bounded under a flood of signed requests).
pub const MAX_NONCES: usize = 100_000;
/// Expired nonces are forgotten in batches: at most this late.
const PRUNE_SLACK: Duration = Duration::from_secs(60);

/// A v2 signature's nonce, verified at the edge.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SignedNonce {
    /// The vendor whose signing secret verified the signature.
    pub vendor: String,
    /// `X-Nonce`.
    pub nonce: String,
    /// `X-Timestamp`, unix seconds.
    pub signed_at: i64,
}

impl SignedNonce {
    /// When a request with this nonce is stale anyway.
    fn expires_at(&self) -> Timestamp {
        Timestamp::from_secs(
            self.signed_at
                .saturating_add(SIGNATURE_WINDOW.as_secs() as i64),
        )
    }
}

/// One remembered nonce: until when, and whether it is in storage.
#[derive(Clone, Copy, Debug)]
struct Seen {
    expires_at: Timestamp,
    stored: bool,
}

/// The nonces of one tenant, by key and by expiry.
#[derive(Clone, Debug, Default)]
pub(crate) struct NonceSet {
    seen: HashMap<(String, String), Seen>,
    by_expiry: BTreeSet<(Timestamp, String, String)>,
}

impl NonceSet {
    /// Loaded at activation: what storage remembers.
    pub(crate) fn load(records: Vec<NonceRecord>) -> Self {
        let mut set = NonceSet::default();
        for r in records {
            set.insert(r.vendor_id, r.nonce, r.expires_at, true);
        }
        set
    }

    fn insert(&mut self, vendor: String, nonce: String, expires_at: Timestamp, stored: bool) {
        self.by_expiry
            .insert((expires_at, vendor.clone(), nonce.clone()));
        self.seen
            .insert((vendor, nonce), Seen { expires_at, stored });
    }

    /// Checks and records `n` at `now`: refused if seen within the window (a replay),
    /// if its window has passed by now, or if the set is full.
    pub(crate) fn claim(&mut self, n: &SignedNonce, now: Timestamp) -> Result<(), DomainError> {
        let expires_at = n.expires_at();
        if expires_at < now {
            return Err(DomainError::StaleSignature);
        }
        let key = (n.vendor.clone(), n.nonce.clone());
        if self.seen.get(&key).is_some_and(|s| s.expires_at >= now) {
            return Err(DomainError::ReplayedNonce);
        }
        // Full: refused until the actor's timer has forgotten expired ones (which also
        // deletes them from storage).
        if self.seen.len() >= MAX_NONCES {
            return Err(DomainError::ReplayedNonce);
        }
        if let Some(old) = self.seen.remove(&key) {
            self.by_expiry
                .remove(&(old.expires_at, key.0.clone(), key.1.clone()));
        }
        self.insert(key.0, key.1, expires_at, false);
        Ok(())
    }

    /// The record that makes a claimed nonce durable, to write with the borrow it
    /// signed.
    pub(crate) fn store(&mut self, n: &SignedNonce) -> TenantMutation {
        let key = (n.vendor.clone(), n.nonce.clone());
        if let Some(seen) = self.seen.get_mut(&key) {
            seen.stored = true;
        }
        TenantMutation::PutNonce(NonceRecord {
            vendor_id: n.vendor.clone(),
            nonce: n.nonce.clone(),
            expires_at: n.expires_at(),
        })
    }

    /// Forgets nonces whose window has passed; returns the deletions to persist.
    pub(crate) fn forget_expired(&mut self, now: Timestamp) -> Vec<TenantMutation> {
        let mut out = Vec::new();
        while let Some((at, vendor, nonce)) = self.by_expiry.first().cloned() {
            if at >= now {
                break;
            }
            self.by_expiry.pop_first();
            let key = (vendor, nonce);
            if let Some(seen) = self.seen.remove(&key)
                && seen.stored
            {
                out.push(TenantMutation::DeleteNonce {
                    vendor_id: key.0,
                    nonce: key.1,
                });
            }
        }
        out
    }

    /// When the oldest nonce is due to be forgotten (with some slack, so that one timer
    /// forgets a batch).
    pub(crate) fn next_expiry(&self) -> Option<Timestamp> {
        self.by_expiry
            .first()
            .map(|(at, _, _)| at.plus(PRUNE_SLACK))
    }

    /// Nonces remembered.
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonce(n: &str, signed_at: i64) -> SignedNonce {
        SignedNonce {
            vendor: "vector".into(),
            nonce: n.into(),
            signed_at,
        }
    }

    const NOW: i64 = 1_795_749_205;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_secs(secs)
    }

    #[test]
    fn a_nonce_is_single_use_within_its_window() {
        let mut set = NonceSet::default();
        let n = nonce("3f1c9a0e5b7d", NOW);
        assert_eq!(set.claim(&n, at(NOW)), Ok(()));
        assert_eq!(set.claim(&n, at(NOW + 1)), Err(DomainError::ReplayedNonce));
        // Another vendor's identical nonce is another nonce.
        let other = SignedNonce {
            vendor: "dspace".into(),
            ..n.clone()
        };
        assert_eq!(set.claim(&other, at(NOW + 1)), Ok(()));
        // Past its window the request is stale, whatever the set holds.
        assert_eq!(
            set.claim(&n, at(NOW + 301)),
            Err(DomainError::StaleSignature)
        );
    }

    #[test]
    fn stored_nonces_survive_a_reload_and_are_deleted_once_expired() {
        let mut set = NonceSet::default();
        let (granted, refused) = (nonce("granted", NOW), nonce("refused", NOW));
        set.claim(&granted, at(NOW)).unwrap();
        set.claim(&refused, at(NOW)).unwrap();
        let TenantMutation::PutNonce(record) = set.store(&granted) else {
            panic!("a nonce record");
        };
        assert_eq!(record.expires_at, at(NOW + 300));
        // A restart knows the stored one.
        let mut reloaded = NonceSet::load(vec![record]);
        assert_eq!(
            reloaded.claim(&granted, at(NOW + 10)),
            Err(DomainError::ReplayedNonce)
        );
        // Once expired, only the stored one needs deleting from storage.
        assert_eq!(set.next_expiry(), Some(at(NOW + 360)));
        assert!(set.forget_expired(at(NOW + 300)).is_empty());
        let deleted = set.forget_expired(at(NOW + 301));
        assert!(matches!(
            deleted.as_slice(),
            [TenantMutation::DeleteNonce { nonce, .. }] if nonce == "granted"
        ));
        assert_eq!(set.len(), 0);
    }

    #[test]
    fn a_full_set_refuses_rather_than_grows() {
        let mut set = NonceSet::default();
        for i in 0..MAX_NONCES {
            set.claim(&nonce(&i.to_string(), NOW), at(NOW)).unwrap();
        }
        assert_eq!(
            set.claim(&nonce("one more", NOW), at(NOW)),
            Err(DomainError::ReplayedNonce)
        );
        // Once the old ones have been forgotten, new ones are taken again.
        assert!(set.forget_expired(at(NOW + 400)).is_empty());
        assert_eq!(
            set.claim(&nonce("one more", NOW + 400), at(NOW + 400)),
            Ok(())
        );
        assert_eq!(set.len(), 1);
    }
}
