//! Fan-out over many tenants: `Registry::snapshots` at 1k and 10k tenants.
//!
//! - `idle_cold`: a fresh registry (just restarted): every tenant is read from storage.
//! - `idle_warm`: the same tenants again: their states are in the idle cache.
//! - `active`: every tenant has a running actor and answers through its mailbox.
//! - `baseline_idle` / `baseline_active`: the first implementation, side by side (one
//!   `join_all` with a timer per tenant; every idle tenant read from storage, in turn,
//!   on the calling thread).
//!
//! Besides criterion's wall-clock figures, each benchmark prints the process CPU time
//! per fan-out (all threads): on a shared machine wall time includes waiting for the
//! CPU, CPU time does not.
//!
//! Run: `cargo bench --bench fanout` (add `-- active/10000` to pick one).
#![allow(clippy::expect_used)]
use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_rt::SystemRunner;
use criterion::{Bencher, BenchmarkId, Criterion, criterion_group, criterion_main};
use futures_util::future::join_all;
use permetrix_actors::domain::{BorrowRequest, ProvisionRequest, TenantSnapshot, TenantState};
use permetrix_actors::messages::{Borrow, Provision, Snapshot, Status};
use permetrix_actors::metrics::NoMetrics;
use permetrix_actors::{Registry, RegistryConfig, SystemClock, TenantError};
use permetrix_storage::records::PackageRecord;
use permetrix_storage::test_records;
use permetrix_storage::{
    Durability, Money, Platform, SledConfig, SledStore, Store, TenantId, Timestamp,
};

/// Tenant counts measured; `FANOUT_BENCH_SIZES=10000` (comma-separated) picks some.
const SIZES: [usize; 2] = [1_000, 10_000];

fn sizes() -> Vec<usize> {
    match std::env::var("FANOUT_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect(),
        Err(_) => SIZES.to_vec(),
    }
}
/// Far beyond what the benchmark takes: a timeout would show as a wrong count.
const DEADLINE: Duration = Duration::from_secs(30);

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    tenants: Vec<TenantId>,
}

fn registry(store: &Arc<dyn Store>) -> Registry {
    Registry::start(
        Arc::clone(store),
        Arc::new(permetrix_storage::SoleOwner::new(Arc::clone(store))),
        Arc::new(SystemClock),
        Arc::new(NoMetrics),
        RegistryConfig::default(),
    )
}

/// `n` tenants, each with two pools and a few seats in use, written through their
/// actors (as a previous run of the server would have left them).
fn fixture(sys: &SystemRunner, n: usize) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = SledConfig::new(dir.path());
    config.durability = Durability::Relaxed {
        interval: Duration::from_millis(100),
    };
    let store: Arc<dyn Store> = Arc::new(SledStore::open(config).expect("store opens"));
    let tenants = sys.block_on(async {
        let platform = Platform::new(Arc::clone(&store));
        let seeder = registry(&store);
        let mut tenants = Vec::with_capacity(n);
        for i in 0..n {
            let id = format!("tenant-{i:05}");
            let at = Timestamp::now();
            platform
                .create_tenant(
                    &test_records::tenant(&id, at),
                    &test_records::admin_key(&id, "admin", at),
                )
                .expect("tenant written");
            let tenant = TenantId::parse(&id).expect("valid id");
            for product in ["ecu", "can"] {
                let base = test_records::package(product, 5, Timestamp::now());
                let package = PackageRecord {
                    package_id: format!("pkg-{id}-{product}"),
                    ..test_records::with_overage(base, 15, Money::from_cents(50_000))
                };
                seeder
                    .send(&tenant, Provision(ProvisionRequest { package }))
                    .await
                    .expect("provisioned");
            }
            for u in 0..(i % 7) {
                seeder
                    .send(
                        &tenant,
                        Borrow::now(
                            BorrowRequest::parse("ECU", &format!("dev{u}"), None)
                                .expect("a valid borrow"),
                        ),
                    )
                    .await
                    .expect("borrowed");
            }
            tenants.push(tenant);
        }
        seeder.shutdown();
        tenants
    });
    Fixture {
        _dir: dir,
        store,
        tenants,
    }
}

/// Runs one fan-out and checks that every tenant answered.
async fn gather(registry: &Registry, tenants: &[TenantId]) {
    let answers = registry.snapshots(tenants, DEADLINE).await;
    let answered = answers.iter().filter(|(_, a)| a.is_ok()).count();
    assert_eq!(answered, tenants.len(), "some tenants did not answer");
}

