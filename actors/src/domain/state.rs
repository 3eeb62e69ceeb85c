use std::collections::HashMap;

use permetrix_storage::records::{
    ChargeRecord, LeaseRecord, PackageRecord, SettingsRecord, SignaturePolicy, UsageKind,
};
use permetrix_storage::{BorrowId, Money, TenantId, TenantMutation, TenantRecords, Timestamp};

use super::expiry::{ExpiredLeases, ExpiryIndex};
use super::idempotency::IdempotencyIndex;
use super::ledger::LedgerHead;
use super::pool::Pool;
use super::queue::WaitQueues;
use super::usage::UsageHead;
use super::views::{LeaseView, TenantSnapshot, ToolStatus, UsageTotals};
use super::{DEFAULT_LEASE_SECONDS, DomainError, MAX_LEASE_SECONDS, MIN_LEASE_SECONDS};

/// What an operation changed: records to persist and events to publish once they are
/// durable.
#[derive(Debug, Default)]
pub struct Effects {
    /// Records to write, atomically, before replying.
    pub mutations: Vec<TenantMutation>,
    /// Events for subscribers, published after the write is durable.
    pub events: Vec<TenantEvent>,
}

/// Kinds of live events (`GET /events`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantEventKind {
    /// A seat was granted.
    Borrow,
    /// A seat was returned.
    Return,
    /// A lease lapsed and its seat was freed.
    Expire,
    /// A borrow was refused.
    Denied,
    /// A borrow found no seat and waits in the pool's queue (it ends in a `Borrow`
    /// when granted, or a `Denied` when its wait runs out).
    Queued,
}

impl TenantEventKind {
    /// The SSE event name.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantEventKind::Borrow => "borrow",
            TenantEventKind::Return => "return",
            TenantEventKind::Expire => "expire",
            TenantEventKind::Denied => "denied",
            TenantEventKind::Queued => "queued",
        }
    }
}

/// One live event of a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantEvent {
    /// What happened.
    pub kind: TenantEventKind,
    /// Borrow id (empty for a denied borrow).
    pub id: Option<BorrowId>,
    /// Tool (product) name, or the name asked for if unknown.
    pub tool: String,
    /// User.
    pub user: String,
    /// When.
    pub at: Timestamp,
    /// Why, for denials (an error code).
    pub reason: Option<&'static str>,
    /// Whether the seat is beyond the commit (borrow events).
    pub is_overage: bool,
}

/// A borrow as the domain sees it (parsed and range-checked at the edge).
#[derive(Clone, Debug)]
pub struct BorrowRequest {
    /// Product name or id.
    pub tool: String,
    /// Who borrows.
    pub user: String,
    /// Lease length; `None` = the tenant's default.
    pub lease_seconds: Option<u32>,
}

/// A granted borrow.
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    /// The new lease.
    pub lease: LeaseView,
    /// The charge booked, for an overage borrow.
    pub charge: Option<ChargeRecord>,
}

/// A returned borrow.
#[derive(Clone, Debug, PartialEq)]
pub struct Returned {
    /// The lease as it was.
    pub lease: LeaseView,
}

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
    pub default_lease_seconds: Option<u32>,
    /// Whether status endpoints answer anonymous requests.
    pub anonymous_status: Option<bool>,
}

