//! Reports read from a real store written by a real actor: exact usage windows under a
//! manual clock, and ledger verification against records rewritten behind the
//! broker's back.
use std::sync::Arc;
use std::time::Duration;

use permetrix_storage::{
    BorrowId, Money, SledConfig, SledStore, Store, TenantId, Timestamp, test_support,
};

use crate::domain::{LedgerHead, PoolUsage, chain_hash};
use crate::messages::{GetLedgerHead, Return};
use crate::metrics::NoMetrics;
use crate::reports::{self, ChargeFilter};
use crate::test_support::{Pool, add_tenant, grant};
use crate::{ManualClock, Registry, RegistryConfig};

const T0: Timestamp = Timestamp::from_secs(1_795_749_200);

struct Fixture {
    _dir: tempfile::TempDir,
    sled: Arc<SledStore>,
    store: Arc<dyn Store>,
    registry: Registry,
    clock: ManualClock,
    tenant: TenantId,
}

async fn fixture(commit: u32, overage: u32) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sled = Arc::new(SledStore::open(SledConfig::new(dir.path())).unwrap());
    let store: Arc<dyn Store> = sled.clone();
    let clock = ManualClock::new(T0);
    let registry = Registry::start(
        Arc::clone(&store),
        Arc::new(permetrix_storage::SoleOwner::new(Arc::clone(&store))),
        Arc::new(clock.clone()),
        Arc::new(NoMetrics),
        RegistryConfig {
            arbiters: 1,
            ..RegistryConfig::default()
        },
    );
    let pool = Pool {
        commit,
        overage,
        overage_cents: 500,
    };
    let tenant = add_tenant(&store, &registry, "acme", T0, pool).await;
    Fixture {
        _dir: dir,
        sled,
        store,
        registry,
        clock,
        tenant,
    }
}

impl Fixture {
    fn at(&self, secs: u64) {
        self.clock.set(T0.plus(Duration::from_secs(secs)));
    }

    async fn borrow(&self, user: &str) -> BorrowId {
        grant(&self.registry, &self.tenant, user).await.lease.id
    }

    async fn give_back(&self, id: BorrowId) {
        self.registry
            .send(&self.tenant, Return::of(id))
            .await
            .unwrap();
    }

    fn usage(&self, from_ms: i64, to_ms: i64) -> PoolUsage {
        let t = |ms| Timestamp::from_millis(T0.millis() + ms);
        reports::pool_usage(
            self.store.as_ref(),
            &self.tenant,
            "ecu",
            t(from_ms),
            t(to_ms),
        )
        .unwrap()
    }

    async fn booked(&self) -> LedgerHead {
        self.registry
            .send(&self.tenant, GetLedgerHead)
            .await
            .unwrap()
    }
}

fn figures(u: PoolUsage) -> (u64, u32, u64, i64, u32, u32) {
    (
        u.borrows,
        u.peak_concurrent,
        u.overage_borrows,
        u.overage_amount.cents(),
        u.in_use_at_start,
        u.in_use_at_end,
    )
}

#[actix_rt::test]
async fn usage_windows_are_exact_including_seats_held_from_before() {
    let f = fixture(1, 3).await;
    f.at(0);
    let a = f.borrow("a").await; // 1 in use
    f.at(10);
    let b = f.borrow("b").await; // 2, overage
    let c = f.borrow("c").await; // 3, overage, same millisecond
    f.at(20);
    f.give_back(a).await; // 2
    f.at(30);
    f.borrow("d").await; // 3, overage
    f.at(40);
    f.give_back(b).await; // 2
    f.give_back(c).await; // 1
    f.at(50);
    f.borrow("e").await; // 2, overage

    // (borrows, peak, overage borrows, overage cents, in use at start, at end)
    assert_eq!(figures(f.usage(0, 60_000)), (5, 3, 4, 2_000, 0, 2));
    assert_eq!(figures(f.usage(20_000, 40_000)), (1, 3, 1, 500, 3, 3));
    assert_eq!(figures(f.usage(40_000, 50_000)), (0, 3, 0, 0, 3, 1));
    assert_eq!(figures(f.usage(41_000, 50_000)), (0, 1, 0, 0, 1, 1));
    assert_eq!(figures(f.usage(10_000, 10_001)), (2, 3, 2, 1_000, 1, 3));
    assert_eq!(figures(f.usage(50_001, 90_000)), (0, 2, 0, 0, 2, 2));
    // The usage history agrees with the ledger.
    let (charges, _) = reports::charges(
        f.store.as_ref(),
        &f.tenant,
        &ChargeFilter::default(),
        0,
        100,
    )
    .unwrap();
    let billed: i64 = charges.iter().map(|c| c.amount.cents()).sum();
    assert_eq!((charges.len(), billed), (4, 2_000));
    // The actor kept only the head; storage has every event.
    assert_eq!(
        f.store
            .load_tenant(&f.tenant)
            .unwrap()
            .usage_head
            .map(|u| u.seq),
        Some(8)
    );
    f.registry.shutdown();
}

