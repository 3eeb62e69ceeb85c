//! The vendor host: customers, provisioning, live usage.
use actix_web::{HttpResponse, web};
use permetrix_actors::domain::{
    OfflineHours, Seats, TenantSnapshot, ToolStatus, UsageTotals, check_seat_sum, rfc3339,
};
use permetrix_storage::records::{Lifecycle, PackageRecord, PackageStatus};
use permetrix_storage::{Money, TenantId};
use serde::{Deserialize, Serialize};

use crate::api::accounts::{self, NewTenant};
use crate::auth::secrets::random_hex;
use crate::auth::{VendorAuth, now};
use crate::http::error::{ApiError, Result};
use crate::http::headers::shown_once;
use crate::http::input::{optional_text, parse_time, text};
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/vendor/customers", web::get().to(list_customers))
        .route("/api/vendor/customers", web::post().to(create_customer))
        .route("/api/vendor/provision", web::post().to(provision));
}

#[derive(Deserialize)]
// A misspelt field would otherwise be ignored and the change silently not made.
#[serde(deny_unknown_fields)]
struct NewCustomer {
    tenant_id: String,
    company_name: String,
    domain: Option<String>,
    crm_id: Option<String>,
    custom_hosts: Option<Vec<String>>,
}

async fn create_customer(
    state: web::Data<AppState>,
    caller: VendorAuth,
    body: web::Json<NewCustomer>,
) -> Result<HttpResponse> {
    let b = body.into_inner();
    let tenant_id = TenantId::parse(&b.tenant_id).map_err(|e| ApiError::invalid(e.to_string()))?;
    let created = accounts::create_tenant(
        &state,
        &caller.vendor,
        NewTenant {
            tenant_id,
            company_name: text("company_name", &b.company_name, 200)?,
            domain: optional_text("domain", b.domain.as_deref(), 253)?,
            crm_id: optional_text("crm_id", b.crm_id.as_deref(), 100)?,
            custom_hosts: state
                .custom_hosts
                .admit(&state.bases, b.custom_hosts.as_deref().unwrap_or_default())?,
        },
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(shown_once())
        .json(created))
}

/// A package as vendors see it, with live counts.
#[derive(Serialize)]
struct PackageView {
    package_id: String,
    product_id: String,
    product_name: String,
    status: &'static str,
    total: u32,
    commit_qty: u32,
    max_overage: u32,
    borrowed: u32,
    overage: u32,
    waiting: u32,
    commit_price: f64,
    overage_price_per_license: f64,
    month_to_date_overage_cost: f64,
    max_offline_hours: u32,
    max_offline_seats: u32,
    /// Seats checked out offline now.
    offline: u32,
}

fn status_name(s: PackageStatus) -> &'static str {
    match s {
        PackageStatus::Active => "active",
        PackageStatus::Suspended => "suspended",
        PackageStatus::Revoked => "revoked",
    }
}

fn package_view(t: &ToolStatus) -> PackageView {
    PackageView {
        package_id: t.package_id.clone(),
        product_id: t.product_id.clone(),
        product_name: t.tool.clone(),
        status: status_name(t.status),
        total: t.total,
        commit_qty: t.commit,
        max_overage: t.max_overage,
        borrowed: t.borrowed,
        overage: t.overage,
        waiting: t.waiting,
        commit_price: t.commit_price.as_decimal(),
        overage_price_per_license: t.overage_price_per_license.as_decimal(),
        month_to_date_overage_cost: t.current_overage_cost.as_decimal(),
        max_offline_hours: t.max_offline_hours,
        max_offline_seats: t.max_offline_seats,
        offline: t.offline,
    }
}

#[derive(Serialize)]
struct Customer {
    tenant_id: String,
    company_name: String,
    domain: Option<String>,
    crm_id: Option<String>,
    /// The tenant's own host names, besides `<tenant_id>.<base>`.
    custom_hosts: Vec<String>,
    status: &'static str,
    created_at: String,
    packages: Vec<PackageView>,
    usage: UsageTotals,
    /// False when the tenant did not answer in time (counts then are absent).
    live: bool,
}

/// Only the packages this vendor provisioned, and their summed usage.
fn vendor_part(snapshot: &TenantSnapshot, vendor: &str) -> (Vec<PackageView>, UsageTotals) {
    let mine: Vec<&ToolStatus> = snapshot
        .tools
        .iter()
        .filter(|t| t.vendor_id == vendor)
        .collect();
    let usage = mine
        .iter()
        .fold(UsageTotals::default(), |u, t| UsageTotals {
            borrowed: u.borrowed + t.borrowed,
            total: u.total + t.total,
            overage: u.overage + t.overage,
        });
    (mine.into_iter().map(package_view).collect(), usage)
}

