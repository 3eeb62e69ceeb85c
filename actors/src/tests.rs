//! Actor-level tests: activation, durability of replies, supervision, admission.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use permetrix_storage::{SledConfig, SledStore, Store, TenantId, Timestamp};

use crate::domain::{DomainError, TenantEvent};
use crate::messages::{Return, Status};
use crate::metrics::{ActorMetrics, TenantMetrics};
use crate::test_support::{self, Pool, borrow, grant, request};
use crate::{Registry, RegistryConfig, Reply, SystemClock, TenantCx, TenantError, TenantMessage};

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
        Arc::new(permetrix_storage::SoleOwner::new(Arc::clone(&store))),
        Arc::new(SystemClock),
        Arc::new(Arc::clone(&counters)),
        RegistryConfig {
            arbiters: 2,
            mailbox_capacity: capacity,
            tenant_concurrency: crate::DEFAULT_TENANT_CONCURRENCY,
            retry_after: Duration::from_secs(1),
            ..RegistryConfig::default()
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
    let grant = grant(&f.registry, &acme, "dev1").await;
    // The reply came after durability: the lease is in the store now.
    let records = f.store.load_tenant(&acme).unwrap();
    assert_eq!(records.leases.len(), 1);
    assert_eq!(records.leases[0].id, grant.lease.id);
    f.registry
        .send(&acme, Return::of(grant.lease.id))
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
        let _ = cx.state().borrow(&request("ghost", None), now);
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

/// Blocks `tenant`'s actor, and with it its arbiter thread (see [`test_support::hold`]).
/// Send on the returned channel to release it.
async fn hold(
    f: &Fixture,
    tenant: &TenantId,
) -> (
    std::sync::mpsc::Sender<()>,
    actix_rt::task::JoinHandle<Result<(), TenantError>>,
) {
    let held = test_support::hold(&f.registry, tenant).await;
    (held.release, held.reply)
}

/// Bounded poll until `tenant`'s mailbox holds `depth` admitted messages.
async fn wait_for_depth(f: &Fixture, tenant: &TenantId, depth: usize) {
    let mut seen = 0;
    for _ in 0..100_000 {
        seen = f
            .registry
            .mailboxes()
            .iter()
            .find(|m| &m.tenant == tenant)
            .map_or(0, |m| m.depth);
        if seen == depth {
            return;
        }
        actix_rt::task::yield_now().await;
    }
    assert_eq!(seen, depth, "mailbox depth of {tenant}");
}

#[actix_rt::test]
async fn a_full_mailbox_is_refused_and_depth_returns_to_zero() {
    let f = fixture(4);
    let acme = add_tenant(&f, "acme", 100).await;
    let (release, hold) = hold(&f, &acme).await;

    let queued: Vec<_> = (0..4)
        .map(|i| {
            let reg = f.registry.clone();
            let a = acme.clone();
            actix_rt::spawn(async move { reg.send(&a, borrow(&format!("q{i}"))).await })
        })
        .collect();
    wait_for_depth(&f, &acme, 4).await;
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
    let first = grant(&f.registry, &acme, "dev1").await;
    let mut events = f.registry.subscribe(&acme).await.unwrap();
    let second = grant(&f.registry, &acme, "dev2").await;
    f.registry
        .send(&acme, Return::of(first.lease.id))
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

/// The next event, with a bound that only a failing run reaches (events come once
/// their write is durable).
async fn next_event(events: &mut tokio::sync::broadcast::Receiver<TenantEvent>) -> TenantEvent {
    tokio::time::timeout(Duration::from_secs(30), events.recv())
        .await
        .expect("no event was published")
        .unwrap()
}

/// A caller that stops waiting (its client went away) after the actor handled its
/// borrow: the borrow stays made and becomes durable, and its event still goes out,
/// because what a write owes is settled by whoever ends up holding it.
#[actix_rt::test]
async fn a_caller_that_stops_waiting_does_not_take_the_event_with_it() {
    use futures_util::FutureExt;
    let f = fixture(16);
    let acme = add_tenant(&f, "acme", 2).await;
    let mut events = f.registry.subscribe(&acme).await.unwrap();
    let mut abandoned = Box::pin(f.registry.send(&acme, borrow("gone")));
    assert!((&mut abandoned).now_or_never().is_none(), "in the mailbox");
    // Handled in order: once this answers, the borrow's answer is waiting, unread.
    let status = f.registry.send(&acme, Status(None)).await.unwrap();
    assert_eq!(status[0].borrowed, 1);
    drop(abandoned);
    let got = next_event(&mut events).await;
    assert_eq!((got.kind.as_str(), got.user.as_str()), ("borrow", "gone"));
    f.registry.shutdown();
}

/// A write nobody awaits (as the actor's own timer and returned seats send them) is
/// settled all the same: its event goes out once it is durable.
#[actix_rt::test]
async fn a_write_nobody_awaits_still_publishes_its_event() {
    let f = fixture(16);
    let acme = add_tenant(&f, "acme", 2).await;
    let mut events = f.registry.subscribe(&acme).await.unwrap();
    f.registry.post(&acme, borrow("unawaited")).unwrap();
    let got = next_event(&mut events).await;
    assert_eq!(
        (got.kind.as_str(), got.user.as_str()),
        ("borrow", "unawaited")
    );
    f.registry.shutdown();
}

/// Notes, when handled, which tenant's actor handled it (test-only).
struct Mark(&'static str, Arc<Mutex<Vec<&'static str>>>);

impl TenantMessage for Mark {
    type Reply = ();
    const KIND: &'static str = "mark";
    fn handle(self, _: &mut TenantCx<'_>) -> Reply<()> {
        self.1.lock().unwrap().push(self.0);
        Reply::ready(Ok(()))
    }
}

#[actix_rt::test]
async fn a_flooded_tenant_takes_turns_with_the_tenants_on_its_arbiter() {
    let f = fixture(1024);
    let busy = add_tenant(&f, "busy", 1).await;
    let pool = f.registry.arbiter_pool();
    let neighbour = (0..64)
        .map(|i| TenantId::parse(&format!("n{i}")).unwrap())
        .find(|t| pool.slot_of(t) == pool.slot_of(&busy))
        .expect("some tenant id lands on busy's arbiter");
    let neighbour = add_tenant(&f, neighbour.as_str(), 1).await;

    // With the arbiter thread blocked, queue a flood for `busy` and one message for its
    // neighbour; both are waiting when the thread resumes inside busy's mailbox loop.
    let (release, held) = hold(&f, &busy).await;
    let order = Arc::new(Mutex::new(Vec::new()));
    let send = |t: &TenantId, label| {
        let (reg, t, order) = (f.registry.clone(), t.clone(), Arc::clone(&order));
        actix_rt::spawn(async move { reg.send(&t, Mark(label, order)).await })
    };
    let flood_len = 40;
    let flood: Vec<_> = (0..flood_len).map(|_| send(&busy, "busy")).collect();
    wait_for_depth(&f, &busy, flood_len).await;
    let other = send(&neighbour, "neighbour");
    wait_for_depth(&f, &neighbour, 1).await;

    release.send(()).unwrap();
    held.await.unwrap().unwrap();
    other.await.unwrap().unwrap();
    for m in flood {
        m.await.unwrap().unwrap();
    }
    let order = order.lock().unwrap().clone();
    let at = order.iter().position(|l| *l == "neighbour").unwrap();
    // It did not wait for the flood to drain, only for the rest of busy's turn (of
    // which `Hold` used the first slot).
    assert!(
        at < flood_len && at < crate::overload::FAIR_TURN as usize,
        "the neighbour waited behind {at} of the flood's {flood_len} messages: {order:?}"
    );
    assert_eq!(order.len(), flood_len + 1);
    f.registry.shutdown();
}
