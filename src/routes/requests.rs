//! Requests for more seats: the customer files one (`POST /api/customer/request-more`,
//! tenant admin), the vendor lists and answers them (`/api/vendor/requests`). An
//! approval changes the package in the same atomic write that records the answer.
//!
//! A request id is `<tenant_id>.<16 hex digits>`: the vendor host finds the tenant
//! from it, and checks that the tenant is the vendor's before anything else.
use actix_web::{HttpResponse, web};
use permetrix_actors::domain::{Decision, MoreRequest, ToolName, rfc3339};
use permetrix_actors::messages::{DecideRequest, RequestMore};
use permetrix_storage::TenantId;
use permetrix_storage::records::{Lifecycle, MoreRequestRecord, PackageRecord, RequestStatus};
use serde::{Deserialize, Serialize};

use super::reporting::blocking;
use crate::accounts;
use crate::auth::{TenantAdmin, VendorAuth};
use crate::error::{ApiError, Result};
use crate::input::{RawBody, optional_seats as seats, optional_text, parse_json};
use crate::secrets::random_hex;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/customer/request-more", web::post().to(request_more))
        .route("/api/customer/requests", web::get().to(tenant_requests));
}

pub fn configure_vendor(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/vendor/requests", web::get().to(vendor_requests))
        .route("/api/vendor/requests/{id}/approve", web::post().to(approve))
        .route("/api/vendor/requests/{id}/reject", web::post().to(reject));
}

/// Longest note accepted.
const MAX_NOTE: usize = 2_000;

fn status_name(s: RequestStatus) -> &'static str {
    match s {
        RequestStatus::Pending => "pending",
        RequestStatus::Approved => "approved",
        RequestStatus::Rejected => "rejected",
    }
}

#[derive(Serialize)]
struct Limits {
    total: u32,
    commit_qty: u32,
    max_overage: u32,
}

impl From<(u32, u32, u32)> for Limits {
    fn from((total, commit_qty, max_overage): (u32, u32, u32)) -> Self {
        Limits {
            total,
            commit_qty,
            max_overage,
        }
    }
}

/// A request as both sides see it.
#[derive(Serialize)]
struct RequestView {
    id: String,
    tenant_id: String,
    tool: String,
    product_id: String,
    package_id: String,
    requested_total: Option<u32>,
    requested_overage: Option<u32>,
    message: Option<String>,
    status: &'static str,
    created_at: String,
    limits_before: Limits,
    decided_at: Option<String>,
    decision_note: Option<String>,
    applied: Option<Limits>,
}

fn view(tenant: &TenantId, r: MoreRequestRecord) -> RequestView {
    RequestView {
        id: r.id,
        tenant_id: tenant.to_string(),
        tool: r.product_name,
        product_id: r.product_id,
        package_id: r.package_id,
        requested_total: r.requested_total,
        requested_overage: r.requested_overage,
        message: r.message,
        status: status_name(r.status),
        created_at: rfc3339(r.created_at),
        limits_before: r.limits_before.into(),
        decided_at: r.decided_at.map(rfc3339),
        decision_note: r.decision_note,
        applied: r.applied.map(Limits::from),
    }
}

#[derive(Deserialize)]
// A misspelt field would otherwise be ignored and the change silently not made.
#[serde(deny_unknown_fields)]
struct RequestBody {
    tool: String,
    requested_total: Option<i64>,
    requested_overage: Option<i64>,
    message: Option<String>,
}

async fn request_more(
    state: web::Data<AppState>,
    caller: TenantAdmin,
    body: web::Json<RequestBody>,
) -> Result<HttpResponse> {
    let b = body.into_inner();
    let request = MoreRequest {
        tool: ToolName::parse(&b.tool)?,
        requested_total: seats("requested_total", b.requested_total)?,
        requested_overage: seats("requested_overage", b.requested_overage)?,
        message: optional_text("message", b.message.as_deref(), MAX_NOTE)?,
    };
    let id = format!("{}.{}", caller.tenant, random_hex::<8>());
    let record = state
        .registry
        .send(&caller.tenant, RequestMore { request, id })
        .await?;
    Ok(HttpResponse::Created().json(view(&caller.tenant, record)))
}

fn newest_first(list: &mut [RequestView]) {
    list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
}

async fn tenant_requests(state: web::Data<AppState>, caller: TenantAdmin) -> Result<HttpResponse> {
    let store = state.registry.store().clone();
    let tenant = caller.tenant.clone();
    let records = blocking(move || store.more_requests(&tenant)).await?;
    let mut list: Vec<RequestView> = records
        .into_iter()
        .map(|r| view(&caller.tenant, r))
        .collect();
    newest_first(&mut list);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "requests": list })))
}