/// Defaults for a tenant that never changed its settings.
pub(crate) fn default_settings() -> SettingsRecord {
    SettingsRecord {
        signature_policy: SignaturePolicy::V1,
        default_lease_seconds: DEFAULT_LEASE_SECONDS,
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
                pool.take_seat(&lease.user);
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

    /// Checks whether `req` could be granted now, without changing anything.
    pub fn check_borrow(&self, req: &BorrowRequest, now: Timestamp) -> Result<usize, DomainError> {
        let index = self.pool_index(&req.tool)?;
        let pool = &self.pools[index];
        let tool = pool.name();
        if let Some(why) = pool.inactive_reason(now) {
            return Err(DomainError::PackageInactive {
                tool: tool.to_owned(),
                why,
            });
        }
        if let Some(max) = pool.restriction.max_per_user
            && pool.held_by(&req.user) >= max
        {
            return Err(DomainError::UserLimitReached {
                tool: tool.to_owned(),
                user: req.user.clone(),
                max,
            });
        }
        let limits = pool.limits();
        if pool.borrowed >= limits.total {
            return Err(
                if limits.max_overage > 0 && pool.borrowed >= limits.commit {
                    DomainError::MaxOverageReached {
                        tool: tool.to_owned(),
                        limit: limits.total,
                        max_overage: limits.max_overage,
                    }
                } else {
                    DomainError::NoSeats {
                        tool: tool.to_owned(),
                        limit: limits.total,
                    }
                },
            );
        }
        if pool.borrowed >= limits.commit
            && let Some(cap) = pool.restriction.max_spend
        {
            let (spent, _) = pool.month_spend(now);
            let price = pool.package.overage_price;
            if spent.saturating_add(price) > cap {
                return Err(DomainError::SpendCapReached {
                    tool: tool.to_owned(),
                    price,
                    spent,
                    cap,
                });
            }
        }
        Ok(index)
    }

    /// Grants a seat, or says why not. An overage borrow books its charge in the same
    /// effects as the lease, so the two are durable together.
    pub fn borrow(
        &mut self,
        req: &BorrowRequest,
        now: Timestamp,
    ) -> Result<(Grant, Effects), DomainError> {
        let lease_seconds = req
            .lease_seconds
            .unwrap_or(self.settings.default_lease_seconds);
        if !(MIN_LEASE_SECONDS..=MAX_LEASE_SECONDS).contains(&lease_seconds) {
            return Err(DomainError::Invalid(format!(
                "lease_seconds {lease_seconds} is out of range; use {MIN_LEASE_SECONDS}..={MAX_LEASE_SECONDS}"
            )));
        }
        let index = self.check_borrow(req, now)?;
        let pool = &mut self.pools[index];
        let is_overage = pool.borrowed >= pool.package.commit_qty;
        let lease = LeaseRecord {
            id: BorrowId::random(),
            product_id: pool.package.product_id.clone(),
            user: req.user.clone(),
            borrowed_at: now,
            lease_expires_at: now.plus(std::time::Duration::from_secs(u64::from(lease_seconds))),
            lease_seconds,
            is_overage,
        };
        pool.take_seat(&req.user);
        let view = lease_view(pool, &lease);
        let mut effects = Effects::default();
        let amount = if is_overage {
            pool.package.overage_price
        } else {
            Money::ZERO
        };
        effects.mutations.push(self.usage.record(
            UsageKind::Borrow,
            &lease,
            pool.borrowed,
            amount,
            now,
        ));
        let mut charge = None;
        if is_overage {
            let amount = pool.package.overage_price;
            let record = self.ledger.next_charge(
                &self.tenant,
                &pool.package.product_id,
                &pool.package.product_name,
                lease.id,
                &lease.user,
                now,
                amount,
            );
            self.ledger = LedgerHead::after(&record);
            let spend = pool.book(amount, now);
            effects
                .mutations
                .push(TenantMutation::AppendCharge(record.clone()));
            effects.mutations.push(TenantMutation::PutSpend(spend));
            charge = Some(record);
        }
        effects
            .mutations
            .push(TenantMutation::PutLease(lease.clone()));
        effects
            .events
            .push(event(TenantEventKind::Borrow, &view, now));
        self.expiry.insert(lease.lease_expires_at, lease.id);
        self.leases.insert(lease.id, lease);
        Ok((
            Grant {
                lease: view,
                charge,
            },
            effects,
        ))
    }

    /// Returns a seat.
    pub fn return_lease(
        &mut self,
        id: BorrowId,
        now: Timestamp,
    ) -> Result<(Returned, Effects), DomainError> {
        let (view, effects) = self.release(id, TenantEventKind::Return, now)?;
        Ok((Returned { lease: view }, effects))
    }

    pub(super) fn release(
        &mut self,
        id: BorrowId,
        kind: TenantEventKind,
        now: Timestamp,
    ) -> Result<(LeaseView, Effects), DomainError> {
        let lease = self.leases.remove(&id).ok_or_else(|| self.gone(&id))?;
        self.expiry.remove(lease.lease_expires_at, id);
        let (view, in_use) = match self.pool_by_id_mut(&lease.product_id) {
            Some(pool) => {
                pool.free_seat(&lease.user);
                (lease_view(pool, &lease), pool.borrowed)
            }
            None => (lease_view_orphan(&lease), 0),
        };
        let usage_kind = match kind {
            TenantEventKind::Expire => UsageKind::Expire,
            _ => UsageKind::Return,
        };
        let usage = self
            .usage
            .record(usage_kind, &lease, in_use, Money::ZERO, now);
        let effects = Effects {
            mutations: vec![TenantMutation::DeleteLease(id), usage],
            events: vec![event(kind, &view, now)],
        };
        Ok((view, effects))
    }

    /// Extends a lease by its lease length from `now`.
    pub fn heartbeat(
        &mut self,
        id: BorrowId,
        now: Timestamp,
    ) -> Result<(LeaseView, Effects), DomainError> {
        let Some(lease) = self.leases.get_mut(&id) else {
            return Err(self.gone(&id));
        };
        let before = lease.lease_expires_at;
        lease.lease_expires_at = now.plus(std::time::Duration::from_secs(u64::from(
            lease.lease_seconds,
        )));
        let lease = lease.clone();
        self.expiry.remove(before, id);
        self.expiry.insert(lease.lease_expires_at, id);
        let view = match self
            .pools
            .iter()
            .find(|p| p.product_id() == lease.product_id)
        {
            Some(pool) => lease_view(pool, &lease),
            None => lease_view_orphan(&lease),
        };
        Ok((
            view,
            Effects {
                mutations: vec![TenantMutation::PutLease(lease)],
                events: Vec::new(),
            },
        ))
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
        leases
            .into_iter()
            .map(
                |l| match self.pools.iter().find(|p| p.product_id() == l.product_id) {
                    Some(pool) => lease_view(pool, l),
                    None => lease_view_orphan(l),
                },
            )
            .collect()
    }

    /// Creates a pool from a vendor's package.
    pub fn provision(
        &mut self,
        req: ProvisionRequest,
    ) -> Result<(PackageRecord, Effects), DomainError> {
        let p = req.package;
        if p.commit_qty.checked_add(p.max_overage) != Some(p.total) {
            return Err(DomainError::Invalid(format!(
                "total ({}) must equal commit_qty ({}) + max_overage ({})",
                p.total, p.commit_qty, p.max_overage
            )));
        }
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
        let effects = Effects {
            mutations: vec![TenantMutation::PutPackage(p.clone())],
            events: Vec::new(),
        };
        self.pools.push(Pool::new(p.clone()));
        self.sort_pools();
        Ok((p, effects))
    }

    /// Changes settings.
    pub fn update_settings(
        &mut self,
        patch: SettingsPatch,
    ) -> Result<(SettingsRecord, Effects), DomainError> {
        let mut next = self.settings.clone();
        if let Some(policy) = patch.signature_policy {
            next.signature_policy = policy;
        }
        if let Some(secs) = patch.default_lease_seconds {
            if !(MIN_LEASE_SECONDS..=MAX_LEASE_SECONDS).contains(&secs) {
                return Err(DomainError::Invalid(format!(
                    "default_lease_seconds {secs} is out of range; use {MIN_LEASE_SECONDS}..={MAX_LEASE_SECONDS}"
                )));
            }
            next.default_lease_seconds = secs;
        }
        if let Some(anon) = patch.anonymous_status {
            next.anonymous_status = anon;
        }
        self.settings = next.clone();
        Ok((
            next.clone(),
            Effects {
                mutations: vec![TenantMutation::PutSettings(next)],
                events: Vec::new(),
            },
        ))
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
            .pool(&req.tool)
            .map(|p| p.name().to_owned())
            .unwrap_or_else(|_| req.tool.clone());
        TenantEvent {
            kind: TenantEventKind::Denied,
            id: None,
            tool,
            user: req.user.clone(),
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

pub(super) fn event(kind: TenantEventKind, lease: &LeaseView, at: Timestamp) -> TenantEvent {
    TenantEvent {
        kind,
        id: Some(lease.id),
        tool: lease.tool.clone(),
        user: lease.user.clone(),
        at,
        reason: None,
        is_overage: lease.is_overage,
    }
}

pub(super) fn lease_view(pool: &Pool, l: &LeaseRecord) -> LeaseView {
    LeaseView {
        id: l.id,
        tool: pool.name().to_owned(),
        user: l.user.clone(),
        borrowed_at: l.borrowed_at,
        lease_expires_at: l.lease_expires_at,
        is_overage: l.is_overage,
    }
}

/// A lease whose pool is gone (cannot happen through the API; kept total anyway).
fn lease_view_orphan(l: &LeaseRecord) -> LeaseView {
    LeaseView {
        id: l.id,
        tool: l.product_id.clone(),
        user: l.user.clone(),
        borrowed_at: l.borrowed_at,
        lease_expires_at: l.lease_expires_at,
        is_overage: l.is_overage,
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
    }
}
