//! Portal login, logout and the current session, on the vendor host and tenant hosts.
//!
//! On the vendor host the user name is the vendor id and the password the one given
//! when the vendor was created; on a tenant host, a user created with `POST /api/users`.
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use permetrix_actors::domain::rfc3339;
use permetrix_storage::records::{Lifecycle, SessionSubject, UserRole};
use permetrix_storage::{TenantId, VendorId};
use serde::Deserialize;
use serde_json::json;

use crate::auth::client::client_address;
use crate::auth::password::Verdict;
use crate::auth::session::{self, Refusal, Session, SessionPrincipal};
use crate::auth::{Principal, bearer, identify_key, invalid_key, now, wrong_place};
use crate::http::error::{ApiError, Result};
use crate::http::host::{HostContext, canonical_host, context_of, request_host};
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/auth/login", web::post().to(login))
        .route("/api/auth/logout", web::post().to(logout))
        .route("/api/auth/me", web::get().to(me));
}

/// Longest password accepted (argon2 cost grows with it).
pub const MAX_PASSWORD: usize = 1024;

#[derive(Deserialize)]
// A misspelt field is a mistake to report, not to ignore.
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

fn role_name(role: UserRole) -> &'static str {
    match role {
        UserRole::Admin => "admin",
        UserRole::Viewer => "viewer",
    }
}

/// An account that may log in on this host.
struct Account {
    /// The stored password hash; `None` for a user whose password was never set.
    hash: Option<String>,
    subject: SessionSubject,
    role: &'static str,
}

/// The account `username` names on this host, if any.
fn account(state: &AppState, ctx: &HostContext, username: &str) -> Result<Option<Account>> {
    match ctx {
        HostContext::Vendor => {
            let Ok(id) = VendorId::parse(username) else {
                return Ok(None);
            };
            let vendor = state
                .platform
                .vendor(&id)?
                .filter(|v| v.lifecycle == Lifecycle::Active);
            Ok(vendor.and_then(|v| v.password_hash).map(|hash| Account {
                hash: Some(hash),
                subject: SessionSubject::Vendor {
                    vendor_id: id.to_string(),
                },
                role: "vendor",
            }))
        }
        HostContext::Tenant(t) => Ok(state.platform.user(t, username)?.map(|u| Account {
            hash: u.password_hash,
            role: role_name(u.role),
            subject: SessionSubject::TenantUser {
                tenant_id: t.to_string(),
                username: u.username,
                user_id: u.user_id,
            },
        })),
        _ => Ok(None),
    }
}

fn portal_host(req: &HttpRequest) -> Result<HostContext> {
    match context_of(req) {
        ctx @ (HostContext::Vendor | HostContext::Tenant(_)) => Ok(ctx),
        _ => Err(ApiError::not_found(
            "portal sessions exist on the vendor host and tenant hosts only",
        )),
    }
}

fn require_tenant(state: &AppState, ctx: &HostContext) -> Result<()> {
    if let HostContext::Tenant(t) = ctx
        && !state.registry.exists(t)?
    {
        return Err(ApiError::unknown_tenant());
    }
    Ok(())
}

/// Login CSRF: a foreign page must not log the browser in to an account of the
/// attacker's. It can post a form (`text/plain`, urlencoded, multipart) without a
/// preflight, so login takes JSON only; and a browser says where a request comes from
/// (`Origin`, `Sec-Fetch-Site`), so one from another site is refused. Clients that are
/// no browser send neither header.
fn from_own_page(req: &HttpRequest) -> Result<()> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::UnsupportedMediaType(
            "login takes a JSON body: send 'Content-Type: application/json'".into(),
        ));
    }
    let cross_site = || ApiError::Forbidden {
        code: "cross_site_request",
        detail: "login is accepted from this portal's own page only".into(),
    };
    let header_text = |name: &str| req.headers().get(name).map(|v| v.to_str().unwrap_or("?"));
    if let Some(site) = header_text("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return Err(cross_site());
    }
    if let Some(origin) = header_text("origin")
        && !same_origin(origin, request_host(req.head()))
    {
        return Err(cross_site());
    }
    Ok(())
}