#[derive(Deserialize)]
struct VendorQuery {
    status: Option<String>,
}

async fn vendor_requests(
    state: web::Data<AppState>,
    caller: VendorAuth,
    query: web::Query<VendorQuery>,
) -> Result<HttpResponse> {
    let wanted = match query.status.as_deref().unwrap_or("all") {
        "all" | "" => None,
        "pending" => Some(RequestStatus::Pending),
        "approved" => Some(RequestStatus::Approved),
        "rejected" => Some(RequestStatus::Rejected),
        other => {
            return Err(ApiError::invalid(format!(
                "status '{other}' is not known; use pending, approved, rejected or all"
            )));
        }
    };
    let mut tenants = Vec::new();
    for id in state.platform.vendor_tenant_ids(&caller.vendor)? {
        if let Some(r) = state.platform.tenant(&id)?
            && r.lifecycle == Lifecycle::Active
            && r.vendor_id == caller.vendor.as_str()
        {
            tenants.push(id);
        }
    }
    let store = state.registry.store().clone();
    let vendor = caller.vendor.to_string();
    let mut list = blocking(move || {
        let mut out = Vec::new();
        for t in &tenants {
            for r in store.more_requests(t)? {
                if r.vendor_id == vendor && wanted.is_none_or(|w| r.status == w) {
                    out.push(view(t, r));
                }
            }
        }
        Ok(out)
    })
    .await?;
    newest_first(&mut list);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "requests": list })))
}

/// The tenant a request id names, if it is one of the vendor's customers; otherwise
/// the request is unknown (whoever's it may be).
fn request_tenant(state: &AppState, caller: &VendorAuth, id: &str) -> Result<TenantId> {
    let unknown = || {
        ApiError::Domain(permetrix_actors::domain::DomainError::UnknownRequest(
            id.into(),
        ))
    };
    let (tenant, _) = id.split_once('.').ok_or_else(unknown)?;
    let record = accounts::vendor_tenant(state, &caller.vendor, tenant).map_err(|e| match e {
        ApiError::NotFound { .. } => unknown(),
        other => other,
    })?;
    TenantId::parse(&record.tenant_id).map_err(|_| unknown())
}

#[derive(Default, Deserialize)]
// A misspelt field would otherwise be ignored and the change silently not made.
#[serde(deny_unknown_fields)]
struct ApproveBody {
    total: Option<i64>,
    commit_qty: Option<i64>,
    max_overage: Option<i64>,
    note: Option<String>,
}

#[derive(Default, Deserialize)]
// A misspelt field would otherwise be ignored and the change silently not made.
#[serde(deny_unknown_fields)]
struct RejectBody {
    note: Option<String>,
}

/// An optional JSON body: none at all means the defaults.
fn optional_body<T: Default + serde::de::DeserializeOwned>(body: &[u8]) -> Result<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(body)
    }
}

fn package_view(p: &PackageRecord) -> serde_json::Value {
    serde_json::json!({
        "package_id": p.package_id,
        "product_id": p.product_id,
        "product_name": p.product_name,
        "total": p.total,
        "commit_qty": p.commit_qty,
        "max_overage": p.max_overage,
    })
}

async fn decide(
    state: &AppState,
    caller: &VendorAuth,
    id: String,
    decision: Decision,
) -> Result<HttpResponse> {
    let tenant = request_tenant(state, caller, &id)?;
    let decided = state
        .registry
        .send(
            &tenant,
            DecideRequest {
                id,
                vendor_id: caller.vendor.to_string(),
                decision,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "request": view(&tenant, decided.request),
        "package": decided.package.as_ref().map(package_view),
    })))
}

async fn approve(
    state: web::Data<AppState>,
    caller: VendorAuth,
    path: web::Path<String>,
    RawBody(body): RawBody,
) -> Result<HttpResponse> {
    let b: ApproveBody = optional_body(&body)?;
    let decision = Decision::Approve {
        total: seats("total", b.total)?,
        commit_qty: seats("commit_qty", b.commit_qty)?,
        max_overage: seats("max_overage", b.max_overage)?,
        note: optional_text("note", b.note.as_deref(), MAX_NOTE)?,
    };
    decide(&state, &caller, path.into_inner(), decision).await
}

async fn reject(
    state: web::Data<AppState>,
    caller: VendorAuth,
    path: web::Path<String>,
    RawBody(body): RawBody,
) -> Result<HttpResponse> {
    let b: RejectBody = optional_body(&body)?;
    let decision = Decision::Reject {
        note: optional_text("note", b.note.as_deref(), MAX_NOTE)?,
    };
    decide(&state, &caller, path.into_inner(), decision).await
}
