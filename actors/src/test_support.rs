//! Set-up shared by the actor-level tests: a tenant registered as the vendor API does
//! it, with one "ecu" pool provisioned through its actor.
use std::sync::Arc;

use permetrix_storage::records::PackageRecord;
use permetrix_storage::test_records;
use permetrix_storage::{Money, Platform, Store, TenantId, Timestamp};

use crate::Registry;
use crate::domain::{BorrowRequest, Grant, ProvisionRequest};
use crate::messages::{Borrow, Provision};

/// The "ecu" pool (product name "ECU") a test tenant gets.
#[derive(Clone, Copy)]
pub(crate) struct Pool {
    pub commit: u32,
    pub overage: u32,
    pub overage_cents: i64,
}

impl Pool {
    /// `seats` commit seats, no overage.
    pub(crate) fn commit_only(seats: u32) -> Self {
        Pool {
            commit: seats,
            overage: 0,
            overage_cents: 0,
        }
    }
}

/// Registers tenant `id` of vendor "vector" at `at` and provisions `pool` for it.
pub(crate) async fn add_tenant(
    store: &Arc<dyn Store>,
    registry: &Registry,
    id: &str,
    at: Timestamp,
    pool: Pool,
) -> TenantId {
    Platform::new(Arc::clone(store))
        .create_tenant(
            &test_records::tenant(id, at),
            &test_records::admin_key(id, "admin", at),
        )
        .unwrap()
        .wait()
        .await
        .unwrap();
    let base = test_records::package("ecu", pool.commit, at);
    let package = PackageRecord {
        package_id: format!("pkg-{id}"),
        ..test_records::with_overage(base, pool.overage, Money::from_cents(pool.overage_cents))
    };
    let tenant = TenantId::parse(id).unwrap();
    registry
        .send(&tenant, Provision(ProvisionRequest { package }))
        .await
        .unwrap();
    tenant
}

/// A borrow by `user` of the test pool, answered at once (no wait, no key).
pub(crate) fn borrow(user: &str) -> Borrow {
    Borrow::now(request(user, None))
}

/// `user`'s request for a seat of the test pool, with the lease length given.
pub(crate) fn request(user: &str, lease_seconds: Option<u32>) -> BorrowRequest {
    BorrowRequest::parse("ECU", user, lease_seconds).unwrap()
}

/// Borrows a seat of the test pool for `user` at once; panics if none is granted.
pub(crate) async fn grant(registry: &Registry, tenant: &TenantId, user: &str) -> Grant {
    match registry.send(tenant, borrow(user)).await {
        Ok(outcome) => outcome
            .granted_now()
            .unwrap_or_else(|| panic!("{user} was not granted a seat at once")),
        Err(e) => panic!("{user} was refused a seat: {e}"),
    }
}
