//! Portal sessions (API.md "Portal sessions").
//!
//! Login gives the browser a random 256-bit token in the `pmx_session` cookie
//! (`HttpOnly`, `SameSite=Strict`, `Path=/`, no `Domain`, so the browser sends it to the
//! issuing host only; `Secure` over HTTPS, see [`super::client`]). The server stores
//! only a keyed digest of the token, with the host the session was issued on and its
//! expiry; a session presented on any other host is refused like a key of another
//! tenant (403). Sessions last [`SessionConfig::ttl`] from login, are deleted on logout,
//! and die at once when their user (or vendor, or tenant) is deleted.
//!
//! The CSRF token is derived from the session token (`HMAC(pepper, "csrf:" + token)`),
//! returned by login, and required in `X-CSRF-Token` on every cookie-authenticated
//! request that is not GET/HEAD/OPTIONS. Requests with an `Authorization` header never
//! look at the cookie, so API-key clients pay nothing for sessions.
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::Method;
use actix_web::http::header::HeaderName;
use permetrix_storage::records::{Lifecycle, SessionRecord, SessionSubject, UserRole};
use permetrix_storage::{TenantId, Timestamp, VendorId};
use subtle::ConstantTimeEq;

use super::AuthContext;
use super::client::{CookieSecurity, is_https};
use crate::auth::secrets::random_hex;
use crate::http::error::ApiError;
use crate::http::host::{HostContext, canonical_host, context_of, request_host};

/// Name of the session cookie.
pub const COOKIE: &str = "pmx_session";
/// Header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How often expired sessions are deleted from the store.
pub const PURGE_EVERY: Duration = Duration::from_secs(600);

/// How sessions are issued.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Lifetime from login.
    pub ttl: Duration,
    /// When cookies are `Secure`.
    pub secure: CookieSecurity,
    /// Header the proxy sets to the client's address (else the TCP peer is used).
    pub client_ip_header: Option<HeaderName>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            ttl: Duration::from_secs(12 * 3600),
            secure: CookieSecurity::Auto,
            client_ip_header: None,
        }
    }
}

/// Whom a valid session authenticates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionPrincipal {
    /// A vendor on the vendor host.
    Vendor(VendorId),
    /// A tenant portal user on its tenant's host.
    TenantUser {
        /// Tenant.
        tenant: TenantId,
        /// Login name.
        username: String,
        /// Role as stored now (a changed role applies to live sessions).
        role: UserRole,
    },
}

/// A verified session.
#[derive(Clone, Debug)]
pub struct Session {
    /// Who.
    pub principal: SessionPrincipal,
    /// When it ends.
    pub expires_at: Timestamp,
    /// Storage key (digest of the token), for logout.
    pub key: String,
}

/// Why a session cookie was not accepted.
#[derive(Debug)]
pub enum Refusal {
    /// Not a usable credential here: unknown, expired, its user gone, or a mutation
    /// without the CSRF token. Endpoints whose credential is optional ignore it.
    Unusable(ApiError),
    /// A valid session of another host: 403, like any credential used elsewhere.
    Elsewhere,
    /// Reading the store failed.
    Failed(ApiError),
}

/// A fresh session token (256 random bits, hex).
pub fn new_token() -> String {
    random_hex::<32>()
}

fn storage_key(state: &impl AuthContext, token: &str) -> String {
    hex::encode(state.secrets().key_digest(&format!("session:{token}")))
}

/// The CSRF token of a session token.
pub fn csrf_token(state: &impl AuthContext, token: &str) -> String {
    hex::encode(state.secrets().key_digest(&format!("csrf:{token}")))
}

/// Whether a method only reads (no CSRF token needed, allowed to viewers).
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn unusable(detail: &str) -> Refusal {
    Refusal::Unusable(ApiError::Unauthorized {
        code: "invalid_session",
        detail: detail.into(),
    })
}

/// Whether the request carries a session cookie at all.
pub fn has_cookie(req: &HttpRequest) -> bool {
    req.cookie(COOKIE).is_some()
}

