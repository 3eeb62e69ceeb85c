//! HTTP routes, one module per area, mounted per host context.
mod admin;
mod auth;
mod budget;
mod events;
mod health;
mod keys;
mod ledger;
mod licenses;
mod limits;
mod metrics;
mod packages;
mod queue;
mod reporting;
mod requests;
mod signing;
mod tenant_config;
mod usage;
mod users;
mod vendor;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;
use crate::host::{HostContext, HostGuard, context_of};
use crate::state::AppState;

/// Mounts every route. Health endpoints answer on every host; the rest only on theirs.
pub fn configure(cfg: &mut web::ServiceConfig) {
    health::configure(cfg);
    // The portals' pages and assets (`/`, `/login`, `/assets/*`), before the host scopes.
    crate::web::configure(cfg);
    // Before the tenant scope below, which answers every path it does not know with 404.
    #[cfg(feature = "fault-injection")]
    cfg.service(
        web::scope("/_faults")
            .guard(HostGuard::Tenant)
            .configure(crate::fault_injection::configure),
    );
    cfg.service(
        web::scope("")
            .guard(HostGuard::Tenant)
            .configure(licenses::configure)
            .configure(tenant_config::configure)
            .configure(limits::configure)
            .configure(keys::configure)
            .configure(budget::configure)
            .configure(ledger::configure)
            .configure(usage::configure)
            .configure(requests::configure)
            .configure(users::configure)
            .configure(auth::configure)
            .configure(events::configure),
    )
    .service(
        web::scope("")
            .guard(HostGuard::Vendor)
            .configure(vendor::configure)
            .configure(packages::configure_vendor)
            .configure(ledger::configure_vendor)
            .configure(usage::configure_vendor)
            .configure(requests::configure_vendor)
            .configure(auth::configure),
    )
    .service(
        web::scope("")
            .guard(HostGuard::Main)
            .configure(admin::configure)
            .configure(crate::supervision::configure)
            .configure(metrics::configure)
            .configure(signing::configure),
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