/// Whether `origin` (`scheme://host[:port]`) names the host the request was sent to.
/// Behind a TLS proxy the scheme is unknown here: host and port are compared, a missing
/// port standing for the scheme's default on either side.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default = match scheme {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let port = |a: &'_ str| -> String {
        let after_name = a.rsplit_once(']').map_or(a, |(_, rest)| rest);
        after_name
            .split_once(':')
            .map(|(_, p)| p)
            .filter(|p| !p.is_empty())
            .unwrap_or(default)
            .to_owned()
    };
    let name = canonical_host(authority);
    !name.is_empty() && name == canonical_host(host) && port(authority) == port(host)
}

async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<Login>,
) -> Result<HttpResponse> {
    let ctx = portal_host(&req)?;
    require_tenant(&state, &ctx)?;
    from_own_page(&req)?;
    let Login { username, password } = body.into_inner();
    if username.is_empty() || username.len() > 256 || password.len() > MAX_PASSWORD {
        return Err(ApiError::invalid(format!(
            "username must have 1 to 256 characters and password at most {MAX_PASSWORD}"
        )));
    }
    let username = username.to_lowercase();
    let host_key = match &ctx {
        HostContext::Tenant(t) => t.as_str(),
        _ => "vendor",
    };
    let throttle_key = format!("{host_key}/{username}");
    let addr = client_address(&req, state.security.sessions.client_ip_header.as_ref());
    let at = now(&state).millis();
    state.security.admit_login(&throttle_key, addr, at)?;

    let account = account(&state, &ctx, &username)?;
    let hash = account.as_ref().and_then(|a| a.hash.clone());
    let verdict = state
        .security
        .verify_password(host_key, password.clone(), hash)
        .await?;
    let Some(account) = account.filter(|_| verdict != Verdict::Wrong) else {
        state.security.login_failed(&throttle_key, addr, at);
        return Err(ApiError::Unauthorized {
            code: "invalid_credentials",
            detail: "the username or password is wrong".into(),
        });
    };
    state.security.login_succeeded(&throttle_key);
    if verdict == Verdict::RightUpgrade {
        upgrade_imported_hash(&state, &account, password).await?;
    }

    let (token, record) = session::create(&state, &req, account.subject).await?;
    let mut reply = json!({
        "username": username,
        "role": account.role,
        "csrf_token": session::csrf_token(&state, &token),
        "expires_at": rfc3339(record.expires_at),
    });
    match &record.subject {
        SessionSubject::Vendor { vendor_id } => reply["vendor_id"] = json!(vendor_id),
        SessionSubject::TenantUser { tenant_id, .. } => reply["tenant_id"] = json!(tenant_id),
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(session::cookie(&state, &req, token))
        .json(reply))
}

/// Replaces the imported hash a login just verified by argon2id, durably, before the
/// login is answered: the old server's hash is not kept a login longer than needed.
async fn upgrade_imported_hash(
    state: &AppState,
    account: &Account,
    password: String,
) -> Result<()> {
    let (
        SessionSubject::TenantUser {
            tenant_id,
            username,
            ..
        },
        Some(old),
    ) = (&account.subject, &account.hash)
    else {
        return Ok(());
    };
    let tenant = TenantId::parse(tenant_id).map_err(ApiError::internal)?;
    let new = state
        .security
        .hash_password(tenant.as_str(), password)
        .await?;
    if let Some(written) = state
        .platform
        .upgrade_user_password(&tenant, username, old, new)?
    {
        written.wait().await?;
        tracing::info!(tenant = %tenant, user = %username, "imported password hash replaced by argon2id");
    }
    Ok(())
}

/// Who calls `/api/auth/*`: a portal session, or an API key of this host.
enum Caller {
    Session(Session),
    Key(Principal),
}

