//! Request extractors that authenticate and check the host context.
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::{Either, LocalBoxFuture, Ready, ready};
use permetrix_storage::records::{Scope, UserRole};
use permetrix_storage::{TenantId, Timestamp, VendorId};

use super::oauth::{self, Scopes};
use super::session::{self, Refusal, Session, SessionPrincipal};
use super::streams::Holder;
use super::{AuthContext, Principal, identify_key, invalid_key};
use crate::http::error::ApiError;
use crate::http::host::{HostContext, context_of};

type Fut<T> = Either<Ready<Result<T, ApiError>>, LocalBoxFuture<'static, Result<T, ApiError>>>;

fn now<T>(r: Result<T, ApiError>) -> Fut<T> {
    Either::Left(ready(r))
}

fn later<T: 'static>(
    f: impl std::future::Future<Output = Result<T, ApiError>> + 'static,
) -> Fut<T> {
    Either::Right(Box::pin(f))
}

fn app_state(req: &HttpRequest) -> Result<web::Data<dyn AuthContext>, ApiError> {
    req.app_data::<web::Data<dyn AuthContext>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state is not configured")))
}

/// The bearer token of a request: `Ok(None)` if there is no `Authorization` header.
pub fn bearer(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(Some(token.to_owned()))
}

fn malformed() -> ApiError {
    ApiError::unauthorized("malformed Authorization header; send 'Authorization: Bearer <key>'")
}

/// 403 for a valid credential used on a host it does not belong to. The same answer
/// whether or not the host's tenant exists.
pub fn wrong_place() -> ApiError {
    ApiError::forbidden("this credential is not valid for this host")
}

/// Refuses an opaque token outside the main host: 403 if it is the operator token
/// (valid, wrong place), 401 otherwise.
fn refuse_opaque<T: 'static>(state: web::Data<dyn AuthContext>, token: String) -> Fut<T> {
    match state.operator().verify_cached(&token) {
        Some(true) => now(Err(wrong_place())),
        Some(false) => now(Err(invalid_key())),
        None => later(async move {
            if state.operator().verify(&token).await {
                Err(wrong_place())
            } else {
                Err(invalid_key())
            }
        }),
    }
}

/// A caller authenticated with a key of the host's tenant. `ADMIN` requires the admin
/// scope; otherwise any scope may borrow.
#[derive(Clone, Debug)]
pub struct TenantAuth<const ADMIN: bool> {
    /// The tenant (equal to the host's).
    pub tenant: TenantId,
    /// Key id.
    pub key_id: String,
    /// Key scope.
    pub scope: Scope,
    /// The bearer token as sent (signatures cover it); empty for a portal session.
    pub token: String,
    /// The portal user, when the caller authenticated with a session cookie.
    pub user: Option<String>,
    /// Storage key of the portal session, when the caller authenticated with one.
    pub session: Option<String>,
    /// When the credential stops working by itself (a key's expiry, a session's end).
    pub expires_at: Option<Timestamp>,
}

impl<const ADMIN: bool> TenantAuth<ADMIN> {
    /// Who is calling, for per-credential rate limits.
    pub fn credential(&self) -> (&str, &str, Option<&str>) {
        (self.tenant.as_str(), &self.key_id, self.user.as_deref())
    }

    /// Who holds what this caller opens (a live stream): the key, or the portal user.
    pub fn holder(&self) -> Holder {
        match &self.user {
            Some(user) => Holder::User(user.clone()),
            None => Holder::Key(self.key_id.clone()),
        }
    }

    /// A portal user with the viewer role: may read, changes nothing, and is shown no
    /// borrow id (an id is enough to return its seat).
    pub fn is_viewer(&self) -> bool {
        self.user.is_some() && self.scope != Scope::Admin
    }
}

/// Borrow scope (or admin).
pub type TenantBorrower = TenantAuth<false>;
/// Admin scope.
pub type TenantAdmin = TenantAuth<true>;

fn host_tenant(req: &HttpRequest) -> Result<TenantId, ApiError> {
    match context_of(req) {
        HostContext::Tenant(t) => Ok(t),
        _ => Err(ApiError::not_found(
            "this endpoint is served on tenant hosts only",
        )),
    }
}

