//! Actor-level tests: activation, durability of replies, supervision, admission.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use permetrix_storage::{SledConfig, SledStore, Store, TenantId, Timestamp};

use crate::domain::{BorrowRequest, DomainError};
use crate::messages::{Borrow, Reply, Return, Status, TenantCx, TenantMessage};
use crate::metrics::{ActorMetrics, TenantMetrics};
use crate::test_support::{self, Pool};
use crate::{Registry, RegistryConfig, SystemClock, TenantError};

#[derive(Default)]
struct Counters {
    restarts: AtomicU64,
    rejected: AtomicU64,
}

impl ActorMetrics for Arc<Counters> {
    fn for_tenant(&self, _: &TenantId) -> Arc<dyn TenantMetrics> {
        Arc::new(Arc::clone(self))
    }
}

impl TenantMetrics for Arc<Counters> {
    fn message_handled(&self, _: &'static str, _: Duration) {}
    fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::SeqCst);
    }
    fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::SeqCst);
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    registry: Registry,
    counters: Arc<Counters>,
}

fn fixture(capacity: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(SledConfig::new(dir.path())).unwrap());
    let counters = Arc::new(Counters::default());
    let registry = Registry::start(
        Arc::clone(&store),
        Arc::new(SystemClock),
        Arc::new(Arc::clone(&counters)),
        RegistryConfig {
            arbiters: 2,
            mailbox_capacity: capacity,
            retry_after: Duration::from_secs(1),
        },
    );
    Fixture {
        _dir: dir,
        store,
        registry,
        counters,
    }
}

async fn add_tenant(f: &Fixture, id: &str, seats: u32) -> TenantId {
    test_support::add_tenant(
        &f.store,
        &f.registry,
        id,
        Timestamp::now(),
        Pool::commit_only(seats),
    )
    .await
}

fn borrow(user: &str) -> Borrow {
    Borrow(BorrowRequest {
        tool: "ECU".into(),
        user: user.into(),
        lease_seconds: None,
    })
}

#[actix_rt::test]
async fn unknown_tenants_are_refused_without_activation() {
    let f = fixture(16);
    let ghost = TenantId::parse("ghost").unwrap();
    assert!(matches!(
        f.registry.send(&ghost, Status(None)).await,
        Err(TenantError::UnknownTenant)
    ));
    assert_eq!(f.registry.active_count(), 0);
    assert!(!f.registry.exists(&ghost).unwrap());
}

#[actix_rt::test]
async fn acknowledged_borrows_are_in_the_store() {
    let f = fixture(16);
    let acme = add_tenant(&f, "acme", 2).await;
    let grant = f.registry.send(&acme, borrow("dev1")).await.unwrap();
    // The reply came after durability: the lease is in the store now.
    let records = f.store.load_tenant(&acme).unwrap();
    assert_eq!(records.leases.len(), 1);
    assert_eq!(records.leases[0].id, grant.lease.id);
    f.registry
        .send(&acme, Return(grant.lease.id))
        .await
        .unwrap();
    assert!(f.store.load_tenant(&acme).unwrap().leases.is_empty());
    f.registry.shutdown();
}

#[actix_rt::test]
async fn concurrent_borrows_never_exceed_the_pool() {
    let f = fixture(1024);
    let acme = add_tenant(&f, "acme", 10).await;
    let asks = (0..200).map(|i| f.registry.send(&acme, borrow(&format!("u{i}"))));
    let results = futures_util::future::join_all(asks).await;
    let granted = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(TenantError::Domain(DomainError::NoSeats { .. }))))
        .count();
    assert_eq!((granted, refused), (10, 190));
    let status = f.registry.send(&acme, Status(None)).await.unwrap();
    assert_eq!(status[0].borrowed, 10);
    assert_eq!(f.store.load_tenant(&acme).unwrap().leases.len(), 10);
    f.registry.shutdown();
}

/// A message that panics inside the actor (test-only: no production path panics).
struct Explode;

impl TenantMessage for Explode {
    type Reply = ();
    const KIND: &'static str = "explode";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<()> {
        // Leave memory inconsistent first, as a real bug would.
        let now = cx.now();
        let _ = cx.state().borrow(
            &BorrowRequest {
                tool: "ECU".into(),
                user: "ghost".into(),
                lease_seconds: None,
            },
            now,
        );
        panic!("injected fault");
    }
}