/// The caller; without a credential, 401 (or 404 on the host of no tenant). A
/// credential of another host is a 403 whether or not this host's tenant exists,
/// exactly as on every other endpoint.
fn current_caller(state: &AppState, req: &HttpRequest) -> Result<Caller> {
    let ctx = portal_host(req)?;
    if let Some(token) = bearer(req)? {
        return match identify_key(state, &token) {
            Some(Ok(p)) => {
                let here = match (&p, &ctx) {
                    (Principal::Tenant { tenant, .. }, HostContext::Tenant(t)) => tenant == t,
                    (
                        Principal::Vendor(_) | Principal::VendorClient { .. },
                        HostContext::Vendor,
                    ) => true,
                    _ => false,
                };
                if here {
                    Ok(Caller::Key(p))
                } else {
                    Err(wrong_place())
                }
            }
            Some(Err(e)) => Err(e),
            None if state.operator.verify_cached(&token) == Some(true) => Err(wrong_place()),
            None => Err(invalid_key()),
        };
    }
    match session::authenticate(state, req) {
        Ok(Some(s)) => Ok(Caller::Session(s)),
        Ok(None) => {
            require_tenant(state, &ctx)?;
            Err(ApiError::unauthorized(
                "no portal session: log in with POST /api/auth/login",
            ))
        }
        Err(Refusal::Elsewhere) => Err(wrong_place()),
        Err(Refusal::Unusable(e) | Refusal::Failed(e)) => Err(e),
    }
}

async fn logout(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse> {
    let Caller::Session(s) = current_caller(&state, &req)? else {
        return Err(ApiError::BadRequest {
            code: "no_session",
            detail: "logout ends portal sessions; an API key is revoked with \
                     DELETE /api/keys/{key_id}"
                .into(),
        });
    };
    session::delete(&state, &s.key).await?;
    state.streams.end_session(&s.key);
    Ok(HttpResponse::Ok()
        .cookie(session::removal_cookie(&state, &req))
        .json(json!({"status": "logged_out"})))
}

async fn me(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse> {
    let s = match current_caller(&state, &req)? {
        Caller::Session(s) => s,
        Caller::Key(Principal::Tenant {
            tenant,
            key_id,
            scope,
            ..
        }) => {
            return Ok(HttpResponse::Ok().json(json!({
                "kind": "api_key",
                "tenant_id": tenant.as_str(),
                "key_id": key_id,
                "scope": crate::api::accounts::scope_name(scope),
            })));
        }
        Caller::Key(Principal::VendorClient {
            vendor,
            client_id,
            scope,
        }) => {
            return Ok(HttpResponse::Ok().json(json!({
                "kind": "oauth_token",
                "vendor_id": vendor.as_str(),
                "client_id": client_id,
                "scope": scope.to_string(),
            })));
        }
        Caller::Key(principal) => {
            let vendor = match &principal {
                Principal::Vendor(v) => Some(v.as_str()),
                _ => None,
            };
            return Ok(HttpResponse::Ok().json(json!({"kind": "api_key", "vendor_id": vendor})));
        }
    };
    let expires_at = rfc3339(s.expires_at);
    let body = match s.principal {
        SessionPrincipal::Vendor(v) => json!({
            "kind": "session",
            "username": v.as_str(),
            "role": "vendor",
            "vendor_id": v.as_str(),
            "expires_at": expires_at,
        }),
        SessionPrincipal::TenantUser {
            tenant,
            username,
            role,
        } => json!({
            "kind": "session",
            "username": username,
            "role": role_name(role),
            "tenant_id": TenantId::as_str(&tenant),
            "expires_at": expires_at,
        }),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}

#[cfg(test)]
mod tests {
    use super::same_origin;

    #[test]
    fn an_origin_matches_its_own_host_and_port_only() {
        assert!(same_origin(
            "http://vendor.localhost:8000",
            "vendor.localhost:8000"
        ));
        assert!(same_origin(
            "https://acme.permetrix.fly.dev",
            "acme.permetrix.fly.dev"
        ));
        assert!(same_origin("https://ACME.example", "acme.example:443"));
        assert!(same_origin("http://[::1]:8000", "[::1]:8000"));
        for (origin, host) in [
            ("http://acme.localhost", "vendor.localhost"),
            ("http://vendor.localhost:9000", "vendor.localhost:8000"),
            ("http://vendor.localhost", "vendor.localhost:8000"),
            ("null", "vendor.localhost"),
            ("file://vendor.localhost", "vendor.localhost"),
            ("http://", ""),
            ("http://vendor.localhost.evil.example", "vendor.localhost"),
        ] {
            assert!(!same_origin(origin, host), "{origin} vs {host}");
        }
    }
}
