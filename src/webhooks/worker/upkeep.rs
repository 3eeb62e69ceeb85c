//! The worker's bookkeeping beside its lanes: disabling an endpoint that gave up,
//! resends, how far each tenant's lanes got (for the actor and the depth metric), and
//! pruning old deliveries.
use std::sync::Arc;

use permetrix_storage::TenantId;
use permetrix_storage::records::DeliveryStatus;

use super::{KEEP_DELIVERIES, LaneKey, PRUNE_EVERY, State, Worker};

impl Worker {
    /// Disables an endpoint whose head event failed for the whole retry period; the
    /// portal shows why.
    pub(super) fn give_up(&mut self, key: &LaneKey, why: String) {
        let Some(endpoint) = self.lanes.get(key).map(|l| Arc::clone(&l.endpoint)) else {
            return;
        };
        // Several lanes of the endpoint may give up at once: it is disabled once.
        if !self.disabling.insert(Arc::clone(&key.endpoint)) {
            return;
        }
        tracing::warn!(endpoint = %endpoint.id, vendor = %endpoint.vendor, reason = %why, "disabling a webhook endpoint");
        self.inner.metrics.endpoint_disabled();
        let inner = Arc::clone(&self.inner);
        let now = inner.clock.now();
        actix_rt::spawn(async move {
            if let Err(e) = inner
                .set_disabled(&endpoint.vendor, &endpoint.id, Some((now, why)))
                .await
            {
                tracing::error!(endpoint = %endpoint.id, error = %e, "disabling a webhook endpoint failed");
            }
        });
    }

    /// Sends one delivery again: a pending one is retried now in its lane, a settled one
    /// is sent once more on its own.
    pub(super) fn resend(&mut self, endpoint_id: &str, delivery_id: &str) {
        let Some(endpoint) = self
            .inner
            .endpoints
            .get(endpoint_id)
            .map(|e| Arc::clone(e.value()))
        else {
            return;
        };
        let delivery = match self
            .inner
            .platform
            .webhook_delivery(endpoint_id, delivery_id)
        {
            Ok(Some(d)) => d,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(endpoint = endpoint_id, error = %e, "cannot read a delivery to resend");
                return;
            }
        };
        if delivery.status == DeliveryStatus::Pending
            && let Ok(tenant) = TenantId::parse(&delivery.tenant_id)
        {
            let key = LaneKey {
                endpoint: Arc::from(endpoint_id),
                tenant,
            };
            if let Some(lane) = self.lanes.get_mut(&key) {
                if let State::Waiting(at) = lane.state {
                    self.timers.remove(&(at, key.clone()));
                    lane.state = State::Queued;
                    self.ready.push_back(key);
                }
                return;
            }
        }
        if self
            .resending
            .insert((Arc::from(endpoint_id), delivery.id.clone()))
        {
            self.resends.push_back((endpoint, delivery));
        }
    }

    /// The lanes of `tenant`.
    pub(super) fn keys_of(&self, tenant: &TenantId) -> Vec<LaneKey> {
        self.by_tenant
            .get(tenant)
            .into_iter()
            .flatten()
            .map(|endpoint| LaneKey {
                endpoint: Arc::clone(endpoint),
                tenant: tenant.clone(),
            })
            .collect()
    }

    /// How far the tenant's slowest lane got (a lane that has not read yet: 0);
    /// `None` if the tenant has no lane.
    fn slowest_cursor(&self, tenant: &TenantId) -> Option<u64> {
        self.keys_of(tenant)
            .iter()
            .filter_map(|key| self.lanes.get(key).map(|l| l.cursor.unwrap_or(0)))
            .min()
    }

    /// Tells the tenant's actor how far every lane of the tenant got, so it deletes
    /// what all have. A lane that has not read yet holds everything.
    pub(super) fn update_delivered(&self, tenant: &TenantId) {
        if let Some(progress) = self.inner.tenants.get(tenant) {
            progress.set_delivered(self.slowest_cursor(tenant).unwrap_or(0));
        }
    }

    /// Reports how many of the tenant's durable events some lane still lacks.
    pub(super) fn update_depth(&mut self, tenant: &TenantId, head: u64) {
        let behind = self.slowest_cursor(tenant);
        // The actor says how far its events are durable; a tenant whose actor has not
        // run since the start counts what its lanes read.
        let durable = self
            .inner
            .tenants
            .get(tenant)
            .map(|p| p.durable())
            .filter(|d| *d != u64::MAX)
            .unwrap_or(0);
        let entry = self.depth.entry(tenant.clone()).or_insert((0, 0));
        entry.0 = entry.0.max(head).max(durable);
        // A full outbox keeps only its newest events: those dropped are not owed.
        let capacity = self.inner.settings.outbox_capacity;
        let depth = behind.map_or(0, |b| entry.0.saturating_sub(b).min(capacity));
        self.inner.metrics.outbox_depth_changed(entry.1, depth);
        entry.1 = depth;
    }

    /// Counts a new delivery record of an endpoint and prunes its old ones now and then.
    pub(super) fn count_delivery(&mut self, endpoint: &Arc<str>) {
        let count = self.since_prune.entry(Arc::clone(endpoint)).or_insert(0);
        *count += 1;
        if *count < PRUNE_EVERY {
            return;
        }
        *count = 0;
        let platform = self.inner.platform.clone();
        let endpoint = endpoint.to_string();
        actix_rt::spawn(async move {
            match platform.prune_webhook_deliveries(&endpoint, KEEP_DELIVERIES) {
                Ok(written) => {
                    let _ = written.durable.wait().await;
                }
                Err(e) => {
                    tracing::warn!(endpoint, error = %e, "pruning old webhook deliveries failed")
                }
            }
        });
    }
}
