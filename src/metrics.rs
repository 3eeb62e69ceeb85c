//! Prometheus metrics, served on `GET /metrics` of the main host.
//!
//! One owned [`prometheus::Registry`] (no global registry), names in [`names`]:
//!
//! - HTTP requests and latency by route pattern (`http`), recorded by the request
//!   middleware;
//! - storage flush duration and batch size (`storage`), reported by the flusher;
//! - webhook outbox depth, deliveries by outcome, dropped events and disabled endpoints
//!   (`webhooks`), reported by the delivery worker and the tenant actors;
//! - every family with a `tenant` label (`tenant`, `families`, `collector`): borrow counters
//!   and latency (recorded at the HTTP edge from each borrow's answer, so that every
//!   attempt ends in exactly one outcome), seat gauges (published by the tenant's actor
//!   after each committed change, so they are never stale), actor message latency,
//!   restarts and mailbox rejections (actor hooks), and mailbox depth (the admission
//!   semaphore's permits in use, read at scrape time). They are rendered at scrape time
//!   under a cardinality guard;
//! - ownership and routing across brokers (`cluster`): tenants owned, acquisitions,
//!   releases, fenced writes, passivations, lease losses (actor hooks), requests
//!   replayed, forwarded or not routable (the routing middleware).
mod cluster;
mod collector;
mod families;
mod http;
pub mod names;
mod storage;
pub mod supervision;
mod tenant;
mod webhooks;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::http::Method;
use permetrix_actors::Registry;
use permetrix_actors::metrics::ActorMetrics;
use permetrix_storage::{FlushObserver, TenantId};
use prometheus::Encoder;

use cluster::ClusterMetrics;
use collector::TenantCollector;
use http::HttpMetrics;
use storage::FlushMetrics;
pub use tenant::BorrowAttempt;
use tenant::{ActorHooks, TenantSeriesMap};
pub use webhooks::{DeliveryOutcome, WebhookMetrics};

/// Tenants that keep their own `tenant` label before the rest are aggregated.
pub const DEFAULT_MAX_TENANTS: usize = 1000;

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric of the server.
pub struct Metrics {
    registry: prometheus::Registry,
    http: HttpMetrics,
    flush: Arc<FlushMetrics>,
    tenants: Arc<TenantSeriesMap>,
    cluster: Arc<ClusterMetrics>,
    mailboxes: Arc<OnceLock<Registry>>,
    webhooks: Arc<WebhookMetrics>,
}

impl Metrics {
    /// Registers every family. `max_tenants` bounds the tenants with their own series;
    /// the least recently active of the rest are summed into `tenant="_other"`.
    pub fn new(max_tenants: usize) -> prometheus::Result<Self> {
        let registry = prometheus::Registry::new();
        let tenants = Arc::new(TenantSeriesMap::new());
        tenants.probe()?;
        let mailboxes = Arc::new(OnceLock::new());
        registry.register(Box::new(TenantCollector::new(
            Arc::clone(&tenants),
            Arc::clone(&mailboxes),
            max_tenants.max(1),
        )?))?;
        Ok(Metrics {
            http: HttpMetrics::new(&registry)?,
            flush: Arc::new(FlushMetrics::new(&registry)?),
            webhooks: Arc::new(WebhookMetrics::new(&registry)?),
            cluster: Arc::new(ClusterMetrics::new(&registry)?),
            registry,
            tenants,
            mailboxes,
        })
    }

    /// The hooks the tenant actors report to (pass to `Registry::start`).
    pub fn actor_hooks(&self) -> Arc<dyn ActorMetrics> {
        Arc::new(ActorHooks {
            tenants: Arc::clone(&self.tenants),
            cluster: Arc::clone(&self.cluster),
        })
    }

    /// The observer of storage flushes (pass in `SledConfig::observer`).
    pub fn flush_observer(&self) -> Arc<dyn FlushObserver> {
        Arc::clone(&self.flush) as Arc<dyn FlushObserver>
    }

    /// The webhook delivery metrics.
    pub fn webhooks(&self) -> Arc<WebhookMetrics> {
        Arc::clone(&self.webhooks)
    }

    /// Reads mailbox depths from `registry` at every scrape.
    pub fn watch_mailboxes(&self, registry: Registry) {
        // Set once at start-up; a second call would be a wiring bug and changes nothing.
        let _ = self.mailboxes.set(registry);
    }

    /// Starts timing a borrow of `tool` (the provisioned name, `None` if the tool is
    /// unknown) at `tenant`.
    pub fn borrow_attempt(&self, tenant: &TenantId, tool: Option<&str>) -> BorrowAttempt {
        BorrowAttempt::new(self.tenants.get(tenant), tool)
    }

    /// Records an answered HTTP request.
    pub fn observe_request(&self, route: String, method: &Method, status: u16, elapsed: Duration) {
        self.http.observe(route, method, status, elapsed);
    }

    /// Counts a request held until the `Retry-After` its connection was given.
    pub fn early_retry_held(&self) {
        self.http.early_retry_held();
    }

    /// Counts a request answered with `fly-replay` (its tenant is owned elsewhere).
    pub fn request_replayed(&self) {
        self.cluster.replayed.inc();
    }

    /// Counts a request forwarded to the broker that owns its tenant.
    pub fn request_forwarded(&self) {
        self.cluster.forwarded.inc();
    }

    /// Counts a request for a tenant owned elsewhere that could not be routed there.
    pub fn request_unrouted(&self) {
        self.cluster.unrouted.inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> prometheus::Result<String> {
        if let Some(registry) = self.mailboxes.get() {
            let owned = i64::try_from(registry.active_count()).unwrap_or(i64::MAX);
            self.cluster.owned.set(owned);
        }
        let mut out = Vec::with_capacity(16 * 1024);
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
