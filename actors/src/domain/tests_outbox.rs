//! Unit tests of the webhook outbox: which operations cause which events, how they are
//! numbered, written and deleted, and how refusals are coalesced.
use super::tests::{NOW, package, req, tenant_with};
use super::*;
use permetrix_storage::records::OutboxRecord;
use permetrix_storage::{Money, TenantId, TenantMutation, TenantRecords};

fn all_wanted() -> OutboxPolicy {
    OutboxPolicy {
        wanted: EventMask::of(WebhookEventKind::ALL),
        delivered_through: 0,
        capacity: 1_000,
    }
}

fn appended(effects: &Effects) -> Vec<&OutboxRecord> {
    effects
        .mutations
        .iter()
        .filter_map(|m| match m {
            TenantMutation::AppendOutbox(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn deleted(effects: &Effects) -> Vec<u64> {
    effects
        .mutations
        .iter()
        .filter_map(|m| match m {
            TenantMutation::DeleteOutbox(seq) => Some(*seq),
            _ => None,
        })
        .collect()
}

fn kinds(effects: &Effects) -> Vec<WebhookEventKind> {
    effects.webhooks.iter().map(WebhookEvent::kind).collect()
}

/// Borrows one seat and stages its events under `policy`.
fn borrow_staged(t: &mut TenantState, user: &str, policy: &OutboxPolicy) -> (Effects, Staged) {
    let (_, mut effects) = t.borrow(&req(user), NOW).unwrap();
    let staged = t.stage_outbox(&mut effects, policy, NOW);
    (effects, staged)
}

#[test]
fn an_overage_borrow_that_takes_the_last_seat_causes_a_charge_and_an_exhausted_pool() {
    let mut t = tenant_with(1, 1);
    let (_, commit) = t.borrow(&req("a"), NOW).unwrap();
    assert!(
        commit.webhooks.is_empty(),
        "a seat within the commit is no event"
    );
    let (grant, last) = t.borrow(&req("b"), NOW).unwrap();
    assert_eq!(
        kinds(&last),
        [
            WebhookEventKind::OverageCharged,
            WebhookEventKind::PoolExhausted
        ]
    );
    let charge = grant.charge.unwrap();
    let data: serde_json::Value = serde_json::from_str(&last.webhooks[0].data_json()).unwrap();
    assert_eq!(data["charge_id"], charge.id.as_str());
    assert_eq!(data["amount"], 500.0);
    assert_eq!(data["amount_cents"], 50_000);
    assert_eq!(data["user"], "b");
    assert_eq!(data["borrow_id"], grant.lease.id.to_string());
    let pool: serde_json::Value = serde_json::from_str(&last.webhooks[1].data_json()).unwrap();
    assert_eq!(pool["borrowed"], 2);
    assert_eq!(pool["total"], 2);
}

#[test]
fn events_are_numbered_in_order_and_only_wanted_types_are_stored() {
    let mut t = tenant_with(0, 3);
    let (first, staged) = borrow_staged(&mut t, "a", &all_wanted());
    assert_eq!(staged.head, Some(1));
    let records = appended(&first);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].kind, "overage.charged");
    assert!(records[0].id.starts_with("evt_") && records[0].id.len() == 36);
    // The outbox records go in the same write as the lease.
    assert!(
        first
            .mutations
            .iter()
            .any(|m| matches!(m, TenantMutation::PutLease(_)))
    );
    let only_pools = OutboxPolicy {
        wanted: EventMask::of([WebhookEventKind::PoolExhausted]),
        ..all_wanted()
    };
    let (unwanted, staged) = borrow_staged(&mut t, "b", &only_pools);
    assert_eq!(staged.head, None, "an unwanted charge is not stored");
    assert!(appended(&unwanted).is_empty());
    let (last, staged) = borrow_staged(&mut t, "c", &only_pools);
    assert_eq!(staged.head, Some(2), "and takes no number");
    assert_eq!(appended(&last)[0].kind, "pool.exhausted");
    assert_eq!(t.outbox_head(), 2);
}

#[test]
fn delivered_events_are_deleted_with_the_next_write_except_the_newest() {
    let mut t = tenant_with(0, 10);
    for user in ["a", "b", "c"] {
        borrow_staged(&mut t, user, &all_wanted());
    }
    let delivered = OutboxPolicy {
        delivered_through: 3,
        ..all_wanted()
    };
    let (fourth, staged) = borrow_staged(&mut t, "d", &delivered);
    assert_eq!(
        staged,
        Staged {
            head: Some(4),
            dropped: 0
        }
    );
    assert_eq!(deleted(&fourth), vec![1, 2, 3]);
    // Everything delivered: the newest stays, so the sequence survives a restart.
    let all = OutboxPolicy {
        delivered_through: u64::MAX,
        ..all_wanted()
    };
    let (fifth, _) = borrow_staged(&mut t, "e", &all);
    assert_eq!(deleted(&fifth), vec![4]);
}

#[test]
fn a_full_outbox_drops_its_oldest_events_and_counts_the_undelivered_ones() {
    let mut t = tenant_with(0, 10);
    let small = OutboxPolicy {
        capacity: 3,
        delivered_through: 1,
        ..all_wanted()
    };
    for user in ["a", "b", "c"] {
        let (e, staged) = borrow_staged(&mut t, user, &small);
        assert_eq!(staged.dropped, 0);
        // Event 1 is delivered; it goes once a newer one exists.
        assert_eq!(deleted(&e), if user == "b" { vec![1] } else { vec![] });
    }
    let (e, staged) = borrow_staged(&mut t, "d", &small);
    assert_eq!(deleted(&e), Vec::<u64>::new(), "2, 3, 4 fit");
    assert_eq!(staged.dropped, 0);
    let (e, staged) = borrow_staged(&mut t, "e", &small);
    assert_eq!(deleted(&e), vec![2]);
    assert_eq!(staged.dropped, 1);
}

#[test]
fn refusals_are_one_event_per_tool_reason_and_second() {
    let mut t = tenant_with(1, 0);
    t.borrow(&req("a"), NOW).unwrap();
    let refusal = t.check_borrow(&req("b"), NOW).unwrap_err();
    for (i, user) in ["b", "c", "b", "d"].into_iter().enumerate() {
        t.note_denial(
            &req(user),
            &refusal,
            NOW.plus(std::time::Duration::from_millis(i as u64)),
        );
    }
    // Not a commercial refusal, or a tool nobody provisioned: no event.
    t.note_denial(&req("e"), &DomainError::IdempotencyKeyReused, NOW);
    let unknown = BorrowRequest::parse("nothing", "e", None).unwrap();
    t.note_denial(&unknown, &DomainError::UnknownTool("nothing".into()), NOW);
    let closes = NOW.plus(DENIAL_WINDOW);
    assert_eq!(t.next_due(), Some(closes));

    let mut early = Effects::default();
    assert!(!t.has_outbox_events(&early, NOW));
    assert_eq!(t.stage_outbox(&mut early, &all_wanted(), NOW).head, None);
    let mut due = Effects::default();
    assert!(t.has_outbox_events(&due, closes));
    let staged = t.stage_outbox(&mut due, &all_wanted(), closes);
    assert_eq!(staged.head, Some(1));
    let record = appended(&due)[0];
    assert_eq!(record.kind, "borrow.denied");
    let data: serde_json::Value = serde_json::from_str(&record.data).unwrap();
    assert_eq!(data["reason"], "no_seats");
    assert_eq!(data["count"], 4);
    assert_eq!(data["users"], serde_json::json!(["b", "c", "d"]));
    assert_eq!(data["product_id"], "ecu");
    assert_eq!(t.next_due(), t.next_expiry());
}

#[test]
fn a_spend_cap_is_reached_by_the_charge_after_which_no_other_fits() {
    let mut t = tenant_with(0, 10);
    // 500.00 per charge; room for two.
    t.protect("ecu", Some(Money::from_cents(120_000)), NOW)
        .unwrap();
    let (_, first) = t.borrow(&req("a"), NOW).unwrap();
    assert_eq!(kinds(&first), [WebhookEventKind::OverageCharged]);
    let (_, second) = t.borrow(&req("b"), NOW).unwrap();
    assert_eq!(
        kinds(&second),
        [
            WebhookEventKind::OverageCharged,
            WebhookEventKind::SpendCapReached
        ]
    );
    let data: serde_json::Value = serde_json::from_str(&second.webhooks[1].data_json()).unwrap();
    assert_eq!(data["month"], "2026-11");
    assert_eq!(data["max_spend"], 1_200.0);
    assert_eq!(data["month_to_date_overage_cost"], 1_000.0);
    // Lowering a cap that is already reached says nothing new; raising and lowering
    // below the spend again does.
    let (_, lower) = t
        .protect("ecu", Some(Money::from_cents(100_000)), NOW)
        .unwrap();
    assert!(lower.webhooks.is_empty());
    t.protect("ecu", None, NOW).unwrap();
    let (_, again) = t
        .protect("ecu", Some(Money::from_cents(50_000)), NOW)
        .unwrap();
    assert_eq!(kinds(&again), [WebhookEventKind::SpendCapReached]);
}

#[test]
fn a_request_for_more_seats_is_an_event() {
    let t = tenant_with(1, 0);
    let request = MoreRequest {
        tool: ToolName::parse("ecu").unwrap(),
        requested_total: Some(Seats::parse("requested_total", 5).unwrap()),
        requested_overage: None,
        message: Some("crunch".into()),
    };
    let (record, effects) = t.request_more(request, "acme.01".into(), &[], NOW).unwrap();
    assert_eq!(kinds(&effects), [WebhookEventKind::RequestCreated]);
    let data: serde_json::Value = serde_json::from_str(&effects.webhooks[0].data_json()).unwrap();
    assert_eq!(data["request_id"], record.id.as_str());
    assert_eq!(data["requested_total"], 5);
    assert_eq!(data["limits_before"]["total"], 1);
}

#[test]
fn the_sequence_continues_after_a_reload() {
    let mut records = TenantRecords {
        packages: vec![package("ecu", 0, 5, 50_000)],
        ..TenantRecords::default()
    };
    let mut t = TenantState::from_records(TenantId::parse("acme").unwrap(), records.clone());
    for user in ["a", "b"] {
        let (effects, _) = borrow_staged(&mut t, user, &all_wanted());
        super::tests::replay(&mut records, &effects);
    }
    let mut reloaded = TenantState::from_records(TenantId::parse("acme").unwrap(), records);
    assert_eq!(reloaded.outbox_head(), 2);
    let all = OutboxPolicy {
        delivered_through: 2,
        ..all_wanted()
    };
    let (effects, staged) = borrow_staged(&mut reloaded, "c", &all);
    assert_eq!(staged.head, Some(3));
    assert_eq!(deleted(&effects), vec![1, 2]);
}
