//! Unit tests of the commercial rules: restrictions, spend caps, package changes,
//! requests for more seats, and the usage history written by seat changes.
use super::*;
use permetrix_storage::records::{
    PackageRecord, PackageStatus, RequestStatus, UsageKind, UsageRecord,
};
use permetrix_storage::{Money, TenantId, TenantMutation, Timestamp, test_records};

const NOW: Timestamp = Timestamp::from_secs(1_795_749_205); // 2026-11-27

fn package(commit: u32, overage: u32, price_cents: i64) -> PackageRecord {
    let base = test_records::package("ecu", commit, NOW);
    PackageRecord {
        commit_price: Money::from_cents(100_000),
        ..test_records::with_overage(base, overage, Money::from_cents(price_cents))
    }
}

fn tenant(commit: u32, overage: u32, price_cents: i64) -> TenantState {
    let mut t = TenantState::new(TenantId::parse("acme").unwrap());
    t.provision(ProvisionRequest {
        package: package(commit, overage, price_cents),
    })
    .unwrap();
    t
}

fn borrow(t: &mut TenantState, user: &str) -> Result<Grant, DomainError> {
    let req = BorrowRequest::parse("ecu", user, None).unwrap();
    t.borrow(&req, NOW).map(|(g, _)| g)
}

/// A seat count as parsed at the edge.
pub(super) fn seats(n: u32) -> Seats {
    Seats::parse("seats", i64::from(n)).unwrap()
}

fn restrict(total: Change<u32>, max_overage: Change<u32>) -> RestrictionPatch {
    RestrictionPatch {
        total: total.map(seats),
        max_overage: max_overage.map(seats),
    }
}

#[test]
fn restrictions_lower_limits_and_null_clears_them() {
    let mut t = tenant(5, 15, 500);
    let (line, effects) = t
        .restrict("ecu", restrict(Change::Set(12), Change::Set(4)), NOW)
        .unwrap();
    assert_eq!(
        (
            line.vendor_total,
            line.total,
            line.commit_qty,
            line.max_overage
        ),
        (20, 9, 5, 4),
        "the overage restriction caps the total at commit + 4"
    );
    assert_eq!(
        (line.restricted_total, line.restricted_max_overage),
        (Some(12), Some(4))
    );
    assert!(matches!(
        effects.mutations[..],
        [TenantMutation::PutRestriction(_)]
    ));
    // Absent fields stay; null clears.
    let (line, _) = t
        .restrict("ecu", restrict(Change::Keep, Change::Clear), NOW)
        .unwrap();
    assert_eq!((line.total, line.max_overage), (12, 15));
    let (line, _) = t
        .restrict("ecu", restrict(Change::Clear, Change::Keep), NOW)
        .unwrap();
    assert_eq!((line.total, line.restricted_total), (20, None));
}

#[test]
fn restrictions_above_the_vendor_limit_are_refused_and_change_nothing() {
    let mut t = tenant(5, 15, 500);
    for (patch, field, limit) in [
        (restrict(Change::Set(21), Change::Keep), "total", 20),
        (
            restrict(Change::Set(10), Change::Set(16)),
            "max_overage",
            15,
        ),
    ] {
        match t.restrict("ecu", patch, NOW) {
            Err(DomainError::ExceedsVendorLimit {
                field: f, limit: l, ..
            }) => assert_eq!((f, l), (field, limit)),
            other => panic!("expected exceeds_vendor_limit, got {other:?}"),
        }
    }
    assert_eq!(t.budget(NOW)[0].restricted_total, None);
    // Equal to the vendor's limit is allowed.
    assert!(
        t.restrict("ecu", restrict(Change::Set(20), Change::Set(15)), NOW)
            .is_ok()
    );
}

