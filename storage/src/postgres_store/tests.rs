//! The PostgreSQL store against a real server ([`PgCluster`]): the conformance suite,
//! group commit, forks, migrations, snapshots. Ownership and fencing are in
//! `tests_ownership.rs`.
use std::fs::File;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::backend::{PlatformBackend, PlatformKey, Table};
use crate::conformance::{self, put};
use crate::snapshot::SnapshotWriter;
use crate::test_records::lease;
use crate::test_support::postgres::PgCluster;
use crate::{Acquisition, FlushReport, Ownership, SledConfig, SledStore, TenantMutation};

/// A fresh database of the shared test server, or `None` if the test is skipped.
pub(super) fn database(test: &str) -> Option<String> {
    Some(PgCluster::shared_or_skip(test)?.database(test))
}

pub(super) fn config(advertise: &str, ttl: Duration) -> PgConfig {
    PgConfig {
        lease_ttl: ttl,
        ..PgConfig::new(advertise)
    }
}

pub(super) fn connect(url: &str) -> PgStore {
    PgStore::connect(url, PgConfig::new("127.0.0.1:9")).unwrap()
}

pub(super) fn tenant(id: &str) -> TenantId {
    TenantId::parse(id).unwrap()
}

/// Acquires `id` (it must be free) and returns the epoch.
pub(super) fn acquire(store: &PgStore, id: &str) -> Epoch {
    match store.acquire(&tenant(id)).unwrap() {
        Acquisition::Acquired { epoch, .. } => epoch,
        Acquisition::OwnedBy(b) => panic!("{id} is owned by {b:?}"),
    }
}

/// Plain SQL beside the store under test (its own thread and connections).
pub(super) struct Sql {
    pool: Pool,
    _runtime: Runtime,
}

impl Sql {
    pub(super) fn new(url: &str) -> Self {
        let runtime = Runtime::start().unwrap();
        let connector = Arc::new(Connector::new(url, Durability::Strict).unwrap());
        Sql {
            pool: Pool::new(connector, runtime.handle().clone(), 2),
            _runtime: runtime,
        }
    }

    /// A connection of its own (to hold a lock across calls).
    pub(super) fn conn(&self) -> pool::Pooled<'_> {
        self.pool.get().unwrap()
    }

    pub(super) fn run(&self, sql: &str) {
        self.conn().batch_now(sql, "test SQL").unwrap();
    }

    /// Backends of this database waiting for a lock.
    pub(super) fn lock_waiters(&self) -> i64 {
        self.conn()
            .query_now(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE wait_event_type = 'Lock' AND datname = current_database()",
                &[],
                "test SQL",
            )
            .unwrap()[0]
            .get(0)
    }
}

/// Polls `done` every few milliseconds until it holds; fails after `limit`.
pub(super) fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test]
async fn every_mutation_kind_round_trips() {
    let Some(url) = database("every_mutation_kind_round_trips") else {
        return;
    };
    let store = connect(&url);
    let epoch = acquire(&store, "acme");
    conformance::every_mutation_kind_round_trips(&store, epoch).await;
}

#[tokio::test]
async fn ledger_and_usage_page() {
    let Some(url) = database("ledger_and_usage_page") else {
        return;
    };
    let store = connect(&url);
    let epoch = acquire(&store, "acme");
    conformance::ledger_and_usage_page(&store, epoch).await;
}

#[tokio::test]
async fn outbox_reads_in_order() {
    let Some(url) = database("outbox_reads_in_order") else {
        return;
    };
    let store = connect(&url);
    let epoch = acquire(&store, "acme");
    conformance::outbox_reads_in_order(&store, epoch).await;
}

#[tokio::test]
async fn requests_are_found_and_replaced() {
    let Some(url) = database("requests_are_found_and_replaced") else {
        return;
    };
    let store = connect(&url);
    let epoch = acquire(&store, "acme");
    conformance::requests_are_found_and_replaced(&store, epoch).await;
}

#[tokio::test]
async fn platform_records_behave_and_raise_the_version() {
    let Some(url) = database("platform_records_behave") else {
        return;
    };
    let store = connect(&url);
    let before = store.platform_version().unwrap();
    conformance::platform_records_behave(&store).await;
    // Three batches committed, one refused.
    assert_eq!(store.platform_version().unwrap(), before + 3);
}