#[actix_rt::test]
async fn a_panicking_actor_restarts_with_its_stored_state_and_others_do_not_notice() {
    let f = fixture(16);
    let acme = add_tenant(&f, "acme", 3).await;
    let globex = add_tenant(&f, "globex", 3).await;
    f.registry.send(&acme, borrow("dev1")).await.unwrap();
    f.registry.send(&globex, borrow("dev2")).await.unwrap();

    let err = f.registry.send(&acme, Explode).await.unwrap_err();
    assert!(matches!(err, TenantError::Unavailable(_)), "{err:?}");

    // The restarted actor serves from stored state: one borrow, not the phantom one.
    let status = f.registry.send(&acme, Status(None)).await.unwrap();
    assert_eq!(status[0].borrowed, 1);
    assert_eq!(f.counters.restarts.load(Ordering::SeqCst), 1);
    let other = f.registry.send(&globex, Status(None)).await.unwrap();
    assert_eq!(other[0].borrowed, 1);
    f.registry.shutdown();
}

/// Blocks the actor until released (test-only), to fill its mailbox.
struct Hold(std::sync::mpsc::Receiver<()>, std::sync::mpsc::Sender<()>);

impl TenantMessage for Hold {
    type Reply = ();
    const KIND: &'static str = "hold";
    fn handle(self, _: &mut TenantCx<'_>) -> Reply<()> {
        let _ = self.1.send(());
        let _ = self.0.recv();
        Reply::ready(Ok(()))
    }
}

#[actix_rt::test]
async fn a_full_mailbox_is_refused_and_depth_returns_to_zero() {
    let f = fixture(4);
    let acme = add_tenant(&f, "acme", 100).await;
    let (release, held) = std::sync::mpsc::channel();
    let (started_tx, started) = std::sync::mpsc::channel();
    let reg = f.registry.clone();
    let a = acme.clone();
    let hold = actix_rt::spawn(async move { reg.send(&a, Hold(held, started_tx)).await });
    // Bounded poll until the actor is inside Hold.
    let mut inside = false;
    for _ in 0..100_000 {
        if started.try_recv().is_ok() {
            inside = true;
            break;
        }
        actix_rt::task::yield_now().await;
    }
    assert!(inside, "the actor never picked up Hold");

    let queued: Vec<_> = (0..4)
        .map(|i| {
            let reg = f.registry.clone();
            let a = acme.clone();
            actix_rt::spawn(async move { reg.send(&a, borrow(&format!("q{i}"))).await })
        })
        .collect();
    // Bounded poll until all four are admitted.
    let mut depth = 0;
    for _ in 0..100_000 {
        depth = f.registry.mailboxes()[0].depth;
        if depth == 4 {
            break;
        }
        actix_rt::task::yield_now().await;
    }
    assert_eq!(depth, 4);
    assert!(matches!(
        f.registry.send(&acme, Status(None)).await,
        Err(TenantError::Overloaded { .. })
    ));
    assert_eq!(f.counters.rejected.load(Ordering::SeqCst), 1);

    release.send(()).unwrap();
    hold.await.unwrap().unwrap();
    for q in queued {
        q.await.unwrap().unwrap();
    }
    assert_eq!(f.registry.mailboxes()[0].depth, 0);
    f.registry.shutdown();
}

#[actix_rt::test]
async fn a_subscriber_that_joins_after_activation_sees_later_events_only() {
    let f = fixture(16);
    let acme = add_tenant(&f, "acme", 2).await;
    // Events before any subscription go nowhere (and allocate no channel).
    let first = f.registry.send(&acme, borrow("dev1")).await.unwrap();
    let mut events = f.registry.subscribe(&acme).unwrap();
    let second = f.registry.send(&acme, borrow("dev2")).await.unwrap();
    f.registry
        .send(&acme, Return(first.lease.id))
        .await
        .unwrap();
    let got = events.recv().await.unwrap();
    assert_eq!(
        (got.kind.as_str(), got.id),
        ("borrow", Some(second.lease.id))
    );
    let got = events.recv().await.unwrap();
    assert_eq!(
        (got.kind.as_str(), got.id),
        ("return", Some(first.lease.id))
    );
    assert!(
        events.try_recv().is_err(),
        "nothing from before the subscription"
    );
    f.registry.shutdown();
}
