//! Unit tests of offline checkout: limits, a seat held until its end, heartbeats that
//! move nothing, overage, early return, reload.
use std::time::Duration;

use super::tests::{NOW, package, replay};
use super::*;
use permetrix_storage::records::PackageRecord;
use permetrix_storage::{TenantId, TenantRecords};

const HOUR: Duration = Duration::from_secs(3_600);

/// A pool of `commit` prepaid seats and `overage` more, allowing offline checkouts of
/// up to `max_hours` hours, `max_seats` at once.
fn tenant(commit: u32, overage: u32, max_hours: u32, max_seats: u32) -> TenantState {
    let mut t = TenantState::new(TenantId::parse("acme").unwrap());
    t.provision(ProvisionRequest {
        package: PackageRecord {
            max_offline_hours: max_hours,
            max_offline_seats: max_seats,
            ..package("ecu", commit, overage, 50_000)
        },
    })
    .unwrap();
    t
}

fn offline(user: &str, hours: i64) -> BorrowRequest {
    BorrowRequest::parse("ecu", user, None)
        .unwrap()
        .checked_out(OfflineCheckout::parse(hours, Some("laptop-7f3a")).unwrap())
        .unwrap()
}

fn online(user: &str) -> BorrowRequest {
    BorrowRequest::parse("ecu", user, None).unwrap()
}

fn refusal(t: &mut TenantState, req: &BorrowRequest) -> String {
    match t.borrow(req, NOW) {
        Err(e @ DomainError::OfflineLimitReached { .. }) => e.to_string(),
        other => panic!("expected offline_limit_reached, got {other:?}"),
    }
}

#[test]
fn an_offline_seat_is_held_until_its_end_and_heartbeats_do_not_move_it() {
    let mut t = tenant(2, 0, 48, 1);
    let (grant, effects) = t.borrow(&offline("ann", 24), NOW).unwrap();
    let end = NOW.plus(24 * HOUR);
    assert!(grant.lease.offline);
    assert_eq!(grant.lease.lease_expires_at, end);
    assert_eq!(grant.lease.product_id, "ecu");
    let stored = effects.mutations.iter().find_map(|m| match m {
        permetrix_storage::TenantMutation::PutLease(l) => Some(l.clone()),
        _ => None,
    });
    let stored = stored.expect("the lease is written");
    assert!(stored.offline);
    assert_eq!(stored.lease_seconds, 24 * 3_600);
    assert_eq!(t.pool("ecu").unwrap().offline_in_use(), 1);

    let (view, effects) = t.heartbeat(grant.lease.id, NOW.plus(HOUR)).unwrap();
    assert_eq!(view.lease_expires_at, end, "a heartbeat does not extend it");
    assert!(view.offline);
    assert!(effects.mutations.is_empty() && effects.events.is_empty());

    assert!(t.expire(NOW.plus(23 * HOUR)).events.is_empty());
    assert_eq!(t.next_expiry(), Some(end));
    let expired = t.expire(end);
    assert_eq!(expired.events.len(), 1);
    assert_eq!(expired.events[0].kind, TenantEventKind::Expire);
    let pool = t.pool("ecu").unwrap();
    assert_eq!((pool.borrowed(), pool.offline_in_use()), (0, 0));
}

#[test]
fn an_early_return_frees_the_seat_and_the_offline_allowance() {
    let mut t = tenant(2, 0, 8, 1);
    let (grant, _) = t.borrow(&offline("ann", 8), NOW).unwrap();
    refusal(&mut t, &offline("bob", 1));
    t.return_lease(grant.lease.id, NOW.plus(HOUR)).unwrap();
    let pool = t.pool("ecu").unwrap();
    assert_eq!((pool.borrowed(), pool.offline_in_use()), (0, 0));
    assert!(t.borrow(&offline("bob", 1), NOW.plus(HOUR)).is_ok());
}

#[test]
fn packages_allow_no_offline_checkout_unless_the_vendor_sets_both_limits() {
    for (hours, seats) in [(0, 0), (24, 0), (0, 3)] {
        let mut t = tenant(5, 0, hours, seats);
        let why = refusal(&mut t, &offline("ann", 1));
        assert!(why.contains("not allowed"), "{why}");
        assert_eq!(t.pool("ecu").unwrap().borrowed(), 0);
    }
}

