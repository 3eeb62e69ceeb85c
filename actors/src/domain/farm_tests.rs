//! Unit and property tests of leases, the wait queue, idempotency keys and per-user
//! limits.
use std::time::Duration;

use permetrix_storage::records::IdempotentOutcome;
use permetrix_storage::{TenantMutation, TenantRecords, Timestamp};
use proptest::prelude::*;

use super::tests::{NOW, lease, package, proptest_config, replay, req, tenant_with};
use super::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn wait(n: u32) -> WaitSeconds {
    WaitSeconds::parse(n).unwrap()
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::parse(k).unwrap()
}

#[test]
fn expiry_frees_exactly_the_due_leases_in_one_pass() {
    let mut t = tenant_with(3, 0);
    let short = BorrowRequest {
        lease_seconds: lease(30),
        ..req("a")
    };
    let long = BorrowRequest {
        lease_seconds: lease(600),
        ..req("b")
    };
    let (s, _) = t.borrow(&short, NOW).unwrap();
    let (l, _) = t.borrow(&long, NOW).unwrap();
    assert_eq!(t.next_expiry(), Some(NOW.plus(secs(30))));
    assert!(t.expire(NOW.plus(secs(29))).events.is_empty());
    let e = t.expire(NOW.plus(secs(30)));
    assert_eq!(e.events.len(), 1);
    assert_eq!(e.events[0].kind, TenantEventKind::Expire);
    assert_eq!(e.events[0].id, Some(s.lease.id));
    // The lease goes, and the usage history records the expiry in the same batch.
    assert!(matches!(
        e.mutations[..],
        [TenantMutation::DeleteLease(id), TenantMutation::AppendUsage(ref u)]
            if id == s.lease.id && u.kind == permetrix_storage::records::UsageKind::Expire
    ));
    assert_eq!(t.next_expiry(), Some(NOW.plus(secs(600))));
    assert_eq!((t.lease_count(), t.indexed_leases()), (1, 1));
    assert_eq!(t.pool("ecu").unwrap().borrowed(), 1);
    // The long one is untouched until its own time.
    assert_eq!(t.borrows(None)[0].id, l.lease.id);
}

#[test]
fn heartbeats_move_the_expiry_and_expired_leases_answer_lease_expired() {
    let mut t = tenant_with(1, 0);
    let r = BorrowRequest {
        lease_seconds: lease(60),
        ..req("a")
    };
    let (g, _) = t.borrow(&r, NOW).unwrap();
    let (view, _) = t.heartbeat(g.lease.id, NOW.plus(secs(50))).unwrap();
    assert_eq!(view.lease_expires_at, NOW.plus(secs(110)));
    assert_eq!(t.next_expiry(), Some(NOW.plus(secs(110))));
    // The old deadline no longer expires it.
    assert!(t.expire(NOW.plus(secs(100))).events.is_empty());
    assert_eq!(t.expire(NOW.plus(secs(110))).events.len(), 1);
    let gone = DomainError::LeaseExpired {
        expired_at: NOW.plus(secs(110)),
    };
    assert_eq!(
        t.heartbeat(g.lease.id, NOW.plus(secs(111))).unwrap_err(),
        gone
    );
    assert_eq!(
        t.return_lease(g.lease.id, NOW.plus(secs(111))).unwrap_err(),
        gone
    );
    // A day later it is forgotten and unknown like any other id.
    let day = NOW.plus(secs(110) + EXPIRED_MEMORY + secs(1));
    t.expire(day);
    assert_eq!(
        t.return_lease(g.lease.id, day).unwrap_err(),
        DomainError::UnknownBorrow
    );
}

