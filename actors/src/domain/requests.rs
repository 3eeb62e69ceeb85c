//! Requests for more seats: the customer asks, the vendor approves or rejects, and an
//! approval changes the package in the same write that records the answer.
use permetrix_storage::records::{MoreRequestRecord, PackageRecord, RequestStatus};
use permetrix_storage::{TenantMutation, Timestamp};

use super::DomainError;
use super::effects::Effects;
use super::input::{Seats, ToolName};
use super::package::{PackagePatch, SeatLimits, patched, replace_package, resolve_limits};
use super::state::TenantState;
use super::webhook_events::WebhookEvent;

/// A customer's request (`POST /api/customer/request-more`).
#[derive(Clone, Debug)]
pub struct MoreRequest {
    /// Tool name or product id.
    pub tool: ToolName,
    /// Seats in total wanted.
    pub requested_total: Option<Seats>,
    /// Overage allowance wanted.
    pub requested_overage: Option<Seats>,
    /// Note to the vendor.
    pub message: Option<String>,
}

/// The vendor's answer.
#[derive(Clone, Debug)]
pub enum Decision {
    /// Grant: the request's limits, or the vendor's own where given.
    Approve {
        /// Seat total to set instead of the requested one.
        total: Option<Seats>,
        /// Prepaid seats to set.
        commit_qty: Option<Seats>,
        /// Overage allowance to set instead of the requested one.
        max_overage: Option<Seats>,
        /// Note to the customer.
        note: Option<String>,
    },
    /// Decline; nothing changes.
    Reject {
        /// Note to the customer.
        note: Option<String>,
    },
}

/// A request and, if it was approved, the package as it is now.
#[derive(Clone, Debug, PartialEq)]
pub struct Decided {
    /// The request with its answer.
    pub request: MoreRequestRecord,
    /// The changed package (approvals only).
    pub package: Option<PackageRecord>,
}

impl TenantState {
    /// Files a request for more seats of one pool. `id` is the new request's id;
    /// `pending` are the tenant's requests not answered yet (one per package at a time).
    pub fn request_more(
        &self,
        req: MoreRequest,
        id: String,
        pending: &[MoreRequestRecord],
        now: Timestamp,
    ) -> Result<(MoreRequestRecord, Effects), DomainError> {
        let pool = self.pool(req.tool.as_str())?;
        let requested_total = req.requested_total.map(Seats::get);
        let requested_overage = req.requested_overage.map(Seats::get);
        let p = pool.package();
        if requested_total.is_none() && requested_overage.is_none() {
            return Err(DomainError::Invalid(
                "say what you need: requested_total, requested_overage or both".into(),
            ));
        }
        if let Some(open) = pending
            .iter()
            .find(|r| r.status == RequestStatus::Pending && r.package_id == p.package_id)
        {
            return Err(DomainError::RequestPending {
                tool: p.product_name.clone(),
                id: open.id.clone(),
            });
        }
        let before: SeatLimits = (p.total, p.commit_qty, p.max_overage);
        resolve_limits(before, requested_total, None, requested_overage)?;
        let record = MoreRequestRecord {
            id,
            product_id: p.product_id.clone(),
            product_name: p.product_name.clone(),
            package_id: p.package_id.clone(),
            vendor_id: p.vendor_id.clone(),
            requested_total,
            requested_overage,
            message: req.message,
            limits_before: before,
            created_at: now,
            status: RequestStatus::Pending,
            decided_at: None,
            decision_note: None,
            applied: None,
        };
        let mut effects = Effects::writes(vec![TenantMutation::PutMoreRequest(record.clone())]);
        effects
            .webhooks
            .push(WebhookEvent::RequestCreated(Box::new(record.clone())));
        Ok((record, effects))
    }

    /// Answers `request` (as stored) for `vendor`. An approval sets the package's
    /// limits to what was asked (or to the vendor's figures where given), keeping
    /// `total = commit_qty + max_overage`; when only a total was asked for, the commit
    /// stays and the overage allowance takes the difference.
    pub fn decide_request(
        &mut self,
        mut request: MoreRequestRecord,
        vendor: &str,
        decision: Decision,
        now: Timestamp,
    ) -> Result<(Decided, Effects), DomainError> {
        if request.vendor_id != vendor {
            return Err(DomainError::UnknownRequest(request.id));
        }
        if request.status != RequestStatus::Pending {
            return Err(DomainError::RequestDecided {
                id: request.id,
                status: match request.status {
                    RequestStatus::Approved => "approved",
                    _ => "rejected",
                },
            });
        }
        request.decided_at = Some(now);
        let mut effects = Effects::default();
        let mut package = None;
        match decision {
            Decision::Reject { note } => {
                request.status = RequestStatus::Rejected;
                request.decision_note = note;
            }
            Decision::Approve {
                total,
                commit_qty,
                max_overage,
                note,
            } => {
                let index = self.package_index(&request.package_id, vendor)?;
                let pool = &mut self.pools[index];
                let (total, max_overage) =
                    if total.is_none() && commit_qty.is_none() && max_overage.is_none() {
                        // Stored from parsed counts when the request was filed.
                        (
                            request.requested_total.map(Seats::stored),
                            request.requested_overage.map(Seats::stored),
                        )
                    } else {
                        (total, max_overage)
                    };
                let next = patched(
                    &pool.package,
                    PackagePatch {
                        total,
                        commit_qty,
                        max_overage,
                        ..PackagePatch::default()
                    },
                )?;
                let (p, e) = replace_package(pool, next);
                request.status = RequestStatus::Approved;
                request.decision_note = note;
                request.applied = Some((p.total, p.commit_qty, p.max_overage));
                effects.merge(e);
                package = Some(p);
            }
        }
        effects
            .mutations
            .push(TenantMutation::PutMoreRequest(request.clone()));
        Ok((Decided { request, package }, effects))
    }
}
