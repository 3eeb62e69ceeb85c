//! The registry: finds (and on first use activates) the actor of a tenant.
//!
//! A sharded map (`DashMap`) from tenant id to the actor's address; the only shared
//! structure on the borrow path, and a lookup takes a shard read lock for a few
//! nanoseconds. An unknown tenant is answered without spawning anything.
//!
//! Around that map (`SCALE-OUT.md`):
//! - activation (`activation`) is asynchronous and single-flight: the first request
//!   for an inactive tenant acquires and loads it on a blocking thread, and every
//!   request for it meanwhile waits for that one acquisition;
//! - the lifecycle (`lifecycle`): idle actors are passivated (their ownership
//!   released), stopped ones (a fenced write) evicted, and when this broker cannot
//!   prove its lease every actor stops at once and the broker registers again.
//!
//! The hot path for an active tenant stays one map lookup: the entry's stop flag and
//! the lease are atomics read on the way.
mod activation;
mod lifecycle;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use actix::Addr;
use dashmap::DashMap;
use permetrix_storage::{Broker, Location, Ownership, Platform, Store, TenantId};
use tokio::sync::broadcast;

use crate::TenantError;
use crate::clock::Clock;
use crate::domain::{TenantEvent, TenantState};
use crate::handling::TenantMessage;
use crate::idle_cache::IdleCache;
use crate::messages::ExpireDue;
use crate::metrics::ActorMetrics;
use crate::outbox::OutboxHooks;
use crate::overload::{DEFAULT_TENANT_CONCURRENCY, Permit, Sharing};
use crate::placement::{ArbiterPool, TenantHasher};
use crate::quarantine::{QuarantineObserver, RestartIntensity, Supervision};
use crate::shared::{LEASE_LOST, TenantShared};
use crate::tenant_actor::{Admitted, TenantActor};
use crate::view::TenantView;
use activation::Transition;
pub use lifecycle::LEASE_CHECK_EVERY;

/// How many times a request looks for its tenant's actor before giving up: an actor
/// stopped between its activation and the request's admission (passivated, fenced) is
/// activated once more.
const ATTEMPTS: usize = 3;

/// Registry settings.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// Arbiter threads hosting tenant actors (default: one per core).
    pub arbiters: usize,
    /// Messages one tenant may have queued before further ones get 503.
    pub mailbox_capacity: usize,
    /// Requests of one tenant in progress at once while other tenants are active, from
    /// the actor through the flush that makes them durable. The rest wait their turn in
    /// the mailbox (in order, counted in its depth): a tenant's flood then keeps at most
    /// this many requests' work in the server's queues, ahead of other tenants'
    /// requests, instead of its whole mailbox. A tenant alone is not limited (see
    /// [`overload`](crate::overload)).
    pub tenant_concurrency: usize,
    /// `Retry-After` suggested to clients refused for a full mailbox.
    pub retry_after: Duration,
    /// Restarts within a period that quarantine a tenant (see
    /// [`quarantine`](crate::quarantine)).
    pub restart_intensity: RestartIntensity,
    /// The hooks of the tenants' webhook outboxes (default: no webhooks).
    pub outbox: OutboxHooks,
    /// An actor idle this long (no message, nothing due in its memory, no live-event
    /// subscriber) is passivated: it stops, releases its tenant and frees its memory.
    /// `None`: never.
    pub idle_passivate: Option<Duration>,
    /// Other brokers write tenants of the same store: an idle tenant's stored state may
    /// change at any time, so fan-out reads it from the store every time instead of
    /// keeping it (see `idle_cache`).
    pub shared_store: bool,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            arbiters: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mailbox_capacity: 1024,
            tenant_concurrency: DEFAULT_TENANT_CONCURRENCY,
            retry_after: Duration::from_secs(1),
            restart_intensity: RestartIntensity::DEFAULT,
            outbox: OutboxHooks::default(),
            idle_passivate: None,
            shared_store: false,
        }
    }
}

/// Mailbox figures of one active tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxStats {
    /// Tenant.
    pub tenant: TenantId,
    /// Messages admitted and not yet picked up.
    pub depth: usize,
    /// Admission capacity.
    pub capacity: usize,
}

/// Where a request for a tenant is served (`SCALE-OUT.md`, "Routing").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Here: the tenant's actor runs on this broker now.
    Local,
    /// By another broker, which owns the tenant and whose lease holds.
    Remote(Broker),
}

