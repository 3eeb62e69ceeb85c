//! Paths with threads and the disk: group-commit batches (strict = real fsync), API-key
//! verification against the store, registry lookup, actor round trips, and the core's
//! durable borrow+return rate without HTTP.
//!
//! `cargo bench --bench system` (the data lives in temporary directories on the same
//! disk as the target directory; strict figures are bounded by its fsync latency).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use permetrix::api::accounts::{self, NewTenant, NewVendor};
use permetrix::server::state::AppState;
use permetrix::server::{Application, ServeConfig};
use permetrix_actors::TenantError;
use permetrix_actors::domain::{BorrowRequest, Grant};
use permetrix_actors::messages::{Borrow, BorrowOutcome, Return, Status};
use permetrix_storage::records::{LeaseRecord, PackageRecord};
use permetrix_storage::test_records;
use permetrix_storage::{
    BorrowId, Durability, SledConfig, SledStore, Store, TenantId, TenantMutation, Timestamp,
    VendorId,
};

const RELAXED: Durability = Durability::Relaxed {
    interval: Duration::from_millis(100),
};

fn mode_name(d: Durability) -> &'static str {
    match d {
        Durability::Strict => "strict",
        Durability::Relaxed { .. } => "relaxed",
    }
}

fn lease(id: BorrowId) -> LeaseRecord {
    LeaseRecord {
        id,
        product_id: "ecu".into(),
        user: "dev1".into(),
        borrowed_at: Timestamp::from_secs(1_800_000_000),
        lease_expires_at: Timestamp::from_secs(1_800_003_600),
        lease_seconds: 3600,
        is_overage: false,
        offline: false,
    }
}

/// One append per tenant of a batch, then wait for every ticket: the cost of a batch
/// of `n` concurrent writers sharing one flush (strict) or none (relaxed).
fn group_commit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("group_commit");
    group.sample_size(20);
    for mode in [Durability::Strict, RELAXED] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SledConfig::new(dir.path());
        config.durability = mode;
        let store = SledStore::open(config).unwrap();
        let writers: Vec<(TenantId, [TenantMutation; 1])> = (0..64)
            .map(|i| {
                let t = TenantId::parse(&format!("t{i}")).unwrap();
                (t, [TenantMutation::PutLease(lease(BorrowId::random()))])
            })
            .collect();
        for batch in [1usize, 8, 64] {
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(format!("{}/batch_{batch}", mode_name(mode)), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let tickets: Vec<_> = writers[..batch]
                                .iter()
                                .map(|(t, m)| {
                                    store.append(t, permetrix_storage::Epoch::SOLE, m).unwrap()
                                })
                                .collect();
                            for t in tickets {
                                t.wait().await.unwrap();
                            }
                        }
                        start.elapsed()
                    })
                })
            });
        }
        store.shutdown().unwrap();
    }
    group.finish();
}

/// A server (not serving HTTP here: its state is used directly) with one vendor and
/// `tenants` tenants, each with the tool `ecu`.
struct Fixture {
    system: actix_rt::SystemRunner,
    _app: Application,
    state: actix_web::web::Data<AppState>,
    tenants: Vec<TenantId>,
    keys: Vec<String>,
    _dir: tempfile::TempDir,
}

fn fixture(durability: Durability, tenants: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let system = actix_rt::System::new();
    let mut config = ServeConfig::new(dir.path());
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.handle_signals = false;
    config.durability = durability;
    config.admin_token = Some("bench-operator-token".into());
    let app = system.block_on(Application::build(config)).unwrap();
    let state = app.state();
    let vendor = VendorId::parse("vector").unwrap();
    let (ids, keys) = system.block_on(async {
        accounts::create_vendor(
            &state,
            NewVendor {
                vendor_id: vendor.clone(),
                vendor_name: "Vector".into(),
                contact_email: None,
                password: None,
                signing_secret: None,
            },
        )
        .await
        .unwrap();
        let (mut ids, mut keys) = (Vec::new(), Vec::new());
        for i in 0..tenants {
            let id = TenantId::parse(&format!("t{i}")).unwrap();
            let created = accounts::create_tenant(
                &state,
                &vendor,
                NewTenant {
                    tenant_id: id.clone(),
                    company_name: "Bench".into(),
                    domain: None,
                    crm_id: None,
                    custom_hosts: Vec::new(),
                },
            )
            .await
            .unwrap();
            accounts::provision(&state, &vendor, &id, package(i))
                .await
                .unwrap();
            ids.push(id);
            keys.push(created.admin_api_key);
        }
        (ids, keys)
    });
    Fixture {
        system,
        _app: app,
        state,
        tenants: ids,
        keys,
        _dir: dir,
    }
}