#[test]
fn the_queue_is_fifo_and_a_freed_seat_goes_to_its_head() {
    let mut t = tenant_with(1, 0);
    let (held, _) = t.borrow(&req("holder"), NOW).unwrap();
    let mut ids = Vec::new();
    for (i, user) in ["first", "second", "third"].iter().enumerate() {
        let refusal = t.borrow(&req(user), NOW).unwrap_err();
        let q = t
            .enqueue(req(user), refusal, wait(60), None, NOW.plus(secs(i as u64)))
            .unwrap();
        assert_eq!(q.position, i + 1);
        ids.push(q.id);
    }
    assert_eq!(t.status(Some("ecu"), NOW).unwrap()[0].waiting, 3);
    let (_, entries) = t.queue_of("ecu").unwrap();
    let users: Vec<_> = entries
        .iter()
        .map(|e| (e.position, e.user.as_str()))
        .collect();
    assert_eq!(users, [(1, "first"), (2, "second"), (3, "third")]);
    // Nothing free: nobody is served.
    assert!(t.serve_waiters(NOW, |_| true).is_empty());
    t.return_lease(held.lease.id, NOW).unwrap();
    let served = t.serve_waiters(NOW, |_| true);
    assert_eq!(served.len(), 1);
    assert_eq!(served[0].0, ids[0]);
    assert!(matches!(&served[0].1, Served::Granted(g, _) if g.lease.user == "first"));
    assert_eq!(t.status(Some("ecu"), NOW).unwrap()[0].waiting, 2);
}

#[test]
fn departed_waiters_are_skipped_and_not_counted() {
    let mut t = tenant_with(1, 0);
    let (held, _) = t.borrow(&req("holder"), NOW).unwrap();
    let refusal = t.borrow(&req("gone"), NOW).unwrap_err();
    let gone = t
        .enqueue(req("gone"), refusal, wait(60), None, NOW)
        .unwrap();
    let refusal = t.borrow(&req("stays"), NOW).unwrap_err();
    let stays = t
        .enqueue(req("stays"), refusal, wait(60), None, NOW)
        .unwrap();
    t.retain_waiters(|id| id != gone.id);
    assert_eq!(t.status(Some("ecu"), NOW).unwrap()[0].waiting, 1);
    t.return_lease(held.lease.id, NOW).unwrap();
    let served = t.serve_waiters(NOW, |_| true);
    assert!(matches!(&served[..], [(id, Served::Granted(..))] if *id == stays.id));
}

#[test]
fn waiters_time_out_with_their_original_reason_and_only_seat_refusals_queue() {
    let mut t = tenant_with(1, 0);
    t.borrow(&req("holder"), NOW).unwrap();
    let refusal = t.borrow(&req("w"), NOW).unwrap_err();
    assert!(matches!(refusal, DomainError::NoSeats { .. }));
    let q = t
        .enqueue(req("w"), refusal.clone(), wait(10), None, NOW)
        .unwrap();
    assert_eq!(t.next_waiter_deadline(), Some(NOW.plus(secs(10))));
    assert!(t.time_out_waiters(NOW.plus(secs(9))).is_empty());
    let out = t.time_out_waiters(NOW.plus(secs(10)));
    assert!(matches!(&out[..], [(id, r, _)] if *id == q.id && *r == refusal));
    assert!(!t.has_waiters());
    // Not curable by a freed seat: answered at once.
    let unknown = DomainError::UnknownTool("x".into());
    assert_eq!(
        t.enqueue(req("w"), unknown.clone(), wait(10), None, NOW),
        Err(unknown)
    );
    // No wait asked: no queueing.
    assert!(
        t.enqueue(req("w"), refusal, WaitSeconds::ZERO, None, NOW)
            .is_err()
    );
}

