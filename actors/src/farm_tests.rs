//! Actor-level tests of leases, the wait queue and idempotent borrows, driven by a
//! manual clock: expiry happens when the test moves the clock and sends `ExpireDue`,
//! the message the actor's own timer sends in production.
use std::sync::Arc;
use std::time::Duration;

use permetrix_storage::{SledConfig, SledStore, Store, TenantId, Timestamp};

use crate::domain::{DomainError, IdempotencyKey, WaitSeconds};
use crate::messages::{
    Borrow, BorrowOutcome, ExpireDue, Heartbeat, QueueOf, QueuedBorrow, Return, Status,
};
use crate::metrics::NoMetrics;
use crate::test_support::{Pool, add_tenant, request};
use crate::{ManualClock, Registry, RegistryConfig, TenantError};

const START: Timestamp = Timestamp::from_secs(1_795_749_205);

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    registry: Registry,
    clock: ManualClock,
    tenant: TenantId,
}

async fn fixture(seats: u32) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(SledConfig::new(dir.path())).unwrap());
    let clock = ManualClock::new(START);
    let registry = Registry::start(
        Arc::clone(&store),
        Arc::new(permetrix_storage::SoleOwner::new(Arc::clone(&store))),
        Arc::new(clock.clone()),
        Arc::new(NoMetrics),
        RegistryConfig {
            arbiters: 1,
            mailbox_capacity: 64,
            tenant_concurrency: crate::DEFAULT_TENANT_CONCURRENCY,
            retry_after: Duration::from_secs(1),
            ..RegistryConfig::default()
        },
    );
    let tenant = add_tenant(&store, &registry, "acme", START, Pool::commit_only(seats)).await;
    Fixture {
        _dir: dir,
        store,
        registry,
        clock,
        tenant,
    }
}

fn ask(user: &str, lease: Option<u32>, wait: u32, key: Option<&str>) -> Borrow {
    Borrow {
        req: request(user, lease),
        wait: WaitSeconds::parse(wait).unwrap(),
        key: key.map(|k| IdempotencyKey::parse(k).unwrap()),
    }
}

impl Fixture {
    async fn borrow(&self, user: &str, lease: Option<u32>) -> permetrix_storage::BorrowId {
        match self
            .registry
            .send(&self.tenant, ask(user, lease, 0, None))
            .await
        {
            Ok(BorrowOutcome::Granted(g)) => g.lease.id,
            other => panic!("expected a grant, got {other:?}"),
        }
    }

    async fn queue(&self, user: &str, wait: u32, key: Option<&str>) -> QueuedBorrow {
        match self
            .registry
            .send(&self.tenant, ask(user, None, wait, key))
            .await
        {
            Ok(BorrowOutcome::Queued(q)) => q,
            other => panic!("expected to queue, got {other:?}"),
        }
    }

    async fn status(&self) -> (u32, u32) {
        let s = self
            .registry
            .send(&self.tenant, Status(None))
            .await
            .unwrap();
        (s[0].borrowed, s[0].waiting)
    }

    async fn expire_after(&self, secs: u64) -> usize {
        self.clock.advance(Duration::from_secs(secs));
        self.registry
            .send(&self.tenant, ExpireDue)
            .await
            .unwrap()
            .expired
    }
}

#[actix_rt::test]
async fn an_expired_lease_frees_its_seat_for_the_next_waiter_at_once() {
    let f = fixture(1).await;
    let first = f.borrow("first", Some(30)).await;
    let waiter = f.queue("second", 300, None).await;
    assert_eq!(waiter.position, 1);
    assert_eq!(f.status().await, (1, 1));
    assert_eq!(f.expire_after(29).await, 0);
    assert_eq!(f.expire_after(1).await, 1);
    let grant = waiter.granted().await.unwrap();
    assert_eq!(grant.lease.user, "second");
    assert_eq!(f.status().await, (1, 0));
    // The queued grant was durable before it was handed over.
    let stored = f.store.load_tenant(&f.tenant).unwrap().leases;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, grant.lease.id);
    // The expired borrow is told so.
    let err = f
        .registry
        .send(&f.tenant, Return::of(first))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TenantError::Domain(DomainError::LeaseExpired { .. })),
        "{err:?}"
    );
    f.registry.shutdown();
}

#[actix_rt::test]
async fn heartbeats_keep_a_lease_alive_past_its_first_deadline() {
    let f = fixture(1).await;
    let id = f.borrow("dev", Some(60)).await;
    f.clock.advance(Duration::from_secs(50));
    let view = f.registry.send(&f.tenant, Heartbeat(id)).await.unwrap();
    assert_eq!(view.lease_expires_at, START.plus(Duration::from_secs(110)));
    assert_eq!(
        f.expire_after(30).await,
        0,
        "80 s in: the heartbeat moved the expiry"
    );
    assert_eq!(f.status().await.0, 1);
    assert_eq!(f.expire_after(30).await, 1, "110 s in: expired");
    let err = f.registry.send(&f.tenant, Heartbeat(id)).await.unwrap_err();
    assert!(matches!(
        err,
        TenantError::Domain(DomainError::LeaseExpired { .. })
    ));
    assert!(f.store.load_tenant(&f.tenant).unwrap().leases.is_empty());
    f.registry.shutdown();
}