#[test]
fn lowering_below_the_seats_in_use_refuses_new_borrows_and_takes_none_away() {
    let mut t = tenant(2, 8, 500);
    let grants: Vec<_> = (0..5)
        .map(|i| borrow(&mut t, &format!("u{i}")).unwrap())
        .collect();
    let (line, _) = t
        .restrict("ecu", restrict(Change::Set(3), Change::Keep), NOW)
        .unwrap();
    assert_eq!((line.total, line.borrowed), (3, 5));
    assert_eq!(t.leases.len(), 5, "no lease was taken away");
    assert!(matches!(
        borrow(&mut t, "x"),
        Err(DomainError::MaxOverageReached { limit: 3, .. })
    ));
    t.return_lease(grants[0].lease.id, NOW).unwrap();
    t.return_lease(grants[1].lease.id, NOW).unwrap();
    assert!(borrow(&mut t, "x").is_err(), "3 in use, limit 3");
    t.return_lease(grants[2].lease.id, NOW).unwrap();
    assert!(borrow(&mut t, "x").is_ok());
}

#[test]
fn a_vendor_cut_below_the_customer_restriction_lowers_the_active_limit() {
    let mut t = tenant(5, 15, 500);
    t.restrict("ecu", restrict(Change::Set(15), Change::Keep), NOW)
        .unwrap();
    let cut = PackagePatch {
        total: Some(seats(10)),
        ..PackagePatch::default()
    };
    let (p, _) = t.update_package("pkg-ecu", "vector", cut).unwrap();
    assert_eq!((p.total, p.commit_qty, p.max_overage), (10, 5, 5));
    assert_eq!(t.budget(NOW)[0].total, 10);
    let raise = PackagePatch {
        total: Some(seats(30)),
        ..PackagePatch::default()
    };
    t.update_package("pkg-ecu", "vector", raise).unwrap();
    assert_eq!(
        t.budget(NOW)[0].total,
        15,
        "the customer's restriction holds again"
    );
}

#[test]
fn the_spend_cap_refuses_the_charge_that_would_pass_it_and_null_clears_it() {
    let mut t = tenant(1, 10, 500);
    let (line, _) = t
        .protect("ecu", Some(Money::from_cents(1_200)), NOW)
        .unwrap();
    assert_eq!(line.remaining_spend, Some(Money::from_cents(1_200)));
    borrow(&mut t, "commit").unwrap();
    borrow(&mut t, "o1").unwrap();
    borrow(&mut t, "o2").unwrap();
    assert!(matches!(
        borrow(&mut t, "o3"),
        Err(DomainError::SpendCapReached { .. })
    ));
    let line = &t.budget(NOW)[0];
    assert_eq!(
        (
            line.customer_max_spend,
            line.month_to_date_overage_cost,
            line.remaining_spend
        ),
        (
            Some(Money::from_cents(1_200)),
            Money::from_cents(1_000),
            Some(Money::from_cents(200))
        )
    );
    assert_eq!(line.month, "2026-11");
    let (line, _) = t.protect("ecu", None, NOW).unwrap();
    assert_eq!(
        (line.customer_max_spend, line.remaining_spend),
        (None, None)
    );
    assert!(borrow(&mut t, "o3").is_ok());
}

#[test]
fn package_changes_belong_to_the_provisioning_vendor() {
    let mut t = tenant(1, 1, 500);
    let patch = PackagePatch {
        status: Some(PackageStatus::Suspended),
        ..PackagePatch::default()
    };
    assert!(matches!(
        t.update_package("pkg-ecu", "other-vendor", patch.clone()),
        Err(DomainError::UnknownPackage(_))
    ));
    assert!(matches!(
        t.update_package("pkg-nope", "vector", patch),
        Err(DomainError::UnknownPackage(_))
    ));
}

