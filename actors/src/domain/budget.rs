//! The customer's side of the commercial model: restrictions that may only lower the
//! vendor's limits, and a monthly cap on overage spend.
use permetrix_storage::{Money, TenantMutation, Timestamp};
use serde::{Serialize, Serializer};

use super::DomainError;
use super::calendar::month_of;
use super::effects::Effects;
use super::input::Seats;
use super::pool::Pool;
use super::state::TenantState;
use super::views::ser_money;
use super::webhook_events::WebhookEvent;

/// A change to one optional setting: leave it, clear it, or set it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Change<T> {
    /// Leave as it is (the field was absent).
    #[default]
    Keep,
    /// Remove it: the vendor's limit applies again (the field was `null`).
    Clear,
    /// Set it.
    Set(T),
}

impl<T> Change<T> {
    /// The same change with its value mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Change<U> {
        match self {
            Change::Keep => Change::Keep,
            Change::Clear => Change::Clear,
            Change::Set(v) => Change::Set(f(v)),
        }
    }

    /// The value after the change.
    pub fn apply_to(self, current: Option<T>) -> Option<T> {
        match self {
            Change::Keep => current,
            Change::Clear => None,
            Change::Set(v) => Some(v),
        }
    }
}

/// A customer restriction of one pool (`PUT /config/budget`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestrictionPatch {
    /// Seats that may be held at once.
    pub total: Change<Seats>,
    /// Overage seats allowed.
    pub max_overage: Change<Seats>,
}

fn ser_opt_money<S: Serializer>(m: &Option<Money>, s: S) -> Result<S::Ok, S::Error> {
    match m {
        Some(m) => s.serialize_f64(m.as_decimal()),
        None => s.serialize_none(),
    }
}

/// One pool's limits and spend as the customer sees them (`GET /config/budget`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetLine {
    /// Tool (product) name.
    pub tool: String,
    /// Product id.
    pub product_id: String,
    /// The vendor's seat total.
    pub vendor_total: u32,
    /// The vendor's prepaid seats.
    pub vendor_commit_qty: u32,
    /// The vendor's overage allowance.
    pub vendor_max_overage: u32,
    /// Seat total in force (vendor's, lowered by the customer's restriction).
    pub total: u32,
    /// Prepaid seats in force.
    pub commit_qty: u32,
    /// Overage allowance in force.
    pub max_overage: u32,
    /// Price of the commit block.
    #[serde(serialize_with = "ser_money")]
    pub commit_price: Money,
    /// Charge per overage borrow.
    #[serde(serialize_with = "ser_money")]
    pub overage_price_per_license: Money,
    /// The customer's monthly overage cap (`null`: none).
    #[serde(serialize_with = "ser_opt_money")]
    pub customer_max_spend: Option<Money>,
    /// Overage charges booked this UTC calendar month.
    #[serde(serialize_with = "ser_money")]
    pub month_to_date_overage_cost: Money,
    /// What the cap still allows this month (`null`: no cap).
    #[serde(serialize_with = "ser_opt_money")]
    pub remaining_spend: Option<Money>,
    /// The customer's own seat-total restriction (`null`: none).
    pub restricted_total: Option<u32>,
    /// The customer's own overage restriction (`null`: none).
    pub restricted_max_overage: Option<u32>,
    /// Seats in use now (may exceed `total` after a restriction was lowered).
    pub borrowed: u32,
    /// The month the spend figures are of (`YYYY-MM`, UTC).
    pub month: String,
}

pub(super) fn budget_line(pool: &Pool, now: Timestamp) -> BudgetLine {
    let p = pool.package();
    let r = pool.restriction();
    let limits = pool.limits();
    let (spent, _) = pool.month_spend(now);
    let month = month_of(now);
    BudgetLine {
        tool: p.product_name.clone(),
        product_id: p.product_id.clone(),
        vendor_total: p.total,
        vendor_commit_qty: p.commit_qty,
        vendor_max_overage: p.max_overage,
        total: limits.total,
        commit_qty: limits.commit,
        max_overage: limits.max_overage,
        commit_price: p.commit_price,
        overage_price_per_license: p.overage_price,
        customer_max_spend: r.max_spend,
        month_to_date_overage_cost: spent,
        remaining_spend: r.max_spend.map(|cap| cap.saturating_sub(spent)),
        restricted_total: r.total,
        restricted_max_overage: r.max_overage,
        borrowed: pool.borrowed(),
        month: format!("{:04}-{:02}", month / 100, month % 100),
    }
}

impl TenantState {
    /// Limits and spend of every pool, sorted by tool name.
    pub fn budget(&self, now: Timestamp) -> Vec<BudgetLine> {
        self.pools.iter().map(|p| budget_line(p, now)).collect()
    }

    /// Changes the customer's restriction of one pool. A value above the vendor's limit
    /// is refused; a value below the seats in use takes no seat away, it only refuses
    /// new borrows until enough are returned.
    pub fn restrict(
        &mut self,
        tool: &str,
        patch: RestrictionPatch,
        now: Timestamp,
    ) -> Result<(BudgetLine, Effects), DomainError> {
        let index = self.pool_index(tool)?;
        let pool = &mut self.pools[index];
        let p = pool.package();
        for (field, change, limit) in [
            ("total", patch.total, p.total),
            ("max_overage", patch.max_overage, p.max_overage),
        ] {
            if let Change::Set(requested) = change.map(Seats::get)
                && requested > limit
            {
                return Err(DomainError::ExceedsVendorLimit {
                    tool: p.product_name.clone(),
                    field,
                    requested,
                    limit,
                });
            }
        }
        pool.restriction.total = patch.total.map(Seats::get).apply_to(pool.restriction.total);
        pool.restriction.max_overage = patch
            .max_overage
            .map(Seats::get)
            .apply_to(pool.restriction.max_overage);
        let effects = Effects::writes(vec![TenantMutation::PutRestriction(
            pool.restriction.clone(),
        )]);
        Ok((budget_line(pool, now), effects))
    }

    /// Sets (`Some`) or clears (`None`) the monthly overage spend cap of one pool. A cap
    /// below this month's spend refuses every further overage borrow this month.
    pub fn protect(
        &mut self,
        tool: &str,
        max_spend: Option<Money>,
        now: Timestamp,
    ) -> Result<(BudgetLine, Effects), DomainError> {
        let index = self.pool_index(tool)?;
        let pool = &mut self.pools[index];
        let reached_before = WebhookEvent::cap_reached(pool, now).is_some();
        pool.restriction.max_spend = max_spend;
        let mut effects = Effects::writes(vec![TenantMutation::PutRestriction(
            pool.restriction.clone(),
        )]);
        if !reached_before {
            effects
                .webhooks
                .extend(WebhookEvent::cap_reached(pool, now));
        }
        Ok((budget_line(pool, now), effects))
    }
}
