//! The state one tenant owns and the operations that read it or change its settings
//! and pools. Leases (`leasing`), retries (`retries`), the wait queue (`waiting`) and
//! the commercial model (`budget`, `package`, `requests`, `limits`) add their
//! operations in their own modules.
use std::collections::HashMap;

use permetrix_storage::records::{LeaseRecord, PackageRecord, SettingsRecord, SignaturePolicy};
use permetrix_storage::{BorrowId, TenantId, TenantMutation, TenantRecords, Timestamp};

use super::DomainError;
use super::borrow::BorrowRequest;
use super::effects::{Effects, TenantEvent, TenantEventKind};
use super::expiry::{ExpiredLeases, ExpiryIndex};
use super::idempotency::IdempotencyIndex;
use super::input::{LeaseSeconds, check_overage_exposure, check_seat_sum};
use super::ledger::LedgerHead;
use super::nonces::NonceSet;
use super::outbox::ends::Outbox;
use super::pool::Pool;
use super::queue::WaitQueues;
use super::usage::UsageHead;
use super::views::{LeaseView, TenantSnapshot, ToolStatus, UsageTotals};

/// A package to provision.
#[derive(Clone, Debug)]
pub struct ProvisionRequest {
    /// The package record to create (its counts are checked here).
    pub package: PackageRecord,
}

/// Changes to tenant settings (`None` = unchanged).
#[derive(Clone, Debug, Default)]
pub struct SettingsPatch {
    /// New signature policy.
    pub signature_policy: Option<SignaturePolicy>,
    /// New default lease length.
    pub default_lease_seconds: Option<LeaseSeconds>,
    /// Whether status endpoints answer anonymous requests.
    pub anonymous_status: Option<bool>,
}

/// Defaults for a tenant that never changed its settings.
pub(crate) fn default_settings() -> SettingsRecord {
    SettingsRecord {
        signature_policy: SignaturePolicy::V1,
        default_lease_seconds: LeaseSeconds::DEFAULT.get(),
        anonymous_status: false,
    }
}

/// Everything one tenant owns, and its rules.
#[derive(Clone, Debug)]
pub struct TenantState {
    pub(super) tenant: TenantId,
    pub(super) settings: SettingsRecord,
    /// Sorted by product name (status order).
    pub(super) pools: Vec<Pool>,
    pub(super) leases: HashMap<BorrowId, LeaseRecord>,
    pub(super) ledger: LedgerHead,
    /// Active leases by expiry (kept in step with `leases`).
    pub(super) expiry: ExpiryIndex,
    /// Recently expired leases (memory only).
    pub(super) expired: ExpiredLeases,
    /// Borrows waiting for a seat, per pool (memory only: a waiter is an open request).
    pub(super) queue: WaitQueues,
    /// Remembered idempotency keys.
    pub(super) keys: IdempotencyIndex,
    /// End of the usage history (the history itself stays in storage).
    pub(super) usage: UsageHead,
    /// Ends of the webhook outbox (the events stay in storage) and refusals not
    /// written yet.
    pub(super) outbox: Outbox,
    /// v2 signature nonces seen within their window.
    pub(super) nonces: NonceSet,
}

impl TenantState {
    /// A tenant with nothing provisioned.
    pub fn new(tenant: TenantId) -> Self {
        TenantState {
            tenant,
            settings: default_settings(),
            pools: Vec::new(),
            leases: HashMap::new(),
            ledger: LedgerHead::default(),
            expiry: ExpiryIndex::default(),
            expired: ExpiredLeases::default(),
            queue: WaitQueues::default(),
            keys: IdempotencyIndex::default(),
            usage: UsageHead::default(),
            outbox: Outbox::default(),
            nonces: NonceSet::default(),
        }
    }

