//! The tenant actors' outbox hooks ([`permetrix_actors::outbox`]): each actor reads
//! what its vendor wants and how far its events are delivered, and says how far they
//! are durable. Every call is an atomic load or store, and at most one signal to the
//! worker per batch of events.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use permetrix_actors::domain::EventMask;
use permetrix_actors::{OutboxObserver, TenantOutbox};
use permetrix_storage::{TenantId, VendorId};

use super::{Inner, Signal};

/// How far one tenant's outbox is durable and delivered, shared by its actor and the
/// worker.
pub(super) struct TenantProgress {
    pub(super) vendor: VendorId,
    /// Events up to here are durable. `u64::MAX` until the tenant's actor first loads:
    /// until then nothing is written, so everything stored is durable.
    durable: AtomicU64,
    /// Every endpoint that wants them has the events up to here (the actor deletes
    /// them).
    delivered: AtomicU64,
    /// A [`Signal::Tenant`] is on its way to the worker.
    signalled: AtomicBool,
}

impl TenantProgress {
    fn new(vendor: VendorId) -> Self {
        TenantProgress {
            vendor,
            durable: AtomicU64::new(u64::MAX),
            delivered: AtomicU64::new(0),
            signalled: AtomicBool::new(false),
        }
    }

    /// Events up to here may be delivered. Read it after reading the events: an event
    /// read before the actor first loaded was durable then.
    pub(super) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    pub(super) fn set_delivered(&self, seq: u64) {
        self.delivered.store(seq, Ordering::Release);
    }

    /// The worker took the signal: the next change signals again.
    pub(super) fn taken(&self) {
        self.signalled.store(false, Ordering::Release);
    }
}

impl Inner {
    /// The progress of `tenant` (created on first use).
    pub(super) fn progress(&self, tenant: &TenantId, vendor: &VendorId) -> Arc<TenantProgress> {
        Arc::clone(
            self.tenants
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(TenantProgress::new(vendor.clone())))
                .value(),
        )
    }
}

/// The observer the registry asks for each activated tenant's hooks.
pub(super) struct Observer(pub(super) Arc<Inner>);

impl OutboxObserver for Observer {
    fn for_tenant(&self, tenant: &TenantId, vendor: &VendorId) -> Arc<dyn TenantOutbox> {
        Arc::new(TenantLink {
            tenant: tenant.clone(),
            progress: self.0.progress(tenant, vendor),
            wanted: self.0.wanted_by(vendor),
            inner: Arc::clone(&self.0),
        })
    }
}

/// One tenant actor's hooks.
struct TenantLink {
    tenant: TenantId,
    progress: Arc<TenantProgress>,
    /// The vendor's wanted types, updated in place when its endpoints change.
    wanted: Arc<AtomicU8>,
    inner: Arc<Inner>,
}

impl TenantLink {
    fn signal(&self) {
        if !self.progress.signalled.swap(true, Ordering::AcqRel) {
            self.inner.signal(Signal::Tenant(self.tenant.clone()));
        }
    }
}

impl TenantOutbox for TenantLink {
    fn wanted(&self) -> EventMask {
        EventMask::from_bits(self.wanted.load(Ordering::Acquire))
    }

    fn loaded(&self, head: u64) {
        self.progress.durable.store(head, Ordering::Release);
        if !self.wanted().is_empty() {
            self.signal();
        }
    }

    fn durable(&self, head: u64) {
        self.progress.durable.fetch_max(head, Ordering::AcqRel);
        self.signal();
    }

    fn delivered_through(&self) -> u64 {
        self.progress.delivered.load(Ordering::Acquire)
    }

    fn capacity(&self) -> u64 {
        self.inner.settings.outbox_capacity
    }

    fn dropped(&self, events: u64) {
        self.inner.metrics.dropped(events);
    }
}