/// The first implementation of `Registry::snapshots`, kept as the baseline.
async fn baseline(registry: &Registry, tenants: &[TenantId]) {
    let until = tokio::time::Instant::now() + DEADLINE;
    let now = registry.clock().now();
    let asks = tenants.iter().map(|t| async move {
        let result: Result<TenantSnapshot, TenantError> = if registry.is_active(t) {
            match tokio::time::timeout_at(until, registry.send(t, Snapshot)).await {
                Ok(r) => r,
                Err(_) => Err(TenantError::Timeout),
            }
        } else {
            registry
                .store()
                .load_tenant(t)
                .map(|records| TenantState::from_records(t.clone(), records).snapshot(now))
                .map_err(TenantError::from)
        };
        result
    });
    let answered = join_all(asks).await.iter().filter(|a| a.is_ok()).count();
    assert_eq!(answered, tenants.len(), "some tenants did not answer");
}

/// CPU time of the whole process (every thread, exited ones included) from
/// `/proc/self/stat`, in ticks of 10 ms (USER_HZ is 100 on Linux).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Fields 14 and 15 of the file (utime, stime) are 11 and 12 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Wall and CPU time summed over every iteration criterion ran.
#[derive(Default)]
struct Meter {
    iterations: Cell<u64>,
    cpu: Cell<Duration>,
    wall: Cell<Duration>,
}

impl Meter {
    /// Times `iters` runs of `run`, each after an untimed `setup`; returns wall time.
    fn measure<S, T>(
        &self,
        iters: u64,
        mut setup: impl FnMut() -> S,
        mut run: impl FnMut(&S),
        mut teardown: impl FnMut(S) -> T,
    ) -> Duration {
        let mut wall = Duration::ZERO;
        let mut cpu = Duration::ZERO;
        for _ in 0..iters {
            let s = setup();
            let (c0, w0) = (process_cpu(), Instant::now());
            run(&s);
            wall += w0.elapsed();
            cpu += process_cpu().saturating_sub(c0);
            teardown(s);
        }
        self.iterations.set(self.iterations.get() + iters);
        self.cpu.set(self.cpu.get() + cpu);
        self.wall.set(self.wall.get() + wall);
        wall
    }

    fn report(&self, name: &str) {
        let n = self.iterations.get().max(1) as u32;
        println!(
            "{name}: {} runs, mean wall {:.2} ms, mean process CPU {:.2} ms",
            self.iterations.get(),
            (self.wall.get() / n).as_secs_f64() * 1e3,
            (self.cpu.get() / n).as_secs_f64() * 1e3,
        );
    }
}

/// One benchmark: criterion's figures plus the CPU line.
fn bench<S, T>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    n: usize,
    mut setup: impl FnMut() -> S,
    mut run: impl FnMut(&S),
    mut teardown: impl FnMut(S) -> T,
) {
    let meter = Meter::default();
    group.bench_function(BenchmarkId::new(name, n), |b: &mut Bencher<'_>| {
        b.iter_custom(|iters| meter.measure(iters, &mut setup, &mut run, &mut teardown))
    });
    meter.report(&format!("fanout/{name}/{n}"));
}

fn fanout(c: &mut Criterion) {
    let sys = actix_rt::System::new();
    let mut group = c.benchmark_group("fanout");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    for n in sizes() {
        let f = fixture(&sys, n);
        let tenants = &f.tenants;

        // A fresh registry is a restarted server: nothing active, nothing cached.
        bench(
            &mut group,
            "baseline_idle",
            n,
            || sys.block_on(async { registry(&f.store) }),
            |r| sys.block_on(baseline(r, tenants)),
            |r| r.shutdown(),
        );
        bench(
            &mut group,
            "idle_cold",
            n,
            || sys.block_on(async { registry(&f.store) }),
            |r| sys.block_on(gather(r, tenants)),
            |r| r.shutdown(),
        );

        let warm = sys.block_on(async { registry(&f.store) });
        sys.block_on(gather(&warm, tenants));
        assert_eq!(warm.idle_cached(), n);
        bench(
            &mut group,
            "idle_warm",
            n,
            || (),
            |_| sys.block_on(gather(&warm, tenants)),
            |_| (),
        );
        warm.shutdown();

        let active = sys.block_on(async { registry(&f.store) });
        sys.block_on(async {
            for t in tenants {
                active.send(t, Status(None)).await.expect("activated");
            }
        });
        assert_eq!(active.active_count(), n);
        bench(
            &mut group,
            "baseline_active",
            n,
            || (),
            |_| sys.block_on(baseline(&active, tenants)),
            |_| (),
        );
        bench(
            &mut group,
            "active",
            n,
            || (),
            |_| sys.block_on(gather(&active, tenants)),
            |_| (),
        );
        active.shutdown();
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
