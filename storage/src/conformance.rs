//! The backend conformance suite: what every [`Store`] must do, run against the sled
//! store (`sled_store`'s tests) and the PostgreSQL store (`postgres_store`'s tests).
//! Each check takes the store and the epoch its tenant is owned under.
use crate::backend::{PlatformKey, PlatformWrite, Table};
use crate::records::*;
use crate::test_records::{lease, package};
use crate::{BorrowId, Epoch, Money, StorageError, Store, TenantId, TenantMutation, Timestamp};

async fn write(store: &dyn Store, tenant: &TenantId, epoch: Epoch, m: Vec<TenantMutation>) {
    store
        .append(tenant, epoch, &m)
        .unwrap()
        .wait()
        .await
        .unwrap();
}

/// Charge `seq` of pool "ecu".
pub(crate) fn charge(seq: u64) -> ChargeRecord {
    ChargeRecord {
        seq,
        id: format!("c{seq}"),
        product_id: "ecu".into(),
        product_name: "ECU".into(),
        borrow_id: BorrowId::random(),
        user: "dev1".into(),
        charged_at: Timestamp::from_secs(seq as i64),
        amount: Money::from_cents(50_000),
        prev_hash: [0; 32],
        hash: [seq as u8; 32],
    }
}

/// Usage event `seq` of `product` at `at_ms`: the return of a borrow that is gone (so
/// the sled store's check for a half-written seat change leaves it alone).
pub(crate) fn usage(seq: u64, product: &str, at_ms: i64) -> UsageRecord {
    UsageRecord {
        seq,
        at: Timestamp::from_millis(at_ms),
        product_id: product.into(),
        kind: UsageKind::Return,
        borrow_id: BorrowId::random(),
        user: "dev1".into(),
        is_overage: false,
        amount: Money::ZERO,
        in_use: seq as u32,
    }
}

fn idempotency(key: &str) -> IdempotencyRecord {
    IdempotencyRecord {
        key: key.into(),
        operation: IdempotentOperation::Return,
        fingerprint: [7; 32],
        created_at: Timestamp::from_secs(5),
        outcome: IdempotentOutcome::Returned {
            id: BorrowId::random(),
            tool: "ECU".into(),
        },
    }
}

/// A pending request for more seats.
pub(crate) fn request(id: &str) -> MoreRequestRecord {
    MoreRequestRecord {
        id: id.into(),
        product_id: "ecu".into(),
        product_name: "ECU".into(),
        package_id: "pkg-ecu".into(),
        vendor_id: "vector".into(),
        requested_total: Some(30),
        requested_overage: None,
        message: Some("release crunch".into()),
        limits_before: (20, 5, 15),
        created_at: Timestamp::from_secs(1),
        status: RequestStatus::Pending,
        decided_at: None,
        decision_note: None,
        applied: None,
    }
}

/// Outbox event `seq`.
pub(crate) fn event(seq: u64) -> OutboxRecord {
    OutboxRecord {
        seq,
        id: format!("evt_{seq}"),
        kind: "overage.charged".into(),
        created_at: Timestamp::from_secs(seq as i64),
        data: "{}".into(),
    }
}

/// Every mutation kind written, replaced and removed, then loaded back.
pub(crate) async fn every_mutation_kind_round_trips(store: &dyn Store, epoch: Epoch) {
    let acme = TenantId::parse("acme").unwrap();
    let other = TenantId::parse("acme-2").unwrap();
    let (kept, returned) = (lease("ecu"), lease("ecu"));
    let settings = SettingsRecord {
        signature_policy: SignaturePolicy::V2,
        default_lease_seconds: 600,
        anonymous_status: true,
    };
    let restriction = RestrictionRecord {
        product_id: "ecu".into(),
        total: Some(3),
        ..Default::default()
    };
    let spend = |cost| SpendRecord {
        product_id: "ecu".into(),
        month: 202_601,
        overage_cost: Money::from_cents(cost),
        overage_count: 1,
    };
    let (forgotten, remembered) = (idempotency("k1"), idempotency("k2"));
    let ecu = package("ecu", 5, Timestamp::from_secs(1));
    write(
        store,
        &acme,
        epoch,
        vec![
            TenantMutation::PutPackage(package("ecu", 1, Timestamp::from_secs(1))),
            TenantMutation::PutLease(kept.clone()),
            TenantMutation::PutLease(returned.clone()),
            TenantMutation::PutSettings(settings.clone()),
            TenantMutation::PutRestriction(restriction.clone()),
            TenantMutation::PutSpend(spend(100)),
            TenantMutation::PutIdempotency(forgotten.clone()),
            TenantMutation::PutIdempotency(remembered.clone()),
            TenantMutation::AppendCharge(charge(1)),
            TenantMutation::AppendUsage(usage(1, "ecu", 1_000)),
            TenantMutation::PutMoreRequest(request("acme.01")),
            TenantMutation::AppendOutbox(event(1)),
            TenantMutation::AppendOutbox(event(2)),
        ],
    )
    .await;
    write(
        store,
        &acme,
        epoch,
        vec![
            TenantMutation::PutPackage(ecu.clone()),
            TenantMutation::DeleteLease(returned.id),
            TenantMutation::PutSpend(spend(250)),
            TenantMutation::DeleteIdempotency {
                operation: forgotten.operation,
                key: forgotten.key.clone(),
            },
            TenantMutation::AppendCharge(charge(2)),
            TenantMutation::AppendUsage(usage(2, "ecu", 2_000)),
            TenantMutation::DeleteOutbox(1),
            TenantMutation::AppendOutbox(event(3)),
        ],
    )
    .await;
    let loaded = store.load_tenant(&acme).unwrap();
    assert_eq!(loaded.packages, vec![ecu]);
    assert_eq!(loaded.leases, vec![kept]);
    assert_eq!(loaded.settings, Some(settings));
    assert_eq!(loaded.restrictions, vec![restriction]);
    assert_eq!(loaded.spend, vec![spend(250)]);
    assert_eq!(loaded.idempotency, vec![remembered]);
    assert_eq!(loaded.ledger_head.map(|c| c.seq), Some(2));
    assert_eq!(loaded.usage_head.map(|u| u.seq), Some(2));
    assert_eq!(loaded.outbox_oldest, Some(2));
    assert_eq!(loaded.outbox_head, Some(event(3)));
    assert_eq!(
        store.more_requests(&acme).unwrap(),
        vec![request("acme.01")]
    );
    // A tenant whose id extends another's shares nothing with it.
    let empty = store.load_tenant(&other).unwrap();
    assert!(empty.packages.is_empty() && empty.leases.is_empty());
    assert!(empty.ledger_head.is_none() && empty.usage_head.is_none());
    assert!(empty.outbox_head.is_none() && empty.outbox_oldest.is_none());
}

