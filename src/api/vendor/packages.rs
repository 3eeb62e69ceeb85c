//! `PATCH /api/vendor/packages/{package_id}`: the provisioning vendor changes a
//! package's limits, prices, validity window or status. Another vendor's package
//! answers 404 as if it did not exist. Changes apply to new borrows; leases already
//! granted run out normally.
use actix_web::{HttpResponse, web};
use permetrix_actors::domain::{Change, OfflineHours, PackagePatch};
use permetrix_actors::messages::UpdatePackage;
use permetrix_storage::records::PackageStatus;
use permetrix_storage::{Money, TenantId, Timestamp};
use serde::Deserialize;

use super::customers::package_json;
use crate::api::accounts;
use crate::auth::VendorAuth;
use crate::http::error::{ApiError, Result};
use crate::http::input::{nullable, optional_seats as seats, optional_text, parse_time};
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/vendor/packages/{package_id}",
        web::patch().to(patch_package),
    );
}

#[derive(Deserialize)]
// A misspelt field would otherwise be ignored and the change silently not made.
#[serde(deny_unknown_fields)]
struct PatchBody {
    total: Option<i64>,
    commit_qty: Option<i64>,
    max_overage: Option<i64>,
    commit_price: Option<f64>,
    overage_price_per_license: Option<f64>,
    #[serde(default, deserialize_with = "nullable")]
    valid_from: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    valid_until: Option<Option<String>>,
    status: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    crm_opportunity_id: Option<Option<String>>,
    max_offline_hours: Option<i64>,
    max_offline_seats: Option<i64>,
}

fn price(field: &str, v: Option<f64>) -> Result<Option<Money>> {
    v.map(|x| Money::from_decimal(x).map_err(|e| ApiError::invalid(format!("{field}: {e}"))))
        .transpose()
}

/// `null` or `""` clears the time; a value sets it.
fn time_change(field: &str, v: Option<Option<String>>) -> Result<Change<Timestamp>> {
    Ok(match v {
        None => Change::Keep,
        Some(v) => match parse_time(field, v.as_deref())? {
            Some(t) => Change::Set(t),
            None => Change::Clear,
        },
    })
}

fn status_of(v: &str) -> Result<PackageStatus> {
    match v {
        "active" => Ok(PackageStatus::Active),
        "suspended" => Ok(PackageStatus::Suspended),
        "revoked" => Ok(PackageStatus::Revoked),
        other => Err(ApiError::invalid(format!(
            "status '{other}' is not known; use active, suspended or revoked"
        ))),
    }
}

fn patch_of(b: PatchBody) -> Result<PackagePatch> {
    Ok(PackagePatch {
        total: seats("total", b.total)?,
        commit_qty: seats("commit_qty", b.commit_qty)?,
        max_overage: seats("max_overage", b.max_overage)?,
        commit_price: price("commit_price", b.commit_price)?,
        overage_price: price("overage_price_per_license", b.overage_price_per_license)?,
        valid_from: time_change("valid_from", b.valid_from)?,
        valid_until: time_change("valid_until", b.valid_until)?,
        status: b.status.as_deref().map(status_of).transpose()?,
        crm_opportunity_id: match b.crm_opportunity_id {
            None => Change::Keep,
            Some(v) => match optional_text("crm_opportunity_id", v.as_deref(), 100)? {
                Some(id) => Change::Set(id),
                None => Change::Clear,
            },
        },
        max_offline_hours: b
            .max_offline_hours
            .map(OfflineHours::parse_limit)
            .transpose()?,
        max_offline_seats: seats("max_offline_seats", b.max_offline_seats)?,
    })
}

async fn patch_package(
    state: web::Data<AppState>,
    caller: VendorAuth,
    path: web::Path<String>,
    body: web::Json<PatchBody>,
) -> Result<HttpResponse> {
    let package_id = path.into_inner();
    let unknown = || {
        ApiError::Domain(permetrix_actors::domain::DomainError::UnknownPackage(
            package_id.clone(),
        ))
    };
    let index = state
        .platform
        .package(&package_id)?
        .filter(|p| p.vendor_id == caller.vendor.as_str())
        .ok_or_else(unknown)?;
    let tenant =
        accounts::vendor_tenant(&state, &caller.vendor, &index.tenant_id).map_err(|e| match e {
            ApiError::NotFound { .. } => unknown(),
            other => other,
        })?;
    let tenant_id = TenantId::parse(&tenant.tenant_id).map_err(ApiError::internal)?;
    let patch = patch_of(body.into_inner())?;
    let package = state
        .registry
        .send(
            &tenant_id,
            UpdatePackage {
                package_id: package_id.clone(),
                vendor_id: caller.vendor.to_string(),
                patch,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(package_json(tenant_id.as_str(), &package)))
}
