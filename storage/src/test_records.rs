//! Records that tests and benchmarks write (unit tests, and cargo feature
//! `test-support`): a lease, and a package that callers adjust with struct update
//! syntax (`PackageRecord { package_id: …, ..package("ecu", 10, at) }`).
use crate::records::{LeaseRecord, PackageRecord, PackageStatus};
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
