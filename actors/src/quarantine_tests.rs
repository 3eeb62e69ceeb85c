//! Actor-level tests of the crash-loop quarantine: a tenant that keeps panicking is
//! quarantined after the intensity is exceeded, its messages are refused while other
//! tenants are served, and a resume brings it back with its stored state.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use permetrix_storage::{SledConfig, SledStore, Store, TenantId, Timestamp};

use crate::messages::Status;
use crate::metrics::{ActorMetrics, TenantMetrics};
use crate::quarantine::{QuarantineEvent, QuarantineObserver, RestartIntensity};
use crate::test_support::{self, Explode, Pool, borrow};
use crate::{Registry, RegistryConfig, SystemClock, TenantError};

/// Restart and quarantine hooks as they were called.
#[derive(Default)]
struct Hooks {
    restarts: AtomicU64,
    changes: Mutex<Vec<bool>>,
    events: Mutex<Vec<QuarantineEvent>>,
    resumed: Mutex<Vec<TenantId>>,
}

impl ActorMetrics for Arc<Hooks> {
    fn for_tenant(&self, _: &TenantId) -> Arc<dyn TenantMetrics> {
        Arc::new(Arc::clone(self))
    }
}

impl TenantMetrics for Arc<Hooks> {
    fn message_handled(&self, _: &'static str, _: Duration) {}
    fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::SeqCst);
    }
    fn rejected(&self) {}
    fn quarantine_changed(&self, quarantined: bool) {
        self.changes.lock().unwrap().push(quarantined);
    }
}

impl QuarantineObserver for Hooks {
    fn quarantined(&self, event: &QuarantineEvent) {
        self.events.lock().unwrap().push(event.clone());
    }
    fn resumed(&self, tenant: &TenantId) {
        self.resumed.lock().unwrap().push(tenant.clone());
    }
}

#[actix_rt::test]
async fn a_crash_loop_quarantines_its_tenant_alone_until_it_is_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(SledConfig::new(dir.path())).unwrap());
    let hooks = Arc::new(Hooks::default());
    let registry = Registry::start(
        Arc::clone(&store),
        Arc::new(permetrix_storage::SoleOwner::new(Arc::clone(&store))),
        Arc::new(SystemClock),
        Arc::new(Arc::clone(&hooks)),
        RegistryConfig {
            arbiters: 1,
            restart_intensity: RestartIntensity {
                max_restarts: 2,
                period: Duration::from_secs(3600),
            },
            ..RegistryConfig::default()
        },
    );
    registry.observe_quarantines(hooks.clone());
    let now = Timestamp::now();
    let acme = test_support::add_tenant(&store, &registry, "acme", now, Pool::commit_only(3)).await;
    // On the same (only) arbiter: a crash loop next door must not reach it.
    let globex =
        test_support::add_tenant(&store, &registry, "globex", now, Pool::commit_only(3)).await;
    registry.send(&acme, borrow("dev1")).await.unwrap();

    // Two restarts are tolerated: the tenant answers from its stored state after each.
    for _ in 0..2 {
        let err = registry.send(&acme, Explode).await.unwrap_err();
        assert!(matches!(err, TenantError::Unavailable(_)), "{err:?}");
        let status = registry.send(&acme, Status(None)).await.unwrap();
        assert_eq!(status[0].borrowed, 1);
    }
    assert!(registry.quarantined().is_empty());

    // The third within the period quarantines it (as the actor restarts, after its
    // reply: the next message is the first to be refused).
    registry.send(&acme, Explode).await.unwrap_err();
    for _ in 0..3 {
        let refused = registry.send(&acme, Status(None)).await.unwrap_err();
        assert!(
            matches!(
                refused,
                TenantError::Quarantined {
                    restarts: 3,
                    period
                } if period == Duration::from_secs(3600)
            ),
            "{refused:?}"
        );
    }
    assert!(matches!(
        registry.send(&acme, borrow("dev2")).await,
        Err(TenantError::Quarantined { .. })
    ));
    assert_eq!(registry.quarantined(), std::slice::from_ref(&acme));
    assert_eq!(hooks.restarts.load(Ordering::SeqCst), 3);
    assert_eq!(*hooks.changes.lock().unwrap(), [true]);
    let events = hooks.events.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].tenant.as_str(), events[0].vendor.as_str()),
        ("acme", "vector")
    );
    assert_eq!(events[0].restarts, 3);

    // The neighbour is served throughout.
    registry.send(&globex, borrow("dev3")).await.unwrap();
    assert_eq!(
        registry.send(&globex, Status(None)).await.unwrap()[0].borrowed,
        1
    );

    // Resumed: the stored state is back (the phantom borrows never were), and the
    // restart count starts again.
    assert!(registry.resume(&acme).await.unwrap());
    assert!(
        !registry.resume(&acme).await.unwrap(),
        "nothing left to lift"
    );
    assert!(registry.quarantined().is_empty());
    assert_eq!(*hooks.changes.lock().unwrap(), [true, false]);
    assert_eq!(*hooks.resumed.lock().unwrap(), std::slice::from_ref(&acme));
    let status = registry.send(&acme, Status(None)).await.unwrap();
    assert_eq!(status[0].borrowed, 1);
    registry.send(&acme, Explode).await.unwrap_err();
    assert!(
        registry.quarantined().is_empty(),
        "one crash after a resume"
    );
    registry.send(&acme, borrow("dev2")).await.unwrap();

    let ghost = TenantId::parse("ghost").unwrap();
    assert!(matches!(
        registry.resume(&ghost).await,
        Err(TenantError::UnknownTenant)
    ));
    registry.shutdown();
}
