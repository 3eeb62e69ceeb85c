//! Unit and property tests of the rules.
use super::*;
use permetrix_storage::records::{PackageRecord, PackageStatus, RestrictionRecord};
use permetrix_storage::test_records;
use permetrix_storage::{Money, TenantId, TenantMutation, TenantRecords, Timestamp};
use proptest::prelude::*;

pub(super) const NOW: Timestamp = Timestamp::from_secs(1_795_749_205); // 2026-11-27

/// The seed of every property test of the rules, unless `PROPTEST_RNG_SEED` is set: CI
/// runs the same cases every time, so a failure there reproduces anywhere. For a fresh
/// sample locally: `PROPTEST_RNG_SEED=$RANDOM$RANDOM cargo test -p permetrix-actors`.
pub(super) const PROPTEST_SEED: u64 = 0x5EED_0017;

/// `cases` cases from [`PROPTEST_SEED`]. A failing case is saved (shrunk) to
/// `actors/proptest-regressions/domain/<test file>.txt`, which is replayed first on
/// every run: commit it with the fix.
pub(super) fn proptest_config(cases: u32) -> ProptestConfig {
    use proptest::test_runner::{FileFailurePersistence, RngSeed};
    // `default()` reads the PROPTEST_* environment variables.
    let config = ProptestConfig::default();
    ProptestConfig {
        cases,
        rng_seed: match config.rng_seed {
            RngSeed::Random => RngSeed::Fixed(PROPTEST_SEED),
            chosen => chosen,
        },
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        ..config
    }
}

pub(super) fn package(product: &str, commit: u32, overage: u32, price_cents: i64) -> PackageRecord {
    let base = test_records::package(product, commit, NOW);
    PackageRecord {
        product_name: format!("{product} tool"),
        commit_price: Money::from_cents(100_000),
        ..test_records::with_overage(base, overage, Money::from_cents(price_cents))
    }
}

pub(super) fn tenant_with(commit: u32, overage: u32) -> TenantState {
    let mut t = TenantState::new(TenantId::parse("acme").unwrap());
    t.provision(ProvisionRequest {
        package: package("ecu", commit, overage, 50_000),
    })
    .unwrap();
    t
}

pub(super) fn req(user: &str) -> BorrowRequest {
    BorrowRequest::parse("ecu", user, None).unwrap()
}

/// A lease length as parsed at the edge.
pub(super) fn lease(secs: u32) -> Option<LeaseSeconds> {
    Some(LeaseSeconds::parse("lease_seconds", secs).unwrap())
}

#[test]
fn seats_up_to_commit_are_prepaid_and_book_nothing() {
    let mut t = tenant_with(2, 1);
    for _ in 0..2 {
        let (grant, effects) = t.borrow(&req("u"), NOW).unwrap();
        assert!(!grant.lease.is_overage);
        assert!(grant.charge.is_none());
        assert!(
            !effects
                .mutations
                .iter()
                .any(|m| matches!(m, TenantMutation::AppendCharge(_)))
        );
    }
}

#[test]
fn the_borrow_at_the_commit_boundary_is_overage_and_books_one_charge() {
    let mut t = tenant_with(2, 2);
    t.borrow(&req("u"), NOW).unwrap();
    t.borrow(&req("u"), NOW).unwrap();
    let (grant, effects) = t.borrow(&req("u"), NOW).unwrap();
    assert!(grant.lease.is_overage);
    let charge = grant.charge.unwrap();
    assert_eq!(charge.amount, Money::from_cents(50_000));
    assert_eq!(charge.seq, 1);
    let charges = effects
        .mutations
        .iter()
        .filter(|m| matches!(m, TenantMutation::AppendCharge(_)))
        .count();
    assert_eq!(charges, 1);
    let status = &t.status(Some("ecu"), NOW).unwrap()[0];
    assert_eq!(
        (status.borrowed, status.in_commit, status.overage),
        (3, 2, 1)
    );
    assert_eq!(status.current_overage_cost, Money::from_cents(50_000));
    assert_eq!(status.total_cost, Money::from_cents(150_000));
}