async fn list_customers(state: web::Data<AppState>, caller: VendorAuth) -> Result<HttpResponse> {
    let ids = state.platform.vendor_tenant_ids(&caller.vendor)?;
    let mut records = Vec::with_capacity(ids.len());
    for id in &ids {
        if let Some(r) = state.platform.tenant(id)?
            && r.lifecycle == Lifecycle::Active
            && r.vendor_id == caller.vendor.as_str()
        {
            records.push((id.clone(), r));
        }
    }
    let live_ids: Vec<TenantId> = records.iter().map(|(id, _)| id.clone()).collect();
    let snapshots = state
        .registry
        .snapshots(&live_ids, state.fanout_deadline)
        .await;
    let mut missing = Vec::new();
    let customers: Vec<Customer> = records
        .into_iter()
        .zip(snapshots)
        .map(|((id, r), (_, snap))| {
            let (packages, usage, live) = match snap {
                Ok(s) => {
                    let (p, u) = vendor_part(&s, caller.vendor.as_str());
                    (p, u, true)
                }
                Err(e) => {
                    tracing::warn!(tenant = %id, error = %e, "tenant missing from vendor fan-out");
                    missing.push(id.to_string());
                    (Vec::new(), UsageTotals::default(), false)
                }
            };
            Customer {
                tenant_id: r.tenant_id,
                company_name: r.company_name,
                domain: r.domain,
                crm_id: r.crm_id,
                custom_hosts: r.custom_hosts,
                status: "active",
                created_at: rfc3339(r.created_at),
                packages,
                usage,
                live,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "customers": customers,
        "partial": !missing.is_empty(),
        "missing": missing,
    })))
}

#[derive(Deserialize)]
// A misspelt field would otherwise be ignored and the change silently not made.
#[serde(deny_unknown_fields)]
struct ProvisionBody {
    tenant_id: String,
    product_id: String,
    product_name: String,
    total: i64,
    commit_qty: i64,
    max_overage: i64,
    commit_price: Option<f64>,
    overage_price_per_license: Option<f64>,
    crm_opportunity_id: Option<String>,
    valid_from: Option<String>,
    valid_until: Option<String>,
    max_offline_hours: Option<i64>,
    max_offline_seats: Option<i64>,
}

fn money(field: &str, v: Option<f64>) -> Result<Money> {
    v.map_or(Ok(Money::ZERO), |x| {
        Money::from_decimal(x).map_err(|e| ApiError::invalid(format!("{field}: {e}")))
    })
}

async fn provision(
    state: web::Data<AppState>,
    caller: VendorAuth,
    body: web::Json<ProvisionBody>,
) -> Result<HttpResponse> {
    let b = body.into_inner();
    let tenant = accounts::vendor_tenant(&state, &caller.vendor, &b.tenant_id)?;
    let tenant_id = TenantId::parse(&tenant.tenant_id).map_err(ApiError::internal)?;
    let (total, commit_qty, max_overage) = (
        Seats::parse("total", b.total)?.get(),
        Seats::parse("commit_qty", b.commit_qty)?.get(),
        Seats::parse("max_overage", b.max_overage)?.get(),
    );
    check_seat_sum(total, commit_qty, max_overage)?;
    let valid_from = parse_time("valid_from", b.valid_from.as_deref())?;
    let valid_until = parse_time("valid_until", b.valid_until.as_deref())?;
    if let (Some(f), Some(u)) = (valid_from, valid_until)
        && u <= f
    {
        return Err(ApiError::invalid("valid_until must be after valid_from"));
    }
    let package = PackageRecord {
        package_id: format!("pkg-{}", random_hex::<8>()),
        vendor_id: caller.vendor.to_string(),
        product_id: text("product_id", &b.product_id, 100)?,
        product_name: text("product_name", &b.product_name, 200)?,
        total,
        commit_qty,
        max_overage,
        commit_price: money("commit_price", b.commit_price)?,
        overage_price: money("overage_price_per_license", b.overage_price_per_license)?,
        crm_opportunity_id: optional_text(
            "crm_opportunity_id",
            b.crm_opportunity_id.as_deref(),
            100,
        )?,
        valid_from,
        valid_until,
        status: PackageStatus::Active,
        created_at: now(&state),
        max_offline_hours: b.max_offline_hours.map_or(Ok(0), |h| {
            OfflineHours::parse_limit(h).map(OfflineHours::get)
        })?,
        max_offline_seats: b.max_offline_seats.map_or(Ok(0), |n| {
            Seats::parse("max_offline_seats", n).map(Seats::get)
        })?,
    };
    let p = accounts::provision(&state, &caller.vendor, &tenant_id, package).await?;
    Ok(HttpResponse::Created().json(package_json(tenant_id.as_str(), &p)))
}

/// A package as the vendor sees it: the reply to provisioning and to a change.
pub(super) fn package_json(tenant: &str, p: &PackageRecord) -> serde_json::Value {
    serde_json::json!({
        "package_id": p.package_id,
        "tenant_id": tenant,
        "product_id": p.product_id,
        "product_name": p.product_name,
        "total": p.total,
        "commit_qty": p.commit_qty,
        "max_overage": p.max_overage,
        "commit_price": p.commit_price.as_decimal(),
        "overage_price_per_license": p.overage_price.as_decimal(),
        "crm_opportunity_id": p.crm_opportunity_id,
        "valid_from": p.valid_from.map(rfc3339),
        "valid_until": p.valid_until.map(rfc3339),
        "status": status_name(p.status),
        "max_offline_hours": p.max_offline_hours,
        "max_offline_seats": p.max_offline_seats,
    })
}
