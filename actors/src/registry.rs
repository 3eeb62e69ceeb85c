//! The registry: finds (and on first use activates) the actor of a tenant.
//!
//! A sharded map (`DashMap`) from tenant id to the actor's address; the only shared
//! structure on the borrow path, and a lookup takes a shard read lock for a few
//! nanoseconds. An unknown tenant is answered without spawning anything.
use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, Supervisor};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use permetrix_storage::{Acquisition, Ownership, Platform, Store, TenantId, VendorId};
use tokio::sync::broadcast;

use crate::TenantError;
use crate::clock::Clock;
use crate::domain::{TenantEvent, TenantState};
use crate::handling::TenantMessage;
use crate::idle_cache::IdleCache;
use crate::metrics::ActorMetrics;
use crate::overload::{DEFAULT_TENANT_CONCURRENCY, Permit, Sharing};
use crate::placement::{ArbiterPool, TenantHasher};
use crate::shared::TenantShared;
use crate::tenant_actor::{Admitted, TenantActor};
use crate::view::TenantView;

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
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            arbiters: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mailbox_capacity: 1024,
            tenant_concurrency: DEFAULT_TENANT_CONCURRENCY,
            retry_after: Duration::from_secs(1),
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

#[derive(Clone)]
struct Entry_ {
    addr: Addr<TenantActor>,
    shared: Arc<TenantShared>,
}

struct Inner {
    tenants: DashMap<TenantId, Entry_, TenantHasher>,
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
            platform: Platform::new(Arc::clone(&store)),
            store,
            ownership,
            arbiters: ArbiterPool::start(config.arbiters),
            clock,
            metrics,
            config,
            idle: IdleCache::default(),
            sharing: Sharing::default(),
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
    /// [`overload`](crate::overload)).
    pub async fn send<M: TenantMessage>(
        &self,
        tenant: &TenantId,
        msg: M,
    ) -> Result<M::Reply, TenantError> {
        // The map's guard must not live across an await: take what the wait needs.
        let (addr, shared, permit) = {
            let entry = self.activate(tenant)?;
            let permit = self.admit(&entry)?;
            (entry.addr.clone(), Arc::clone(&entry.shared), permit)
        };
        let me = Arc::as_ptr(&shared) as usize;
        let takes_turns = self.0.sharing.note(me, self.0.clock.now());
        let _turn = if takes_turns {
            let turn = shared.turns.take().await;
            Some(turn.map_err(|_| TenantError::Unavailable("its mailbox is closed"))?)
        } else {
            None
        };
        addr.send(Admitted {
            msg,
            permit: Some(permit),
        })
        .await
        .map_err(|_| TenantError::Unavailable("its mailbox is closed"))?
        .settle()
        .await
    }

    /// Admits `msg` to the tenant's mailbox (activating it if needed) without waiting
    /// for the reply: for messages that deliver their result themselves (fan-out). A
    /// full mailbox is refused at once with [`TenantError::Overloaded`].
    pub(crate) fn post<M: TenantMessage>(
        &self,
        tenant: &TenantId,
        msg: M,
    ) -> Result<(), TenantError> {
        let entry = self.activate(tenant)?;
        let permit = self.admit(&entry)?;
        entry.addr.do_send(Admitted {
            msg,
            permit: Some(permit),
        });
        Ok(())
    }

    /// Takes a mailbox slot of `entry`'s tenant; a full mailbox is counted and refused.
    fn admit(&self, entry: &Entry_) -> Result<Permit, TenantError> {
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
    pub fn view(&self, tenant: &TenantId) -> Result<Arc<TenantView>, TenantError> {
        Ok(self.activate(tenant)?.shared.view.load_full())
    }

    /// Subscribes to the tenant's live events.
    pub fn subscribe(
        &self,
        tenant: &TenantId,
    ) -> Result<broadcast::Receiver<TenantEvent>, TenantError> {
        Ok(self.activate(tenant)?.shared.subscribe())
    }

    /// Whether the tenant's actor is running.
    pub fn is_active(&self, tenant: &TenantId) -> bool {
        self.0.tenants.contains_key(tenant)
    }

    /// Number of running tenant actors.
    pub fn active_count(&self) -> usize {
        self.0.tenants.len()
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

    /// Stops the tenant's actor (after a soft delete). Queued messages are still
    /// answered; the next request finds no live tenant.
    pub fn deactivate(&self, tenant: &TenantId) {
        // Dropping the last address lets the supervisor finish once the queue drains.
        self.0.tenants.remove(tenant);
        self.0.idle.invalidate(tenant);
        self.0.metrics.tenant_removed(tenant);
    }

    /// Stops every arbiter thread (server shutdown, after HTTP has drained).
    pub fn shutdown(&self) {
        self.0.tenants.clear();
        self.0.arbiters.stop();
    }

    pub(crate) fn idle_cache(&self) -> &IdleCache {
        &self.0.idle
    }

    pub(crate) fn arbiter_pool(&self) -> &ArbiterPool {
        &self.0.arbiters
    }

    /// Reads a tenant's state without activating it: the running actor's if there is
    /// one, else straight from storage. For fan-out reads of idle tenants.
    pub(crate) fn idle_state(&self, tenant: &TenantId) -> Result<TenantState, TenantError> {
        let records = self.0.store.load_tenant(tenant)?;
        Ok(TenantState::from_records(tenant.clone(), records))
    }

    fn activate(
        &self,
        tenant: &TenantId,
    ) -> Result<dashmap::mapref::one::Ref<'_, TenantId, Entry_>, TenantError> {
        if let Some(entry) = self.0.tenants.get(tenant) {
            return Ok(entry);
        }
        let record = self
            .0
            .platform
            .live_tenant(tenant)?
            .ok_or(TenantError::UnknownTenant)?;
        let vendor_id = VendorId::parse(&record.vendor_id).map_err(|_| {
            TenantError::Unavailable("its tenant record names an invalid vendor id")
        })?;
        // Load outside the map lock; a racing activation simply wins and ours is dropped.
        // The incarnation is read first: a reopen during the load forces a reload.
        let incarnation = self.0.store.incarnation();
        let (epoch, records) = match self.0.ownership.acquire(tenant)? {
            Acquisition::Acquired { epoch, records } => (epoch, records),
            Acquisition::OwnedBy(broker) => return Err(TenantError::Elsewhere(broker)),
        };
        let state = TenantState::from_records(tenant.clone(), *records);
        let entry = match self.0.tenants.entry(tenant.clone()) {
            Entry::Occupied(e) => e.into_ref(),
            Entry::Vacant(v) => {
                let shared = Arc::new(TenantShared::new(
                    &state,
                    epoch,
                    vendor_id,
                    self.0.config.mailbox_capacity,
                    self.0.config.tenant_concurrency,
                    self.0.metrics.for_tenant(tenant),
                ));
                let actor = TenantActor::new(
                    Arc::clone(&shared),
                    Arc::clone(&self.0.store),
                    Arc::clone(&self.0.clock),
                    state,
                    incarnation,
                );
                let arbiter = self.0.arbiters.for_tenant(tenant);
                let addr = Supervisor::start_in_arbiter(&arbiter, move |_| actor);
                tracing::debug!(tenant = %tenant, "activated tenant actor");
                let entry = v.insert(Entry_ { addr, shared });
                // The actor now owns the state: fan-out must ask it, not a copy.
                self.0.idle.invalidate(tenant);
                entry
            }
        };
        Ok(entry.downgrade())
    }
}
