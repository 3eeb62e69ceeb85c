//! Actor-level tests of ownership (`SCALE-OUT.md`): single-flight activation, fenced
//! writes, the lease watchdog, passivation and leaving, against a test [`Ownership`]
//! over a store that fences stale epochs as a shared store does.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use permetrix_storage::{
    Acquisition, Broker, Epoch, Location, Ownership, StorageError, Store, TenantId, Timestamp,
};

use crate::domain::IdempotencyKey;
use crate::messages::{Borrow, BorrowOutcome, ExpireDue, Status};
use crate::metrics::{ActorMetrics, NoMetrics, OwnershipEvent, TenantMetrics};
use crate::test_support::{Flaky, Pool, add_tenant, borrow, hold, register_tenant, request, until};
use crate::{ManualClock, Registry, RegistryConfig, Route, TenantError};

const START: Timestamp = Timestamp::from_secs(1_800_000_000);
const IDLE: Duration = Duration::from_secs(300);

/// A gate blocking threads that call [`Gate::pass`] while it is closed.
#[derive(Default)]
struct Gate {
    closed: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    fn set_closed(&self, closed: bool) {
        *self.closed.lock().unwrap() = closed;
        self.changed.notify_all();
    }

    fn pass(&self) {
        let mut closed = self.closed.lock().unwrap();
        while *closed {
            closed = self.changed.wait(closed).unwrap();
        }
    }
}

/// Ownership as a shared store gives it: each acquisition raises the tenant's epoch in
/// the store (so the previous owner's writes are fenced); tenants can be said to be
/// owned by another broker; the lease can be lost. Every call is logged.
struct TestOwner {
    store: Arc<Flaky>,
    log: Mutex<Vec<String>>,
    acquisitions: AtomicUsize,
    acquire_gate: Gate,
    release_gate: Gate,
    lease: AtomicBool,
    elsewhere: Mutex<HashMap<TenantId, Broker>>,
}

impl TestOwner {
    fn new(store: Arc<Flaky>) -> Self {
        TestOwner {
            store,
            log: Mutex::new(Vec::new()),
            acquisitions: AtomicUsize::new(0),
            acquire_gate: Gate::default(),
            release_gate: Gate::default(),
            lease: AtomicBool::new(true),
            elsewhere: Mutex::new(HashMap::new()),
        }
    }

    fn note(&self, what: String) {
        self.log.lock().unwrap().push(what);
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn count(&self, prefix: &str) -> usize {
        self.log().iter().filter(|l| l.starts_with(prefix)).count()
    }

    /// Another broker acquires `tenant` (its epoch moves on).
    fn taken_over(&self, tenant: &TenantId) -> Epoch {
        let mut epochs = self.store.epochs.lock().unwrap();
        let next = Epoch::new(epochs.get(tenant).map_or(1, |e| e.get() + 1));
        epochs.insert(tenant.clone(), next);
        next
    }
}

impl Ownership for TestOwner {
    fn locate(&self, tenant: &TenantId) -> Result<Location, StorageError> {
        Ok(match self.elsewhere.lock().unwrap().get(tenant) {
            Some(broker) => Location::Remote(broker.clone()),
            None => Location::Unowned,
        })
    }

    fn acquire(&self, tenant: &TenantId) -> Result<Acquisition, StorageError> {
        self.acquire_gate.pass();
        self.acquisitions.fetch_add(1, Ordering::SeqCst);
        if let Some(broker) = self.elsewhere.lock().unwrap().get(tenant) {
            return Ok(Acquisition::OwnedBy(broker.clone()));
        }
        let epoch = self.taken_over(tenant);
        self.note(format!("acquire {tenant}@{epoch}"));
        Ok(Acquisition::Acquired {
            epoch,
            records: Box::new(self.store.load_tenant(tenant)?),
        })
    }

    fn release(&self, tenant: &TenantId, epoch: Epoch) -> Result<(), StorageError> {
        self.release_gate.pass();
        self.note(format!("release {tenant}@{epoch}"));
        Ok(())
    }

