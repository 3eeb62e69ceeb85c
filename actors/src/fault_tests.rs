//! Actor-level tests of storage faults: a failed write is not acknowledged and leaves no
//! trace in memory; a reopened store makes every actor reload.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use permetrix_storage::{Store, TenantId, TenantMutation, Timestamp};

use crate::messages::{BorrowOutcome, Status};
use crate::metrics::NoMetrics;
use crate::test_support::{Flaky, Pool, add_tenant, borrow, grant, until};
use crate::{Clock, ManualClock, Registry, RegistryConfig, SystemClock, TenantError};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<Flaky>,
    registry: Registry,
    tenant: TenantId,
}

async fn fixture() -> Fixture {
    fixture_with(Arc::new(SystemClock), crate::DEFAULT_TENANT_CONCURRENCY).await
}

async fn fixture_with(clock: Arc<dyn Clock>, tenant_concurrency: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Flaky::open(dir.path()));
    let dyn_store: Arc<dyn Store> = store.clone();
    let registry = Registry::start(
        Arc::clone(&dyn_store),
        Arc::new(permetrix_storage::SoleOwner::new(Arc::clone(&dyn_store))),
        clock,
        Arc::new(NoMetrics),
        RegistryConfig {
            arbiters: 1,
            mailbox_capacity: 16,
            tenant_concurrency,
            retry_after: Duration::from_secs(1),
            ..RegistryConfig::default()
        },
    );
    let pool = Pool {
        commit: 2,
        overage: 3,
        overage_cents: 100,
    };
    let tenant = add_tenant(&dyn_store, &registry, "acme", Timestamp::now(), pool).await;
    Fixture {
        _dir: dir,
        store,
        registry,
        tenant,
    }
}

async fn borrowed(f: &Fixture) -> u32 {
    f.registry.send(&f.tenant, Status(None)).await.unwrap()[0].borrowed
}

/// A borrow made while `fault` is set is refused with a storage error and leaves no
/// trace: it took a seat in memory before its write failed, and the actor reloads, so
/// the seat is free again (as it is on disk) and later borrows are stored.
async fn a_borrow_refused_while(fault: fn(&Flaky) -> &AtomicBool) {
    let f = fixture().await;
    f.registry.send(&f.tenant, borrow("a")).await.unwrap();
    fault(&f.store).store(true, Ordering::SeqCst);
    let err = f.registry.send(&f.tenant, borrow("b")).await.unwrap_err();
    assert!(matches!(err, TenantError::Storage(_)), "{err:?}");
    assert_eq!(borrowed(&f).await, 1);
    fault(&f.store).store(false, Ordering::SeqCst);
    f.registry.send(&f.tenant, borrow("c")).await.unwrap();
    assert_eq!(borrowed(&f).await, 2);
    assert_eq!(f.store.load_tenant(&f.tenant).unwrap().leases.len(), 2);
    f.registry.shutdown();
}

#[actix_rt::test]
async fn a_failed_write_is_not_acknowledged_and_leaves_no_trace_in_memory() {
    a_borrow_refused_while(|s| &s.fail_writes).await;
}

/// The write is applied and registered, then its flush fails: the caller that waited
/// for durability must mark the actor's memory stale.
#[actix_rt::test]
async fn a_write_that_never_becomes_durable_is_not_acknowledged_and_the_actor_reloads() {
    a_borrow_refused_while(|s| &s.lose_writes).await;
}

#[actix_rt::test]
async fn a_reopened_store_makes_the_actor_reload() {
    let f = fixture().await;
    let first = grant(&f.registry, &f.tenant, "a").await;
    f.registry.send(&f.tenant, borrow("b")).await.unwrap();
    // The store changes behind the actor's back (as a reopen that lost a write would).
    f.store
        .inner
        .append(
            &f.tenant,
            permetrix_storage::Epoch::SOLE,
            &[TenantMutation::DeleteLease(first.lease.id)],
        )
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(
        borrowed(&f).await,
        2,
        "memory is not re-read without a reason"
    );
    f.store.incarnation.fetch_add(1, Ordering::SeqCst);
    assert_eq!(borrowed(&f).await, 1);
    f.registry.shutdown();
}

fn held(f: &Fixture) -> usize {
    f.store.held.lock().unwrap().len()
}

fn depth(f: &Fixture) -> usize {
    f.registry.mailboxes().iter().map(|m| m.depth).sum()
}

/// Starts a borrow at the fixture's tenant on its own task.
fn spawn_borrow(
    f: &Fixture,
    user: &str,
) -> actix_rt::task::JoinHandle<Result<BorrowOutcome, TenantError>> {
    let (registry, tenant, msg) = (f.registry.clone(), f.tenant.clone(), borrow(user));
    actix_rt::spawn(async move { registry.send(&tenant, msg).await })
}

/// With one turn per tenant, a borrow whose write is not durable yet holds acme's turn.
/// `shared` decides whether another tenant was active within the last second: then the
/// second borrow waits for the turn outside the actor (the actor answers a fan-out
/// snapshot sent after it, and the store sees one write); else it goes straight on.
async fn second_borrow_while_the_first_is_not_durable(shared: bool) {
    let clock = ManualClock::new(Timestamp::now());
    let f = fixture_with(Arc::new(clock.clone()), 1).await;
    let store: Arc<dyn Store> = f.store.clone();
    let globex = add_tenant(
        &store,
        &f.registry,
        "globex",
        Timestamp::now(),
        Pool::commit_only(1),
    )
    .await;
    // acme sends last, then nobody for two seconds: acme is alone...
    f.registry.send(&f.tenant, Status(None)).await.unwrap();
    clock.advance(Duration::from_secs(2));
    if shared {
        // ...until globex sends one.
        f.registry.send(&globex, Status(None)).await.unwrap();
    }
    f.store.hold_writes.store(true, Ordering::SeqCst);
    let first = spawn_borrow(&f, "a");
    until("the first write", || held(&f) == 1).await;
    let second = spawn_borrow(&f, "b");
    until("the second borrow admitted", || {
        depth(&f) == 1 || held(&f) == 2
    })
    .await;
    // The snapshot passes through acme's mailbox: a borrow queued there before it has
    // written by the time it is answered.
    let snapshot = f
        .registry
        .snapshots(std::slice::from_ref(&f.tenant), Duration::from_secs(10))
        .await;
    assert!(snapshot[0].1.is_ok(), "{:?}", snapshot[0].1);
    if shared {
        assert_eq!(
            (held(&f), depth(&f)),
            (1, 1),
            "the second borrow waits for the turn"
        );
        f.store.held.lock().unwrap()[0].open();
        until("the second write", || held(&f) == 2).await;
    } else {
        assert_eq!(
            (held(&f), depth(&f)),
            (2, 0),
            "a tenant alone takes no turns"
        );
        f.store.held.lock().unwrap()[0].open();
    }
    f.store.held.lock().unwrap()[1].open();
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    f.store.hold_writes.store(false, Ordering::SeqCst);
    assert_eq!(borrowed(&f).await, 2);
    f.registry.shutdown();
}

#[actix_rt::test]
async fn while_other_tenants_are_active_a_tenants_requests_beyond_its_turns_wait_outside_its_actor()
{
    second_borrow_while_the_first_is_not_durable(true).await;
}

#[actix_rt::test]
async fn a_tenant_alone_is_not_limited_to_its_turns() {
    second_borrow_while_the_first_is_not_durable(false).await;
}
