//! Recovery time after a crash, for a store of 1,000,000 borrow records.
//!
//! ```sh
//! cargo bench --bench recovery
//! PERMETRIX_RECOVERY_RECORDS=200000 PERMETRIX_RECOVERY_TENANTS=200 cargo bench --bench recovery
//! ```
//!
//! A child process writes the records through the storage crate (strict durability,
//! every write acknowledged) and exits without closing the store: a crash. Each
//! measurement runs in a fresh child that opens the store the way the server does
//! (`ResilientStore::open`: sled replays its log; nothing is served before this ends),
//! then rebuilds every tenant's state (`load_tenant` + `TenantState::from_records`, what
//! activating all tenants costs), then copies the whole store as a backup would (the
//! time writers wait on the snapshot gate), and again exits without closing. The store
//! is kept under the target directory and reused by later runs.
//!
//! Without `--bench` (as under `cargo test --benches`) it runs a small smoke version.
// A benchmark stops at the first thing that goes wrong, with the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use permetrix_actors::domain::TenantState;
use permetrix_storage::records::{LeaseRecord, PackageRecord};
use permetrix_storage::snapshot::SnapshotWriter;
use permetrix_storage::test_records;
use permetrix_storage::{
    BorrowId, Durability, Money, ResilientStore, SledConfig, Store, TenantId, TenantMutation,
    Timestamp,
};

const ROLE: &str = "PERMETRIX_RECOVERY_ROLE";
const RUNS: usize = 3;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn tenant(i: usize) -> TenantId {
    TenantId::parse(&format!("tenant-{i:05}")).expect("valid tenant id")
}

fn open(dir: &Path) -> ResilientStore {
    let mut config = SledConfig::new(dir);
    config.durability = Durability::Strict;
    ResilientStore::open(config).expect("the store opens")
}

/// Child: writes `records` leases over `tenants` tenants, then "crashes".
fn generate(dir: &Path, records: usize, tenants: usize) {
    let store = open(dir);
    let per_tenant = records / tenants;
    let now = Timestamp::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    for t in 0..tenants {
        let id = tenant(t);
        let seats = per_tenant as u32;
        let base = test_records::package("ecu", seats, now);
        let package = PackageRecord {
            package_id: format!("pkg-{t}"),
            product_name: "ECU Development Suite".into(),
            ..test_records::with_overage(base, seats, Money::from_cents(50_000))
        };
        let mut tickets = vec![
            store
                .append(
                    &id,
                    permetrix_storage::Epoch::SOLE,
                    &[TenantMutation::PutPackage(package)],
                )
                .expect("package written"),
        ];
        let leases: Vec<TenantMutation> = (0..per_tenant)
            .map(|i| {
                TenantMutation::PutLease(LeaseRecord {
                    id: BorrowId::random(),
                    product_id: "ecu".into(),
                    user: format!("dev{i}@customer-{t}.example"),
                    borrowed_at: now,
                    lease_expires_at: Timestamp::from_millis(now.millis() + 3_600_000),
                    lease_seconds: 3600,
                    is_overage: false,
                    offline: false,
                })
            })
            .collect();
        for batch in leases.chunks(100) {
            tickets.push(
                store
                    .append(&id, permetrix_storage::Epoch::SOLE, batch)
                    .expect("leases written"),
            );
        }
        rt.block_on(async {
            for ticket in tickets {
                ticket.wait().await.expect("durable");
            }
        });
    }
    // Acknowledged and durable; now die without closing anything.
    std::mem::forget(store);
    println!("generated");
    std::process::exit(0);
}