    fn lease_holds(&self) -> bool {
        self.lease.load(Ordering::SeqCst)
    }

    fn rejoin(&self) -> Result<(), StorageError> {
        self.note("rejoin".into());
        self.lease.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn leave(&self) -> Result<(), StorageError> {
        self.note("leave".into());
        Ok(())
    }
}

/// Counts ownership events.
#[derive(Default)]
struct Events(Mutex<Vec<OwnershipEvent>>);

impl Events {
    fn count(&self, event: OwnershipEvent) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| **e == event)
            .count()
    }
}

impl ActorMetrics for Events {
    fn for_tenant(&self, _: &TenantId) -> Arc<dyn TenantMetrics> {
        Arc::new(NoMetrics)
    }
    fn ownership(&self, event: OwnershipEvent) {
        self.0.lock().unwrap().push(event);
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    owner: Arc<TestOwner>,
    events: Arc<Events>,
    clock: ManualClock,
    registry: Registry,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let flaky = Arc::new(Flaky::open(dir.path()));
    let store: Arc<dyn Store> = flaky.clone();
    let owner = Arc::new(TestOwner::new(flaky));
    let events = Arc::new(Events::default());
    let clock = ManualClock::new(START);
    let registry = Registry::start(
        Arc::clone(&store),
        owner.clone(),
        Arc::new(clock.clone()),
        events.clone(),
        RegistryConfig {
            arbiters: 2,
            idle_passivate: Some(IDLE),
            shared_store: true,
            ..RegistryConfig::default()
        },
    );
    Fixture {
        _dir: dir,
        store,
        owner,
        events,
        clock,
        registry,
    }
}

async fn with_pool(f: &Fixture, id: &str, seats: u32) -> TenantId {
    add_tenant(&f.store, &f.registry, id, START, Pool::commit_only(seats)).await
}

async fn borrowed(f: &Fixture, tenant: &TenantId) -> u32 {
    f.registry.send(tenant, Status(None)).await.unwrap()[0].borrowed
}

#[actix_rt::test]
async fn concurrent_first_requests_share_one_acquisition() {
    let f = fixture();
    let acme = register_tenant(&f.store, "acme", START).await;
    f.owner.acquire_gate.set_closed(true);
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let (registry, tenant) = (f.registry.clone(), acme.clone());
            actix_rt::spawn(async move { registry.send(&tenant, Status(None)).await })
        })
        .collect();
    until("every request waits for the one activation", || {
        f.registry.waiting_for_activation(&acme) == 20
    })
    .await;
    f.owner.acquire_gate.set_closed(false);
    for r in requests {
        r.await.unwrap().unwrap();
    }
    assert_eq!(f.owner.acquisitions.load(Ordering::SeqCst), 1);
    assert_eq!(f.events.count(OwnershipEvent::Acquired), 1);
    assert!(f.registry.is_active(&acme));
    f.registry.shutdown();
}

#[actix_rt::test]
async fn a_tenant_owned_elsewhere_is_routed_there_and_never_activated() {
    let f = fixture();
    let acme = register_tenant(&f.store, "acme", START).await;
    let other = Broker {
        node: "m2:1".into(),
        machine_id: Some("m2".into()),
        address: "10.0.0.2:8000".into(),
    };
    f.owner
        .elsewhere
        .lock()
        .unwrap()
        .insert(acme.clone(), other.clone());
    assert_eq!(f.registry.route(&acme).await.unwrap(), Route::Remote(other));
    let err = f.registry.send(&acme, Status(None)).await.unwrap_err();
    assert!(matches!(err, TenantError::Elsewhere(_)), "{err:?}");
    assert!(!f.registry.is_active(&acme));
    let unknown = TenantId::parse("nobody").unwrap();
    assert!(matches!(
        f.registry.route(&unknown).await,
        Err(TenantError::UnknownTenant)
    ));
    // One look-up per request; none for a tenant that does not exist.
    assert_eq!(f.owner.acquisitions.load(Ordering::SeqCst), 2);
    f.registry.shutdown();
}

