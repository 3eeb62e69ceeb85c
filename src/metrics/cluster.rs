//! What this broker owns and how requests reach other brokers (`SCALE-OUT.md`): tenants
//! owned (a gauge read at scrape time), acquisitions, releases, fenced writes,
//! passivations and lease losses (reported by the actors' registry), and requests
//! replayed, forwarded or not routable (counted at the HTTP edge).
use permetrix_actors::metrics::OwnershipEvent;
use prometheus::{IntCounter, IntGauge};

use super::names;

/// Counters of ownership and routing.
pub(crate) struct ClusterMetrics {
    pub(crate) owned: IntGauge,
    acquisitions: IntCounter,
    releases: IntCounter,
    fenced: IntCounter,
    passivations: IntCounter,
    lease_losses: IntCounter,
    pub(crate) replayed: IntCounter,
    pub(crate) forwarded: IntCounter,
    pub(crate) unrouted: IntCounter,
}

impl ClusterMetrics {
    pub(crate) fn new(registry: &prometheus::Registry) -> prometheus::Result<Self> {
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let owned = IntGauge::new(
            names::TENANTS_OWNED,
            "Tenants this broker owns now (their actors run here).",
        )?;
        registry.register(Box::new(owned.clone()))?;
        Ok(ClusterMetrics {
            owned,
            acquisitions: counter(
                names::TENANT_ACQUISITIONS,
                "Tenants acquired by this broker.",
            )?,
            releases: counter(names::TENANT_RELEASES, "Tenants released by this broker.")?,
            fenced: counter(
                names::FENCED_WRITES,
                "Writes refused because another broker owns their tenant now.",
            )?,
            passivations: counter(
                names::PASSIVATIONS,
                "Idle tenant actors stopped to free their memory.",
            )?,
            lease_losses: counter(
                names::LEASE_LOSSES,
                "Times this broker could not prove its lease and stopped every tenant's actor.",
            )?,
            replayed: counter(
                names::REQUESTS_REPLAYED,
                "Requests for a tenant owned by another broker answered with fly-replay.",
            )?,
            forwarded: counter(
                names::REQUESTS_FORWARDED,
                "Requests for a tenant owned by another broker forwarded to it.",
            )?,
            unrouted: counter(
                names::REQUESTS_UNROUTED,
                "Requests for a tenant owned by another broker that could not be routed there.",
            )?,
        })
    }

    pub(crate) fn ownership(&self, event: OwnershipEvent) {
        match event {
            OwnershipEvent::Acquired => self.acquisitions.inc(),
            OwnershipEvent::Released => self.releases.inc(),
            OwnershipEvent::Fenced => self.fenced.inc(),
            OwnershipEvent::Passivated => self.passivations.inc(),
            OwnershipEvent::LeaseLost => self.lease_losses.inc(),
        }
    }
}