#[tokio::test]
async fn a_tenant_reads_its_own_writes_before_they_are_awaited() {
    let Some(url) = database("reads_own_writes") else {
        return;
    };
    let store = connect(&url);
    let acme = tenant("acme");
    let epoch = acquire(&store, "acme");
    let ticket = store
        .append(
            &acme,
            epoch,
            &[TenantMutation::PutMoreRequest(conformance::request(
                "acme.01",
            ))],
        )
        .unwrap();
    assert!(store.more_request(&acme, "acme.01").unwrap().is_some());
    ticket.wait().await.unwrap();
}

#[derive(Default)]
struct Batches(Mutex<Vec<u64>>);

impl FlushObserver for Batches {
    fn flushed(&self, report: FlushReport) {
        assert!(report.ok);
        self.0.lock().unwrap().push(report.batch_size);
    }
}

/// Two batches are held in flight (their fences wait for row locks the test holds);
/// everything written meanwhile, by 48 tenants, commits as the third batch.
#[tokio::test]
async fn many_tenants_writes_share_one_batch() {
    let Some(url) = database("many_tenants_share_a_batch") else {
        return;
    };
    let batches = Arc::new(Batches::default());
    let store = PgStore::connect(
        &url,
        PgConfig {
            observer: Some(batches.clone()),
            ..PgConfig::new("127.0.0.1:9")
        },
    )
    .unwrap();
    let ids: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
    let epochs: Vec<Epoch> = ids.iter().map(|id| acquire(&store, id)).collect();
    let sql = Sql::new(&url);
    let locker = sql.conn();
    locker
        .batch_now(
            "BEGIN; SELECT 1 FROM tenant_owner WHERE tenant IN ('t0', 't1') FOR UPDATE",
            "locking",
        )
        .unwrap();
    let write = |i: usize| {
        store
            .append(
                &tenant(&ids[i]),
                epochs[i],
                &[TenantMutation::PutLease(lease("ecu"))],
            )
            .unwrap()
    };
    let mut tickets = vec![write(0)];
    wait_until("the first batch waits", Duration::from_secs(10), || {
        sql.lock_waiters() == 1
    });
    tickets.push(write(1));
    wait_until("the second batch waits", Duration::from_secs(10), || {
        sql.lock_waiters() == 2
    });
    tickets.extend((2..50).map(write));
    locker.batch_now("COMMIT", "unlocking").unwrap();
    for t in tickets {
        t.wait().await.unwrap();
    }
    let mut sizes = batches.0.lock().unwrap().clone();
    sizes.sort();
    assert_eq!(sizes, vec![1, 1, 48]);
    for id in &ids {
        assert_eq!(store.load_tenant(&tenant(id)).unwrap().leases.len(), 1);
    }
}

#[tokio::test]
async fn a_duplicate_ledger_sequence_is_a_fork_and_poisons_the_tenant_until_loaded() {
    let Some(url) = database("a_duplicate_sequence_is_a_fork") else {
        return;
    };
    let store = connect(&url);
    let acme = tenant("acme");
    let epoch = acquire(&store, "acme");
    let charge = |seq| TenantMutation::AppendCharge(conformance::charge(seq));
    store
        .append(&acme, epoch, &[charge(1)])
        .unwrap()
        .wait()
        .await
        .unwrap();
    // Against the stored ledger, and within one write: never an overwrite.
    for fork in [vec![charge(1)], vec![charge(2), charge(2)]] {
        let err = store
            .append(&acme, epoch, &fork)
            .unwrap()
            .wait()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("forked"), "{err}");
        let refused = store.append(&acme, epoch, &[charge(3)]).err().unwrap();
        assert!(refused.to_string().contains("loaded again"), "{refused}");
        assert_eq!(
            store.load_tenant(&acme).unwrap().ledger_head.unwrap().hash,
            [1; 32]
        );
    }
    store
        .append(&acme, epoch, &[charge(2)])
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(store.charges(&acme, 0, 10).unwrap().len(), 2);
}

