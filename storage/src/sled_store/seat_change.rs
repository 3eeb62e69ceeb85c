//! Seat changes without sled batches.
//!
//! A plain borrow or return writes two records: the lease change and the usage event
//! that describes it. Written as a `sled::Batch` they would be atomic, but
//! `Tree::apply_batch` takes sled's database-wide concurrency-control lock exclusively
//! (every other insert of every tenant waits) and rolls the log buffer twice: it cut
//! durable borrow/return throughput about threefold (BENCHMARKS.md, "seat changes").
//!
//! Instead the pair is written as two ordered inserts: the usage event first, then the
//! lease change. A signed borrow's nonce goes before both: a crash that keeps only the
//! nonce leaves a request that was never acknowledged unable to be replayed, which is
//! what a nonce is for. sled recovers a contiguous prefix of its log (recovery stops at the
//! first tear), and one tenant's appends come from its one actor in order, so after a
//! crash a tenant's history can end in exactly one way that is not whole: its newest
//! usage event without the lease change after it. Neither half was acknowledged (the
//! durability ticket is taken after both), so [`SledStore::roll_back_torn_seat_change`]
//! removes that event when the tenant is loaded.
use crate::keys;
use crate::records::{LeaseRecord, UsageKind, UsageRecord};
use crate::store::TenantMutation;
use crate::{StorageError, TenantId};

use super::SledStore;

/// A plain seat change: its usage event and lease change, and for a signed borrow the
/// nonce written before them.
pub(super) struct SeatChange<'a> {
    nonce: Option<&'a TenantMutation>,
    usage: &'a TenantMutation,
    lease: &'a TenantMutation,
}

/// `mutations` as a [`SeatChange`], if they are one: a [`seat_change_pair`], after a
/// `PutNonce` or not.
pub(super) fn seat_change(mutations: &[TenantMutation]) -> Option<SeatChange<'_>> {
    let (nonce, rest) = match mutations {
        [nonce @ TenantMutation::PutNonce(_), rest @ ..] => (Some(nonce), rest),
        rest => (None, rest),
    };
    let (usage, lease) = seat_change_pair(rest)?;
    Some(SeatChange {
        nonce,
        usage,
        lease,
    })
}

/// The usage event and the lease change of a plain seat change, if `mutations` is
/// exactly that: a borrow (`PutLease`) or a return/expiry (`DeleteLease`) with its
/// usage event for the same borrow. Anything else keeps the atomic batch.
pub(super) fn seat_change_pair(
    mutations: &[TenantMutation],
) -> Option<(&TenantMutation, &TenantMutation)> {
    let [a, b] = mutations else { return None };
    let (usage, lease) = match (a, b) {
        (TenantMutation::AppendUsage(u), l) | (l, TenantMutation::AppendUsage(u)) => (u, l),
        _ => return None,
    };
    let matches = match (usage.kind, lease) {
        (UsageKind::Borrow, TenantMutation::PutLease(l)) => l.id == usage.borrow_id,
        (UsageKind::Return | UsageKind::Expire, TenantMutation::DeleteLease(id)) => {
            *id == usage.borrow_id
        }
        _ => false,
    };
    let usage_mutation = if matches!(a, TenantMutation::AppendUsage(_)) {
        a
    } else {
        b
    };
    matches.then_some((usage_mutation, lease))
}

/// Whether `head` (a tenant's newest usage event) lost the lease change written after
/// it: a borrow whose lease is missing, or a return/expiry whose lease is still there.
fn is_torn(head: &UsageRecord, leases: &[LeaseRecord]) -> bool {
    let lease_present = leases.iter().any(|l| l.id == head.borrow_id);
    match head.kind {
        UsageKind::Borrow => !lease_present,
        UsageKind::Return | UsageKind::Expire => lease_present,
    }
}

/// The order in which to write the records of `mutations` if they are a
/// [`SeatChange`]: nonce (if any), usage event, lease change, as positions in
/// `mutations`. `None`: not a seat change.
pub(super) fn seat_change_order(mutations: &[TenantMutation]) -> Option<[Option<usize>; 3]> {
    let change = seat_change(mutations)?;
    let position = |m: &TenantMutation| mutations.iter().position(|x| std::ptr::eq(x, m));
    Some([
        change.nonce.and_then(position),
        position(change.usage),
        position(change.lease),
    ])
}

