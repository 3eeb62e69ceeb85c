//! Records that tests and benchmarks write (unit tests, and cargo feature
//! `test-support`): a tenant and its admin key, a lease, and a package that callers
//! adjust with struct update syntax (`PackageRecord { package_id: …, ..package("ecu",
//! 10, at) }`).
use crate::records::{
    ApiKeyRecord, LeaseRecord, Lifecycle, PackageRecord, PackageStatus, Scope, TenantRecord,
};
use crate::{BorrowId, Money, Timestamp};

/// A fresh one-hour lease of `product`, borrowed by "dev1".
pub fn lease(product: &str) -> LeaseRecord {
    LeaseRecord {
        id: BorrowId::random(),
        product_id: product.into(),
        user: "dev1".into(),
        borrowed_at: Timestamp::from_secs(1),
        lease_expires_at: Timestamp::from_secs(3601),
        lease_seconds: 3600,
        is_overage: false,
        offline: false,
    }
}

/// An active package `pkg-<product>` of vendor "vector", named `product` in capitals:
/// `commit` prepaid seats, no overage, free, no validity window, created `at`.
pub fn package(product: &str, commit: u32, at: Timestamp) -> PackageRecord {
    PackageRecord {
        package_id: format!("pkg-{product}"),
        vendor_id: "vector".into(),
        product_id: product.into(),
        product_name: product.to_uppercase(),
        total: commit,
        commit_qty: commit,
        max_overage: 0,
        commit_price: Money::ZERO,
        overage_price: Money::ZERO,
        crm_opportunity_id: None,
        valid_from: None,
        valid_until: None,
        status: PackageStatus::Active,
        created_at: at,
        max_offline_hours: 0,
        max_offline_seats: 0,
    }
}

/// `package` with `seats` overage seats at `price` each on top of its commit.
pub fn with_overage(package: PackageRecord, seats: u32, price: Money) -> PackageRecord {
    PackageRecord {
        total: package.commit_qty + seats,
        max_overage: seats,
        overage_price: price,
        ..package
    }
}

/// A live tenant `id` of vendor "vector", named `id`, created `at`.
pub fn tenant(id: &str, at: Timestamp) -> TenantRecord {
    TenantRecord {
        tenant_id: id.into(),
        vendor_id: "vector".into(),
        company_name: id.into(),
        domain: None,
        crm_id: None,
        created_at: at,
        lifecycle: Lifecycle::Active,
        custom_hosts: Vec::new(),
    }
}

/// An admin-scope API key `key_id` of `tenant`, created `at`, whose secret's digest is
/// all zeros (no client can present it).
pub fn admin_key(tenant: &str, key_id: &str, at: Timestamp) -> ApiKeyRecord {
    ApiKeyRecord {
        key_id: key_id.into(),
        tenant_id: tenant.into(),
        name: "admin".into(),
        scope: Scope::Admin,
        digest: [0; 32],
        created_at: at,
        revoked_at: None,
        expires_at: None,
    }
}
