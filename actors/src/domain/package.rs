//! The vendor's side of a package after provisioning: limits, prices, validity window
//! and status. Changes apply to new borrows only: leases already granted run out
//! normally, whatever the new limits or status.
use permetrix_storage::records::{PackageRecord, PackageStatus};
use permetrix_storage::{Money, TenantMutation, Timestamp};

use super::DomainError;
use super::budget::Change;
use super::effects::Effects;
use super::input::{Seats, check_overage_exposure, check_seat_sum};
use super::offline::OfflineHours;
use super::pool::Pool;
use super::state::TenantState;

/// Changes to a package (`PATCH /api/vendor/packages/{id}`); absent fields stay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackagePatch {
    /// New seat total.
    pub total: Option<Seats>,
    /// New prepaid seats.
    pub commit_qty: Option<Seats>,
    /// New overage allowance.
    pub max_overage: Option<Seats>,
    /// New commit price.
    pub commit_price: Option<Money>,
    /// New charge per overage borrow (applies to borrows from now on).
    pub overage_price: Option<Money>,
    /// New start of validity (`Clear`: valid from any time).
    pub valid_from: Change<Timestamp>,
    /// New end of validity (`Clear`: no end).
    pub valid_until: Change<Timestamp>,
    /// New status.
    pub status: Option<PackageStatus>,
    /// New CRM reference.
    pub crm_opportunity_id: Change<String>,
    /// New longest offline checkout (0: none).
    pub max_offline_hours: Option<OfflineHours>,
    /// New number of offline checkouts held at once (0: none).
    pub max_offline_seats: Option<Seats>,
}

/// `(total, commit_qty, max_overage)`.
pub type SeatLimits = (u32, u32, u32);

/// Resolves new limits from the ones given, keeping `total = commit_qty + max_overage`.
/// A missing value is derived from the other two; when only one is given, the commit
/// stays unless the commit itself is what changes (then the overage allowance stays).
pub fn resolve_limits(
    current: SeatLimits,
    total: Option<u32>,
    commit: Option<u32>,
    overage: Option<u32>,
) -> Result<SeatLimits, DomainError> {
    let (cur_total, cur_commit, cur_overage) = current;
    let below = |t: u32, part: u32, name: &str| {
        DomainError::Invalid(format!(
            "total ({t}) is below {name} ({part}); lower {name} too or raise total"
        ))
    };
    let resolved = match (total, commit, overage) {
        (None, None, None) => (cur_total, cur_commit, cur_overage),
        (Some(t), Some(c), Some(o)) => {
            check_seat_sum(t, c, o)?;
            (t, c, o)
        }
        (Some(t), Some(c), None) => (
            t,
            c,
            t.checked_sub(c).ok_or_else(|| below(t, c, "commit_qty"))?,
        ),
        (Some(t), None, Some(o)) => (
            t,
            t.checked_sub(o).ok_or_else(|| below(t, o, "max_overage"))?,
            o,
        ),
        (Some(t), None, None) => (
            t,
            cur_commit,
            t.checked_sub(cur_commit)
                .ok_or_else(|| below(t, cur_commit, "commit_qty"))?,
        ),
        (None, Some(c), o) => {
            let o = o.unwrap_or(cur_overage);
            let t = c
                .checked_add(o)
                .ok_or_else(|| DomainError::Invalid("total is too large".into()))?;
            (t, c, o)
        }
        (None, None, Some(o)) => {
            let t = cur_commit
                .checked_add(o)
                .ok_or_else(|| DomainError::Invalid("total is too large".into()))?;
            (t, cur_commit, o)
        }
    };
    Ok(resolved)
}

fn limits_of(p: &PackageRecord) -> SeatLimits {
    (p.total, p.commit_qty, p.max_overage)
}

impl TenantState {
    /// Index of the pool holding package `package_id`, provisioned by `vendor`. Another
    /// vendor's package is reported as unknown, so vendors learn nothing of each other.
    pub(super) fn package_index(
        &self,
        package_id: &str,
        vendor: &str,
    ) -> Result<usize, DomainError> {
        self.pools
            .iter()
            .position(|p| p.package.package_id == package_id && p.package.vendor_id == vendor)
            .ok_or_else(|| DomainError::UnknownPackage(package_id.to_owned()))
    }