#[test]
fn suspended_and_expired_packages_refuse_borrows_and_leases_run_out() {
    let mut t = tenant(2, 0, 0);
    let held = borrow(&mut t, "u").unwrap();
    let suspend = PackagePatch {
        status: Some(PackageStatus::Suspended),
        ..PackagePatch::default()
    };
    t.update_package("pkg-ecu", "vector", suspend).unwrap();
    assert!(matches!(
        borrow(&mut t, "v"),
        Err(DomainError::PackageInactive { ref why, .. }) if why == "suspended"
    ));
    assert_eq!(t.status(None, NOW).unwrap()[0].available, 0);
    t.return_lease(held.lease.id, NOW).unwrap();

    let window = PackagePatch {
        status: Some(PackageStatus::Active),
        valid_until: Change::Set(NOW),
        ..PackagePatch::default()
    };
    t.update_package("pkg-ecu", "vector", window).unwrap();
    assert!(matches!(
        borrow(&mut t, "v"),
        Err(DomainError::PackageInactive { ref why, .. }) if why == "expired"
    ));
    let later = PackagePatch {
        valid_from: Change::Set(NOW.plus(std::time::Duration::from_secs(60))),
        valid_until: Change::Clear,
        ..PackagePatch::default()
    };
    t.update_package("pkg-ecu", "vector", later).unwrap();
    assert!(matches!(
        borrow(&mut t, "v"),
        Err(DomainError::PackageInactive { ref why, .. }) if why == "not valid yet"
    ));
    let open = PackagePatch {
        valid_from: Change::Clear,
        ..PackagePatch::default()
    };
    t.update_package("pkg-ecu", "vector", open).unwrap();
    assert!(borrow(&mut t, "v").is_ok());
}

#[test]
fn a_revoked_package_is_final_until_the_product_is_provisioned_again() {
    let mut t = tenant(1, 1, 500);
    borrow(&mut t, "u").unwrap();
    let revoke = PackagePatch {
        status: Some(PackageStatus::Revoked),
        ..PackagePatch::default()
    };
    t.update_package("pkg-ecu", "vector", revoke).unwrap();
    let reactivate = PackagePatch {
        status: Some(PackageStatus::Active),
        ..PackagePatch::default()
    };
    assert!(matches!(
        t.update_package("pkg-ecu", "vector", reactivate),
        Err(DomainError::PackageRevoked(_))
    ));
    let mut fresh = package(3, 0, 0);
    fresh.package_id = "pkg-ecu-2".into();
    let (p, effects) = t.provision(ProvisionRequest { package: fresh }).unwrap();
    assert_eq!(p.package_id, "pkg-ecu-2");
    assert!(matches!(
        effects.mutations[..],
        [TenantMutation::PutPackage(_)]
    ));
    let pool = t.pool("ecu").unwrap();
    assert_eq!(
        (pool.borrowed(), pool.limits().total),
        (1, 3),
        "the running lease stays"
    );
    // An active package of the product still refuses a second provisioning.
    assert!(matches!(
        t.provision(ProvisionRequest {
            package: package(1, 0, 0)
        }),
        Err(DomainError::PackageExists(_))
    ));
}

#[test]
fn a_new_overage_price_applies_to_later_borrows_only() {
    let mut t = tenant(0, 5, 500);
    let first = borrow(&mut t, "a").unwrap();
    let reprice = PackagePatch {
        overage_price: Some(Money::from_cents(700)),
        ..PackagePatch::default()
    };
    t.update_package("pkg-ecu", "vector", reprice).unwrap();
    let second = borrow(&mut t, "b").unwrap();
    assert_eq!(first.charge.unwrap().amount, Money::from_cents(500));
    assert_eq!(second.charge.unwrap().amount, Money::from_cents(700));
}

fn more(total: Option<u32>, overage: Option<u32>) -> MoreRequest {
    MoreRequest {
        tool: ToolName::parse("ECU").unwrap(),
        requested_total: total.map(seats),
        requested_overage: overage.map(seats),
        message: Some("release crunch".into()),
    }
}