/// The webhook outbox reads in sequence order from any point; loading finds its ends.
pub(crate) async fn outbox_reads_in_order(store: &dyn Store, epoch: Epoch) {
    let acme = TenantId::parse("acme").unwrap();
    let muts = (1..=300).map(|s| TenantMutation::AppendOutbox(event(s)));
    write(store, &acme, epoch, muts.collect()).await;
    let trim = (1..=9).map(TenantMutation::DeleteOutbox);
    write(store, &acme, epoch, trim.collect()).await;

    let seqs = |v: Vec<OutboxRecord>| v.iter().map(|e| e.seq).collect::<Vec<_>>();
    // Big-endian ids: 255 < 256 in id order too.
    let across = store.outbox(&acme, 254, 3).unwrap();
    assert_eq!(seqs(across), vec![255, 256, 257]);
    assert_eq!(seqs(store.outbox(&acme, 0, 2).unwrap()), vec![10, 11]);
    assert!(store.outbox(&acme, 300, 10).unwrap().is_empty());
    assert!(store.outbox(&acme, u64::MAX, 10).unwrap().is_empty());
    let loaded = store.load_tenant(&acme).unwrap();
    assert_eq!(loaded.outbox_oldest, Some(10));
    assert_eq!(loaded.outbox_head.map(|e| e.seq), Some(300));
    // One event left is both ends.
    let trim = (10..300).map(TenantMutation::DeleteOutbox);
    write(store, &acme, epoch, trim.collect()).await;
    let single = store.load_tenant(&acme).unwrap();
    assert_eq!(single.outbox_oldest, Some(300));
    assert_eq!(single.outbox_head.map(|e| e.seq), Some(300));
}

/// The ledger and the usage history read back in pages and windows.
pub(crate) async fn ledger_and_usage_page(store: &dyn Store, epoch: Epoch) {
    let acme = TenantId::parse("acme").unwrap();
    let mut muts: Vec<_> = (1..=5)
        .map(|s| TenantMutation::AppendCharge(charge(s)))
        .collect();
    for (seq, product, at) in [
        (1, "ecu", 1_000),
        (2, "ecu-2", 1_000),
        (3, "ecu", 2_000),
        (4, "ecu", 2_000),
        (5, "ecu", 3_000),
    ] {
        muts.push(TenantMutation::AppendUsage(usage(seq, product, at)));
    }
    for p in ["ecu", "ecu-2"] {
        muts.push(TenantMutation::PutPackage(package(
            p,
            1,
            Timestamp::from_secs(1),
        )));
    }
    write(store, &acme, epoch, muts).await;
    let seqs = |v: Vec<ChargeRecord>| v.iter().map(|c| c.seq).collect::<Vec<_>>();
    assert_eq!(seqs(store.charges(&acme, 0, 2).unwrap()), vec![1, 2]);
    assert_eq!(seqs(store.charges(&acme, 2, 10).unwrap()), vec![3, 4, 5]);
    assert!(store.charges(&acme, 5, 10).unwrap().is_empty());
    assert!(store.charges(&acme, u64::MAX, 10).unwrap().is_empty());

    let useqs = |v: Vec<UsageRecord>| v.iter().map(|u| u.seq).collect::<Vec<_>>();
    let t = Timestamp::from_millis;
    let window = store.usage_events(&acme, "ecu", (t(2_000), 0), t(3_000), 10);
    assert_eq!(useqs(window.unwrap()), vec![3, 4]);
    let page = store.usage_events(&acme, "ecu", (t(0), 0), t(10_000), 2);
    assert_eq!(useqs(page.unwrap()), vec![1, 3]);
    let rest = store.usage_events(&acme, "ecu", (t(2_000), 4), t(10_000), 10);
    assert_eq!(useqs(rest.unwrap()), vec![4, 5]);
    assert!(
        store
            .usage_events(&acme, "ecu", (t(5_000), 0), t(1_000), 10)
            .unwrap()
            .is_empty()
    );
    let before = store.usage_before(&acme, "ecu", t(2_000)).unwrap();
    assert_eq!(before.map(|u| u.seq), Some(1));
    assert!(
        store
            .usage_before(&acme, "ecu", t(1_000))
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.load_tenant(&acme).unwrap().usage_head.map(|u| u.seq),
        Some(5)
    );
}

