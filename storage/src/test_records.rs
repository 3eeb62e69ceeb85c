//! Records the storage unit tests write: a lease and a package of one product.
use crate::records::{LeaseRecord, PackageRecord, PackageStatus};
use crate::{BorrowId, Money, Timestamp};

/// A fresh one-hour lease of `product`.
pub(crate) fn lease(product: &str) -> LeaseRecord {
    LeaseRecord {
        id: BorrowId::random(),
        product_id: product.into(),
        user: "dev1".into(),
        borrowed_at: Timestamp::from_secs(1),
        lease_expires_at: Timestamp::from_secs(3601),
        lease_seconds: 3600,
        is_overage: false,
    }
}

/// A one-seat package of `product`.
pub(crate) fn package(product: &str) -> PackageRecord {
    PackageRecord {
        package_id: format!("pkg-{product}"),
        vendor_id: "v".into(),
        product_id: product.into(),
        product_name: product.into(),
        total: 1,
        commit_qty: 1,
        max_overage: 0,
        commit_price: Money::ZERO,
        overage_price: Money::ZERO,
        crm_opportunity_id: None,
        valid_from: None,
        valid_until: None,
        status: PackageStatus::Active,
        created_at: Timestamp::from_secs(1),
    }
}
