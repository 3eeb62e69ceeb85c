use std::collections::HashMap;

use permetrix_storage::records::{
    LeaseRecord, PackageRecord, PackageStatus, RestrictionRecord, SpendRecord,
};
use permetrix_storage::{Money, Timestamp};

use super::calendar::month_of;

/// One license pool: the vendor's package, the customer's restriction, and what is in
/// use right now.
#[derive(Clone, Debug)]
pub struct Pool {
    pub(crate) package: PackageRecord,
    pub(crate) restriction: RestrictionRecord,
    /// Seats held by active leases.
    pub(crate) borrowed: u32,
    /// Seats held per user (only users holding at least one).
    pub(crate) per_user: HashMap<String, u32>,
    /// Seats held by offline checkouts (counted in `borrowed` too).
    pub(crate) offline: u32,
    /// Overage spend of the month in `spend.month`.
    pub(crate) spend: SpendRecord,
}

/// The limits in force: the vendor's, lowered by the customer's restriction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Seats that may be held at once.
    pub total: u32,
    /// Prepaid seats; borrows beyond them are overage.
    pub commit: u32,
    /// Overage seats allowed.
    pub max_overage: u32,
}

impl Pool {
    pub(crate) fn new(package: PackageRecord) -> Self {
        let restriction = RestrictionRecord {
            product_id: package.product_id.clone(),
            ..RestrictionRecord::default()
        };
        let spend = SpendRecord {
            product_id: package.product_id.clone(),
            month: 0,
            overage_cost: Money::ZERO,
            overage_count: 0,
        };
        Pool {
            package,
            restriction,
            borrowed: 0,
            per_user: HashMap::new(),
            offline: 0,
            spend,
        }
    }

    /// The vendor's package.
    pub fn package(&self) -> &PackageRecord {
        &self.package
    }

    /// The customer's restriction.
    pub fn restriction(&self) -> &RestrictionRecord {
        &self.restriction
    }

    /// Seats in use.
    pub fn borrowed(&self) -> u32 {
        self.borrowed
    }

    /// Tool (product) name.
    pub fn name(&self) -> &str {
        &self.package.product_name
    }

    /// Product id.
    pub fn product_id(&self) -> &str {
        &self.package.product_id
    }

    /// Whether `tool` names this pool (by product name or product id).
    pub fn matches(&self, tool: &str) -> bool {
        self.package.product_name == tool || self.package.product_id == tool
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        let p = &self.package;
        let r = &self.restriction;
        let max_overage = p.max_overage.min(r.max_overage.unwrap_or(u32::MAX));
        let total = p
            .total
            .min(r.total.unwrap_or(u32::MAX))
            .min(p.commit_qty.saturating_add(max_overage));
        Limits {
            total,
            commit: p.commit_qty,
            max_overage,
        }
    }

    /// Seats beyond the commit in use now.
    pub fn overage_in_use(&self) -> u32 {
        self.borrowed.saturating_sub(self.package.commit_qty)
    }

    /// Why borrows are refused now, if they are.
    pub fn inactive_reason(&self, now: Timestamp) -> Option<String> {
        let p = &self.package;
        match p.status {
            PackageStatus::Suspended => return Some("suspended".into()),
            PackageStatus::Revoked => return Some("revoked".into()),
            PackageStatus::Active => {}
        }
        if p.valid_from.is_some_and(|from| now < from) {
            return Some("not valid yet".into());
        }
        if p.valid_until.is_some_and(|until| now >= until) {
            return Some("expired".into());
        }
        None
    }

    /// Overage spend and charge count in the month of `now`.
    pub fn month_spend(&self, now: Timestamp) -> (Money, u64) {
        if self.spend.month == month_of(now) {
            (self.spend.overage_cost, self.spend.overage_count)
        } else {
            (Money::ZERO, 0)
        }
    }

    /// Seats `user` holds.
    pub fn held_by(&self, user: &str) -> u32 {
        self.per_user.get(user).copied().unwrap_or(0)
    }

    pub(crate) fn take_seat(&mut self, lease: &LeaseRecord) {
        self.borrowed += 1;
        self.offline += u32::from(lease.offline);
        match self.per_user.get_mut(&lease.user) {
            Some(n) => *n += 1,
            None => {
                self.per_user.insert(lease.user.clone(), 1);
            }
        }
    }

    pub(crate) fn free_seat(&mut self, lease: &LeaseRecord) {
        self.borrowed = self.borrowed.saturating_sub(1);
        self.offline = self.offline.saturating_sub(u32::from(lease.offline));
        let user = lease.user.as_str();
        if let Some(n) = self.per_user.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                self.per_user.remove(user);
            }
        }
    }

    /// Adds a charge to this month's spend; returns the record to persist.
    pub(crate) fn book(&mut self, amount: Money, now: Timestamp) -> SpendRecord {
        let month = month_of(now);
        if self.spend.month != month {
            self.spend.month = month;
            self.spend.overage_cost = Money::ZERO;
            self.spend.overage_count = 0;
        }
        self.spend.overage_cost += amount;
        self.spend.overage_count += 1;
        self.spend.clone()
    }
}