#[test]
fn overage_cap_refuses_with_max_overage_reached() {
    let mut t = tenant_with(1, 1);
    t.borrow(&req("u"), NOW).unwrap();
    t.borrow(&req("u"), NOW).unwrap();
    assert!(matches!(
        t.borrow(&req("u"), NOW),
        Err(DomainError::MaxOverageReached {
            limit: 2,
            max_overage: 1,
            ..
        })
    ));
}

#[test]
fn a_pool_without_overage_refuses_with_no_seats_at_total() {
    let mut t = tenant_with(2, 0);
    t.borrow(&req("u"), NOW).unwrap();
    t.borrow(&req("u"), NOW).unwrap();
    assert!(matches!(
        t.borrow(&req("u"), NOW),
        Err(DomainError::NoSeats { limit: 2, .. })
    ));
}

#[test]
fn charges_stay_after_return_and_returned_seats_are_reusable() {
    let mut t = tenant_with(0, 1);
    let (grant, _) = t.borrow(&req("u"), NOW).unwrap();
    assert!(t.borrow(&req("u"), NOW).is_err());
    let (returned, effects) = t.return_lease(grant.lease.id, NOW).unwrap();
    assert_eq!(returned.lease.tool, "ecu tool");
    assert!(matches!(
        effects.mutations[..],
        [
            TenantMutation::DeleteLease(_),
            TenantMutation::AppendUsage(_)
        ]
    ));
    let (again, _) = t.borrow(&req("u"), NOW).unwrap();
    assert_eq!(again.charge.unwrap().seq, 2);
    let status = &t.status(Some("ecu"), NOW).unwrap()[0];
    assert_eq!(status.current_overage_cost, Money::from_cents(100_000));
    assert!(matches!(
        t.return_lease(grant.lease.id, NOW),
        Err(DomainError::UnknownBorrow)
    ));
}

#[test]
fn tools_match_by_name_or_product_id() {
    let mut t = tenant_with(1, 0);
    let by_name = BorrowRequest {
        tool: ToolName::parse("ecu tool").unwrap(),
        ..req("u")
    };
    assert_eq!(t.borrow(&by_name, NOW).unwrap().0.lease.tool, "ecu tool");
    assert!(matches!(
        t.borrow(
            &BorrowRequest {
                tool: ToolName::parse("nope").unwrap(),
                ..req("u")
            },
            NOW
        ),
        Err(DomainError::UnknownTool(_))
    ));
}

#[test]
fn customer_restrictions_lower_the_active_limit() {
    let mut t = tenant_with(5, 5);
    let mut records = TenantRecords {
        packages: vec![package("ecu", 5, 5, 100)],
        ..TenantRecords::default()
    };
    records.restrictions.push(RestrictionRecord {
        product_id: "ecu".into(),
        total: Some(6),
        max_overage: Some(3),
        ..RestrictionRecord::default()
    });
    t = TenantState::from_records(t.tenant().clone(), records);
    let limits = t.pool("ecu").unwrap().limits();
    assert_eq!((limits.total, limits.commit, limits.max_overage), (6, 5, 3));
    for _ in 0..6 {
        t.borrow(&req("u"), NOW).unwrap();
    }
    assert!(matches!(
        t.borrow(&req("u"), NOW),
        Err(DomainError::MaxOverageReached { limit: 6, .. })
    ));
}

#[test]
fn spend_cap_refuses_the_charge_that_would_exceed_it() {
    let records = TenantRecords {
        packages: vec![package("ecu", 0, 10, 40_000)],
        restrictions: vec![RestrictionRecord {
            product_id: "ecu".into(),
            max_spend: Some(Money::from_cents(100_000)),
            ..RestrictionRecord::default()
        }],
        ..TenantRecords::default()
    };
    let mut t = TenantState::from_records(TenantId::parse("acme").unwrap(), records);
    t.borrow(&req("u"), NOW).unwrap();
    t.borrow(&req("u"), NOW).unwrap();
    assert!(matches!(
        t.borrow(&req("u"), NOW),
        Err(DomainError::SpendCapReached { .. })
    ));
    // Next month the cap starts over.
    let next_month = NOW.plus(std::time::Duration::from_secs(40 * 86_400));
    assert!(t.borrow(&req("u"), next_month).is_ok());
}

