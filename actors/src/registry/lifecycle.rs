//! How running actors end (`SCALE-OUT.md`, invariants 3 and 4):
//!
//! - **evicted**: an actor whose write was fenced stopped itself; its entry is removed
//!   on the next lookup or sweep, and the next request acquires the tenant again (and
//!   learns its new owner);
//! - **passivated**: an actor idle for [`RegistryConfig::idle_passivate`] with nothing
//!   due in its memory stops once its last write is durable, releases its tenant and
//!   frees its memory; the tenant's next request activates it again;
//! - **lease lost**: when this broker cannot prove its lease, every actor stops at once
//!   (none answers from memory any more), and the broker registers again under a new
//!   node id before it activates anything;
//! - **leave**: at shutdown every actor stops, the last writes settle, and the broker
//!   releases every tenant it owns.
//!
//! [`RegistryConfig::idle_passivate`]: super::RegistryConfig::idle_passivate
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use permetrix_storage::{Epoch, TenantId};
use tokio::time::MissedTickBehavior;

use super::activation::Settled;
use super::{Lease, Registry};
use crate::TenantError;
use crate::metrics::OwnershipEvent;
use crate::shared::{Stop, StopReason, TenantShared};

/// How often the upkeep checks this broker's lease. Requests check it too, before they
/// are answered, so a broker woken from a stall answers nothing from memory while this
/// timer has not fired yet.
pub const LEASE_CHECK_EVERY: Duration = Duration::from_millis(250);

/// Longest time between two passivation sweeps.
const SWEEP_AT_MOST_EVERY: Duration = Duration::from_secs(5);

impl Lease {
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

impl Registry {
    /// Starts the upkeep on the current arbiter (must run inside an actix `System`):
    /// checks the lease every [`LEASE_CHECK_EVERY`], passivates idle actors and evicts
    /// stopped ones. It ends when the registry leaves or shuts down.
    pub fn spawn_upkeep(&self) {
        let registry = self.clone();
        let sweep_every = self
            .0
            .config
            .idle_passivate
            .map_or(SWEEP_AT_MOST_EVERY, |idle| {
                (idle / 4).clamp(LEASE_CHECK_EVERY, SWEEP_AT_MOST_EVERY)
            });
        actix::spawn(async move {
            let mut tick = tokio::time::interval(LEASE_CHECK_EVERY);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut swept = Instant::now();
            while !registry.0.lease.closed.load(Ordering::SeqCst) {
                tick.tick().await;
                registry.watch_lease();
                if swept.elapsed() >= sweep_every {
                    swept = Instant::now();
                    registry.evict_stopped();
                    registry.passivate_idle().await;
                }
            }
        });
    }

    /// Checks this broker's lease now (the upkeep does so every [`LEASE_CHECK_EVERY`]).
    /// Lost: every actor stops and the broker registers again; registered again but a
    /// previous attempt failed: tries once more.
    pub fn watch_lease(&self) {
        let lease = &self.0.lease;
        if lease.closed.load(Ordering::SeqCst) {
            return;
        }
        if !self.0.ownership.lease_holds() {
            self.lose_lease();
        } else if lease.lost.load(Ordering::SeqCst) {
            self.rejoin_in_background();
        }
    }

    /// Whether this broker serves from memory now (its lease holds and it is not
    /// registering again).
    pub fn lease_serving(&self) -> bool {
        self.serving().is_ok()
    }

    /// This broker cannot prove its lease: from now on nothing is answered from memory.
    /// Every actor is told to stop (each drops its state), activation is refused, and
    /// the broker registers again in the background.
    pub(super) fn lose_lease(&self) {
        let lease = &self.0.lease;
        if !lease.lost.swap(true, Ordering::SeqCst) {
            // Bumped before the actors are cleared: an activation that inserts after the
            // clear sees the new generation and stops its own actor.
            lease.generation.fetch_add(1, Ordering::SeqCst);
            let mut stopped = 0usize;
            self.0.tenants.retain(|_, entry| {
                entry.shared.stop_now(StopReason::LeaseLost);
                stopped += 1;
                false
            });
            self.0.metrics.ownership(OwnershipEvent::LeaseLost);
            tracing::error!(
                tenants = stopped,
                "this broker cannot prove its lease: every tenant's actor stopped; registering again"
            );
        }
        self.rejoin_in_background();
    }

    /// Registers again under a new node id, on a blocking thread, unless that runs
    /// already; once it succeeded the broker serves again (activating from scratch).
    fn rejoin_in_background(&self) {
        let lease = &self.0.lease;
        if lease.closed.load(Ordering::SeqCst) || lease.rejoining.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // The upkeep tries again from its runtime.
            lease.rejoining.store(false, Ordering::SeqCst);
            return;
        };
        let registry = self.clone();
        drop(runtime.spawn_blocking(move || {
            let lease = &registry.0.lease;
            match registry.0.ownership.rejoin() {
                Ok(()) if !lease.closed.load(Ordering::SeqCst) => {
                    lease.lost.store(false, Ordering::SeqCst);
                    tracing::info!("registered again under a new node id; serving tenants again");
                }
                Ok(()) => {}
                Err(e) => {
                    tracing::error!(error = %e, "registering again failed; retrying");
                }
            }
            lease.rejoining.store(false, Ordering::SeqCst);
        }));
    }