#[test]
fn a_request_for_more_is_approved_into_the_package_once() {
    let mut t = tenant(5, 15, 500);
    assert!(matches!(
        t.request_more(more(None, None), "acme.1".into(), &[], NOW),
        Err(DomainError::Invalid(_))
    ));
    let (request, effects) = t
        .request_more(more(Some(30), None), "acme.1".into(), &[], NOW)
        .unwrap();
    assert_eq!(request.limits_before, (20, 5, 15));
    assert!(matches!(
        effects.mutations[..],
        [TenantMutation::PutMoreRequest(_)]
    ));
    assert!(matches!(
        t.request_more(
            more(Some(40), None),
            "acme.2".into(),
            std::slice::from_ref(&request),
            NOW
        ),
        Err(DomainError::RequestPending { .. })
    ));
    assert!(matches!(
        t.decide_request(
            request.clone(),
            "other",
            Decision::Reject { note: None },
            NOW
        ),
        Err(DomainError::UnknownRequest(_))
    ));
    let approve = Decision::Approve {
        total: None,
        commit_qty: None,
        max_overage: None,
        note: Some("ok".into()),
    };
    let (decided, effects) = t
        .decide_request(request, "vector", approve.clone(), NOW)
        .unwrap();
    assert_eq!(decided.request.status, RequestStatus::Approved);
    assert_eq!(decided.request.applied, Some((30, 5, 25)), "commit stays");
    assert_eq!(
        effects.mutations.len(),
        2,
        "package and request in one write"
    );
    assert_eq!(t.pool("ecu").unwrap().limits().total, 30);
    assert!(matches!(
        t.decide_request(decided.request, "vector", approve, NOW),
        Err(DomainError::RequestDecided {
            status: "approved",
            ..
        })
    ));
}

#[test]
fn a_rejected_request_changes_nothing_and_the_vendor_may_grant_other_figures() {
    let mut t = tenant(5, 15, 500);
    let (r1, _) = t
        .request_more(more(Some(40), Some(30)), "acme.1".into(), &[], NOW)
        .unwrap();
    let (decided, effects) = t
        .decide_request(
            r1,
            "vector",
            Decision::Reject {
                note: Some("no".into()),
            },
            NOW,
        )
        .unwrap();
    assert_eq!(decided.request.status, RequestStatus::Rejected);
    assert!(decided.package.is_none());
    assert_eq!(effects.mutations.len(), 1);
    assert_eq!(t.pool("ecu").unwrap().limits().total, 20);

    let (r2, _) = t
        .request_more(
            more(Some(40), Some(30)),
            "acme.2".into(),
            &[decided.request],
            NOW,
        )
        .unwrap();
    let counter = Decision::Approve {
        total: Some(seats(25)),
        commit_qty: Some(seats(5)),
        max_overage: None,
        note: None,
    };
    let (decided, _) = t.decide_request(r2, "vector", counter, NOW).unwrap();
    assert_eq!(decided.request.applied, Some((25, 5, 20)));
}

fn usage_events(effects: &Effects) -> Vec<UsageRecord> {
    effects
        .mutations
        .iter()
        .filter_map(|m| match m {
            TenantMutation::AppendUsage(u) => Some(u.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn every_seat_change_writes_one_usage_event_with_the_seats_in_use() {
    let mut t = tenant(1, 2, 500);
    let req = BorrowRequest::parse("ecu", "u", Some(60)).unwrap();
    let (a, ea) = t.borrow(&req, NOW).unwrap();
    let (_, eb) = t.borrow(&req, NOW).unwrap();
    let (_, er) = t.return_lease(a.lease.id, NOW).unwrap();
    let ex = t.expire(NOW.plus(std::time::Duration::from_secs(61)));
    let events: Vec<_> = [ea, eb, er, ex].iter().flat_map(usage_events).collect();
    let summary: Vec<_> = events
        .iter()
        .map(|e| (e.seq, e.kind, e.in_use, e.is_overage, e.amount.cents()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, UsageKind::Borrow, 1, false, 0),
            (2, UsageKind::Borrow, 2, true, 500),
            (3, UsageKind::Return, 1, false, 0),
            (4, UsageKind::Expire, 0, true, 0),
        ]
    );
    assert_eq!(t.usage_head().seq, 4);
}

mod properties;
