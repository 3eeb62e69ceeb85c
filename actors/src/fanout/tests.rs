//! Fan-out: idle tenants from storage without activation, a held actor reported as a
//! timeout while the others answer, and the idle cache's invalidation rules.
use std::sync::Arc;
use std::time::Duration;

use permetrix_storage::{Durability, SledConfig, SledStore, Store, TenantId, Timestamp};

use crate::domain::TenantState;
use crate::idle_cache::IdleCache;
use crate::metrics::NoMetrics;
use crate::test_support::{Held, Pool, add_tenant, borrow, hold};
use crate::{Registry, RegistryConfig, SystemClock, TenantError};

fn start(store: &Arc<dyn Store>) -> Registry {
    Registry::start(
        Arc::clone(store),
        Arc::new(permetrix_storage::SoleOwner::new(Arc::clone(store))),
        Arc::new(SystemClock),
        Arc::new(NoMetrics),
        RegistryConfig {
            arbiters: 2,
            mailbox_capacity: 64,
            tenant_concurrency: crate::DEFAULT_TENANT_CONCURRENCY,
            retry_after: Duration::from_secs(1),
            ..RegistryConfig::default()
        },
    )
}

fn open(dir: &std::path::Path) -> Arc<dyn Store> {
    let mut config = SledConfig::new(dir);
    // Seeding speed only; nothing here depends on fsync.
    config.durability = Durability::Relaxed {
        interval: Duration::from_millis(50),
    };
    Arc::new(SledStore::open(config).unwrap())
}

async fn seed(store: &Arc<dyn Store>, registry: &Registry, n: usize) -> Vec<TenantId> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("t{i:04}");
        let pool = Pool {
            commit: 2,
            overage: 8,
            overage_cents: 0,
        };
        let tenant = add_tenant(store, registry, &id, Timestamp::now(), pool).await;
        // Tenant i holds i % 4 seats.
        for u in 0..i % 4 {
            registry
                .send(&tenant, borrow(&format!("u{u}")))
                .await
                .unwrap();
        }
        ids.push(tenant);
    }
    ids
}

/// Polls `done` until it holds, for at most 10 s (a bound, not a synchronisation).
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < until {
        if done() {
            return true;
        }
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
    done()
}

#[actix_rt::test]
async fn idle_tenants_are_read_from_storage_without_activation() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let first = start(&store);
    let ids = seed(&store, &first, 40).await;
    first.shutdown();

    let registry = start(&store);
    let answers = registry.snapshots(&ids, Duration::from_secs(5)).await;
    assert_eq!(registry.active_count(), 0, "fan-out activated idle tenants");
    assert_eq!(registry.idle_cached(), 40);
    for (i, (id, answer)) in answers.iter().enumerate() {
        assert_eq!(id, &ids[i], "answers keep the order asked");
        let usage = answer.as_ref().unwrap().usage;
        assert_eq!(
            (usage.borrowed, usage.total, usage.overage),
            ((i % 4) as u32, 10, (i % 4).saturating_sub(2) as u32)
        );
    }

    // A borrow activates the tenant: fan-out now asks its actor, never the stale copy.
    registry.send(&ids[0], borrow("late")).await.unwrap();
    assert_eq!(registry.idle_cached(), 39);
    let again = registry.snapshots(&ids[..2], Duration::from_secs(5)).await;
    assert_eq!(again[0].1.as_ref().unwrap().usage.borrowed, 1);
    assert_eq!(again[1].1.as_ref().unwrap().usage.borrowed, 1);
    registry.shutdown();
}

#[actix_rt::test]
async fn warming_loads_idle_tenants_in_the_background_without_activation() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let first = start(&store);
    let ids = seed(&store, &first, 20).await;
    first.shutdown();

    let registry = start(&store);
    registry.warm_idle(ids.clone());
    // The warm-up runs on a blocking thread.
    assert!(eventually(|| registry.idle_cached() == ids.len()).await);
    assert_eq!(registry.active_count(), 0);
    let answers = registry.snapshots(&ids, Duration::from_secs(5)).await;
    for (i, (_, answer)) in answers.iter().enumerate() {
        assert_eq!(answer.as_ref().unwrap().usage.borrowed, (i % 4) as u32);
    }
    registry.shutdown();
}

#[actix_rt::test]
async fn a_tenant_that_does_not_answer_in_time_is_a_timeout_and_the_others_return() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let registry = start(&store);
    let ids = seed(&store, &registry, 12).await;
    // Hold blocks the held tenant's arbiter thread: tenants placed on the same arbiter
    // cannot answer either, those on the other one must.
    let held = ids[5].clone();
    let Held {
        release,
        reply: holder,
    } = hold(&registry, &held).await;

    let answers = registry.snapshots(&ids, Duration::from_millis(200)).await;
    let timed_out: Vec<&TenantId> = answers
        .iter()
        .filter(|(_, a)| matches!(a, Err(TenantError::Timeout)))
        .map(|(id, _)| id)
        .collect();
    assert!(timed_out.contains(&&held), "{timed_out:?}");
    assert!(timed_out.len() < ids.len(), "every tenant timed out");
    for (i, (_, answer)) in answers.iter().enumerate() {
        if let Ok(snapshot) = answer {
            assert_eq!(snapshot.usage.borrowed, (i % 4) as u32);
        }
    }
    release.send(()).unwrap();
    holder.await.unwrap().unwrap();
    let answers = registry.snapshots(&ids, Duration::from_secs(5)).await;
    assert!(answers.iter().all(|(_, a)| a.is_ok()));
    registry.shutdown();
}

#[test]
fn a_read_that_raced_with_an_activation_is_not_cached() {
    let cache = IdleCache::default();
    let tenant = TenantId::parse("acme").unwrap();
    let state = || Arc::new(TenantState::new(TenantId::parse("acme").unwrap()));

    let before = cache.epoch();
    cache.invalidate(&tenant); // an activation while the read ran
    cache.insert(tenant.clone(), state(), before);
    assert!(cache.get(&tenant).is_none());

    let now = cache.epoch();
    cache.insert(tenant.clone(), state(), now);
    assert!(cache.get(&tenant).is_some());
    cache.invalidate(&tenant);
    assert!(cache.get(&tenant).is_none());
}
