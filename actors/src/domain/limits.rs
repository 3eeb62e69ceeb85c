//! Per-user limits: how many seats of a tool one user may hold at once
//! (`/config/limits`). Only `max_per_user` of the pool's restriction is touched here;
//! the other restriction fields belong to the budget and protection settings.
use permetrix_storage::TenantMutation;
use serde::Serialize;

use super::DomainError;
use super::effects::Effects;
use super::state::TenantState;

/// One tool's per-user limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserLimit {
    /// Tool (product) name.
    pub tool: String,
    /// Product id.
    pub product_id: String,
    /// Seats one user may hold at once (`None`: no limit).
    pub max_per_user: Option<u32>,
}

impl TenantState {
    /// Every tool's per-user limit, sorted by tool name.
    pub fn user_limits(&self) -> Vec<UserLimit> {
        self.pools
            .iter()
            .map(|p| UserLimit {
                tool: p.name().to_owned(),
                product_id: p.product_id().to_owned(),
                max_per_user: p.restriction.max_per_user,
            })
            .collect()
    }

    /// Sets (or with `None` clears) the per-user limit of `tool`. Seats already held
    /// stay; the limit applies to the next borrows.
    pub fn set_max_per_user(
        &mut self,
        tool: &str,
        max_per_user: Option<u32>,
    ) -> Result<(UserLimit, Effects), DomainError> {
        if max_per_user == Some(0) {
            return Err(DomainError::Invalid(
                "max_per_user must be at least 1; send null to clear the limit".into(),
            ));
        }
        let index = self.pool_index(tool)?;
        let pool = &mut self.pools[index];
        pool.restriction.max_per_user = max_per_user;
        let limit = UserLimit {
            tool: pool.name().to_owned(),
            product_id: pool.product_id().to_owned(),
            max_per_user,
        };
        let effects = Effects::writes(vec![TenantMutation::PutRestriction(
            pool.restriction.clone(),
        )]);
        Ok((limit, effects))
    }
}
