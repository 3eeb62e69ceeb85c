//! Messages of the commercial model: customer restrictions and spend caps, package
//! changes by the vendor, the ledger head, and requests for more seats.
use permetrix_storage::Money;
use permetrix_storage::records::{MoreRequestRecord, PackageRecord};

use crate::TenantError;
use crate::domain::{
    BudgetLine, Decided, Decision, DomainError, LedgerHead, MoreRequest, PackagePatch,
    RestrictionPatch, ToolName,
};
use crate::handling::{TenantCx, TenantMessage};
use crate::reply::Reply;

/// Limits and spend of every pool.
#[derive(Debug)]
pub struct GetBudget;

impl TenantMessage for GetBudget {
    type Reply = Vec<BudgetLine>;
    const KIND: &'static str = "get_budget";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<Vec<BudgetLine>> {
        Reply::ready(Ok(cx.state.budget(cx.now)))
    }
}

/// Change the customer's restriction of one pool.
#[derive(Debug)]
pub struct Restrict {
    /// Tool name or product id.
    pub tool: ToolName,
    /// What changes.
    pub patch: RestrictionPatch,
}

impl TenantMessage for Restrict {
    type Reply = BudgetLine;
    const KIND: &'static str = "restrict";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<BudgetLine> {
        let now = cx.now;
        match cx.state.restrict(self.tool.as_str(), self.patch, now) {
            Ok((line, effects)) => cx.commit(effects, line),
            Err(e) => Reply::ready(Err(e.into())),
        }
    }
}

/// Set or clear the monthly overage spend cap of one pool.
#[derive(Debug)]
pub struct SetSpendCap {
    /// Tool name or product id.
    pub tool: ToolName,
    /// The cap (`None` clears it).
    pub max_spend: Option<Money>,
}

impl TenantMessage for SetSpendCap {
    type Reply = BudgetLine;
    const KIND: &'static str = "set_spend_cap";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<BudgetLine> {
        let now = cx.now;
        match cx.state.protect(self.tool.as_str(), self.max_spend, now) {
            Ok((line, effects)) => cx.commit(effects, line),
            Err(e) => Reply::ready(Err(e.into())),
        }
    }
}

/// Change a package (its provisioning vendor only).
#[derive(Debug)]
pub struct UpdatePackage {
    /// Package id.
    pub package_id: String,
    /// The vendor asking; another vendor's package is unknown to it.
    pub vendor_id: String,
    /// What changes.
    pub patch: PackagePatch,
}

impl TenantMessage for UpdatePackage {
    type Reply = PackageRecord;
    const KIND: &'static str = "update_package";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<PackageRecord> {
        match cx
            .state
            .update_package(&self.package_id, &self.vendor_id, self.patch)
        {
            Ok((package, effects)) => {
                cx.view_changed();
                cx.commit(effects, package)
            }
            Err(e) => Reply::ready(Err(e.into())),
        }
    }
}

/// The head of the charge ledger as the actor knows it (every acknowledged charge is
/// at or before it).
#[derive(Debug)]
pub struct GetLedgerHead;

impl TenantMessage for GetLedgerHead {
    type Reply = LedgerHead;
    const KIND: &'static str = "ledger_head";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<LedgerHead> {
        Reply::ready(Ok(cx.state.ledger_head()))
    }
}

/// File a request for more seats.
#[derive(Debug)]
pub struct RequestMore {
    /// The request.
    pub request: MoreRequest,
    /// Id for the new request.
    pub id: String,
}

impl TenantMessage for RequestMore {
    type Reply = MoreRequestRecord;
    const KIND: &'static str = "request_more";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<MoreRequestRecord> {
        // Requests are few (one open per package); reading them here keeps them out of
        // the actor's memory.
        let existing = match cx.store.more_requests(cx.shared.tenant()) {
            Ok(r) => r,
            Err(e) => return Reply::ready(Err(TenantError::Storage(e))),
        };
        let now = cx.now;
        match cx.state.request_more(self.request, self.id, &existing, now) {
            Ok((record, effects)) => cx.commit(effects, record),
            Err(e) => Reply::ready(Err(e.into())),
        }
    }
}

/// Answer a request for more seats (its vendor only).
#[derive(Debug)]
pub struct DecideRequest {
    /// Request id.
    pub id: String,
    /// The vendor answering.
    pub vendor_id: String,
    /// The answer.
    pub decision: Decision,
}

impl TenantMessage for DecideRequest {
    type Reply = Decided;
    const KIND: &'static str = "decide_request";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<Decided> {
        // Read inside the actor: decisions on one tenant serialise here, so two answers
        // to the same request cannot both apply.
        let request = match cx.store.more_request(cx.shared.tenant(), &self.id) {
            Ok(Some(r)) => r,
            Ok(None) => return Reply::ready(Err(DomainError::UnknownRequest(self.id).into())),
            Err(e) => return Reply::ready(Err(TenantError::Storage(e))),
        };
        let now = cx.now;
        match cx
            .state
            .decide_request(request, &self.vendor_id, self.decision, now)
        {
            Ok((decided, effects)) => {
                cx.view_changed();
                cx.commit(effects, decided)
            }
            Err(e) => Reply::ready(Err(e.into())),
        }
    }
}