    /// Changes a package of `vendor`. A revoked package cannot change any more.
    pub fn update_package(
        &mut self,
        package_id: &str,
        vendor: &str,
        patch: PackagePatch,
    ) -> Result<(PackageRecord, Effects), DomainError> {
        let index = self.package_index(package_id, vendor)?;
        let pool = &mut self.pools[index];
        let next = patched(&pool.package, patch)?;
        Ok(replace_package(pool, next))
    }

    /// Provisioning a product whose package was revoked replaces that package (the
    /// pool keeps its leases, restriction and spend); `None` if there is no revoked
    /// package of the same product id to replace.
    pub(super) fn reprovision_revoked(
        &mut self,
        package: &PackageRecord,
    ) -> Option<(PackageRecord, Effects)> {
        let mut matching =
            self.pools.iter().enumerate().filter(|(_, p)| {
                p.matches(&package.product_id) || p.matches(&package.product_name)
            });
        let (index, only) = matching.next()?;
        if matching.next().is_some()
            || only.package.status != PackageStatus::Revoked
            || only.package.product_id != package.product_id
        {
            return None;
        }
        let replaced = replace_package(&mut self.pools[index], package.clone());
        self.sort_pools();
        Some(replaced)
    }
}

/// Installs `next` as the pool's package and returns the write.
pub(super) fn replace_package(pool: &mut Pool, next: PackageRecord) -> (PackageRecord, Effects) {
    pool.package = next.clone();
    let effects = Effects::writes(vec![TenantMutation::PutPackage(next.clone())]);
    (next, effects)
}

/// `current` with `patch` applied, checked.
pub(super) fn patched(
    current: &PackageRecord,
    patch: PackagePatch,
) -> Result<PackageRecord, DomainError> {
    if current.status == PackageStatus::Revoked {
        return Err(DomainError::PackageRevoked(current.package_id.clone()));
    }
    let mut next = current.clone();
    (next.total, next.commit_qty, next.max_overage) = resolve_limits(
        limits_of(current),
        patch.total.map(Seats::get),
        patch.commit_qty.map(Seats::get),
        patch.max_overage.map(Seats::get),
    )?;
    if let Some(price) = patch.commit_price {
        next.commit_price = price;
    }
    if let Some(price) = patch.overage_price {
        next.overage_price = price;
    }
    check_overage_exposure(next.overage_price, next.max_overage)?;
    next.valid_from = patch.valid_from.apply_to(current.valid_from);
    next.valid_until = patch.valid_until.apply_to(current.valid_until);
    if let (Some(from), Some(until)) = (next.valid_from, next.valid_until)
        && until <= from
    {
        return Err(DomainError::Invalid(
            "valid_until must be after valid_from".into(),
        ));
    }
    if let Some(status) = patch.status {
        next.status = status;
    }
    next.crm_opportunity_id = patch
        .crm_opportunity_id
        .apply_to(current.crm_opportunity_id.clone());
    if let Some(hours) = patch.max_offline_hours {
        next.max_offline_hours = hours.get();
    }
    if let Some(seats) = patch.max_offline_seats {
        next.max_offline_seats = seats.get();
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_keep_total_equal_to_commit_plus_overage() {
        let cur = (20, 5, 15);
        assert_eq!(resolve_limits(cur, None, None, None), Ok(cur));
        assert_eq!(resolve_limits(cur, Some(30), None, None), Ok((30, 5, 25)));
        assert_eq!(resolve_limits(cur, None, Some(8), None), Ok((23, 8, 15)));
        assert_eq!(resolve_limits(cur, None, None, Some(2)), Ok((7, 5, 2)));
        assert_eq!(
            resolve_limits(cur, Some(10), Some(10), None),
            Ok((10, 10, 0))
        );
        assert_eq!(resolve_limits(cur, Some(10), None, Some(4)), Ok((10, 6, 4)));
        assert_eq!(resolve_limits(cur, None, Some(1), Some(1)), Ok((2, 1, 1)));
        assert_eq!(
            resolve_limits(cur, Some(9), Some(4), Some(5)),
            Ok((9, 4, 5))
        );
        for bad in [
            resolve_limits(cur, Some(9), Some(4), Some(4)),
            resolve_limits(cur, Some(3), None, None),
            resolve_limits(cur, Some(3), Some(4), None),
            resolve_limits(cur, Some(3), None, Some(4)),
        ] {
            assert!(matches!(bad, Err(DomainError::Invalid(_))), "{bad:?}");
        }
    }
}