#[actix_rt::test]
async fn a_fenced_write_stops_the_actor_and_the_next_request_acquires_again() {
    let f = fixture();
    let acme = with_pool(&f, "acme", 3).await;
    f.registry.send(&acme, borrow("a")).await.unwrap();
    // Another broker acquires acme: this broker's next write is fenced.
    f.owner.taken_over(&acme);
    let err = f.registry.send(&acme, borrow("b")).await.unwrap_err();
    assert!(
        matches!(err, TenantError::Storage(StorageError::Fenced { .. })),
        "{err:?}"
    );
    assert_eq!(f.events.count(OwnershipEvent::Fenced), 1);
    assert!(!f.registry.is_active(&acme), "the fenced actor stopped");
    f.registry.evict_stopped();
    assert_eq!(f.registry.active_count(), 0);
    // The next request acquires again and sees the store, not the fenced memory (where
    // "b" had taken a seat before its write was refused).
    assert_eq!(borrowed(&f, &acme).await, 1);
    assert_eq!(f.owner.acquisitions.load(Ordering::SeqCst), 2);
    f.registry.send(&acme, borrow("c")).await.unwrap();
    assert_eq!(borrowed(&f, &acme).await, 2);
    f.registry.shutdown();
}

#[actix_rt::test]
async fn a_lost_lease_stops_every_actor_answers_nothing_from_memory_and_registers_again() {
    let f = fixture();
    let acme = with_pool(&f, "acme", 3).await;
    let globex = with_pool(&f, "globex", 3).await;
    f.registry.send(&acme, borrow("a")).await.unwrap();
    // A status request queued behind a blocked actor while the lease is lost.
    let held = hold(&f.registry, &acme).await;
    let queued = {
        let (registry, tenant) = (f.registry.clone(), acme.clone());
        actix_rt::spawn(async move { registry.send(&tenant, Status(None)).await })
    };
    until("the status request is queued", || {
        f.registry.mailboxes().iter().any(|m| m.depth == 1)
    })
    .await;

    f.owner.lease.store(false, Ordering::SeqCst);
    f.registry.watch_lease();
    assert_eq!(f.registry.active_count(), 0, "every actor stopped at once");
    assert_eq!(f.events.count(OwnershipEvent::LeaseLost), 1);
    held.release.send(()).unwrap();
    let answer = queued.await.unwrap();
    assert!(
        matches!(answer, Err(TenantError::Unavailable(_))),
        "answered from memory after the lease was lost: {answer:?}"
    );
    // Its answer depends on whether the broker registered again meanwhile.
    let _ = held.reply.await.unwrap();

    until("the broker registered again", || f.registry.lease_serving()).await;
    assert_eq!(f.owner.count("rejoin"), 1);
    // Serving again: the tenants are acquired again, from the store.
    assert_eq!(borrowed(&f, &acme).await, 1);
    assert_eq!(borrowed(&f, &globex).await, 0);
    assert_eq!(f.owner.count("acquire acme"), 2);
    f.registry.shutdown();
}

#[actix_rt::test]
async fn a_request_after_the_lease_lapsed_is_refused_before_the_watchdog_runs() {
    let f = fixture();
    let acme = with_pool(&f, "acme", 3).await;
    // As after a stall: the lease lapsed and the watchdog has not looked yet.
    f.owner.lease.store(false, Ordering::SeqCst);
    let err = f.registry.send(&acme, Status(None)).await.unwrap_err();
    assert!(matches!(err, TenantError::Unavailable(_)), "{err:?}");
    assert_eq!(f.registry.active_count(), 0);
    until("the broker registered again", || f.registry.lease_serving()).await;
    assert_eq!(f.owner.count("rejoin"), 1);
    f.registry.shutdown();
}

