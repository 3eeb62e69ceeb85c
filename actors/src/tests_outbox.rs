//! Actor-level tests of the webhook outbox: events stored with the change that caused
//! them, reported durable before the reply, refusals written by the timer, the sequence
//! continued after a restart.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use permetrix_storage::records::OutboxRecord;
use permetrix_storage::{SledConfig, SledStore, Store, TenantId, Timestamp, VendorId};

use crate::domain::{DomainError, EventMask, WebhookEventKind};
use crate::messages::ExpireDue;
use crate::metrics::NoMetrics;
use crate::outbox::{OutboxHooks, OutboxObserver, TenantOutbox};
use crate::quarantine::RestartIntensity;
use crate::test_support::{Explode, Pool, add_tenant, borrow, grant};
use crate::{ManualClock, Registry, RegistryConfig, TenantError};

const START: Timestamp = Timestamp::from_secs(1_795_749_205);

/// Hooks that want every type and remember what they were told.
#[derive(Default)]
struct Recorder {
    loaded: Mutex<Vec<u64>>,
    durable: AtomicU64,
}

struct Hooks(Arc<Recorder>);

impl OutboxObserver for Hooks {
    fn for_tenant(&self, _: &TenantId, _: &VendorId) -> Arc<dyn TenantOutbox> {
        Arc::new(Hooks(Arc::clone(&self.0)))
    }
}

impl TenantOutbox for Hooks {
    fn wanted(&self) -> EventMask {
        EventMask::of(WebhookEventKind::ALL)
    }
    fn loaded(&self, head: u64) {
        self.0.loaded.lock().unwrap().push(head);
    }
    fn durable(&self, head: u64) {
        self.0.durable.fetch_max(head, Ordering::SeqCst);
    }
    fn delivered_through(&self) -> u64 {
        0
    }
    fn capacity(&self) -> u64 {
        100
    }
    fn dropped(&self, _: u64) {}
}

struct Fixture {
    dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    registry: Registry,
    clock: ManualClock,
    tenant: TenantId,
    recorder: Arc<Recorder>,
}

fn registry(store: &Arc<dyn Store>, clock: &ManualClock, hooks: OutboxHooks) -> Registry {
    Registry::start(
        Arc::clone(store),
        Arc::new(permetrix_storage::SoleOwner::new(Arc::clone(store))),
        Arc::new(clock.clone()),
        Arc::new(NoMetrics),
        RegistryConfig {
            arbiters: 1,
            outbox: hooks,
            ..RegistryConfig::default()
        },
    )
}

/// A tenant with one commit seat and `overage` overage seats, and the recorder.
async fn fixture(overage: u32, hooks: Option<OutboxHooks>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(SledConfig::new(dir.path())).unwrap());
    let clock = ManualClock::new(START);
    let recorder = Arc::new(Recorder::default());
    let hooks = hooks.unwrap_or_else(|| OutboxHooks(Arc::new(Hooks(Arc::clone(&recorder)))));
    let registry = registry(&store, &clock, hooks);
    let pool = Pool {
        commit: 1,
        overage,
        overage_cents: 500,
    };
    let tenant = add_tenant(&store, &registry, "acme", START, pool).await;
    Fixture {
        dir,
        store,
        registry,
        clock,
        tenant,
        recorder,
    }
}

impl Fixture {
    fn outbox(&self) -> Vec<OutboxRecord> {
        self.store.outbox(&self.tenant, 0, 100).unwrap()
    }
}

#[actix_rt::test]
async fn an_acknowledged_charge_has_its_event_stored_and_durable() {
    let f = fixture(1, None).await;
    grant(&f.registry, &f.tenant, "a").await;
    assert!(
        f.outbox().is_empty(),
        "a seat within the commit is no event"
    );
    let charged = grant(&f.registry, &f.tenant, "b").await;
    let events = f.outbox();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["overage.charged", "pool.exhausted"]);
    let charge = charged.charge.unwrap();
    assert!(events[0].data.contains(&charge.id));
    // Reported durable before the borrow was answered.
    assert_eq!(f.recorder.durable.load(Ordering::SeqCst), 2);
    assert_eq!(*f.recorder.loaded.lock().unwrap(), vec![0]);
}

