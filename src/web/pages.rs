//! The page shells: landing, login, vendor portal, tenant dashboard.
//!
//! A portal page needs a valid session of its host; without one the browser is sent to
//! `/login` (303). The host of a tenant that does not exist answers 404 `unknown_tenant`
//! like the API does, without activating anything.
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use permetrix_storage::TenantId;

use super::portal_session::{self, PortalUser};
use super::{assets, headers, template};
use crate::http::error::{ApiError, Result};
use crate::http::host::{HostContext, canonical_host, context_of, request_host};
use crate::server::state::AppState;

const LANDING: &str = include_str!("html/landing.html");
const LOGIN: &str = include_str!("html/login.html");
const VENDOR: &str = include_str!("html/vendor.html");
const TENANT: &str = include_str!("html/tenant.html");

fn html(body: String) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    headers::secure(&mut res)
        // Pages carry the CSRF token of the session: never store them.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(body)
}

fn see_other(location: &'static str) -> HttpResponse {
    let mut res = HttpResponse::SeeOther();
    headers::secure(&mut res)
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn to_login() -> HttpResponse {
    see_other("/login")
}

fn require_tenant(state: &AppState, tenant: &TenantId) -> Result<()> {
    if state.registry.exists(tenant)? {
        Ok(())
    } else {
        Err(ApiError::unknown_tenant())
    }
}

/// `GET /`: the landing page on the apex, the portal on the vendor and tenant hosts.
pub async fn index(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    match context_of(&req) {
        HostContext::Vendor => {
            let Some(user) = portal_session::current(&state, &req)? else {
                return Ok(to_login());
            };
            Ok(html(vendor_page(&user)))
        }
        HostContext::Tenant(t) => {
            require_tenant(&state, &t)?;
            let Some(user) = portal_session::current(&state, &req)? else {
                return Ok(to_login());
            };
            let company = state
                .platform
                .tenant(&t)?
                .map(|r| r.company_name)
                .unwrap_or_default();
            Ok(html(tenant_page(&t, &company, &user)))
        }
        HostContext::Main | HostContext::Invalid(_) | HostContext::Malformed(_) => {
            Ok(html(landing_page(&state, &req)))
        }
    }
}

/// `GET /login` on the vendor host and tenant hosts; someone already signed in here goes
/// on to the portal.
pub async fn login(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    let (portal, heading, hint) = match context_of(&req) {
        HostContext::Vendor => (
            "Vendor portal",
            "Sign in to the vendor portal".to_owned(),
            "Your vendor id",
        ),
        HostContext::Tenant(t) => {
            require_tenant(&state, &t)?;
            (
                "License dashboard",
                format!("Sign in to {t}"),
                "A user created by your license administrator",
            )
        }
        HostContext::Main | HostContext::Invalid(_) | HostContext::Malformed(_) => {
            return Err(ApiError::not_found(
                "the portals' login pages are on the vendor host and tenant hosts",
            ));
        }
    };
    if portal_session::current(&state, &req)?.is_some() {
        return Ok(see_other("/"));
    }
    Ok(html(template::render(
        LOGIN,
        &[
            ("v", assets::version()),
            ("portal", portal),
            ("heading", &heading),
            ("username_hint", hint),
        ],
    )))
}

fn vendor_page(user: &PortalUser) -> String {
    template::render(
        VENDOR,
        &[
            ("v", assets::version()),
            ("csrf", &user.csrf_token),
            ("username", &user.username),
        ],
    )
}

fn tenant_page(tenant: &TenantId, company: &str, user: &PortalUser) -> String {
    let admin_only = if user.role == "admin" { "" } else { "hidden" };
    template::render(
        TENANT,
        &[
            ("v", assets::version()),
            ("csrf", &user.csrf_token),
            ("username", &user.username),
            ("role", user.role),
            ("tenant", tenant.as_str()),
            (
                "company",
                if company.is_empty() {
                    tenant.as_str()
                } else {
                    company
                },
            ),
            ("admin_only", admin_only),
        ],
    )
}

/// Links to the portals under the base domain the visitor used (or, when they came by
/// IP address, the shortest configured one: `localhost` by default), keeping the port.
fn landing_page(state: &AppState, req: &HttpRequest) -> String {
    let raw = request_host(req.head());
    let name = canonical_host(raw);
    let port = raw
        .rsplit_once(':')
        .filter(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .map(|(_, p)| format!(":{p}"))
        .unwrap_or_default();
    let bases = state.bases.as_slice();
    let base = bases
        .iter()
        .find(|b| **b == name)
        .or_else(|| bases.last())
        .cloned()
        .unwrap_or_else(|| "localhost".to_owned());
    template::render(
        LANDING,
        &[
            ("v", assets::version()),
            ("vendor_url", &format!("//vendor.{base}{port}/")),
            ("tenant_example", &format!("<tenant>.{base}{port}")),
            ("base", &base),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every placeholder of every shell has a value (a typo would leave a blank).
    #[test]
    fn shells_have_only_known_placeholders() {
        let known = [
            "v",
            "portal",
            "heading",
            "username_hint",
            "csrf",
            "username",
            "role",
            "tenant",
            "company",
            "admin_only",
            "vendor_url",
            "tenant_example",
            "base",
        ];
        for shell in [LANDING, LOGIN, VENDOR, TENANT] {
            let mut rest = shell;
            while let Some(i) = rest.find("{{") {
                let after = &rest[i + 2..];
                let end = after.find("}}").unwrap();
                let name = after[..end].trim();
                assert!(known.contains(&name), "unknown placeholder {name}");
                rest = &after[end + 2..];
            }
            assert!(!shell.contains("<script>"), "no inline script");
            assert!(!shell.contains(" style="), "no inline style");
        }
    }
}
