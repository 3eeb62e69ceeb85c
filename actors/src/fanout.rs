//! Scatter/gather over many tenants with a deadline.
//!
//! Active tenants are asked through their mailbox, concurrently; idle tenants are read
//! from storage instead of being activated just to answer a read. A tenant that does
//! not answer by the deadline is reported as [`TenantError::Timeout`]; the others still
//! return.
use std::time::Duration;

use futures_util::future::join_all;
use permetrix_storage::TenantId;

use crate::TenantError;
use crate::domain::TenantSnapshot;
use crate::messages::Snapshot;
use crate::registry::Registry;

impl Registry {
    /// Live snapshots of `tenants`, in the order given.
    pub async fn snapshots(
        &self,
        tenants: &[TenantId],
        deadline: Duration,
    ) -> Vec<(TenantId, Result<TenantSnapshot, TenantError>)> {
        let until = tokio::time::Instant::now() + deadline;
        let now = self.clock().now();
        let asks = tenants.iter().map(|t| async move {
            let result = if self.is_active(t) {
                match tokio::time::timeout_at(until, self.send(t, Snapshot)).await {
                    Ok(r) => r,
                    Err(_) => Err(TenantError::Timeout),
                }
            } else {
                self.idle_state(t).map(|s| s.snapshot(now))
            };
            (t.clone(), result)
        });
        join_all(asks).await
    }
}
