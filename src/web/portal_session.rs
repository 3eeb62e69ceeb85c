//! Who is looking at a page: the portal session of the request, if it is valid here.
use actix_web::HttpRequest;
use permetrix_storage::records::UserRole;

use crate::auth::session::{self, Refusal, SessionPrincipal};
use crate::http::error::ApiError;
use crate::server::state::AppState;

/// A logged-in portal user, as a page shell shows them.
pub struct PortalUser {
    /// Login name (the vendor id on the vendor host).
    pub username: String,
    /// `vendor`, `admin` or `viewer`.
    pub role: &'static str,
    /// CSRF token of the session, for the page's mutations.
    pub csrf_token: String,
}

/// The valid session of this host, or `None` (no cookie, ended, expired, another
/// host's): the page then sends the browser to the login page.
pub fn current(state: &AppState, req: &HttpRequest) -> Result<Option<PortalUser>, ApiError> {
    let session = match session::authenticate(state, req) {
        Ok(Some(s)) => s,
        Ok(None) | Err(Refusal::Unusable(_) | Refusal::Elsewhere) => return Ok(None),
        Err(Refusal::Failed(e)) => return Err(e),
    };
    let Some(cookie) = req.cookie(session::COOKIE) else {
        return Ok(None);
    };
    let (username, role) = match session.principal {
        SessionPrincipal::Vendor(v) => (v.to_string(), "vendor"),
        SessionPrincipal::TenantUser { username, role, .. } => (
            username,
            match role {
                UserRole::Admin => "admin",
                UserRole::Viewer => "viewer",
            },
        ),
    };
    Ok(Some(PortalUser {
        username,
        role,
        csrf_token: session::csrf_token(state, cookie.value()),
    }))
}