#[actix_rt::test]
async fn waiters_are_served_first_come_first_served() {
    let f = fixture(1).await;
    let mut held = f.borrow("holder", None).await;
    let mut waiters = Vec::new();
    for user in ["w1", "w2", "w3"] {
        waiters.push(f.queue(user, 300, None).await);
    }
    let listing = f
        .registry
        .send(&f.tenant, QueueOf("ecu".into()))
        .await
        .unwrap();
    let order: Vec<_> = listing.queue.iter().map(|e| e.user.as_str()).collect();
    assert_eq!(order, ["w1", "w2", "w3"]);
    for (i, w) in waiters.into_iter().enumerate() {
        f.registry.send(&f.tenant, Return::of(held)).await.unwrap();
        let grant = w.granted().await.unwrap();
        assert_eq!(grant.lease.user, format!("w{}", i + 1));
        held = grant.lease.id;
        assert_eq!(f.status().await, (1, 2 - i as u32));
    }
    f.registry.shutdown();
}

#[actix_rt::test]
async fn a_waiter_whose_client_left_is_removed_and_never_granted() {
    let f = fixture(1).await;
    let held = f.borrow("holder", None).await;
    let gone = f.queue("gone", 300, None).await;
    let stays = f.queue("stays", 300, None).await;
    assert_eq!(f.status().await, (1, 2));
    drop(gone);
    assert_eq!(
        f.status().await,
        (1, 1),
        "the departed waiter is not counted"
    );
    f.registry.send(&f.tenant, Return::of(held)).await.unwrap();
    assert_eq!(stays.granted().await.unwrap().lease.user, "stays");
    let leases = f.store.load_tenant(&f.tenant).unwrap().leases;
    assert_eq!(leases.len(), 1, "no seat went to the departed waiter");
    f.registry.shutdown();
}

#[actix_rt::test]
async fn a_wait_that_runs_out_answers_the_original_refusal() {
    let f = fixture(1).await;
    f.borrow("holder", None).await;
    let w = f.queue("w", 10, None).await;
    f.expire_after(9).await;
    assert_eq!(f.status().await.1, 1);
    f.expire_after(1).await;
    let err = w.granted().await.unwrap_err();
    assert!(
        matches!(err, TenantError::Domain(DomainError::NoSeats { .. })),
        "{err:?}"
    );
    assert_eq!(f.status().await, (1, 0));
    f.registry.shutdown();
}

#[actix_rt::test]
async fn an_idempotent_retry_returns_the_same_seat_and_takes_over_a_queued_request() {
    let f = fixture(2).await;
    let one = f
        .registry
        .send(&f.tenant, ask("ci", None, 0, Some("job-1")))
        .await
        .unwrap();
    let again = f
        .registry
        .send(&f.tenant, ask("ci", None, 0, Some("job-1")))
        .await
        .unwrap();
    let (BorrowOutcome::Granted(g), BorrowOutcome::Replayed(r)) = (one, again) else {
        panic!("expected a grant and its replay");
    };
    assert_eq!(g.lease, r);
    assert_eq!(f.status().await.0, 1, "the retry took no second seat");
    let other = f
        .registry
        .send(&f.tenant, ask("someone-else", None, 0, Some("job-1")))
        .await
        .unwrap_err();
    assert!(matches!(
        other,
        TenantError::Domain(DomainError::IdempotencyKeyReused)
    ));

    // Fill the pool, queue a keyed borrow, then retry it while it waits.
    let holder = f.borrow("holder", None).await;
    let first_try = f.queue("ci", 300, Some("job-2")).await;
    let retry = f.queue("ci", 300, Some("job-2")).await;
    assert_eq!(retry.position, 1);
    assert_eq!(f.status().await.1, 1, "still one waiter");
    assert!(matches!(
        first_try.granted().await,
        Err(TenantError::Unavailable(_))
    ));
    f.registry
        .send(&f.tenant, Return::of(holder))
        .await
        .unwrap();
    let granted = retry.granted().await.unwrap();
    assert_eq!(granted.lease.user, "ci");
    // And the queued grant is remembered under its key.
    let replay = f
        .registry
        .send(&f.tenant, ask("ci", None, 300, Some("job-2")))
        .await
        .unwrap();
    assert!(matches!(replay, BorrowOutcome::Replayed(l) if l.id == granted.lease.id));
    f.registry.shutdown();
}

#[actix_rt::test]
async fn the_actor_timer_expires_overdue_leases_by_itself() {
    let f = fixture(1).await;
    f.borrow("dev", Some(30)).await;
    f.clock.advance(Duration::from_secs(31));
    // A fresh activation (as after a restart) finds the overdue lease and arms its
    // timer for "now": it expires without anyone sending ExpireDue.
    f.registry.deactivate(&f.tenant);
    let mut borrowed = f.status().await.0;
    for _ in 0..500 {
        if borrowed == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        borrowed = f.status().await.0;
    }
    assert_eq!(borrowed, 0);
    assert!(f.store.load_tenant(&f.tenant).unwrap().leases.is_empty());
    f.registry.shutdown();
}
