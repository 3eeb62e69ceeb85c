//! CPU-only paths of a borrow: the domain rules, the record codec and the pieces of an
//! API-key check. No threads, no disk. Signature checks are in `benches/security.rs`.
//!
//! `cargo bench --bench micro`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use permetrix::auth::api_key;
use permetrix::auth::secrets::ServerSecrets;
use permetrix_actors::domain::{BorrowRequest, ProvisionRequest, TenantState};
use permetrix_storage::records::{LeaseRecord, PackageRecord};
use permetrix_storage::test_records;
use permetrix_storage::{BorrowId, Money, TenantId, Timestamp, codec};

fn package(seats: u32) -> PackageRecord {
    PackageRecord {
        package_id: "pkg-1".into(),
        product_name: "ECU Development Suite".into(),
        overage_price: Money::from_cents(500),
        ..test_records::package("ecu", seats, Timestamp::from_secs(1))
    }
}

fn domain(c: &mut Criterion) {
    let mut state = TenantState::new(TenantId::parse("acme").unwrap());
    state
        .provision(ProvisionRequest {
            package: package(1_000_000),
        })
        .unwrap();
    let req = BorrowRequest::parse("ECU Development Suite", "dev1", None).unwrap();
    let now = Timestamp::from_secs(1_800_000_000);
    c.bench_function("domain/borrow+return", |b| {
        b.iter(|| {
            let (grant, effects) = state.borrow(black_box(&req), now).unwrap();
            black_box(effects);
            let (returned, effects) = state.return_lease(grant.lease.id, now).unwrap();
            black_box((returned, effects));
        })
    });
    c.bench_function("domain/borrow_id", |b| b.iter(BorrowId::random));
}

fn records(c: &mut Criterion) {
    let lease = LeaseRecord {
        id: BorrowId::random(),
        product_id: "ecu".into(),
        user: "dev1".into(),
        borrowed_at: Timestamp::from_secs(1_800_000_000),
        lease_expires_at: Timestamp::from_secs(1_800_003_600),
        lease_seconds: 3600,
        is_overage: false,
        offline: false,
    };
    c.bench_function("record/lease_encode", |b| {
        b.iter(|| codec::encode(black_box(&lease)))
    });
    let bytes = codec::encode(&lease);
    c.bench_function("record/lease_decode", |b| {
        b.iter(|| codec::decode::<LeaseRecord>(black_box(&bytes)).unwrap())
    });
    let pkg = package(20);
    c.bench_function("record/package_encode", |b| {
        b.iter(|| codec::encode(black_box(&pkg)))
    });
    let bytes = codec::encode(&pkg);
    c.bench_function("record/package_decode", |b| {
        b.iter(|| codec::decode::<PackageRecord>(black_box(&bytes)).unwrap())
    });
}

fn api_keys(c: &mut Criterion) {
    let secrets = ServerSecrets::ephemeral();
    let key = api_key::tenant_key("acme", &api_key::new_key_id(), &api_key::new_secret());
    c.bench_function("api_key/parse+digest", |b| {
        b.iter(|| {
            let Some(api_key::Token::Tenant { secret, .. }) = api_key::parse(black_box(&key))
            else {
                unreachable!()
            };
            secrets.key_digest(secret)
        })
    });
}

criterion_group!(benches, domain, records, api_keys);
criterion_main!(benches);
