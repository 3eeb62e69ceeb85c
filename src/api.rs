//! The JSON API, one module per host context, mounted per host in [`configure`].
//!
//! - [`tenant`]: `<tenant>.<base>`, the tenant's build farms, engineers and admins;
//! - [`vendor`]: `vendor.<base>`, a vendor and its customers;
//! - [`operator`]: `<base>`, the operator (and `/metrics`);
//! - shared by several hosts: `health` (every host), `session` (portal login on the
//!   tenant and vendor hosts), [`accounts`] (creating vendors, tenants, keys and
//!   packages) and `reporting` (windows, formats and CSV of the reports).
pub mod accounts;
mod health;
pub mod operator;
mod reporting;
mod session;
pub mod tenant;
pub mod vendor;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::http::error::ApiError;
use crate::http::host::{HostContext, HostGuard, context_of};
use crate::server::state::AppState;

/// Mounts every route. Health endpoints answer on every host; the rest only on theirs.
pub fn configure(cfg: &mut web::ServiceConfig) {
    health::configure(cfg);
    // The portals' pages and assets (`/`, `/login`, `/assets/*`), before the host scopes.
    crate::web::configure(cfg);
    cfg.service(
        web::scope("")
            .guard(HostGuard::Tenant)
            .configure(tenant::configure),
    )
    .service(
        web::scope("")
            .guard(HostGuard::Vendor)
            .configure(vendor::configure),
    )
    .service(
        web::scope("")
            .guard(HostGuard::Main)
            .configure(operator::configure),
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