#[test]
fn a_waiter_that_hits_the_user_limit_is_refused_and_the_next_one_served() {
    let mut t = tenant_with(2, 0);
    t.set_max_per_user("ecu", Some(1)).unwrap();
    let (a1, _) = t.borrow(&req("alice"), NOW).unwrap();
    let (b1, _) = t.borrow(&req("bob"), NOW).unwrap();
    let ask = BorrowRequest { ..req("bob") };
    let qb = t
        .enqueue(
            ask.clone(),
            DomainError::NoSeats {
                tool: "ecu tool".into(),
                limit: 2,
            },
            wait(60),
            None,
            NOW,
        )
        .unwrap();
    let refusal = t.borrow(&req("carol"), NOW).unwrap_err();
    let qc = t
        .enqueue(req("carol"), refusal, wait(60), None, NOW)
        .unwrap();
    t.return_lease(a1.lease.id, NOW).unwrap();
    let served = t.serve_waiters(NOW, |_| true);
    assert!(
        matches!(&served[0], (id, Served::Refused(DomainError::UserLimitReached { .. })) if *id == qb.id)
    );
    assert!(
        matches!(&served[1], (id, Served::Granted(g, _)) if *id == qc.id && g.lease.user == "carol")
    );
    let _ = b1;
}

#[test]
fn an_idempotent_borrow_is_remembered_in_the_same_write_and_replayed() {
    let mut t = tenant_with(2, 0);
    let ticket = IdempotencyTicket::borrow(key("k-1"), &req("a"));
    let (g, e) = t.borrow_idempotent(&req("a"), Some(&ticket), NOW).unwrap();
    assert!(
        e.mutations
            .iter()
            .any(|m| matches!(m, TenantMutation::PutLease(_)))
    );
    assert!(
        e.mutations
            .iter()
            .any(|m| matches!(m, TenantMutation::PutIdempotency(_)))
    );
    match t.idempotent_outcome(&ticket, NOW.plus(secs(5))).unwrap() {
        Some(IdempotentOutcome::Borrowed { id, .. }) => assert_eq!(id, g.lease.id),
        other => panic!("{other:?}"),
    }
    // Same key, other request: refused.
    let other = IdempotencyTicket::borrow(key("k-1"), &req("b"));
    assert_eq!(
        t.idempotent_outcome(&other, NOW),
        Err(DomainError::IdempotencyKeyReused)
    );
    // The same key on a return is another namespace.
    let ret = IdempotencyTicket::return_of(key("k-1"), g.lease.id);
    assert_eq!(t.idempotent_outcome(&ret, NOW), Ok(None));
    // After 24 h the key is forgotten (and the deletion persisted).
    let later = NOW.plus(KEY_RETENTION + secs(1));
    assert_eq!(t.idempotent_outcome(&ticket, later), Ok(None));
    assert!(
        t.next_key_expiry()
            .is_some_and(|at| at <= later.plus(secs(60)))
    );
    let forgotten = t.forget_old_keys(later);
    assert!(
        matches!(&forgotten[..], [TenantMutation::DeleteIdempotency { key, .. }] if key == "k-1")
    );
    assert_eq!(t.remembered_keys(), 0);
}

#[test]
fn remembered_keys_survive_a_rebuild_from_records() {
    let mut t = tenant_with(2, 0);
    let mut records = TenantRecords {
        packages: vec![package("ecu", 2, 0, 0)],
        ..TenantRecords::default()
    };
    let ticket = IdempotencyTicket::borrow(key("retry-me"), &req("a"));
    let (g, e) = t.borrow_idempotent(&req("a"), Some(&ticket), NOW).unwrap();
    replay(&mut records, &e);
    let rebuilt = TenantState::from_records(t.tenant().clone(), records);
    assert!(matches!(
        rebuilt.idempotent_outcome(&ticket, NOW).unwrap(),
        Some(IdempotentOutcome::Borrowed { id, .. }) if id == g.lease.id
    ));
    assert_eq!(rebuilt.next_expiry(), t.next_expiry());
}

#[test]
fn idempotency_keys_are_checked_and_references_do_not_reveal_them() {
    assert!(IdempotencyKey::parse("").is_err());
    assert!(IdempotencyKey::parse("has space").is_err());
    assert!(IdempotencyKey::parse(&"x".repeat(MAX_KEY_LEN + 1)).is_err());
    let k = key("0b6f3a0e-5d7c-4bd5-9a64-1f1c0e9a3f10");
    let r = k.reference();
    assert_eq!(r.len(), 12);
    assert!(!k.as_str().contains(&r));
}

