//! What the commercial model costs: the extra usage event each seat change writes, and
//! how fast usage reports and ledger checks read back from storage.
//!
//! `cargo bench -p permetrix-actors --bench commercial`
// Benchmark set-up: no request reaches it, a failure should stop the run.
#![allow(clippy::expect_used)]
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use permetrix_actors::domain::{
    BorrowRequest, Effects, LedgerHead, ProvisionRequest, TenantState, UsageHead,
};
use permetrix_actors::reports;
use permetrix_storage::records::{LeaseRecord, UsageKind};
use permetrix_storage::test_records;
use permetrix_storage::{
    BorrowId, Durability, Money, SledConfig, SledStore, Store, TenantId, TenantMutation, Timestamp,
};

fn store(dir: &std::path::Path) -> Arc<dyn Store> {
    let mut config = SledConfig::new(dir);
    // Measures the write itself, not the fsync (which strict mode shares per batch).
    config.durability = Durability::Relaxed {
        interval: Duration::from_millis(100),
    };
    Arc::new(SledStore::open(config).expect("store opens"))
}

fn lease(i: i64) -> LeaseRecord {
    LeaseRecord {
        id: BorrowId::random(),
        product_id: "ecu".into(),
        user: format!("dev{}", i % 50),
        borrowed_at: Timestamp::from_millis(i),
        lease_expires_at: Timestamp::from_millis(i + 3_600_000),
        lease_seconds: 3600,
        is_overage: false,
        offline: false,
    }
}

/// One borrow + return cycle of the actor's work (domain rules and the two writes,
/// without the fsync that strict mode shares per batch), with the usage events written
/// as now, against the same cycle with them filtered out (the writes as they were
/// before this issue): side by side in one run.
fn borrow_cycle(c: &mut Criterion) {
    let tenant = TenantId::parse("acme").expect("tenant id");
    let mut group = c.benchmark_group("borrow_return_cycle");
    for with_usage in [false, true] {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store(dir.path());
        let mut state = TenantState::new(tenant.clone());
        let package = test_records::package("ecu", 1_000, Timestamp::from_millis(0));
        state
            .provision(ProvisionRequest { package })
            .expect("provision");
        let request = BorrowRequest::parse("ecu", "dev1", None).expect("a valid borrow");
        let write = |effects: Effects| {
            let batch: Vec<TenantMutation> = effects
                .mutations
                .into_iter()
                .filter(|m| with_usage || !matches!(m, TenantMutation::AppendUsage(_)))
                .collect();
            black_box(
                store
                    .append(&tenant, permetrix_storage::Epoch::SOLE, &batch)
                    .expect("append"),
            );
        };
        let mut i = 0i64;
        let name = if with_usage {
            "with_usage_events"
        } else {
            "without_usage_events"
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                let now = Timestamp::from_millis(i);
                let (grant, effects) = state.borrow(&request, now).expect("borrow");
                write(effects);
                let (_, effects) = state.return_lease(grant.lease.id, now).expect("return");
                write(effects);
            })
        });
        store.shutdown().expect("shutdown");
    }
    group.finish();
}

/// A usage report over a window of 100 000 events, and a check of a 10 000-charge ledger.
fn reads(c: &mut Criterion) {
    let tenant = TenantId::parse("acme").expect("tenant id");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store(dir.path());
    let mut usage = UsageHead::default();
    let mut ledger = LedgerHead::default();
    for chunk in 0..100i64 {
        let batch: Vec<TenantMutation> = (0..1_000i64)
            .flat_map(|k| {
                let i = chunk * 1_000 + k;
                let l = lease(i);
                let mut out = vec![usage.record(
                    UsageKind::Borrow,
                    &l,
                    (i % 7) as u32,
                    Money::from_cents(500),
                    Timestamp::from_millis(i),
                )];
                if i < 10_000 {
                    let charge = ledger.next_charge(
                        &tenant,
                        "ecu",
                        "ECU",
                        l.id,
                        &l.user,
                        Timestamp::from_millis(i),
                        Money::from_cents(500),
                    );
                    ledger = LedgerHead::after(&charge);
                    out.push(TenantMutation::AppendCharge(charge));
                }
                out
            })
            .collect();
        store
            .append(&tenant, permetrix_storage::Epoch::SOLE, &batch)
            .expect("append");
    }
    let mut group = c.benchmark_group("reports");
    group.sample_size(20);
    group.bench_function("pool_usage_100k_events", |b| {
        b.iter(|| {
            let from = Timestamp::from_millis(0);
            let to = Timestamp::from_millis(100_000);
            let u = reports::pool_usage(store.as_ref(), &tenant, "ecu", from, to);
            black_box(u.expect("report"))
        })
    });
    group.bench_function("verify_ledger_10k_charges", |b| {
        b.iter(|| {
            let check = reports::verify_ledger(store.as_ref(), &tenant, ledger, None);
            black_box(check.expect("check"))
        })
    });
    group.finish();
    store.shutdown().expect("shutdown");
}

criterion_group!(benches, borrow_cycle, reads);
criterion_main!(benches);
