//! HTTP routes, one module per area, mounted per host context.
mod admin;
mod events;
mod health;
mod keys;
mod licenses;
mod metrics;
mod tenant_config;
mod vendor;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;
use crate::host::{HostContext, HostGuard, context_of};
use crate::state::AppState;

/// Mounts every route. Health endpoints answer on every host; the rest only on theirs.
pub fn configure(cfg: &mut web::ServiceConfig) {
    health::configure(cfg);
    cfg.service(
        web::scope("")
            .guard(HostGuard::Tenant)
            .configure(licenses::configure)
            .configure(tenant_config::configure)
            .configure(keys::configure)
            .configure(events::configure),
    )
    .service(
        web::scope("")
            .guard(HostGuard::Vendor)
            .configure(vendor::configure),
    )
    .service(
        web::scope("")
            .guard(HostGuard::Main)
            .configure(admin::configure)
            .configure(metrics::configure),
    );
}

/// Unknown routes: 404 JSON (`unknown_tenant` on the host of a tenant that does not exist).
pub async fn not_found(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if let HostContext::Tenant(t) = context_of(&req)
        && !state.registry.exists(&t)?
    {
        return Err(ApiError::unknown_tenant());
    }
    Err(ApiError::not_found(format!(
        "no route for {} {}; see the API reference in the README",
        req.method(),
        req.path()
    )))
}