#[derive(Clone)]
struct Entry_ {
    addr: Addr<TenantActor>,
    shared: Arc<TenantShared>,
}

/// Whether this broker may serve from memory (`SCALE-OUT.md`, invariant 3).
#[derive(Default)]
struct Lease {
    /// False from the moment the lease is found lost until the broker registered again.
    lost: AtomicBool,
    /// Bumped by every loss: an activation that loaded under an older generation may
    /// hold state that is no longer this broker's.
    generation: AtomicU64,
    /// A `rejoin` runs now.
    rejoining: AtomicBool,
    /// The server is stopping: nothing is activated or registered again.
    closed: AtomicBool,
}

struct Inner {
    tenants: DashMap<TenantId, Entry_, TenantHasher>,
    /// Activations and departures in progress, at most one per tenant: a request for a
    /// tenant in transition waits for it instead of acquiring a second time.
    transitions: DashMap<TenantId, Arc<Transition>, TenantHasher>,
    store: Arc<dyn Store>,
    /// Which broker owns each tenant; activation acquires through it.
    ownership: Arc<dyn Ownership>,
    platform: Platform,
    arbiters: ArbiterPool,
    clock: Arc<dyn Clock>,
    metrics: Arc<dyn ActorMetrics>,
    config: RegistryConfig,
    /// Idle tenants' states read by fan-out (dropped when the tenant activates).
    idle: IdleCache,
    /// Whether requests take turns now (other tenants active).
    sharing: Sharing,
    /// The restart intensity and the quarantine observers, shared by every tenant.
    supervision: Arc<Supervision>,
    lease: Lease,
}

/// Handle to every tenant actor of this node. Cheap to clone.
#[derive(Clone)]
pub struct Registry(Arc<Inner>);

impl Registry {
    /// Starts the arbiter pool. Must be called inside an actix `System`.
    pub fn start(
        store: Arc<dyn Store>,
        ownership: Arc<dyn Ownership>,
        clock: Arc<dyn Clock>,
        metrics: Arc<dyn ActorMetrics>,
        config: RegistryConfig,
    ) -> Self {
        Registry(Arc::new(Inner {
            tenants: DashMap::with_hasher(TenantHasher::default()),
            transitions: DashMap::with_hasher(TenantHasher::default()),
            platform: Platform::new(Arc::clone(&store)),
            store,
            ownership,
            arbiters: ArbiterPool::start(config.arbiters),
            clock,
            metrics,
            idle: IdleCache::default(),
            sharing: Sharing::default(),
            supervision: Arc::new(Supervision::new(config.restart_intensity)),
            config,
            lease: Lease::default(),
        }))
    }

    /// The store behind the actors.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }

