//! Webhooks: a vendor's endpoints, and the delivery of its customers' outbox events to
//! them, signed, in order per tenant, at least once.
//!
//! A tenant's actor writes events to the tenant's outbox in the same write as the change
//! that caused them (`permetrix_actors::outbox`). One delivery worker per node, on a
//! thread of its own, reads the outboxes of the tenants this node owns from storage
//! (without activating their actors), POSTs each event to every endpoint of the
//! tenant's vendor that receives its type, and records its progress durably: a cursor
//! per endpoint and tenant, and the recent deliveries the portal shows. A borrow never
//! waits for any of it.
//!
//! Layout:
//! - `address` — what a webhook URL may be (no private addresses), and the resolver
//!   that enforces it at delivery time;
//! - `signature` — the `Permetrix-Signature` header;
//! - `backoff` — when a failed delivery is retried, and when it is given up;
//! - `endpoints` — registering, listing, disabling and deleting endpoints: the verbs of
//!   the vendor API, and the cache of active endpoints and of what each vendor receives;
//! - `hooks` — the actors' outbox hooks: what is wanted, durable and delivered;
//! - `worker` — the delivery lanes (one per endpoint and tenant) and their schedule;
//! - `attempt` — one delivery: read, sign, POST, record.
mod address;
mod attempt;
mod backoff;
mod client;
mod endpoints;
mod hooks;
pub mod signature;
mod worker;

use std::sync::Arc;
use std::sync::atomic::AtomicU8;
use std::time::Duration;

use dashmap::DashMap;
use permetrix_actors::placement::{self, Owner};
use permetrix_actors::{Clock, OutboxHooks};
use permetrix_storage::{Platform, Store, TenantId, VendorId};
use tokio::sync::mpsc;

use crate::auth::secrets::ServerSecrets;
use crate::metrics::WebhookMetrics;

pub use address::{UrlError, WebhookUrl};
pub use backoff::GIVE_UP_AFTER;
pub use endpoints::{Endpoint, MAX_ENDPOINTS_PER_VENDOR};

use hooks::TenantProgress;

/// How webhooks are delivered (`permetrix serve --webhooks-…`).
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Allow endpoints at private, loopback and link-local addresses.
    pub allow_private: bool,
    /// Deliveries in flight at once (per node).
    pub concurrency: usize,
    /// How long one delivery may take, connecting included.
    pub timeout: Duration,
    /// Events a tenant's outbox keeps at most; beyond, the oldest are dropped.
    pub outbox_capacity: u64,
    /// The first retry's delay (doubled per failure up to an hour, with jitter).
    pub retry_base: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allow_private: false,
            concurrency: 16,
            timeout: Duration::from_secs(10),
            outbox_capacity: 10_000,
            retry_base: backoff::DEFAULT_BASE,
        }
    }
}

/// What the worker is told.
#[derive(Debug)]
enum Signal {
    /// The tenant's actor loaded its state or made events durable.
    Tenant(TenantId),
    /// An endpoint was created, disabled, enabled or deleted.
    Endpoint(String),
    /// Send one delivery again now.
    Resend {
        /// Endpoint id.
        endpoint: String,
        /// Delivery id.
        delivery: String,
    },
    /// Look at the clock again (it may have been moved).
    Kick,
}

struct Inner {
    settings: WebhookSettings,
    platform: Platform,
    secrets: Arc<ServerSecrets>,
    clock: Arc<dyn Clock>,
    metrics: Arc<WebhookMetrics>,
    /// Every endpoint of every vendor, by id (disabled ones too).
    endpoints: DashMap<String, Arc<Endpoint>>,
    /// The event types each vendor's active endpoints receive.
    wanted: DashMap<VendorId, Arc<AtomicU8>>,
    /// Per tenant: how far its outbox is durable and delivered.
    tenants: DashMap<TenantId, Arc<TenantProgress>>,
    signals: mpsc::UnboundedSender<Signal>,
}

/// The webhook service of this node: endpoints, the actors' hooks, the worker.
#[derive(Clone)]
pub struct Webhooks {
    inner: Arc<Inner>,
    /// The worker's inbox until it starts.
    pending: Arc<std::sync::Mutex<Option<mpsc::UnboundedReceiver<Signal>>>>,
    /// The worker's thread, once started.
    arbiter: Arc<std::sync::Mutex<Option<actix_rt::Arbiter>>>,
}

impl Webhooks {
    /// Loads every endpoint; the worker starts with [`Webhooks::start`].
    pub fn load(
        settings: WebhookSettings,
        platform: Platform,
        secrets: Arc<ServerSecrets>,
        clock: Arc<dyn Clock>,
        metrics: Arc<WebhookMetrics>,
    ) -> Result<Self, permetrix_storage::StorageError> {
        let (signals, inbox) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            settings,
            platform,
            secrets,
            clock,
            metrics,
            endpoints: DashMap::new(),
            wanted: DashMap::new(),
            tenants: DashMap::new(),
            signals,
        });
        let webhooks = Webhooks {
            inner,
            pending: Arc::new(std::sync::Mutex::new(Some(inbox))),
            arbiter: Arc::new(std::sync::Mutex::new(None)),
        };
        webhooks.load_endpoints()?;
        Ok(webhooks)
    }

    /// The hooks to hand the tenant actors (`RegistryConfig::outbox`).
    pub fn hooks(&self) -> OutboxHooks {
        OutboxHooks(Arc::new(hooks::Observer(Arc::clone(&self.inner))))
    }

    /// The delivery settings.
    pub fn settings(&self) -> &WebhookSettings {
        &self.inner.settings
    }

    /// Starts the delivery worker on a thread of its own: it reads what the outboxes
    /// of this node's tenants hold undelivered, then delivers as events come.
    pub fn start(&self, store: Arc<dyn Store>) {
        let Some(inbox) = lock(&self.pending).take() else {
            return;
        };
        let arbiter = actix_rt::Arbiter::new();
        let inner = Arc::clone(&self.inner);
        // The worker holds the HTTP client, which stays on the thread that made it.
        arbiter.spawn_fn(move || {
            actix_rt::spawn(async move {
                worker::Worker::new(inner, store).run(inbox).await;
            });
        });
        *lock(&self.arbiter) = Some(arbiter);
    }

    /// Stops the worker (deliveries in flight are abandoned: they are retried after the
    /// next start, as at-least-once allows).
    pub fn stop(&self) {
        if let Some(arbiter) = lock(&self.arbiter).take() {
            arbiter.stop();
            let _ = arbiter.join();
        }
    }

    /// Makes the worker look at the clock again, for retries that became due because a
    /// manual clock moved (tests, embedders).
    pub fn kick(&self) {
        self.inner.signal(Signal::Kick);
    }
}

impl Inner {
    fn signal(&self, signal: Signal) {
        // Err only when the worker stopped (shutdown): nothing is left to tell.
        let _ = self.signals.send(signal);
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether this node delivers `tenant`'s outbox: the tenants it owns. One node owns
/// every tenant today; with several, ownership moves and the next owner's worker picks
/// the outbox up where the cursors say.
fn delivers_for(tenant: &TenantId) -> bool {
    placement::owner_of(tenant) == Owner::Local
}