    /// Rebuilds the state from stored records.
    pub fn from_records(tenant: TenantId, records: TenantRecords) -> Self {
        let mut state = TenantState::new(tenant);
        if let Some(settings) = records.settings {
            state.settings = settings;
        }
        state.pools = records.packages.into_iter().map(Pool::new).collect();
        state.sort_pools();
        for r in records.restrictions {
            if let Some(pool) = state.pool_by_id_mut(&r.product_id) {
                pool.restriction = r;
            }
        }
        for s in records.spend {
            if let Some(pool) = state.pool_by_id_mut(&s.product_id)
                && s.month >= pool.spend.month
            {
                pool.spend = s;
            }
        }
        for lease in records.leases {
            if let Some(pool) = state.pool_by_id_mut(&lease.product_id) {
                pool.take_seat(&lease);
            }
            state.expiry.insert(lease.lease_expires_at, lease.id);
            state.leases.insert(lease.id, lease);
        }
        for record in records.idempotency {
            state.keys.insert(record);
        }
        if let Some(head) = records.ledger_head {
            state.ledger = LedgerHead::after(&head);
        }
        if let Some(head) = records.usage_head {
            state.usage = UsageHead::after(&head);
        }
        state.outbox = Outbox::stored(records.outbox_head.as_ref(), records.outbox_oldest);
        state.nonces = NonceSet::load(records.nonces);
        state
    }

    pub(super) fn sort_pools(&mut self) {
        self.pools
            .sort_by(|a, b| a.package.product_name.cmp(&b.package.product_name));
    }

    pub(super) fn pool_by_id_mut(&mut self, product_id: &str) -> Option<&mut Pool> {
        self.pools.iter_mut().find(|p| p.product_id() == product_id)
    }

    pub(super) fn pool_index(&self, tool: &str) -> Result<usize, DomainError> {
        self.pools
            .iter()
            .position(|p| p.matches(tool))
            .ok_or_else(|| DomainError::UnknownTool(tool.to_owned()))
    }

    /// The tenant id.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Current settings.
    pub fn settings(&self) -> &SettingsRecord {
        &self.settings
    }

    /// Pools, sorted by tool name.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// The pool `tool` names (product name or id).
    pub fn pool(&self, tool: &str) -> Result<&Pool, DomainError> {
        self.pool_index(tool).map(|i| &self.pools[i])
    }

    /// Number of active leases.
    pub fn lease_count(&self) -> usize {
        self.leases.len()
    }

    /// The head of the charge ledger.
    pub fn ledger_head(&self) -> LedgerHead {
        self.ledger
    }

    /// The head of the usage history.
    pub fn usage_head(&self) -> UsageHead {
        self.usage
    }

    /// Status of one pool, or of all pools (sorted by tool name).
    pub fn status(
        &self,
        tool: Option<&str>,
        now: Timestamp,
    ) -> Result<Vec<ToolStatus>, DomainError> {
        let mut all = match tool {
            Some(t) => vec![tool_status(self.pool(t)?, now)],
            None => self.pools.iter().map(|p| tool_status(p, now)).collect(),
        };
        for s in &mut all {
            s.waiting = self.queue.waiting(&s.product_id);
        }
        Ok(all)
    }

    /// Active borrows, newest first, optionally of one user.
    pub fn borrows(&self, user: Option<&str>) -> Vec<LeaseView> {
        let mut leases: Vec<&LeaseRecord> = self
            .leases
            .values()
            .filter(|l| user.is_none_or(|u| l.user == u))
            .collect();
        leases.sort_by(|a, b| b.borrowed_at.cmp(&a.borrowed_at).then(b.id.cmp(&a.id)));
        leases.into_iter().map(|l| self.view_of(l)).collect()
    }

    /// A lease as clients see it.
    pub(super) fn view_of(&self, l: &LeaseRecord) -> LeaseView {
        match self.pools.iter().find(|p| p.product_id() == l.product_id) {
            Some(pool) => lease_view(pool, l),
            None => lease_view_orphan(l),
        }
    }

    /// Creates a pool from a vendor's package.
    pub fn provision(
        &mut self,
        req: ProvisionRequest,
    ) -> Result<(PackageRecord, Effects), DomainError> {
        let p = req.package;
        check_seat_sum(p.total, p.commit_qty, p.max_overage)?;
        check_overage_exposure(p.overage_price, p.max_overage)?;
        if p.product_id.is_empty() || p.product_name.is_empty() {
            return Err(DomainError::Invalid(
                "product_id and product_name must not be empty".into(),
            ));
        }
        if let Some(replaced) = self.reprovision_revoked(&p) {
            return Ok(replaced);
        }
        if let Some(existing) = self
            .pools
            .iter()
            .find(|e| e.matches(&p.product_id) || e.matches(&p.product_name))
        {
            return Err(DomainError::PackageExists(existing.product_id().to_owned()));
        }
        let effects = Effects::writes(vec![TenantMutation::PutPackage(p.clone())]);
        self.pools.push(Pool::new(p.clone()));
        self.sort_pools();
        Ok((p, effects))
    }