fn package(i: usize) -> PackageRecord {
    PackageRecord {
        package_id: format!("pkg-{i}"),
        ..test_records::package("ecu", 1_000_000, Timestamp::from_secs(1))
    }
}

/// The borrow production sends for a request without `wait_seconds` or a key.
fn borrow_msg(user: &str) -> Borrow {
    Borrow::now(BorrowRequest::parse("ecu", user, None).unwrap())
}

fn granted(outcome: Result<BorrowOutcome, TenantError>) -> Grant {
    outcome.unwrap().granted_now().expect("a seat at once")
}

fn edge(c: &mut Criterion) {
    let f = fixture(Durability::Strict, 4);
    let (state, tenant, key) = (&f.state, &f.tenants[0], &f.keys[0]);
    c.bench_function("edge/api_key_verify", |b| {
        b.iter(|| permetrix::auth::identify_key(state, black_box(key)).unwrap())
    });
    c.bench_function("edge/registry_view", |b| {
        // An active tenant's view is ready at the first poll: no runtime round trip.
        b.iter(|| {
            state
                .registry
                .view(black_box(tenant))
                .now_or_never()
                .expect("an active tenant's view is ready at once")
                .unwrap()
        })
    });
    c.bench_function("actor/status_round_trip", |b| {
        b.iter_custom(|iters| {
            f.system.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let s = state.registry.send(tenant, Status(Some("ecu".into())));
                    black_box(s.await.unwrap());
                }
                start.elapsed()
            })
        })
    });
}

/// Durable borrow+return through registry, actor and store, no HTTP: one at a time
/// (latency-bound: two group commits per cycle) and 64 cycles in flight over 16 tenants
/// (throughput).
fn core_cycles(c: &mut Criterion) {
    let mut group = c.benchmark_group("core");
    group.sample_size(20);
    for mode in [Durability::Strict, RELAXED] {
        let f = fixture(mode, 16);
        let registry = &f.state.registry;
        group.throughput(Throughput::Elements(1));
        group.bench_function(
            format!("{}/borrow_return_sequential", mode_name(mode)),
            |b| {
                b.iter_custom(|iters| {
                    f.system.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let grant = registry.send(&f.tenants[0], borrow_msg("u")).await;
                            let id = granted(grant).lease.id;
                            registry.send(&f.tenants[0], Return::of(id)).await.unwrap();
                        }
                        start.elapsed()
                    })
                })
            },
        );
        const IN_FLIGHT: usize = 64;
        group.throughput(Throughput::Elements(IN_FLIGHT as u64));
        group.bench_function(
            format!("{}/borrow_return_64_in_flight", mode_name(mode)),
            |b| {
                b.iter_custom(|iters| {
                    f.system.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let cycles = (0..IN_FLIGHT).map(|i| {
                                let tenant = &f.tenants[i % f.tenants.len()];
                                async move {
                                    let user = format!("u{i}");
                                    let grant = registry.send(tenant, borrow_msg(&user)).await;
                                    let id = granted(grant).lease.id;
                                    registry.send(tenant, Return::of(id)).await.unwrap();
                                }
                            });
                            futures_util::future::join_all(cycles).await;
                        }
                        start.elapsed()
                    })
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, group_commit, edge, core_cycles);
criterion_main!(benches);
