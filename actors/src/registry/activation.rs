//! Activation: asynchronous and single-flight.
//!
//! Acquiring a tenant may wait for a database round trip, so it never runs on the
//! caller's thread: the first request for an inactive tenant starts a [`Transition`]
//! and the acquisition runs on a blocking thread; every request for the tenant that
//! arrives meanwhile waits for that transition instead of acquiring again (with a
//! shared store, a second acquisition would raise the epoch and fence the first). The
//! blocking task finishes the transition whatever happens to the requests that wait
//! for it, and a departure in progress (passivation) is a transition too: the next
//! activation starts only after the old actor released the tenant.
use std::sync::Arc;

use actix::Supervisor;
use dashmap::mapref::entry::Entry;
use permetrix_storage::{Acquisition, Broker, StorageError, TenantId, VendorId};
use tokio::sync::watch;

use super::{Entry_, Registry};
use crate::TenantError;
use crate::domain::TenantState;
use crate::metrics::OwnershipEvent;
use crate::shared::{LEASE_LOST, StopReason, TenantShared};
use crate::tenant_actor::TenantActor;

/// How a transition of one tenant ended, as every request that waited for it learns.
#[derive(Clone, Debug)]
pub(super) enum Settled {
    /// Its actor runs here now.
    Active,
    /// Its actor stopped and the tenant was released: activate it again.
    Departed,
    /// Another broker owns it.
    Elsewhere(Broker),
    /// Not activated, for this reason (retry later).
    Refused(&'static str),
    /// Reading or acquiring it failed.
    Failed(Arc<str>),
}

impl Settled {
    fn into_result(self) -> Result<(), TenantError> {
        match self {
            Settled::Active | Settled::Departed => Ok(()),
            Settled::Elsewhere(broker) => Err(TenantError::Elsewhere(broker)),
            Settled::Refused(why) => Err(TenantError::Unavailable(why)),
            Settled::Failed(why) => Err(TenantError::Storage(StorageError::Unavailable(
                why.to_string(),
            ))),
        }
    }

    fn failed(e: &dyn std::fmt::Display) -> Self {
        Settled::Failed(format!("activating the tenant failed: {e}").into())
    }
}

/// One tenant's activation or departure in progress.
pub(crate) struct Transition {
    settled: watch::Sender<Option<Settled>>,
}

impl Transition {
    /// Requests waiting for this transition to settle (tests).
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.settled.receiver_count()
    }
}

/// The claim on a tenant's transition: finishing it (or dropping it, should its work
/// panic) removes the transition and wakes every request that waits for it.
pub(super) struct Claim {
    registry: Registry,
    tenant: TenantId,
    transition: Arc<Transition>,
    done: bool,
}

impl Claim {
    pub(super) fn finish(mut self, outcome: Settled) {
        self.settle(outcome);
    }

    fn settle(&mut self, outcome: Settled) {
        self.done = true;
        self.registry
            .0
            .transitions
            .remove_if(&self.tenant, |_, t| Arc::ptr_eq(t, &self.transition));
        self.transition.settled.send_replace(Some(outcome));
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.done {
            self.settle(Settled::Refused("its activation was interrupted"));
        }
    }
}

impl Registry {
    /// Claims the tenant's transition if none is in progress; `None` if one is.
    pub(super) fn claim(&self, tenant: &TenantId) -> Option<Claim> {
        match self.0.transitions.entry(tenant.clone()) {
            Entry::Occupied(_) => None,
            Entry::Vacant(v) => {
                let transition = Arc::new(Transition {
                    settled: watch::channel(None).0,
                });
                v.insert(Arc::clone(&transition));
                Some(Claim {
                    registry: self.clone(),
                    tenant: tenant.clone(),
                    transition,
                    done: false,
                })
            }
        }
    }