    /// Changes settings (each field parsed at the edge, so any patch applies).
    pub fn update_settings(&mut self, patch: SettingsPatch) -> (SettingsRecord, Effects) {
        let mut next = self.settings.clone();
        if let Some(policy) = patch.signature_policy {
            next.signature_policy = policy;
        }
        if let Some(secs) = patch.default_lease_seconds {
            next.default_lease_seconds = secs.get();
        }
        if let Some(anon) = patch.anonymous_status {
            next.anonymous_status = anon;
        }
        self.settings = next.clone();
        (
            next.clone(),
            Effects::writes(vec![TenantMutation::PutSettings(next)]),
        )
    }

    /// Live counts for fan-out queries.
    pub fn snapshot(&self, now: Timestamp) -> TenantSnapshot {
        let mut tools: Vec<ToolStatus> = self.pools.iter().map(|p| tool_status(p, now)).collect();
        for s in &mut tools {
            s.waiting = self.queue.waiting(&s.product_id);
        }
        let usage = tools
            .iter()
            .fold(UsageTotals::default(), |acc, t| UsageTotals {
                borrowed: acc.borrowed + t.borrowed,
                total: acc.total + t.total,
                overage: acc.overage + t.overage,
            });
        TenantSnapshot { tools, usage }
    }

    /// A denial event (published by the actor; denials change no state).
    pub fn denied_event(
        &self,
        req: &BorrowRequest,
        reason: &'static str,
        now: Timestamp,
    ) -> TenantEvent {
        let tool = self
            .pool(req.tool.as_str())
            .map(|p| p.name().to_owned())
            .unwrap_or_else(|_| req.tool.as_str().to_owned());
        TenantEvent {
            kind: TenantEventKind::Denied,
            id: None,
            tool,
            user: req.user.as_str().to_owned(),
            at: now,
            reason: Some(reason),
            is_overage: false,
        }
    }

    /// The event of a borrow that found no seat and joined the pool's wait queue.
    pub fn queued_event(&self, req: &BorrowRequest, now: Timestamp) -> TenantEvent {
        TenantEvent {
            kind: TenantEventKind::Queued,
            reason: None,
            ..self.denied_event(req, "", now)
        }
    }
}

pub(super) fn lease_view(pool: &Pool, l: &LeaseRecord) -> LeaseView {
    LeaseView {
        tool: pool.name().to_owned(),
        ..lease_view_orphan(l)
    }
}

/// A lease whose pool is gone (cannot happen through the API; kept total anyway).
pub(super) fn lease_view_orphan(l: &LeaseRecord) -> LeaseView {
    LeaseView {
        id: l.id,
        tool: l.product_id.clone(),
        product_id: l.product_id.clone(),
        user: l.user.clone(),
        borrowed_at: l.borrowed_at,
        lease_expires_at: l.lease_expires_at,
        is_overage: l.is_overage,
        offline: l.offline,
    }
}

pub(super) fn tool_status(pool: &Pool, now: Timestamp) -> ToolStatus {
    let limits = pool.limits();
    let (mtd, _) = pool.month_spend(now);
    let p = pool.package();
    let borrowed = pool.borrowed;
    let available = if pool.inactive_reason(now).is_some() {
        0
    } else {
        limits.total.saturating_sub(borrowed)
    };
    ToolStatus {
        tool: p.product_name.clone(),
        product_id: p.product_id.clone(),
        total: limits.total,
        borrowed,
        available,
        commit: limits.commit,
        max_overage: limits.max_overage,
        overage: borrowed.saturating_sub(limits.commit),
        in_commit: borrowed.min(limits.commit),
        commit_price: p.commit_price,
        overage_price_per_license: p.overage_price,
        current_overage_cost: mtd,
        total_cost: p.commit_price.saturating_add(mtd),
        waiting: 0,
        status: p.status,
        package_id: p.package_id.clone(),
        vendor_id: p.vendor_id.clone(),
        offline: pool.offline,
        max_offline_hours: p.max_offline_hours,
        max_offline_seats: p.max_offline_seats,
    }
}