    /// Removes the entry of a stopped actor, if it is still `shared`'s.
    pub(crate) fn evict(&self, tenant: &TenantId, shared: &Arc<TenantShared>) {
        let removed = self
            .0
            .tenants
            .remove_if(tenant, |_, e| Arc::ptr_eq(&e.shared, shared));
        if removed.is_some() {
            self.0.idle.invalidate(tenant);
        }
    }

    /// Removes the entries of every stopped actor (fenced ones nobody asked for since).
    pub fn evict_stopped(&self) {
        self.0.tenants.retain(|_, e| e.shared.stopped().is_none());
    }

    /// Passivates every actor idle for [`RegistryConfig::idle_passivate`] (the upkeep
    /// calls this periodically): it stops once its last write is durable, the tenant is
    /// released, and its memory is freed. Requests for a tenant being passivated wait
    /// until it is released, then activate it again. Returns how many stopped.
    ///
    /// [`RegistryConfig::idle_passivate`]: super::RegistryConfig::idle_passivate
    pub async fn passivate_idle(&self) -> usize {
        let Some(idle) = self.0.config.idle_passivate else {
            return 0;
        };
        if self.serving().is_err() {
            return 0;
        }
        let now = self.0.clock.now();
        let candidates: Vec<(TenantId, Arc<TenantShared>)> = self
            .0
            .tenants
            .iter()
            .filter(|e| e.shared.stopped().is_none() && e.shared.idle_since(now, idle))
            .map(|e| (e.key().clone(), Arc::clone(&e.shared)))
            .collect();
        let mut departing = Vec::with_capacity(candidates.len());
        for (tenant, shared) in candidates {
            let Some(claim) = self.claim(&tenant) else {
                continue;
            };
            // Checked again under the entry's write lock, where no request can be
            // between its lookup and its admission.
            let removed = self.0.tenants.remove_if(&tenant, |_, e| {
                Arc::ptr_eq(&e.shared, &shared) && shared.idle_since(now, idle)
            });
            if removed.is_none() {
                claim.finish(Settled::Active);
                continue;
            }
            shared.stop_now(StopReason::Passivated);
            departing.push((claim, shared));
        }
        let passivated = departing.len();
        if passivated == 0 {
            return 0;
        }
        for (_, shared) in &departing {
            shared.writes_settled().await;
        }
        // Releases may wait for the database: one blocking task for the whole sweep.
        let registry = self.clone();
        let released = tokio::task::spawn_blocking(move || {
            for (claim, shared) in departing {
                registry.release(shared.tenant(), shared.epoch());
                registry.0.metrics.ownership(OwnershipEvent::Passivated);
                // Read again from the store from now on: the actor's writes are in it.
                registry.0.idle.invalidate(shared.tenant());
                claim.finish(Settled::Departed);
            }
        })
        .await;
        if let Err(e) = released {
            tracing::error!(error = %e, "releasing passivated tenants failed");
        }
        tracing::debug!(tenants = passivated, "passivated idle tenant actors");
        passivated
    }

    /// Stops the tenant's actor (after a soft delete) and releases the tenant. Queued
    /// messages are still answered first; the next request finds no live tenant.
    pub fn deactivate(&self, tenant: &TenantId) {
        if let Some((_, entry)) = self.0.tenants.remove(tenant) {
            entry.addr.do_send(Stop);
            let registry = self.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                drop(runtime.spawn(async move {
                    entry.shared.writes_settled().await;
                    let (tenant, epoch) = (entry.shared.tenant().clone(), entry.shared.epoch());
                    drop(tokio::task::spawn_blocking(move || {
                        registry.release(&tenant, epoch);
                    }));
                }));
            }
        }
        self.0.idle.invalidate(tenant);
        self.0.metrics.tenant_removed(tenant);
    }

    fn release(&self, tenant: &TenantId, epoch: Epoch) {
        match self.0.ownership.release(tenant, epoch) {
            Ok(()) => self.0.metrics.ownership(OwnershipEvent::Released),
            Err(e) => tracing::warn!(
                tenant = %tenant,
                error = %e,
                "releasing the tenant failed; another broker acquires it once this broker's lease lapses"
            ),
        }
    }

    /// Graceful shutdown, after HTTP has drained: every actor stops (after the messages
    /// queued for it), their last writes settle (waiting at most `within`), then this
    /// broker leaves: it releases every tenant it owns and ends its lease.
    pub async fn leave(&self, within: Duration) -> Result<(), TenantError> {
        let lease = &self.0.lease;
        lease.closed.store(true, Ordering::SeqCst);
        lease.lost.store(true, Ordering::SeqCst);
        let mut stopping = Vec::with_capacity(self.0.tenants.len());
        self.0.tenants.retain(|_, entry| {
            stopping.push(entry.clone());
            false
        });
        let settled = join_all(stopping.iter().map(|entry| async {
            // Err: the actor is gone already, which is just as stopped.
            let _ = entry.addr.send(Stop).await;
            entry.shared.writes_settled().await;
        }));
        if tokio::time::timeout(within, settled).await.is_err() {
            tracing::warn!("the last writes did not settle in time; leaving anyway");
        }
        let ownership = Arc::clone(&self.0.ownership);
        tokio::task::spawn_blocking(move || ownership.leave())
            .await
            .map_err(|_| TenantError::Unavailable("leaving the cluster panicked"))??;
        Ok(())
    }

    /// Stops every arbiter thread (server shutdown, after HTTP has drained and the
    /// broker left).
    pub fn shutdown(&self) {
        self.0.lease.closed.store(true, Ordering::SeqCst);
        self.0.tenants.clear();
        self.0.arbiters.stop();
    }
}