#[test]
fn per_user_limit_counts_only_that_users_seats() {
    let records = TenantRecords {
        packages: vec![package("ecu", 10, 0, 0)],
        restrictions: vec![RestrictionRecord {
            product_id: "ecu".into(),
            max_per_user: Some(1),
            ..RestrictionRecord::default()
        }],
        ..TenantRecords::default()
    };
    let mut t = TenantState::from_records(TenantId::parse("acme").unwrap(), records);
    let (g, _) = t.borrow(&req("alice"), NOW).unwrap();
    assert!(matches!(
        t.borrow(&req("alice"), NOW),
        Err(DomainError::UserLimitReached { max: 1, .. })
    ));
    t.borrow(&req("bob"), NOW).unwrap();
    t.return_lease(g.lease.id, NOW).unwrap();
    t.borrow(&req("alice"), NOW).unwrap();
}

#[test]
fn inactive_packages_refuse_borrows() {
    let mut p = package("ecu", 5, 0, 0);
    p.status = PackageStatus::Suspended;
    let mut t = TenantState::from_records(
        TenantId::parse("acme").unwrap(),
        TenantRecords {
            packages: vec![p],
            ..TenantRecords::default()
        },
    );
    assert!(matches!(
        t.borrow(&req("u"), NOW),
        Err(DomainError::PackageInactive { .. })
    ));
}

#[test]
fn provisioning_checks_the_total_and_duplicates() {
    let mut t = tenant_with(1, 1);
    let mut bad = package("cad", 2, 2, 0);
    bad.total = 5;
    assert!(matches!(
        t.provision(ProvisionRequest { package: bad }),
        Err(DomainError::Invalid(_))
    ));
    assert!(matches!(
        t.provision(ProvisionRequest {
            package: package("ecu", 1, 1, 0)
        }),
        Err(DomainError::PackageExists(_))
    ));
}

#[test]
fn leases_expire_and_heartbeats_extend_them() {
    let mut t = tenant_with(1, 0);
    let r = BorrowRequest {
        lease_seconds: lease(60),
        ..req("u")
    };
    let (g, _) = t.borrow(&r, NOW).unwrap();
    let later = NOW.plus(std::time::Duration::from_secs(50));
    let (view, _) = t.heartbeat(g.lease.id, later).unwrap();
    assert_eq!(
        view.lease_expires_at,
        later.plus(std::time::Duration::from_secs(60))
    );
    assert!(
        t.expire(NOW.plus(std::time::Duration::from_secs(100)))
            .mutations
            .is_empty()
    );
    let effects = t.expire(NOW.plus(std::time::Duration::from_secs(110)));
    assert_eq!(effects.events[0].kind, TenantEventKind::Expire);
    assert_eq!(t.pool("ecu").unwrap().borrowed(), 0);
}

#[test]
fn lease_length_is_range_checked_when_the_request_is_parsed() {
    for bad in [0, 29, 86_401] {
        assert!(matches!(
            BorrowRequest::parse("ecu", "u", Some(bad)),
            Err(DomainError::Invalid(_))
        ));
    }
}

#[test]
fn without_a_lease_length_the_tenants_default_applies() {
    let mut t = tenant_with(1, 0);
    let (settings, _) = t.update_settings(SettingsPatch {
        default_lease_seconds: lease(120),
        ..SettingsPatch::default()
    });
    assert_eq!(settings.default_lease_seconds, 120);
    let (g, _) = t.borrow(&req("u"), NOW).unwrap();
    assert_eq!(
        g.lease.lease_expires_at,
        NOW.plus(std::time::Duration::from_secs(120))
    );
}