fn tenant_auth<const ADMIN: bool>(
    req: &HttpRequest,
    optional: bool,
) -> Fut<Option<TenantAuth<ADMIN>>> {
    let (state, tenant, token) = match (app_state(req), host_tenant(req), bearer(req)) {
        (Ok(s), Ok(t), Ok(tok)) => (s, t, tok),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return now(Err(e)),
    };
    let Some(token) = token else {
        match tenant_session::<ADMIN>(&state, req, &tenant, optional) {
            Ok(Some(auth)) => return now(Ok(Some(auth))),
            Ok(None) => {}
            Err(e) => return now(Err(e)),
        }
        if optional {
            return now(Ok(None));
        }
        return now(Err(match state.registry().exists(&tenant) {
            Ok(false) => ApiError::unknown_tenant(),
            Ok(true) => ApiError::unauthorized(
                "this endpoint needs an API key: send 'Authorization: Bearer <key>'",
            ),
            Err(e) => e.into(),
        }));
    };
    match identify_key(&state, &token) {
        None => refuse_opaque(state, token),
        Some(Err(e)) => now(Err(e)),
        Some(Ok(Principal::Tenant {
            tenant: owner,
            key_id,
            scope,
            expires_at,
        })) => {
            if owner != tenant {
                return now(Err(wrong_place()));
            }
            if ADMIN && scope != Scope::Admin {
                return now(Err(ApiError::Forbidden {
                    code: "insufficient_scope",
                    detail: "this endpoint needs a key with the admin scope".into(),
                }));
            }
            now(Ok(Some(TenantAuth {
                tenant,
                key_id,
                scope,
                token,
                user: None,
                session: None,
                expires_at,
            })))
        }
        Some(Ok(_)) => now(Err(wrong_place())),
    }
}

fn insufficient_scope(detail: &str) -> ApiError {
    ApiError::Forbidden {
        code: "insufficient_scope",
        detail: detail.into(),
    }
}

/// A tenant caller authenticated by a portal session cookie (only consulted when the
/// request has no `Authorization` header). Where the credential is optional, a cookie
/// that is not usable (ended, or a mutation without the CSRF token) counts as none.
fn tenant_session<const ADMIN: bool>(
    state: &impl AuthContext,
    req: &HttpRequest,
    tenant: &TenantId,
    optional: bool,
) -> Result<Option<TenantAuth<ADMIN>>, ApiError> {
    let session = match session::authenticate(state, req) {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(None),
        Err(Refusal::Unusable(_)) if optional => return Ok(None),
        Err(Refusal::Unusable(e) | Refusal::Failed(e)) => return Err(e),
        Err(Refusal::Elsewhere) => return Err(wrong_place()),
    };
    let SessionPrincipal::TenantUser {
        tenant: owner,
        username,
        role,
    } = session.principal
    else {
        return Err(wrong_place());
    };
    if owner != *tenant {
        return Err(wrong_place());
    }
    if ADMIN && role != UserRole::Admin {
        return Err(insufficient_scope(
            "this endpoint needs a tenant admin; viewer users may only read",
        ));
    }
    // Viewers change nothing, also where a credential is optional (a return): a
    // viewer's session is a credential of this tenant, not the absence of one.
    if role == UserRole::Viewer && !session::is_safe(req.method()) {
        return Err(insufficient_scope(
            "viewer users may only read; ask a tenant admin",
        ));
    }
    Ok(Some(TenantAuth {
        tenant: owner,
        key_id: String::new(),
        scope: match role {
            UserRole::Admin => Scope::Admin,
            UserRole::Viewer => Scope::Borrow,
        },
        token: String::new(),
        user: Some(username),
        session: Some(session.key),
        expires_at: Some(session.expires_at),
    }))
}

impl<const ADMIN: bool> FromRequest for TenantAuth<ADMIN> {
    type Error = ApiError;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        match tenant_auth::<ADMIN>(req, false) {
            Either::Left(r) => now(r.into_inner().and_then(|a| a.ok_or_else(invalid_key))),
            Either::Right(f) => {
                later(async move { f.await.and_then(|a| a.ok_or_else(invalid_key)) })
            }
        }
    }
}

/// A tenant-host caller whose credential is optional (returns, anonymous status): no
/// `Authorization` header gives `None`; a header that is present must be valid here.
#[derive(Clone, Debug)]
pub struct AnyTenantCaller {
    /// The host's tenant.
    pub tenant: TenantId,
    /// The verified key, if one was sent.
    pub auth: Option<TenantBorrower>,
}

