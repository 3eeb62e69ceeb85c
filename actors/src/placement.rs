//! Where tenants run: which node owns a tenant, and which arbiter (thread) of this node
//! hosts its actor.
use std::hash::{Hash, Hasher};

use actix::{Arbiter, ArbiterHandle};
use permetrix_storage::TenantId;

/// Hasher of the per-tenant maps: seeded per process, several times cheaper than
/// SipHash on the short tenant ids looked up on every request and fan-out.
pub(crate) type TenantHasher = foldhash::fast::RandomState;

/// The node that owns a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// This node.
    Local,
    /// Another node (answered with Fly's `fly-replay` header once there are several).
    Remote(String),
}

/// Which node owns `tenant`. One node owns every tenant today; with several machines
/// this becomes a lookup of the tenant's ownership lease.
pub fn owner_of(_tenant: &TenantId) -> Owner {
    Owner::Local
}

/// A fixed pool of arbiters; a tenant is placed on one by hash and stays there.
pub(crate) struct ArbiterPool {
    arbiters: Vec<Arbiter>,
}

impl ArbiterPool {
    /// Starts `n` arbiter threads (at least one). Must run inside an actix `System`.
    pub(crate) fn start(n: usize) -> Self {
        ArbiterPool {
            arbiters: (0..n.max(1)).map(|_| Arbiter::new()).collect(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.arbiters.len()
    }

    pub(crate) fn for_tenant(&self, tenant: &TenantId) -> ArbiterHandle {
        self.arbiters[slot(tenant, self.arbiters.len())].handle()
    }

    /// The index of the arbiter that hosts `tenant`.
    pub(crate) fn slot_of(&self, tenant: &TenantId) -> usize {
        slot(tenant, self.arbiters.len())
    }

    /// The arbiter at `slot` (an index below [`ArbiterPool::len`]).
    pub(crate) fn handle(&self, slot: usize) -> Option<ArbiterHandle> {
        self.arbiters.get(slot).map(Arbiter::handle)
    }

    pub(crate) fn stop(&self) {
        for a in &self.arbiters {
            a.stop();
        }
    }
}

/// Stable slot for a tenant: the same on every start, so placement is predictable.
fn slot(tenant: &TenantId, n: usize) -> usize {
    // SipHash with fixed zero keys: deterministic across processes.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    tenant.as_str().hash(&mut h);
    (h.finish() % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_is_stable_and_spreads() {
        let ids: Vec<TenantId> = (0..1000)
            .map(|i| TenantId::parse(&format!("t{i}")).unwrap())
            .collect();
        let mut counts = [0usize; 4];
        for id in &ids {
            assert_eq!(slot(id, 4), slot(id, 4));
            counts[slot(id, 4)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 150), "{counts:?}");
    }
}