#[test]
fn per_user_limits_are_set_cleared_and_persisted_as_restrictions() {
    let mut t = tenant_with(5, 0);
    assert!(t.set_max_per_user("ecu", Some(0)).is_err());
    assert!(matches!(
        t.set_max_per_user("nope", Some(1)),
        Err(DomainError::UnknownTool(_))
    ));
    let (limit, e) = t.set_max_per_user("ecu", Some(1)).unwrap();
    assert_eq!(limit.max_per_user, Some(1));
    assert!(
        matches!(&e.mutations[..], [TenantMutation::PutRestriction(r)] if r.max_per_user == Some(1))
    );
    t.borrow(&req("a"), NOW).unwrap();
    assert!(matches!(
        t.borrow(&req("a"), NOW),
        Err(DomainError::UserLimitReached { .. })
    ));
    t.set_max_per_user("ecu", None).unwrap();
    t.borrow(&req("a"), NOW).unwrap();
    assert_eq!(t.user_limits()[0].max_per_user, None);
}

#[derive(Clone, Debug)]
enum Op {
    Borrow(u8, u16),
    Return(usize),
    Heartbeat(usize),
    Advance(u16),
}

proptest! {
    #![proptest_config(proptest_config(256))]

    /// Whatever the sequence of borrows, returns, heartbeats and expiries: the expiry
    /// index holds exactly the active leases, no lease outlives its expiry after an
    /// expiry pass, and the persisted records rebuild the same state.
    #[test]
    fn the_expiry_index_matches_the_leases(
        ops in proptest::collection::vec(
            prop_oneof![
                (0u8..3, 30u16..300).prop_map(|(u, l)| Op::Borrow(u, l)),
                (0usize..16).prop_map(Op::Return),
                (0usize..16).prop_map(Op::Heartbeat),
                (0u16..200).prop_map(Op::Advance),
            ],
            0..80,
        ),
    ) {
        let mut t = tenant_with(3, 2);
        let mut records = TenantRecords {
            packages: vec![t.pool("ecu").unwrap().package().clone()],
            ..TenantRecords::default()
        };
        let mut now = NOW;
        let mut held = Vec::new();
        for op in ops {
            match op {
                Op::Borrow(u, l) => {
                    let r = BorrowRequest { lease_seconds: lease(u32::from(l)), ..req(&format!("u{u}")) };
                    if let Ok((g, e)) = t.borrow(&r, now) {
                        held.push(g.lease.id);
                        replay(&mut records, &e);
                    }
                }
                Op::Return(i) if !held.is_empty() => {
                    let id = held[i % held.len()];
                    if let Ok((_, e)) = t.return_lease(id, now) {
                        replay(&mut records, &e);
                    }
                }
                Op::Heartbeat(i) if !held.is_empty() => {
                    let id = held[i % held.len()];
                    if let Ok((_, e)) = t.heartbeat(id, now) {
                        replay(&mut records, &e);
                    }
                }
                Op::Advance(s) => {
                    now = now.plus(secs(u64::from(s)));
                    let e = t.expire(now);
                    replay(&mut records, &e);
                    prop_assert!(t.next_expiry().is_none_or(|at| at > now));
                }
                _ => {}
            }
            prop_assert_eq!(t.indexed_leases(), t.lease_count());
            let earliest = t.borrows(None).iter().map(|l| l.lease_expires_at).min();
            prop_assert_eq!(t.next_expiry(), earliest);
        }
        let rebuilt = TenantState::from_records(t.tenant().clone(), records);
        prop_assert_eq!(rebuilt.borrows(None), t.borrows(None));
        prop_assert_eq!(rebuilt.next_expiry(), t.next_expiry());
        let _: Timestamp = now;
    }
}