#[actix_rt::test]
async fn an_idle_actor_is_passivated_released_and_activated_again_with_its_state() {
    let f = fixture();
    let acme = with_pool(&f, "acme", 3).await;
    let key = IdempotencyKey::parse("build-1").unwrap();
    let keyed = || Borrow {
        key: Some(key.clone()),
        ..Borrow::now(request("a", Some(60)))
    };
    f.registry.send(&acme, keyed()).await.unwrap();

    // A held lease keeps the actor: its expiry must run on time.
    f.clock.advance(IDLE * 2);
    assert_eq!(f.registry.passivate_idle().await, 0);
    let due = f.registry.send(&acme, ExpireDue).await.unwrap();
    assert_eq!(due.expired, 1);
    // A live-event subscriber keeps it too.
    let events = f.registry.subscribe(&acme).await.unwrap();
    f.clock.advance(IDLE);
    assert_eq!(f.registry.passivate_idle().await, 0);
    drop(events);
    assert_eq!(borrowed(&f, &acme).await, 0);
    f.clock.advance(IDLE - Duration::from_secs(1));
    assert_eq!(f.registry.passivate_idle().await, 0, "not idle long enough");
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(f.registry.passivate_idle().await, 1);
    assert_eq!(f.registry.active_count(), 0, "its memory is freed");
    assert_eq!(f.events.count(OwnershipEvent::Passivated), 1);
    assert_eq!(f.owner.count("release acme"), 1);

    // Activated again by the next request, with its state: the pool, the expired
    // lease, and the idempotency key (a retry answers the original grant).
    assert_eq!(borrowed(&f, &acme).await, 0);
    assert_eq!(f.owner.count("acquire acme"), 2);
    let retried = f.registry.send(&acme, keyed()).await.unwrap();
    assert!(matches!(retried, BorrowOutcome::Replayed(_)), "{retried:?}");
    f.registry.shutdown();
}

#[actix_rt::test]
async fn a_request_during_passivation_waits_for_the_release_then_acquires_again() {
    let f = fixture();
    let acme = with_pool(&f, "acme", 3).await;
    f.clock.advance(IDLE);
    f.owner.release_gate.set_closed(true);
    let passivating = {
        let registry = f.registry.clone();
        actix_rt::spawn(async move { registry.passivate_idle().await })
    };
    until("the actor has stopped", || !f.registry.is_active(&acme)).await;
    let request = {
        let (registry, tenant) = (f.registry.clone(), acme.clone());
        actix_rt::spawn(async move { registry.send(&tenant, Status(None)).await })
    };
    until("the request waits for the departure", || {
        f.registry.waiting_for_activation(&acme) == 1
    })
    .await;
    assert_eq!(
        f.owner.count("acquire acme"),
        1,
        "no acquisition before the release"
    );
    f.owner.release_gate.set_closed(false);
    assert_eq!(passivating.await.unwrap(), 1);
    request.await.unwrap().unwrap();
    let log = f.owner.log();
    let acme_log: Vec<&str> = log
        .iter()
        .map(String::as_str)
        .filter(|l| l.contains("acme"))
        .collect();
    assert_eq!(
        acme_log,
        ["acquire acme@1", "release acme@1", "acquire acme@2"]
    );
    f.registry.shutdown();
}

#[actix_rt::test]
async fn leaving_stops_every_actor_and_releases_through_the_ownership() {
    let f = fixture();
    let acme = with_pool(&f, "acme", 3).await;
    f.registry.send(&acme, borrow("a")).await.unwrap();
    f.registry.leave(Duration::from_secs(10)).await.unwrap();
    assert_eq!(f.registry.active_count(), 0);
    assert_eq!(f.owner.count("leave"), 1);
    let err = f.registry.send(&acme, Status(None)).await.unwrap_err();
    assert!(matches!(err, TenantError::Unavailable(_)), "{err:?}");
    assert_eq!(
        f.owner.count("acquire acme"),
        1,
        "nothing acquired after leaving"
    );
    assert_eq!(f.store.load_tenant(&acme).unwrap().leases.len(), 1);
    f.registry.shutdown();
}