#[tokio::test]
async fn a_batch_cut_off_fails_its_writers_and_the_tenant_waits_for_a_load() {
    let Some(url) = database("a_batch_cut_off") else {
        return;
    };
    let store = connect(&url);
    let acme = tenant("acme");
    let epoch = acquire(&store, "acme");
    let sql = Sql::new(&url);
    let locker = sql.conn();
    locker
        .batch_now("BEGIN; SELECT 1 FROM tenant_owner FOR UPDATE", "locking")
        .unwrap();
    let first = store
        .append(&acme, epoch, &[TenantMutation::PutLease(lease("a"))])
        .unwrap();
    wait_until("the batch waits", Duration::from_secs(10), || {
        sql.lock_waiters() == 1
    });
    let queued = store
        .append(&acme, epoch, &[TenantMutation::PutLease(lease("b"))])
        .unwrap();
    sql.run(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE wait_event_type = 'Lock' AND datname = current_database()",
    );
    for ticket in [first, queued] {
        let err = ticket.wait().await.unwrap_err();
        assert!(matches!(err, StorageError::FlushFailed(_)), "{err}");
    }
    locker.batch_now("ROLLBACK", "unlocking").unwrap();
    assert!(
        store
            .append(&acme, epoch, &[TenantMutation::PutLease(lease("c"))])
            .is_err()
    );
    assert!(store.load_tenant(&acme).unwrap().leases.is_empty());
    store
        .append(&acme, epoch, &[TenantMutation::PutLease(lease("d"))])
        .unwrap()
        .wait()
        .await
        .unwrap();
}

#[test]
fn the_schema_is_created_once_and_a_newer_one_is_refused() {
    let Some(url) = database("migrations") else {
        return;
    };
    drop(connect(&url));
    drop(connect(&url));
    let sql = Sql::new(&url);
    let versions: Vec<i32> = sql
        .conn()
        .query_now("SELECT version FROM schema_version", &[], "test SQL")
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![schema::LATEST]);
    sql.run("INSERT INTO schema_version (version) VALUES (99)");
    let err = PgStore::connect(&url, PgConfig::new("x"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("schema version 99") && err.contains(&format!("up to {}", schema::LATEST)),
        "{err}"
    );
    assert!(err.contains("run the permetrix release"), "{err}");
}

#[tokio::test]
async fn a_snapshot_restores_into_postgresql_and_into_sled() {
    let Some(source) = database("snapshot_source") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap");
    let acme = tenant("acme");
    let store = connect(&source);
    let epoch = acquire(&store, "acme");
    conformance::every_mutation_kind_round_trips(&store, epoch).await;
    store
        .platform_apply(&[
            put(Table::ApiKeys, PlatformKey::scoped("acme", "k1"), b"key"),
            put(Table::Vendors, PlatformKey::new("vector"), b"vendor"),
        ])
        .unwrap();
    let expected = store.load_tenant(&acme).unwrap();
    {
        let mut out = File::create(&file).unwrap();
        let mut w = SnapshotWriter::new(&mut out).unwrap();
        w.file("server.key", b"not in the database").unwrap();
        assert!(store.export(&mut w).unwrap() > 10);
        w.finish().unwrap();
    }
    let same = |loaded: crate::TenantRecords| {
        assert_eq!(loaded.packages, expected.packages);
        assert_eq!(loaded.leases, expected.leases);
        assert_eq!(loaded.spend, expected.spend);
        assert_eq!(loaded.idempotency, expected.idempotency);
        assert_eq!(loaded.ledger_head, expected.ledger_head);
        assert_eq!(loaded.usage_head, expected.usage_head);
    };

    let target = database("snapshot_target").unwrap();
    let restored = PgStore::restore(&target, &file).unwrap();
    assert_eq!(restored.skipped_files, vec!["server.key".to_owned()]);
    let copy = connect(&target);
    same(copy.load_tenant(&acme).unwrap());
    assert_eq!(
        copy.platform_get(Table::ApiKeys, PlatformKey::scoped("acme", "k1"))
            .unwrap(),
        Some(b"key".to_vec())
    );
    assert_eq!(copy.charges(&acme, 0, 10).unwrap().len(), 2);
    let err = PgStore::restore(&target, &file).unwrap_err();
    assert!(
        err.to_string().contains("already holds permetrix data"),
        "{err}"
    );

    // The same file brings back a sled store, and a sled store's backup moves in.
    let sled_dir = dir.path().join("sled");
    SledStore::restore(&file, &sled_dir).unwrap();
    let sled = SledStore::open(SledConfig::new(&sled_dir)).unwrap();
    same(sled.load_tenant(&acme).unwrap());
    let from_sled = dir.path().join("from-sled");
    {
        let mut out = File::create(&from_sled).unwrap();
        let mut w = SnapshotWriter::new(&mut out).unwrap();
        sled.export(&mut w).unwrap();
        w.finish().unwrap();
    }
    let moved = database("snapshot_moved_in").unwrap();
    PgStore::restore(&moved, &from_sled).unwrap();
    let moved = connect(&moved);
    same(moved.load_tenant(&acme).unwrap());
    assert_eq!(
        moved
            .platform_get(Table::Vendors, PlatformKey::new("vector"))
            .unwrap(),
        Some(b"vendor".to_vec())
    );
}