/// Replays the mutations a state emitted into records, as the store would.
pub(super) fn replay(records: &mut TenantRecords, effects: &Effects) {
    for m in &effects.mutations {
        match m {
            TenantMutation::PutPackage(p) => records.packages.push(p.clone()),
            TenantMutation::PutLease(l) => {
                records.leases.retain(|x| x.id != l.id);
                records.leases.push(l.clone());
            }
            TenantMutation::DeleteLease(id) => records.leases.retain(|x| x.id != *id),
            TenantMutation::AppendCharge(c) => records.ledger_head = Some(c.clone()),
            TenantMutation::PutSettings(s) => records.settings = Some(s.clone()),
            TenantMutation::PutRestriction(r) => {
                records
                    .restrictions
                    .retain(|x| x.product_id != r.product_id);
                records.restrictions.push(r.clone());
            }
            TenantMutation::PutSpend(s) => {
                records
                    .spend
                    .retain(|x| !(x.product_id == s.product_id && x.month == s.month));
                records.spend.push(s.clone());
            }
            TenantMutation::PutIdempotency(r) => {
                records
                    .idempotency
                    .retain(|x| !(x.operation == r.operation && x.key == r.key));
                records.idempotency.push(r.clone());
            }
            TenantMutation::DeleteIdempotency { operation, key } => records
                .idempotency
                .retain(|x| !(x.operation == *operation && x.key == *key)),
            TenantMutation::AppendUsage(u) => records.usage_head = Some(u.clone()),
            TenantMutation::PutMoreRequest(_) => {}
            TenantMutation::AppendOutbox(e) => {
                records.outbox_oldest.get_or_insert(e.seq);
                records.outbox_head = Some(e.clone());
            }
            // Deletions go from the oldest up.
            TenantMutation::DeleteOutbox(seq) => records.outbox_oldest = Some(seq + 1),
            TenantMutation::PutNonce(n) => {
                records
                    .nonces
                    .retain(|x| !(x.vendor_id == n.vendor_id && x.nonce == n.nonce));
                records.nonces.push(n.clone());
            }
            TenantMutation::DeleteNonce { vendor_id, nonce } => records
                .nonces
                .retain(|x| !(x.vendor_id == *vendor_id && x.nonce == *nonce)),
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Borrow(u8),
    Return(usize),
}

proptest! {
    #![proptest_config(proptest_config(256))]

    /// Whatever the sequence: never more seats than the limit, overage exactly the seats
    /// above the commit, one charge per overage borrow, and a state rebuilt from the
    /// persisted records equals the live one.
    #[test]
    fn seat_and_ledger_invariants_hold(
        commit in 0u32..5,
        overage in 0u32..5,
        ops in proptest::collection::vec(
            prop_oneof![(0u8..3).prop_map(Op::Borrow), (0usize..16).prop_map(Op::Return)],
            0..60,
        ),
    ) {
        let mut t = tenant_with(commit, overage);
        let mut records = TenantRecords {
            packages: vec![t.pool("ecu").unwrap().package().clone()],
            ..TenantRecords::default()
        };
        let mut held = Vec::new();
        let mut overage_borrows = 0u64;
        for op in ops {
            match op {
                Op::Borrow(user) => {
                    let before = t.pool("ecu").unwrap().borrowed();
                    match t.borrow(&req(&format!("u{user}")), NOW) {
                        Ok((g, e)) => {
                            prop_assert_eq!(g.lease.is_overage, before >= commit);
                            prop_assert_eq!(g.charge.is_some(), g.lease.is_overage);
                            if g.lease.is_overage { overage_borrows += 1; }
                            held.push(g.lease.id);
                            replay(&mut records, &e);
                        }
                        Err(_) => prop_assert_eq!(before, commit + overage),
                    }
                }
                Op::Return(i) if !held.is_empty() => {
                    let id = held.remove(i % held.len());
                    let (_, e) = t.return_lease(id, NOW).unwrap();
                    replay(&mut records, &e);
                }
                Op::Return(_) => {}
            }
            let s = &t.status(Some("ecu"), NOW).unwrap()[0];
            prop_assert!(s.borrowed <= commit + overage);
            prop_assert_eq!(s.borrowed as usize, held.len());
            prop_assert_eq!(s.overage, s.borrowed.saturating_sub(commit));
            prop_assert_eq!(s.in_commit + s.overage, s.borrowed);
            prop_assert_eq!(t.ledger_head().seq, overage_borrows);
        }
        let rebuilt = TenantState::from_records(t.tenant().clone(), records);
        prop_assert_eq!(rebuilt.status(None, NOW).unwrap(), t.status(None, NOW).unwrap());
        prop_assert_eq!(rebuilt.borrows(None), t.borrows(None));
        prop_assert_eq!(rebuilt.ledger_head(), t.ledger_head());
        prop_assert_eq!(rebuilt.usage_head(), t.usage_head());
    }
}