impl SledStore {
    /// Removes the tenant's newest usage event if a crash separated it from its lease
    /// change (see the module docs). Returns whether it did. Idempotent; runs before
    /// the tenant's actor writes anything, so nothing can be appended after the event
    /// it removes.
    pub(super) fn roll_back_torn_seat_change(
        &self,
        tenant: &TenantId,
        head: &UsageRecord,
        leases: &[LeaseRecord],
    ) -> Result<bool, StorageError> {
        if !is_torn(head, leases) {
            return Ok(false);
        }
        let _gate = self.write_gate(tenant.as_str().as_bytes());
        // Journaled like any write, so that a crash before the next checkpoint cannot
        // bring the event back under later writes. Durable before any later write of
        // the tenant is: the journal keeps its order.
        let removal = (
            keys::usage(tenant, &head.product_id, head.at, head.seq),
            None,
        );
        drop(self.write_entry(tenant, &[], vec![removal])?);
        tracing::warn!(
            %tenant,
            borrow_id = %head.borrow_id,
            kind = ?head.kind,
            "rolled back a seat change that a crash left half written (it was never acknowledged)"
        );
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_records;
    use crate::{BorrowId, Money, SledConfig, Store, Timestamp};

    fn lease(id: BorrowId) -> LeaseRecord {
        LeaseRecord {
            id,
            ..test_records::lease("ecu")
        }
    }

    fn event(seq: u64, kind: UsageKind, borrow_id: BorrowId) -> TenantMutation {
        TenantMutation::AppendUsage(UsageRecord {
            seq,
            at: Timestamp::from_secs(seq as i64),
            product_id: "ecu".into(),
            kind,
            borrow_id,
            user: "dev1".into(),
            is_overage: false,
            amount: Money::ZERO,
            in_use: 1,
        })
    }

    fn package() -> TenantMutation {
        TenantMutation::PutPackage(test_records::package("ecu", 1, Timestamp::from_secs(1)))
    }

    #[test]
    fn only_a_usage_event_with_its_own_lease_change_is_a_pair() {
        let (a, b) = (BorrowId::random(), BorrowId::random());
        let put = TenantMutation::PutLease(lease(a));
        let borrow = [event(1, UsageKind::Borrow, a), put.clone()];
        assert!(seat_change_pair(&borrow).is_some());
        let ret = [
            TenantMutation::DeleteLease(a),
            event(2, UsageKind::Return, a),
        ];
        let (usage, change) = seat_change_pair(&ret).unwrap();
        assert!(matches!(usage, TenantMutation::AppendUsage(_)));
        assert!(matches!(change, TenantMutation::DeleteLease(_)));
        let nonce = TenantMutation::PutNonce(crate::records::NonceRecord {
            vendor_id: "vector".into(),
            nonce: "n1".into(),
            expires_at: Timestamp::from_secs(300),
        });
        let signed = [nonce.clone(), event(1, UsageKind::Borrow, a), put.clone()];
        assert!(seat_change(&signed).is_some_and(|c| c.nonce.is_some()));
        assert!(seat_change(&borrow).is_some_and(|c| c.nonce.is_none()));
        let nonce_last = [event(1, UsageKind::Borrow, a), put.clone(), nonce];
        assert!(seat_change(&nonce_last).is_none());
        for not_a_pair in [
            vec![event(1, UsageKind::Borrow, b), put.clone()],
            vec![event(1, UsageKind::Return, a), put.clone()],
            vec![event(1, UsageKind::Borrow, a), put.clone(), package()],
            vec![put.clone(), TenantMutation::DeleteLease(a)],
            vec![put],
        ] {
            assert!(seat_change_pair(&not_a_pair).is_none(), "{not_a_pair:?}");
        }
    }

    /// A crash after the first insert of a pair is simulated by appending the usage
    /// event alone: exactly what sled can recover in that case.
    #[tokio::test]
    async fn a_half_written_borrow_or_return_is_rolled_back_on_load_and_whole_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let acme = TenantId::parse("acme").unwrap();
        let (kept, torn_borrow) = (BorrowId::random(), BorrowId::random());
        {
            let store = SledStore::open(SledConfig::new(dir.path())).unwrap();
            store
                .append(&acme, crate::Epoch::SOLE, &[package()])
                .unwrap();
            let whole = [
                event(1, UsageKind::Borrow, kept),
                TenantMutation::PutLease(lease(kept)),
            ];
            store.append(&acme, crate::Epoch::SOLE, &whole).unwrap();
            store
                .append(
                    &acme,
                    crate::Epoch::SOLE,
                    &[event(2, UsageKind::Borrow, torn_borrow)],
                )
                .unwrap()
                .wait()
                .await
                .unwrap();
            store.shutdown().unwrap();
        }
        let store = SledStore::open(SledConfig::new(dir.path())).unwrap();
        let loaded = store.load_tenant(&acme).unwrap();
        assert_eq!(loaded.leases, vec![lease(kept)]);
        assert_eq!(loaded.usage_head.as_ref().map(|h| h.seq), Some(1));
        assert_eq!(
            store
                .usage_before(&acme, "ecu", Timestamp::from_secs(99))
                .unwrap()
                .map(|e| e.seq),
            Some(1)
        );

        // A return whose lease deletion was lost: the lease stays, the event goes.
        store
            .append(
                &acme,
                crate::Epoch::SOLE,
                &[event(2, UsageKind::Return, kept)],
            )
            .unwrap()
            .wait()
            .await
            .unwrap();
        let loaded = store.load_tenant(&acme).unwrap();
        assert_eq!(loaded.leases, vec![lease(kept)]);
        assert_eq!(loaded.usage_head.as_ref().map(|h| h.seq), Some(1));

        // A whole return is left alone.
        let ret = [
            TenantMutation::DeleteLease(kept),
            event(2, UsageKind::Return, kept),
        ];
        store
            .append(&acme, crate::Epoch::SOLE, &ret)
            .unwrap()
            .wait()
            .await
            .unwrap();
        let loaded = store.load_tenant(&acme).unwrap();
        assert!(loaded.leases.is_empty());
        assert_eq!(loaded.usage_head.map(|h| h.seq), Some(2));
    }
}
