//! A customer's overage ledger, exported to its vendor: the tenant's list and chain
//! check (`api::tenant::ledger`) for one of the vendor's customers.
use actix_web::{HttpResponse, web};
use permetrix_storage::TenantId;

use crate::api::accounts;
use crate::api::tenant::ledger::{ListQuery, Reader, VerifyQuery, list, verify};
use crate::auth::VendorAuth;
use crate::http::error::{ApiError, Result};
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/vendor/customers/{tenant_id}/overage-charges",
        web::get().to(vendor_export),
    )
    .route(
        "/api/vendor/customers/{tenant_id}/overage-charges/verify",
        web::get().to(vendor_verify),
    );
}

async fn vendor_export(
    state: web::Data<AppState>,
    caller: VendorAuth,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    let tenant = accounts::vendor_tenant(&state, &caller.vendor, &path)?;
    let id = TenantId::parse(&tenant.tenant_id).map_err(ApiError::internal)?;
    list(&state, id, query.into_inner(), Reader::Full).await
}

async fn vendor_verify(
    state: web::Data<AppState>,
    caller: VendorAuth,
    path: web::Path<String>,
    query: web::Query<VerifyQuery>,
) -> Result<HttpResponse> {
    let tenant = accounts::vendor_tenant(&state, &caller.vendor, &path)?;
    let id = TenantId::parse(&tenant.tenant_id).map_err(ApiError::internal)?;
    verify(&state, id, query.into_inner()).await
}
