//! CPU-only paths of a borrow: the domain rules, the record codec, signature checks and
//! the pieces of an API-key check. No threads, no disk.
//!
//! `cargo bench --bench micro`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use permetrix::auth::api_key;
use permetrix::secrets::ServerSecrets;
use permetrix::signature::{self, NonceCache, SignatureHeaders, Signed};
use permetrix_actors::domain::{BorrowRequest, ProvisionRequest, TenantState};
use permetrix_storage::records::{LeaseRecord, PackageRecord, SignaturePolicy};
use permetrix_storage::test_records;
use permetrix_storage::{BorrowId, Money, TenantId, Timestamp, codec};
use secrecy::SecretSlice;

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
    let req = BorrowRequest {
        tool: "ECU Development Suite".into(),
        user: "dev1".into(),
        lease_seconds: None,
    };
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

fn signatures(c: &mut Criterion) {
    let secret = b"0123456789abcdef0123456789abcdef".to_vec();
    let secrets = Arc::new(vec![SecretSlice::from(secret.clone())]);
    let nonces = NonceCache::new(1_000_000);
    let api_key = "pmx_t_acme_0a1b2c3d4e5f6071_".to_owned() + &"ab".repeat(32);
    let now = 1_800_000_000i64;
    let ts = now.to_string();
    let body = br#"{"tool":"ECU Development Suite","user":"dev1"}"#;
    let signed = Signed {
        tool: "ECU Development Suite",
        user: "dev1",
        method: "POST",
        path: "/licenses/borrow",
        body,
        api_key: &api_key,
    };
    let v1 = signature::sign(
        &secret,
        &signature::v1_string(signed.tool, signed.user, &ts, &api_key),
    );
    let headers = SignatureHeaders {
        signature: Some(&v1),
        timestamp: Some(&ts),
        vendor_id: Some("vector"),
        version: None,
        nonce: None,
    };
    c.bench_function("signature/v1_check", |b| {
        b.iter(|| {
            signature::check(
                SignaturePolicy::V1,
                black_box(&headers),
                &signed,
                Some("vector"),
                |_| Arc::clone(&secrets),
                &nonces,
                now,
            )
            .unwrap()
        })
    });
    // v2 with a fresh nonce each time (a replayed one would be refused).
    let mut n = 0u64;
    c.bench_function("signature/v2_check", |b| {
        b.iter(|| {
            n += 1;
            let nonce = format!("nonce-{n}");
            let sig = signature::sign(
                &secret,
                &signature::v2_string("POST", "/licenses/borrow", &ts, &nonce, body, &api_key),
            );
            let headers = SignatureHeaders {
                signature: Some(&sig),
                timestamp: Some(&ts),
                vendor_id: Some("vector"),
                version: Some("2"),
                nonce: Some(&nonce),
            };
            signature::check(
                SignaturePolicy::V2,
                &headers,
                &signed,
                Some("vector"),
                |_| Arc::clone(&secrets),
                &nonces,
                now,
            )
            .unwrap()
        })
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

criterion_group!(benches, domain, records, signatures, api_keys);
criterion_main!(benches);