impl FromRequest for AnyTenantCaller {
    type Error = ApiError;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let tenant = match host_tenant(req) {
            Ok(t) => t,
            Err(e) => return now(Err(e)),
        };
        match tenant_auth::<false>(req, true) {
            Either::Left(r) => now(r.into_inner().map(|auth| AnyTenantCaller { tenant, auth })),
            Either::Right(f) => {
                later(async move { f.await.map(|auth| AnyTenantCaller { tenant, auth }) })
            }
        }
    }
}

/// A vendor authenticated on the vendor host: by its API key, a portal session, or an
/// OAuth access token whose scope covers the route (see [`oauth::required_scope`]).
#[derive(Clone, Debug)]
pub struct VendorAuth {
    /// The vendor.
    pub vendor: VendorId,
}

/// Admits an OAuth access token on this route if its scope covers it: 403
/// `insufficient_scope` otherwise, naming what is missing.
fn token_on_route(
    req: &HttpRequest,
    vendor: VendorId,
    scope: Scopes,
) -> Result<VendorAuth, ApiError> {
    let pattern = req.match_pattern().unwrap_or_default();
    match oauth::required_scope(req.method(), &pattern) {
        Some(needed) => match scope.lacking(needed) {
            None => Ok(VendorAuth { vendor }),
            Some(missing) => Err(insufficient_scope(&format!(
                "this access token's scope ({scope}) lacks '{missing}', which this endpoint needs"
            ))),
        },
        None => Err(insufficient_scope(
            "this endpoint takes the vendor API key or a portal session, not an OAuth access \
             token",
        )),
    }
}

impl FromRequest for VendorAuth {
    type Error = ApiError;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if context_of(req) != HostContext::Vendor {
            return now(Err(ApiError::not_found(
                "this endpoint is served on the vendor host only",
            )));
        }
        let (state, token) = match (app_state(req), bearer(req)) {
            (Ok(s), Ok(t)) => (s, t),
            (Err(e), _) | (_, Err(e)) => return now(Err(e)),
        };
        let Some(token) = token else {
            return now(match session::authenticate(&state, req) {
                Ok(Some(Session {
                    principal: SessionPrincipal::Vendor(vendor),
                    ..
                })) => Ok(VendorAuth { vendor }),
                Ok(Some(_)) | Err(Refusal::Elsewhere) => Err(wrong_place()),
                Err(Refusal::Unusable(e) | Refusal::Failed(e)) => Err(e),
                Ok(None) => Err(ApiError::unauthorized(
                    "this endpoint needs the vendor API key ('Authorization: Bearer <key>') or \
                     a portal session (POST /api/auth/login)",
                )),
            });
        };
        match identify_key(&state, &token) {
            None => refuse_opaque(state, token),
            Some(Err(e)) => now(Err(e)),
            Some(Ok(Principal::Vendor(vendor))) => now(Ok(VendorAuth { vendor })),
            Some(Ok(Principal::VendorClient { vendor, scope, .. })) => {
                now(token_on_route(req, vendor, scope))
            }
            Some(Ok(_)) => now(Err(wrong_place())),
        }
    }
}

/// The operator, on the main host.
#[derive(Clone, Copy, Debug)]
pub struct OperatorAuth;

impl FromRequest for OperatorAuth {
    type Error = ApiError;
    type Future = Fut<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if context_of(req) != HostContext::Main {
            return now(Err(ApiError::not_found(
                "this endpoint is served on the main host only",
            )));
        }
        let (state, token) = match (app_state(req), bearer(req)) {
            (Ok(s), Ok(t)) => (s, t),
            (Err(e), _) | (_, Err(e)) => return now(Err(e)),
        };
        let Some(token) = token else {
            return now(Err(ApiError::unauthorized(
                "this endpoint needs the operator token: send 'Authorization: Bearer <token>'",
            )));
        };
        match identify_key(&state, &token) {
            Some(Ok(_)) => return now(Err(wrong_place())),
            Some(Err(e)) => return now(Err(e)),
            None => {}
        }
        if let Some(ok) = state.operator().verify_cached(&token) {
            return now(if ok {
                Ok(OperatorAuth)
            } else {
                Err(invalid_token())
            });
        }
        later(async move {
            if state.operator().verify(&token).await {
                Ok(OperatorAuth)
            } else {
                Err(invalid_token())
            }
        })
    }
}

fn invalid_token() -> ApiError {
    ApiError::unauthorized("the operator token is not valid")
}