/// Verifies the request's session cookie: `Ok(None)` if there is none.
pub fn authenticate(
    state: &impl AuthContext,
    req: &HttpRequest,
) -> Result<Option<Session>, Refusal> {
    let Some(cookie) = req.cookie(COOKIE) else {
        return Ok(None);
    };
    let token = cookie.value();
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unusable("the session cookie is not valid; log in again"));
    }
    let key = storage_key(state, token);
    let record = state
        .platform()
        .session(&key)
        .map_err(|e| Refusal::Failed(e.into()))?
        .ok_or_else(|| unusable("this session has ended; log in again"))?;
    if super::now(state) >= record.expires_at {
        return Err(unusable("this session has expired; log in again"));
    }
    if !bound_here(&record, req) {
        return Err(Refusal::Elsewhere);
    }
    let principal = principal_of(state, &record)?
        .ok_or_else(|| unusable("the account of this session no longer exists; log in again"))?;
    if !is_safe(req.method()) {
        let expected = csrf_token(state, token);
        let sent = req
            .headers()
            .get(CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !bool::from(sent.ct_eq(expected.as_bytes())) {
            return Err(Refusal::Unusable(ApiError::Forbidden {
                code: "csrf_token_invalid",
                detail: "requests authenticated by the session cookie that change something \
                         need the csrf_token from login in the X-CSRF-Token header"
                    .into(),
            }));
        }
    }
    Ok(Some(Session {
        principal,
        expires_at: record.expires_at,
        key,
    }))
}

/// A session is valid only on the host (and therefore the context) it was issued on.
fn bound_here(record: &SessionRecord, req: &HttpRequest) -> bool {
    let same_host = canonical_host(request_host(req.head())) == record.host;
    let same_context = match (&record.subject, context_of(req)) {
        (SessionSubject::Vendor { .. }, HostContext::Vendor) => true,
        (SessionSubject::TenantUser { tenant_id, .. }, HostContext::Tenant(t)) => {
            t.as_str() == tenant_id
        }
        _ => false,
    };
    same_host && same_context
}

/// The live account behind a session, or `None` if it is gone.
fn principal_of(
    state: &impl AuthContext,
    record: &SessionRecord,
) -> Result<Option<SessionPrincipal>, Refusal> {
    let failed = |e: permetrix_storage::StorageError| Refusal::Failed(e.into());
    match &record.subject {
        SessionSubject::Vendor { vendor_id } => {
            let Ok(id) = VendorId::parse(vendor_id) else {
                return Ok(None);
            };
            let live = state
                .platform()
                .vendor(&id)
                .map_err(failed)?
                .is_some_and(|v| v.lifecycle == Lifecycle::Active && v.password_hash.is_some());
            Ok(live.then_some(SessionPrincipal::Vendor(id)))
        }
        SessionSubject::TenantUser {
            tenant_id,
            username,
            user_id,
        } => {
            let Ok(tenant) = TenantId::parse(tenant_id) else {
                return Ok(None);
            };
            if state
                .platform()
                .live_tenant(&tenant)
                .map_err(failed)?
                .is_none()
            {
                return Ok(None);
            }
            let user = state
                .platform()
                .user(&tenant, username)
                .map_err(failed)?
                .filter(|u| u.user_id == *user_id);
            Ok(user.map(|u| SessionPrincipal::TenantUser {
                tenant,
                username: u.username,
                role: u.role,
            }))
        }
    }
}

/// Stores a new session for `subject` on the request's host and returns its token.
pub async fn create(
    state: &impl AuthContext,
    req: &HttpRequest,
    subject: SessionSubject,
) -> Result<(String, SessionRecord), ApiError> {
    let token = new_token();
    let now = super::now(state);
    let record = SessionRecord {
        subject,
        host: canonical_host(request_host(req.head())),
        created_at: now,
        expires_at: now.plus(state.security().sessions.ttl),
    };
    state
        .platform()
        .put_session(&storage_key(state, &token), &record)?
        .wait()
        .await?;
    Ok((token, record))
}

/// Deletes a session (logout).
pub async fn delete(state: &impl AuthContext, key: &str) -> Result<(), ApiError> {
    state.platform().delete_session(key)?.wait().await?;
    Ok(())
}

/// Deletes expired sessions; returns how many.
pub async fn purge_expired(state: &impl AuthContext) -> Result<usize, ApiError> {
    let now = super::now(state);
    let purged = state.platform().purge_expired_sessions(now)?;
    purged.durable.wait().await?;
    Ok(purged.records)
}

/// The `Set-Cookie` for a new session.
pub fn cookie(state: &impl AuthContext, req: &HttpRequest, token: String) -> Cookie<'static> {
    let config = &state.security().sessions;
    let secs = i64::try_from(config.ttl.as_secs()).unwrap_or(i64::MAX);
    Cookie::build(COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(is_https(req, config.secure))
        .max_age(actix_web::cookie::time::Duration::seconds(secs))
        .finish()
}

/// The `Set-Cookie` that removes the session cookie.
pub fn removal_cookie(state: &impl AuthContext, req: &HttpRequest) -> Cookie<'static> {
    let mut c = cookie(state, req, String::new());
    c.make_removal();
    c
}
