//! Requests for more seats, on the vendor host (`/api/vendor/requests`): the vendor
//! lists its customers' requests and answers them. An approval changes the package in
//! the same atomic write that records the answer.
use actix_web::{HttpResponse, web};
use permetrix_actors::domain::Decision;
use permetrix_actors::messages::DecideRequest;
use permetrix_storage::TenantId;
use permetrix_storage::records::{Lifecycle, PackageRecord, RequestStatus};
use serde::Deserialize;

use crate::api::accounts;
use crate::api::reporting::blocking;
use crate::api::tenant::requests::{MAX_NOTE, newest_first, view};
use crate::auth::VendorAuth;
use crate::http::error::{ApiError, Result};
use crate::http::input::{RawBody, optional_seats as seats, optional_text, parse_json};
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/vendor/requests", web::get().to(vendor_requests))
        .route("/api/vendor/requests/{id}/approve", web::post().to(approve))
        .route("/api/vendor/requests/{id}/reject", web::post().to(reject));
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