    /// Makes sure the tenant's actor runs here, or says why not: joins the transition in
    /// progress, or acquires the tenant (on a blocking thread when that waits on the
    /// network). Returns once the transition settled; the caller then looks the actor up
    /// again.
    pub(super) async fn activate(&self, tenant: &TenantId) -> Result<(), TenantError> {
        // Checked here, not on a blocking thread: requests for made-up tenant names must
        // not each take a thread (the platform read is local or cached).
        let vendor_id = self.live_vendor(tenant)?;
        let mut settled = loop {
            if let Some(waiting) = self
                .0
                .transitions
                .get(tenant)
                .map(|t| t.settled.subscribe())
            {
                break waiting;
            }
            // Claimed by someone else between the two looks: join theirs.
            let Some(claim) = self.claim(tenant) else {
                continue;
            };
            let waiting = claim.transition.settled.subscribe();
            // An activation may have finished between the caller's miss and the claim:
            // it inserted its actor before giving the transition up.
            if self.active(tenant)?.is_some() {
                claim.finish(Settled::Active);
                return Ok(());
            }
            if !self.0.ownership.acquire_waits_on_the_network() {
                claim.finish(self.acquire_and_start(tenant, vendor_id.clone()));
                break waiting;
            }
            let registry = self.clone();
            let (id, vendor_id) = (tenant.clone(), vendor_id.clone());
            // Detached: it finishes the transition even if every waiter leaves.
            drop(tokio::task::spawn_blocking(move || {
                let outcome = registry.acquire_and_start(&id, vendor_id);
                claim.finish(outcome);
            }));
            break waiting;
        };
        match settled.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().map_or(Ok(()), Settled::into_result),
            Err(_) => Err(TenantError::Unavailable("its activation was interrupted")),
        }
    }

    /// The vendor of a live tenant; an unknown (or deleted) tenant is
    /// [`TenantError::UnknownTenant`], and nothing is acquired for it.
    fn live_vendor(&self, tenant: &TenantId) -> Result<VendorId, TenantError> {
        let record = self
            .0
            .platform
            .live_tenant(tenant)?
            .ok_or(TenantError::UnknownTenant)?;
        VendorId::parse(&record.vendor_id)
            .map_err(|_| TenantError::Unavailable("its tenant record names an invalid vendor id"))
    }

    /// Acquires the live tenant and starts its actor (on a blocking thread if the
    /// acquisition waits on the network): the state comes with the acquisition (one step, so no write of a previous owner can be
    /// missing from it).
    fn acquire_and_start(&self, tenant: &TenantId, vendor_id: VendorId) -> Settled {
        let generation = self.0.lease.generation();
        if self.serving().is_err() {
            return Settled::Refused(LEASE_LOST);
        }
        // Read first: a reopen of the store during the load forces a reload.
        let incarnation = self.0.store.incarnation();
        let (epoch, records) = match self.0.ownership.acquire(tenant) {
            Ok(Acquisition::Acquired { epoch, records }) => (epoch, records),
            Ok(Acquisition::OwnedBy(broker)) => return Settled::Elsewhere(broker),
            Err(e) => return Settled::failed(&e),
        };
        self.0.metrics.ownership(OwnershipEvent::Acquired);
        let state = TenantState::from_records(tenant.clone(), *records);
        let outbox = self.0.config.outbox.0.for_tenant(tenant, &vendor_id);
        let shared = Arc::new(TenantShared::new(
            &state,
            epoch,
            vendor_id,
            self.0.config.mailbox_capacity,
            self.0.config.tenant_concurrency,
            self.0.metrics.for_tenant(tenant),
            Arc::clone(&self.0.supervision),
            outbox,
            Arc::clone(&self.0.metrics),
            self.0.clock.now(),
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
        self.0.tenants.insert(
            tenant.clone(),
            Entry_ {
                addr,
                shared: Arc::clone(&shared),
            },
        );
        // The actor now owns the state: fan-out must ask it, not a copy.
        self.0.idle.invalidate(tenant);
        if self.0.lease.generation() != generation || self.serving().is_err() {
            // The lease was lost while this tenant loaded: the loss may have missed the
            // actor just inserted, and what was loaded may not be this broker's.
            self.evict(tenant, &shared);
            shared.stop_now(StopReason::LeaseLost);
            return Settled::Refused(LEASE_LOST);
        }
        tracing::debug!(tenant = %tenant, epoch = %epoch, "activated tenant actor");
        Settled::Active
    }
}