/// A request for more seats is found by id and replaced.
pub(crate) async fn requests_are_found_and_replaced(store: &dyn Store, epoch: Epoch) {
    let acme = TenantId::parse("acme").unwrap();
    let mut r = request("acme.01");
    for status in [RequestStatus::Pending, RequestStatus::Approved] {
        r.status = status;
        let put = vec![TenantMutation::PutMoreRequest(r.clone())];
        write(store, &acme, epoch, put).await;
    }
    assert_eq!(
        store.more_request(&acme, "acme.01").unwrap(),
        Some(r.clone())
    );
    assert!(store.more_request(&acme, "acme.0").unwrap().is_none());
    assert!(store.more_request(&acme, "acme.011").unwrap().is_none());
    assert_eq!(store.more_requests(&acme).unwrap(), vec![r]);
}

/// A platform put of `value`.
pub(crate) fn put<'a>(table: Table, key: PlatformKey<'a>, value: &[u8]) -> PlatformWrite<'a> {
    PlatformWrite::Put {
        table,
        key,
        value: value.to_vec(),
    }
}

/// Platform records: get, scan by scope in id order, atomic batches, insert conflicts.
pub(crate) async fn platform_records_behave(store: &dyn Store) {
    store
        .platform_apply(&[
            put(Table::ApiKeys, PlatformKey::scoped("acme", "k2"), b"b"),
            put(Table::ApiKeys, PlatformKey::scoped("acme", "k1"), b"a"),
            put(Table::ApiKeys, PlatformKey::scoped("acme-2", "k3"), b"c"),
            put(Table::Vendors, PlatformKey::new("vector"), b"v"),
            put(Table::Vendors, PlatformKey::new("Z-upper"), b"z"),
        ])
        .unwrap()
        .wait()
        .await
        .unwrap();
    let get = |table, key| store.platform_get(table, key).unwrap();
    assert_eq!(
        get(Table::Vendors, PlatformKey::new("vector")),
        Some(b"v".to_vec())
    );
    assert_eq!(get(Table::Tenants, PlatformKey::new("vector")), None);
    assert_eq!(
        store.platform_scan(Table::ApiKeys, Some("acme")).unwrap(),
        vec![
            ("k1".to_owned(), b"a".to_vec()),
            ("k2".to_owned(), b"b".to_vec())
        ]
    );
    // Byte order of the ids: upper case first.
    let vendors: Vec<String> = store
        .platform_scan(Table::Vendors, None)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(vendors, ["Z-upper", "vector"]);

    let insert = |id: &'static str, value: &[u8]| PlatformWrite::Insert {
        table: Table::Packages,
        key: PlatformKey::new(id),
        value: value.to_vec(),
    };
    store
        .platform_apply(&[insert("p1", b"first")])
        .unwrap()
        .wait()
        .await
        .unwrap();
    let again = store.platform_apply(&[
        put(
            Table::VendorTenants,
            PlatformKey::scoped("vector", "acme"),
            b"",
        ),
        PlatformWrite::Delete {
            table: Table::Vendors,
            key: PlatformKey::new("vector"),
        },
        insert("p1", b"second"),
    ]);
    match again {
        Err(StorageError::AlreadyExists { table, key }) => {
            assert_eq!((table, key.as_str()), ("packages", "p1"));
        }
        other => panic!("expected AlreadyExists, got {:?}", other.map(|_| ())),
    }
    // Nothing of the failed batch landed.
    assert!(
        store
            .platform_scan(Table::VendorTenants, Some("vector"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        get(Table::Vendors, PlatformKey::new("vector")),
        Some(b"v".to_vec())
    );
    assert_eq!(
        get(Table::Packages, PlatformKey::new("p1")),
        Some(b"first".to_vec())
    );

    // Writes apply in order: a put and then a delete of one key leave nothing.
    store
        .platform_apply(&[
            put(Table::Sessions, PlatformKey::new("s"), b"x"),
            PlatformWrite::Delete {
                table: Table::Sessions,
                key: PlatformKey::new("s"),
            },
        ])
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(get(Table::Sessions, PlatformKey::new("s")), None);
}
