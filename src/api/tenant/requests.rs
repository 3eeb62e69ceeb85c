//! Requests for more seats: the customer files one (`POST /api/customer/request-more`,
//! tenant admin) and lists its own; the vendor lists and answers them
//! (`api::vendor::requests`). A request looks the same to both sides ([`view`]).
//!
//! A request id is `<tenant_id>.<16 hex digits>`: the vendor host finds the tenant
//! from it, and checks that the tenant is the vendor's before anything else.
use actix_web::{HttpResponse, web};
use permetrix_actors::domain::{MoreRequest, ToolName, rfc3339};
use permetrix_actors::messages::RequestMore;
use permetrix_storage::TenantId;
use permetrix_storage::records::{MoreRequestRecord, RequestStatus};
use serde::{Deserialize, Serialize};

use crate::api::reporting::blocking;
use crate::auth::TenantAdmin;
use crate::auth::secrets::random_hex;
use crate::http::error::Result;
use crate::http::input::{optional_seats as seats, optional_text};
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/customer/request-more", web::post().to(request_more))
        .route("/api/customer/requests", web::get().to(tenant_requests));
}

/// Longest note accepted.
pub const MAX_NOTE: usize = 2_000;

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
pub struct RequestView {
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

pub fn view(tenant: &TenantId, r: MoreRequestRecord) -> RequestView {
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

pub fn newest_first(list: &mut [RequestView]) {
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