/// Child: one recovery, reported as `open_ms rebuild_ms leases snapshot_ms entries hwm_kb`.
fn measure(dir: &Path, tenants: usize) {
    let started = Instant::now();
    let store = Arc::new(open(dir));
    let opened = started.elapsed();

    let started = Instant::now();
    let mut leases = 0usize;
    let mut states = Vec::with_capacity(tenants);
    for t in 0..tenants {
        let id = tenant(t);
        let records = store.load_tenant(&id).expect("tenant loads");
        let state = TenantState::from_records(id, records);
        leases += state.lease_count();
        states.push(state);
    }
    let rebuilt = started.elapsed();

    let started = Instant::now();
    let mut sink = std::io::sink();
    let mut w = SnapshotWriter::new(&mut sink).expect("sink");
    let entries = store.export(&mut w).expect("export");
    let snapshot = started.elapsed();

    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .unwrap_or_else(|| "0".into());
    println!(
        "{} {} {} {} {} {}",
        opened.as_millis(),
        rebuilt.as_millis(),
        leases,
        snapshot.as_millis(),
        entries,
        hwm
    );
    std::io::stdout().flush().ok();
    std::mem::forget(states);
    std::mem::forget(store);
    std::process::exit(0);
}

fn child(role: &str, dir: &Path, records: usize, tenants: usize) -> String {
    let out = Command::new(std::env::current_exe().expect("own path"))
        .env(ROLE, role)
        .env("PERMETRIX_RECOVERY_DIR", dir)
        .env("PERMETRIX_RECOVERY_RECORDS", records.to_string())
        .env("PERMETRIX_RECOVERY_TENANTS", tenants.to_string())
        .output()
        .expect("the child runs");
    assert!(
        out.status.success(),
        "{role} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let records = env_usize("PERMETRIX_RECOVERY_RECORDS", 1_000_000);
    let tenants = env_usize("PERMETRIX_RECOVERY_TENANTS", 1_000);
    if let Ok(role) = std::env::var(ROLE) {
        let dir = PathBuf::from(std::env::var("PERMETRIX_RECOVERY_DIR").expect("dir"));
        match role.as_str() {
            "generate" => generate(&dir, records, tenants),
            _ => measure(&dir, tenants),
        }
        return;
    }

    let full = std::env::args().any(|a| a == "--bench");
    let (records, tenants) = if full { (records, tenants) } else { (2_000, 4) };
    let scratch;
    let dir = if full {
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("recovery-{records}-{tenants}"))
    } else {
        scratch = tempfile::tempdir().expect("temp dir");
        scratch.path().join("store")
    };
    let done = dir.join("generated.ok");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let started = Instant::now();
        child("generate", &dir, records, tenants);
        std::fs::write(&done, b"").expect("marker");
        println!(
            "generated {records} borrow records over {tenants} tenants in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }

    let mut open_ms = Vec::new();
    let mut rebuild_ms = Vec::new();
    let mut snapshot_ms = Vec::new();
    let mut hwm_kb = Vec::new();
    for _ in 0..if full { RUNS } else { 1 } {
        let line = child("measure", &dir, records, tenants);
        let f: Vec<u64> = line
            .split_whitespace()
            .map(|x| x.parse().expect("a number"))
            .collect();
        assert_eq!(
            f[2] as usize,
            records / tenants * tenants,
            "every lease recovered"
        );
        open_ms.push(f[0]);
        rebuild_ms.push(f[1]);
        snapshot_ms.push(f[3]);
        hwm_kb.push(f[5]);
    }
    let total: Vec<u64> = open_ms
        .iter()
        .zip(&rebuild_ms)
        .map(|(a, b)| a + b)
        .collect();
    println!(
        "recovery of {records} borrow records ({tenants} tenants, {:.0} MiB on disk), median of {} crash restarts:\n  \
         open (sled log replay; readiness waits for this): {} ms  (runs: {open_ms:?})\n  \
         rebuild every tenant's state:                     {} ms  (runs: {rebuild_ms:?})\n  \
         open + rebuild:                                   {} ms  ({:.1} µs per record)\n  \
         consistent snapshot of everything (writers wait): {} ms  (runs: {snapshot_ms:?})\n  \
         peak memory of the recovering process:            {} MiB",
        dir_size(&dir) as f64 / (1024.0 * 1024.0),
        open_ms.len(),
        median(open_ms.clone()),
        median(rebuild_ms.clone()),
        median(total.clone()),
        Duration::from_millis(median(total)).as_secs_f64() * 1e6 / records as f64,
        median(snapshot_ms.clone()),
        median(hwm_kb) / 1024
    );
}