#[actix_rt::test]
async fn refusals_are_written_once_their_second_is_over() {
    let f = fixture(0, None).await;
    grant(&f.registry, &f.tenant, "a").await;
    for user in ["b", "c", "b"] {
        let refused = f.registry.send(&f.tenant, borrow(user)).await;
        assert!(matches!(
            refused,
            Err(TenantError::Domain(DomainError::NoSeats { .. }))
        ));
    }
    let exhausted = f.outbox();
    assert_eq!(exhausted.len(), 1, "a refusal waits for no write");
    assert_eq!(exhausted[0].kind, "pool.exhausted");
    f.clock.advance(Duration::from_millis(999));
    f.registry.send(&f.tenant, ExpireDue).await.unwrap();
    assert_eq!(f.outbox().len(), 1);
    f.clock.advance(Duration::from_millis(1));
    f.registry.send(&f.tenant, ExpireDue).await.unwrap();
    let events = f.outbox();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].kind, "borrow.denied");
    assert!(
        events[1].data.contains(r#""count":3"#),
        "{}",
        events[1].data
    );
    assert_eq!(f.recorder.durable.load(Ordering::SeqCst), 2);
}

#[actix_rt::test]
async fn nothing_is_stored_while_nobody_receives_events() {
    let f = fixture(1, Some(OutboxHooks::default())).await;
    grant(&f.registry, &f.tenant, "a").await;
    grant(&f.registry, &f.tenant, "b").await;
    assert!(f.outbox().is_empty());
}

/// The crash-loop quarantine writes `tenant.quarantined` from the outbox as stored:
/// after a restart of the whole registry, and with nothing of the state built.
#[actix_rt::test]
async fn a_quarantine_continues_the_stored_sequence() {
    let f = fixture(1, None).await;
    grant(&f.registry, &f.tenant, "a").await;
    grant(&f.registry, &f.tenant, "b").await;
    f.registry.shutdown();
    let recorder = Arc::new(Recorder::default());
    let hooks = OutboxHooks(Arc::new(Hooks(Arc::clone(&recorder))));
    let restarted = Registry::start(
        Arc::clone(&f.store),
        Arc::new(permetrix_storage::SoleOwner::new(Arc::clone(&f.store))),
        Arc::new(f.clock.clone()),
        Arc::new(NoMetrics),
        RegistryConfig {
            arbiters: 1,
            outbox: hooks,
            restart_intensity: RestartIntensity {
                max_restarts: 1,
                period: Duration::from_secs(3600),
            },
            ..RegistryConfig::default()
        },
    );
    for _ in 0..2 {
        restarted.send(&f.tenant, Explode).await.unwrap_err();
    }
    assert!(matches!(
        restarted.send(&f.tenant, borrow("c")).await,
        Err(TenantError::Quarantined { .. })
    ));
    // Told once the event is durable, on a task of its own.
    for _ in 0..5000 {
        if recorder.durable.load(Ordering::SeqCst) == 3 {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(recorder.durable.load(Ordering::SeqCst), 3);
    let events = f.outbox();
    let quarantined = events.last().unwrap();
    assert_eq!(
        (quarantined.seq, quarantined.kind.as_str()),
        (3, "tenant.quarantined")
    );
    let data: serde_json::Value = serde_json::from_str(&quarantined.data).unwrap();
    assert_eq!(data["restarts"], 2);
    assert_eq!(data["until"], serde_json::Value::Null);
    assert!(
        data["reason"]
            .as_str()
            .unwrap()
            .contains("2 times within 3600 s")
    );

    // Resumed: the state loads the outbox with the event, and the sequence goes on.
    assert!(restarted.resume(&f.tenant).await.unwrap());
    restarted.send(&f.tenant, ExpireDue).await.unwrap();
    assert_eq!(recorder.loaded.lock().unwrap().last(), Some(&3));
    drop(f.dir);
}
