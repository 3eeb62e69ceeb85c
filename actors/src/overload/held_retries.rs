//! Held early retries: which connection's request for which tenant waits until when.
//!
//! Per connection, so a client is only held for what it was told itself; per tenant,
//! so a proxy's connection that carries several tenants' requests holds only the
//! overloaded tenant's. The server keeps one [`LastRefusal`] in each connection's data
//! and applies it in a middleware.
use std::time::{Duration, Instant};

use permetrix_storage::TenantId;

/// The last overload refusal sent on one connection.
#[derive(Debug, Default)]
pub struct LastRefusal(Option<(TenantId, Instant)>);

impl LastRefusal {
    /// Remembers that `tenant` refused this connection at `at`, telling it to retry
    /// after `retry_after`. A later refusal replaces an earlier one.
    pub fn refused(&mut self, tenant: TenantId, at: Instant, retry_after: Duration) {
        self.0 = Some((tenant, at + retry_after));
    }

    /// Until when a request for `tenant` arriving at `now` is held, if it is early.
    pub fn hold_until(&self, tenant: &TenantId, now: Instant) -> Option<Instant> {
        match &self.0 {
            Some((t, until)) if t == tenant && now < *until => Some(*until),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str) -> TenantId {
        TenantId::parse(id).unwrap()
    }

    #[test]
    fn only_a_retry_to_the_same_tenant_before_the_deadline_is_held() {
        let now = Instant::now();
        let wait = Duration::from_secs(1);
        let until = now + wait;
        let mut last = LastRefusal::default();
        assert_eq!(last.hold_until(&tenant("acme"), now), None);
        last.refused(tenant("acme"), now, wait);
        assert_eq!(last.hold_until(&tenant("acme"), now), Some(until));
        assert_eq!(last.hold_until(&tenant("globex"), now), None);
        assert_eq!(last.hold_until(&tenant("acme"), until), None);
        // A later refusal replaces the earlier one.
        last.refused(tenant("globex"), now, wait);
        assert_eq!(last.hold_until(&tenant("acme"), now), None);
        assert_eq!(last.hold_until(&tenant("globex"), now), Some(until));
    }
}