    /// The clock the actors use.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.0.clock
    }

    /// Number of arbiter threads.
    pub fn arbiters(&self) -> usize {
        self.0.arbiters.len()
    }

    /// Sends `msg` to the tenant's actor (activating it if needed) and waits for the
    /// reply, settled once its write is durable. A full mailbox is refused at once with
    /// [`TenantError::Overloaded`]. While other tenants are active, an admitted message
    /// first waits for one of its tenant's turns
    /// ([`RegistryConfig::tenant_concurrency`]), held until its write is durable (see
    /// [`overload`](crate::overload)). No answer is returned once this broker's lease
    /// is lost: it may come from memory the broker no longer owns.
    pub async fn send<M: TenantMessage>(
        &self,
        tenant: &TenantId,
        msg: M,
    ) -> Result<M::Reply, TenantError> {
        let (addr, shared, permit) = self
            .with_active(tenant, |entry| {
                let permit = self.admit(entry)?;
                Ok((entry.addr.clone(), Arc::clone(&entry.shared), permit))
            })
            .await?;
        let me = Arc::as_ptr(&shared) as usize;
        let takes_turns = self.0.sharing.note(me, self.0.clock.now());
        let _turn = if takes_turns {
            let turn = shared.turns.take().await;
            Some(turn.map_err(|_| TenantError::Unavailable("its mailbox is closed"))?)
        } else {
            None
        };
        let reply = addr
            .send(Admitted {
                msg,
                permit: Some(permit),
            })
            .await
            .map_err(|_| TenantError::Unavailable("its mailbox is closed"))?
            .settle()
            .await;
        self.serving()?;
        reply
    }

    /// Admits `msg` to the mailbox of the tenant's running actor without waiting for the
    /// reply: for messages that deliver their result themselves (fan-out). Activates
    /// nothing: `Ok(false)` (and `msg` dropped) when the tenant has no running actor. A
    /// full mailbox is refused at once with [`TenantError::Overloaded`].
    pub(crate) fn post<M: TenantMessage>(
        &self,
        tenant: &TenantId,
        msg: M,
    ) -> Result<bool, TenantError> {
        let Some(entry) = self.active(tenant)? else {
            return Ok(false);
        };
        let permit = self.admit(&entry)?;
        entry.addr.do_send(Admitted {
            msg,
            permit: Some(permit),
        });
        Ok(true)
    }

    /// Where requests for `tenant` are served: here (its actor runs, activated now if
    /// it was not) or by the broker that owns it. An unknown tenant is
    /// [`TenantError::UnknownTenant`], and nothing is activated for it.
    pub async fn route(&self, tenant: &TenantId) -> Result<Route, TenantError> {
        match self.with_active(tenant, |_| Ok(())).await {
            Ok(()) => Ok(Route::Local),
            Err(TenantError::Elsewhere(broker)) => Ok(Route::Remote(broker)),
            Err(e) => Err(e),
        }
    }

    /// Where the ownership says `tenant` lives now: a fresh look-up, on a blocking
    /// thread (it may ask the database); nothing is activated or acquired.
    pub async fn locate(&self, tenant: &TenantId) -> Result<Location, TenantError> {
        let ownership = Arc::clone(&self.0.ownership);
        let tenant = tenant.clone();
        tokio::task::spawn_blocking(move || ownership.locate(&tenant))
            .await
            .map_err(|_| TenantError::Unavailable("looking up its owner failed"))?
            .map_err(TenantError::from)
    }

    /// Takes a mailbox slot of `entry`'s tenant; a full mailbox is counted and refused,
    /// and so is every message to a quarantined tenant.
    fn admit(&self, entry: &Entry_) -> Result<Permit, TenantError> {
        if entry.shared.quarantine.is_on() {
            return Err(entry.shared.quarantine.refusal());
        }
        entry.shared.admission.try_admit().ok_or_else(|| {
            entry.shared.metrics.rejected();
            TenantError::Overloaded {
                retry_after: self.0.config.retry_after,
            }
        })
    }

    /// Whether `tenant` is a live tenant (reads the platform table; activates nothing).
    pub fn exists(&self, tenant: &TenantId) -> Result<bool, TenantError> {
        if self.0.tenants.contains_key(tenant) {
            return Ok(true);
        }
        Ok(self.0.platform.live_tenant(tenant)?.is_some())
    }

    /// The tenant's edge view (activating it if needed).
    pub async fn view(&self, tenant: &TenantId) -> Result<Arc<TenantView>, TenantError> {
        self.with_active(tenant, |entry| Ok(entry.shared.view.load_full()))
            .await
    }

    /// Subscribes to the tenant's live events (activating it if needed).
    pub async fn subscribe(
        &self,
        tenant: &TenantId,
    ) -> Result<broadcast::Receiver<TenantEvent>, TenantError> {
        self.with_active(tenant, |entry| Ok(entry.shared.subscribe()))
            .await
    }

    /// Whether the tenant's actor is running (and answering).
    pub fn is_active(&self, tenant: &TenantId) -> bool {
        self.0
            .tenants
            .get(tenant)
            .is_some_and(|e| e.shared.stopped().is_none())
    }

    /// Number of running tenant actors: the tenants this broker owns now (an actor
    /// stopped by a fenced write counts until it is evicted, on its tenant's next
    /// request or by the upkeep within seconds).
    pub fn active_count(&self) -> usize {
        self.0.tenants.len()
    }

    /// Requests waiting for the tenant's activation or departure in progress.
    #[cfg(test)]
    pub(crate) fn waiting_for_activation(&self, tenant: &TenantId) -> usize {
        self.0.transitions.get(tenant).map_or(0, |t| t.waiting())
    }

    /// Mailbox figures of every active tenant (read at metrics scrape time).
    pub fn mailboxes(&self) -> Vec<MailboxStats> {
        self.0
            .tenants
            .iter()
            .map(|e| MailboxStats {
                tenant: e.key().clone(),
                depth: e.value().shared.admission.depth(),
                capacity: e.value().shared.admission.capacity(),
            })
            .collect()
    }

    /// Tells `observer` of every quarantine and resume from now on.
    pub fn observe_quarantines(&self, observer: Arc<dyn QuarantineObserver>) {
        self.0.supervision.observe(observer);
    }

    /// The quarantined tenants, sorted.
    pub fn quarantined(&self) -> Vec<TenantId> {
        let mut out: Vec<TenantId> = self
            .0
            .tenants
            .iter()
            .filter(|e| e.value().shared.quarantine.is_on())
            .map(|e| e.key().clone())
            .collect();
        out.sort();
        out
    }

    /// Lifts the tenant's quarantine, if it is quarantined (`Ok(true)`), then has its
    /// actor load its state from storage and catch up on what fell due meanwhile, so
    /// that a failing load is reported to the caller. [`TenantError::UnknownTenant`]
    /// if there is no live tenant with this id.
    pub async fn resume(&self, tenant: &TenantId) -> Result<bool, TenantError> {
        let shared = self.0.tenants.get(tenant).map(|e| Arc::clone(&e.shared));
        let Some(shared) = shared else {
            return if self.exists(tenant)? {
                Ok(false)
            } else {
                Err(TenantError::UnknownTenant)
            };
        };
        if !shared.quarantine.lift(tenant) {
            return Ok(false);
        }
        shared.metrics.quarantine_changed(false);
        tracing::warn!(tenant = %tenant, "tenant resumed from quarantine; reloading its state");
        self.send(tenant, ExpireDue).await?;
        Ok(true)
    }

    pub(crate) fn idle_cache(&self) -> &IdleCache {
        &self.0.idle
    }

    pub(crate) fn arbiter_pool(&self) -> &ArbiterPool {
        &self.0.arbiters
    }

    pub(crate) fn shared_store(&self) -> bool {
        self.0.config.shared_store
    }

    /// Reads a tenant's committed state without activating or acquiring it. For
    /// fan-out reads of tenants that have no actor here.
    pub(crate) fn idle_state(&self, tenant: &TenantId) -> Result<TenantState, TenantError> {
        let records = self.0.store.load_tenant(tenant)?;
        Ok(TenantState::from_records(tenant.clone(), records))
    }

    /// Runs `f` on the tenant's running actor, activating the tenant first if it has
    /// none (a stopped actor is evicted and replaced). The fast path is one map lookup
    /// and never awaits.
    async fn with_active<T>(
        &self,
        tenant: &TenantId,
        f: impl Fn(&Entry_) -> Result<T, TenantError>,
    ) -> Result<T, TenantError> {
        for _ in 0..ATTEMPTS {
            if let Some(entry) = self.active(tenant)? {
                return f(&entry);
            }
            // Boxed: the fast path's future stays small.
            Box::pin(self.activate(tenant)).await?;
        }
        Err(TenantError::Unavailable(
            "its actor stopped again while it was being activated",
        ))
    }

    /// The tenant's running actor, if it has one that still answers; a stopped one is
    /// evicted on the way.
    fn active(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<dashmap::mapref::one::Ref<'_, TenantId, Entry_>>, TenantError> {
        self.serving()?;
        let Some(entry) = self.0.tenants.get(tenant) else {
            return Ok(None);
        };
        if entry.shared.stopped().is_none() {
            return Ok(Some(entry));
        }
        let shared = Arc::clone(&entry.shared);
        drop(entry);
        self.evict(tenant, &shared);
        Ok(None)
    }

    /// `Ok` while this broker may answer from memory. The first caller to find the lease
    /// lost stops every actor (see `lifecycle`).
    fn serving(&self) -> Result<(), TenantError> {
        let lease = &self.0.lease;
        if !lease.lost.load(Ordering::Acquire) && self.0.ownership.lease_holds() {
            return Ok(());
        }
        if lease.closed.load(Ordering::Acquire) {
            return Err(TenantError::Unavailable("the server is stopping"));
        }
        if !self.0.ownership.lease_holds() {
            self.lose_lease();
        }
        Err(TenantError::Unavailable(LEASE_LOST))
    }
}