#[test]
fn offline_limits_refuse_longer_checkouts_and_more_seats_than_allowed() {
    let mut t = tenant(5, 0, 8, 2);
    let why = refusal(&mut t, &offline("ann", 9));
    assert!(why.contains("above the limit of 8 hours"), "{why}");
    t.borrow(&offline("ann", 8), NOW).unwrap();
    t.borrow(&offline("bob", 1), NOW).unwrap();
    let why = refusal(&mut t, &offline("cy", 1));
    assert!(why.contains("all 2 offline seat(s)"), "{why}");
    // Online borrows are bounded by the pool only.
    t.borrow(&online("cy"), NOW).unwrap();
    assert_eq!(t.pool("ecu").unwrap().borrowed(), 3);
    let code = DomainError::OfflineLimitReached {
        tool: "x".into(),
        why: "y".into(),
    }
    .code();
    assert_eq!(code, "offline_limit_reached");
    assert!(!is_queueable(&DomainError::OfflineLimitReached {
        tool: "x".into(),
        why: "y".into(),
    }));
}

#[test]
fn the_pool_bounds_offline_seats_like_any_other() {
    let mut t = tenant(1, 0, 8, 5);
    t.borrow(&online("ann"), NOW).unwrap();
    assert!(matches!(
        t.borrow(&offline("bob", 1), NOW),
        Err(DomainError::NoSeats { .. })
    ));
}

#[test]
fn an_offline_seat_beyond_the_commit_is_overage_and_books_its_charge() {
    let mut t = tenant(1, 1, 8, 1);
    t.borrow(&online("ann"), NOW).unwrap();
    let (grant, _) = t.borrow(&offline("bob", 2), NOW).unwrap();
    assert!(grant.lease.is_overage);
    let charge = grant.charge.expect("an overage offline seat is charged");
    assert_eq!(charge.borrow_id, grant.lease.id);
    assert_eq!(t.status(Some("ecu"), NOW).unwrap()[0].overage, 1);
}

#[test]
fn offline_checkouts_survive_a_reload() {
    let mut t = tenant(3, 0, 8, 1);
    let mut records = TenantRecords {
        packages: t.pools().iter().map(|p| p.package().clone()).collect(),
        ..TenantRecords::default()
    };
    let (grant, effects) = t.borrow(&offline("ann", 4), NOW).unwrap();
    replay(&mut records, &effects);
    let mut reloaded = TenantState::from_records(TenantId::parse("acme").unwrap(), records);
    assert_eq!(reloaded.pool("ecu").unwrap().offline_in_use(), 1);
    refusal(&mut reloaded, &offline("bob", 1));
    let (view, _) = reloaded.heartbeat(grant.lease.id, NOW.plus(HOUR)).unwrap();
    assert_eq!(view.lease_expires_at, NOW.plus(4 * HOUR));
    assert!(reloaded.borrows(None)[0].offline);
}

#[test]
fn offline_input_is_checked_when_the_request_is_parsed() {
    assert_eq!(OfflineHours::parse(1).unwrap().seconds(), 3_600);
    assert_eq!(OfflineHours::parse(8_760).unwrap().get(), MAX_OFFLINE_HOURS);
    for bad in [0, -1, 8_761] {
        assert!(matches!(
            OfflineHours::parse(bad),
            Err(DomainError::Invalid(_))
        ));
    }
    assert_eq!(OfflineHours::parse_limit(0).unwrap().get(), 0);
    assert!(OfflineHours::parse_limit(8_761).is_err());
    assert!(OfflineCheckout::parse(1, Some("")).is_err());
    assert!(OfflineCheckout::parse(1, Some(&"f".repeat(MAX_FINGERPRINT + 1))).is_err());
    let with_lease = BorrowRequest::parse("ecu", "ann", Some(60))
        .unwrap()
        .checked_out(OfflineCheckout::parse(1, None).unwrap());
    assert!(matches!(with_lease, Err(DomainError::Invalid(_))));
}

#[test]
fn a_retry_must_ask_for_the_same_offline_checkout() {
    let key = IdempotencyKey::parse("k").unwrap();
    let ticket = |r: &BorrowRequest| IdempotencyTicket::borrow(key.clone(), r).fingerprint;
    let two = ticket(&offline("ann", 2));
    assert_eq!(two, ticket(&offline("ann", 2)));
    assert_ne!(two, ticket(&offline("ann", 3)));
    assert_ne!(two, ticket(&online("ann")));
    let other_machine = BorrowRequest::parse("ecu", "ann", None)
        .unwrap()
        .checked_out(OfflineCheckout::parse(2, Some("desktop")).unwrap())
        .unwrap();
    assert_ne!(two, ticket(&other_machine));
}
