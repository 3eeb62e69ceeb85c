//! Where a tenant actor's webhook outbox meets the delivery worker, which lives above
//! this crate. The actor writes events; the worker reads them from storage, without the
//! actor, and delivers them. Between the two pass only a few numbers, through these
//! hooks (implemented by the server, like the metric hooks):
//!
//! - which event types the tenant's vendor receives ([`TenantOutbox::wanted`]), read
//!   before each outbox write, so that events nobody receives are never stored;
//! - how far the stored events are durable ([`TenantOutbox::loaded`],
//!   [`TenantOutbox::durable`]): the worker delivers nothing beyond, so a receiver never
//!   hears of a change a crash could still undo;
//! - how far every endpoint has them ([`TenantOutbox::delivered_through`]), so that the
//!   actor deletes delivered events with its next outbox write.
use std::fmt;
use std::sync::Arc;

use permetrix_storage::{TenantId, VendorId};

use crate::domain::EventMask;

/// Gives each tenant actor its outbox hooks when the tenant is activated.
pub trait OutboxObserver: Send + Sync + 'static {
    /// The hooks of `tenant`, a customer of `vendor`.
    fn for_tenant(&self, tenant: &TenantId, vendor: &VendorId) -> Arc<dyn TenantOutbox>;
}

/// One tenant's outbox hooks. Called on the actor's thread: keep every call cheap.
pub trait TenantOutbox: Send + Sync + 'static {
    /// The event types the tenant's vendor receives now.
    fn wanted(&self) -> EventMask;
    /// The actor loaded its state: the stored events, up to `head`, are durable.
    fn loaded(&self, head: u64);
    /// The events up to `head` are durable now.
    fn durable(&self, head: u64);
    /// Every endpoint that wants them has the events up to this sequence number.
    fn delivered_through(&self) -> u64;
    /// The most events the tenant's outbox keeps.
    fn capacity(&self) -> u64;
    /// `events` were dropped undelivered because the outbox was full.
    fn dropped(&self, events: u64);
}

/// No webhooks: nothing is wanted, so nothing is stored (tests, tools).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoWebhooks;

impl OutboxObserver for NoWebhooks {
    fn for_tenant(&self, _: &TenantId, _: &VendorId) -> Arc<dyn TenantOutbox> {
        Arc::new(NoWebhooks)
    }
}

impl TenantOutbox for NoWebhooks {
    fn wanted(&self) -> EventMask {
        EventMask::NONE
    }
    fn loaded(&self, _: u64) {}
    fn durable(&self, _: u64) {}
    fn delivered_through(&self) -> u64 {
        0
    }
    fn capacity(&self) -> u64 {
        1
    }
    fn dropped(&self, _: u64) {}
}

/// The outbox hooks a registry hands its actors ([`crate::RegistryConfig::outbox`]).
#[derive(Clone)]
pub struct OutboxHooks(pub Arc<dyn OutboxObserver>);

impl Default for OutboxHooks {
    fn default() -> Self {
        OutboxHooks(Arc::new(NoWebhooks))
    }
}

impl fmt::Debug for OutboxHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OutboxHooks(..)")
    }
}