#[actix_rt::test]
async fn charge_listing_filters_and_pages() {
    let f = fixture(0, 10).await;
    for i in 0..5 {
        f.at(i * 10);
        f.borrow(&format!("u{i}")).await;
    }
    let t = |s: i64| Some(Timestamp::from_millis(T0.millis() + s * 1000));
    let window = ChargeFilter {
        from: t(10),
        to: t(40),
        ..ChargeFilter::default()
    };
    let (page, next) = reports::charges(f.store.as_ref(), &f.tenant, &window, 0, 2).unwrap();
    assert_eq!(page.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![2, 3]);
    let next = next.expect("more to come");
    let (rest, none) = reports::charges(f.store.as_ref(), &f.tenant, &window, next, 2).unwrap();
    assert_eq!(
        (rest.iter().map(|c| c.seq).collect::<Vec<_>>(), none),
        (vec![4], None)
    );
    let other = ChargeFilter {
        product_id: Some("cad".into()),
        ..ChargeFilter::default()
    };
    let (none, _) = reports::charges(f.store.as_ref(), &f.tenant, &other, 0, 10).unwrap();
    assert!(none.is_empty());
    f.registry.shutdown();
}

#[actix_rt::test]
async fn the_ledger_verifies_and_every_kind_of_rewrite_is_detected() {
    let f = fixture(0, 10).await;
    for i in 0..5 {
        f.borrow(&format!("u{i}")).await;
    }
    let booked = f.booked().await;
    let check = reports::verify_ledger(f.store.as_ref(), &f.tenant, booked, None).unwrap();
    assert!(check.valid, "{check:?}");
    assert_eq!((check.verified, check.head), (5, booked));
    let (stored, _) =
        reports::charges(f.store.as_ref(), &f.tenant, &ChargeFilter::default(), 0, 10).unwrap();
    let anchor = LedgerHead::after(&stored[3]);

    // A changed amount breaks that charge's own hash.
    test_support::rewrite_charge(&f.sled, &f.tenant, 3, |c| c.amount = Money::from_cents(1))
        .unwrap();
    let check = reports::verify_ledger(f.store.as_ref(), &f.tenant, booked, None).unwrap();
    assert_eq!((check.valid, check.first_invalid_seq), (false, Some(3)));
    assert!(check.problem.unwrap().contains("does not match its hash"));

    // Re-hashing the changed charge breaks the link to the next one.
    let tenant = f.tenant.clone();
    test_support::rewrite_charge(&f.sled, &f.tenant, 3, |c| c.hash = chain_hash(&tenant, c))
        .unwrap();
    let check = reports::verify_ledger(f.store.as_ref(), &f.tenant, booked, None).unwrap();
    assert_eq!(check.first_invalid_seq, Some(4));
    assert!(check.problem.unwrap().contains("does not link"));

    // Re-hashing everything after it gives a consistent chain, but not the one booked,
    // nor the one an anchor saved earlier names.
    let mut prev = LedgerHead::after(&stored[1]).hash;
    for seq in 3..=5 {
        test_support::rewrite_charge(&f.sled, &f.tenant, seq, |c| {
            c.prev_hash = prev;
            c.hash = chain_hash(&tenant, c);
            prev = c.hash;
        })
        .unwrap();
    }
    let unanchored =
        reports::verify_ledger(f.store.as_ref(), &f.tenant, LedgerHead::default(), None);
    assert!(
        unanchored.unwrap().valid,
        "a consistent rewrite passes the chain alone"
    );
    let check = reports::verify_ledger(f.store.as_ref(), &f.tenant, booked, None).unwrap();
    assert_eq!(check.first_invalid_seq, Some(5));
    assert!(check.problem.unwrap().contains("broker booked"));
    let check = reports::verify_ledger(
        f.store.as_ref(),
        &f.tenant,
        LedgerHead::default(),
        Some(anchor),
    )
    .unwrap();
    assert_eq!(check.first_invalid_seq, Some(4));
    assert!(check.problem.unwrap().contains("anchor"));
    f.registry.shutdown();
}

#[actix_rt::test]
async fn a_missing_tail_is_detected_against_the_booked_head() {
    let f = fixture(0, 10).await;
    f.borrow("a").await;
    let booked = LedgerHead {
        seq: 2,
        hash: [7; 32],
    };
    let check = reports::verify_ledger(f.store.as_ref(), &f.tenant, booked, None).unwrap();
    assert_eq!(
        (check.valid, check.verified, check.first_invalid_seq),
        (false, 1, Some(2))
    );
    assert!(check.problem.unwrap().contains("missing"));
    f.registry.shutdown();
}
