//! `PUT /api/vendor/customers/{tenant_id}/hosts`: the vendor sets the custom hosts of one
//! of its customers (`licenses.acme.com`), which are tenant context for that customer
//! like `<tenant_id>.<base>`. The list replaces the previous one; an empty list removes
//! them all. Routing follows before the reply.
use actix_web::{HttpResponse, web};
use permetrix_storage::TenantId;
use serde::Deserialize;

use crate::api::accounts;
use crate::auth::VendorAuth;
use crate::http::error::{ApiError, Result};
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/vendor/customers/{tenant_id}/hosts",
        web::put().to(set_hosts),
    );
}

#[derive(Deserialize)]
// A misspelt field would otherwise be ignored and the change silently not made.
#[serde(deny_unknown_fields)]
struct HostsBody {
    custom_hosts: Vec<String>,
}

async fn set_hosts(
    state: web::Data<AppState>,
    caller: VendorAuth,
    path: web::Path<String>,
    body: web::Json<HostsBody>,
) -> Result<HttpResponse> {
    let tenant = accounts::vendor_tenant(&state, &caller.vendor, &path)?;
    let id = TenantId::parse(&tenant.tenant_id).map_err(ApiError::internal)?;
    let hosts = state.custom_hosts.admit(&state.bases, &body.custom_hosts)?;
    let custom_hosts = accounts::set_custom_hosts(&state, &id, &hosts).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "tenant_id": id.as_str(),
        "custom_hosts": custom_hosts,
    })))
}
