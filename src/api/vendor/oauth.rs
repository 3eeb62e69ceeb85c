//! OAuth 2.0 for the vendor's own programs: its clients (`/api/vendor/oauth-clients`,
//! managed with the vendor key or a portal session, never with a token) and the token
//! endpoint (`POST /oauth/token`, client-credentials grant, RFC 6749 §4.4). Tokens and
//! scopes are `crate::auth::oauth`.
use std::borrow::Cow;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64ct::{Base64, Encoding};
use permetrix_actors::domain::rfc3339;
use permetrix_storage::VendorId;
use permetrix_storage::records::{Lifecycle, OAuthClientRecord};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::auth::oauth::{self, Scopes};
use crate::auth::{VendorAuth, now};
use crate::http::error::{ApiError, Result};
use crate::http::headers::shown_once;
use crate::http::input::{RawBody, text};
use crate::server::state::AppState;

/// Live (unrevoked) OAuth clients one vendor may hold.
pub const MAX_CLIENTS_PER_VENDOR: usize = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/vendor/oauth-clients", web::get().to(list))
        .route("/api/vendor/oauth-clients", web::post().to(create))
        .route(
            "/api/vendor/oauth-clients/{client_id}",
            web::delete().to(revoke),
        )
        .route("/oauth/token", web::post().to(token));
}

/// Takes one request from the vendor's client-management allowance (429 when spent).
fn rate_limit(state: &AppState, vendor: &VendorId) -> Result<()> {
    state
        .security
        .limit_key_management(&("oauth-clients", vendor.as_str()), now(state).millis())
}

#[derive(Serialize)]
struct ClientInfo {
    client_id: String,
    name: String,
    scope: String,
    created_at: String,
    revoked: bool,
    revoked_at: Option<String>,
}

impl From<OAuthClientRecord> for ClientInfo {
    fn from(c: OAuthClientRecord) -> Self {
        ClientInfo {
            client_id: c.client_id,
            name: c.name,
            scope: c.scope,
            created_at: rfc3339(c.created_at),
            revoked: c.revoked_at.is_some(),
            revoked_at: c.revoked_at.map(rfc3339),
        }
    }
}

async fn list(state: web::Data<AppState>, caller: VendorAuth) -> Result<HttpResponse> {
    rate_limit(&state, &caller.vendor)?;
    let clients: Vec<ClientInfo> = state
        .platform
        .vendor_oauth_clients(&caller.vendor)?
        .into_iter()
        .map(ClientInfo::from)
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "clients": clients })))
}

#[derive(Deserialize)]
// A misspelt field would otherwise be ignored (a `scopes` would grant every scope).
#[serde(deny_unknown_fields)]
struct NewClient {
    name: String,
    /// Space-separated scope names; absent: every scope.
    scope: Option<String>,
}

async fn create(
    state: web::Data<AppState>,
    caller: VendorAuth,
    body: web::Json<NewClient>,
) -> Result<HttpResponse> {
    rate_limit(&state, &caller.vendor)?;
    let name = text("name", &body.name, 100)?;
    let scope = match body.scope.as_deref() {
        None => Scopes::ALL,
        Some(s) => Scopes::parse(s).map_err(|bad| {
            ApiError::invalid(format!(
                "scope '{bad}' is not valid; give one or more of '{}', separated by spaces",
                Scopes::ALL
            ))
        })?,
    };
    let _one_at_a_time = state.security.vendor_creation_lock(&caller.vendor).await;
    let live = state
        .platform
        .vendor_oauth_clients(&caller.vendor)?
        .iter()
        .filter(|c| c.revoked_at.is_none())
        .count();
    if live >= MAX_CLIENTS_PER_VENDOR {
        return Err(ApiError::Conflict {
            code: "too_many_clients",
            detail: format!(
                "this vendor holds {live} OAuth clients, the most it may; revoke one it no longer \
                 uses"
            ),
        });
    }
    let secret = oauth::new_client_secret();
    let record = OAuthClientRecord {
        client_id: oauth::new_client_id(&caller.vendor),
        vendor_id: caller.vendor.to_string(),
        name,
        scope: scope.to_string(),
        secret_digest: state.secrets.key_digest(&secret),
        created_at: now(&state),
        revoked_at: None,
    };
    state.platform.add_oauth_client(&record)?.wait().await?;
    Ok(HttpResponse::Created()
        .insert_header(shown_once())
        .json(serde_json::json!({
            "client_id": record.client_id,
            "client_secret": secret,
            "name": record.name,
            "scope": record.scope,
            "created_at": rfc3339(record.created_at),
        })))
}

/// Revokes a client: every token it obtained stops working on its next use (each use
/// reads the client).
async fn revoke(
    state: web::Data<AppState>,
    caller: VendorAuth,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    rate_limit(&state, &caller.vendor)?;
    state
        .platform
        .revoke_oauth_client(&caller.vendor, &path, now(&state))?
        .ok_or_else(|| ApiError::NotFound {
            code: "unknown_client",
            detail: format!("this vendor has no OAuth client '{}'", path.as_str()),
        })?
        .wait()
        .await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({"status": "revoked", "client_id": path.into_inner()})))
}

fn oauth_error(code: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::OAuth {
        code,
        detail: detail.into(),
    }
}

fn invalid_client() -> ApiError {
    oauth_error(
        "invalid_client",
        "client authentication failed: unknown client, wrong secret, or a revoked client",
    )
}

/// The token request's parameters, each at most once (RFC 6749 §3.2).
struct Params<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Params<'a> {
    fn parse(req: &HttpRequest, body: &'a [u8]) -> Result<Self> {
        let form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form {
            return Err(oauth_error(
                "invalid_request",
                "send the token request form-encoded (Content-Type: \
                 application/x-www-form-urlencoded), as RFC 6749 says",
            ));
        }
        let pairs: Vec<_> = form_urlencoded::parse(body).collect();
        for (i, (name, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(oauth_error(
                    "invalid_request",
                    format!("the parameter '{name}' is given more than once"),
                ));
            }
        }
        Ok(Params(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_ref())
    }
}

/// The client's id and secret: from HTTP Basic (each part form-encoded, RFC 6749
/// §2.3.1) or from the `client_id`/`client_secret` parameters; never both.
fn client_credentials(req: &HttpRequest, params: &Params<'_>) -> Result<(String, String)> {
    let form = (params.get("client_id"), params.get("client_secret"));
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return match form {
            (Some(id), Some(secret)) => Ok((id.to_owned(), secret.to_owned())),
            _ => Err(invalid_client()),
        };
    };
    if form.0.is_some() || form.1.is_some() {
        return Err(oauth_error(
            "invalid_request",
            "the client authenticated twice: use HTTP Basic or the client_id and client_secret \
             parameters, not both",
        ));
    }
    let basic = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b64)| Base64::decode_vec(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .ok_or_else(invalid_client)?;
    let (id, secret) = basic.split_once(':').ok_or_else(invalid_client)?;
    let decode = |part: &str| {
        percent_encoding::percent_decode_str(&part.replace('+', " "))
            .decode_utf8()
            .map(Cow::into_owned)
            .map_err(|_| invalid_client())
    };
    Ok((decode(id)?, decode(secret)?))
}

/// The live client with this id and secret, or `invalid_client` (the same answer for
/// an unknown client, a wrong secret, a revoked client and a deleted vendor).
fn authenticate(state: &AppState, id: &str, secret: &str) -> Result<OAuthClientRecord> {
    let vendor = oauth::client_vendor(id).ok_or_else(invalid_client)?;
    let client = state
        .platform
        .oauth_client(&vendor, id)?
        .ok_or_else(invalid_client)?;
    let digest = state.secrets.key_digest(secret);
    let live_vendor = state
        .platform
        .vendor(&vendor)?
        .is_some_and(|v| v.lifecycle == Lifecycle::Active);
    if !bool::from(client.secret_digest.ct_eq(&digest))
        || client.revoked_at.is_some()
        || !live_vendor
    {
        return Err(invalid_client());
    }
    Ok(client)
}

async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: RawBody,
) -> Result<HttpResponse> {
    let params = Params::parse(&req, &body.0)?;
    let grant = params.get("grant_type").ok_or_else(|| {
        oauth_error(
            "invalid_request",
            "grant_type is missing; send grant_type=client_credentials",
        )
    })?;
    let (id, secret) = client_credentials(&req, &params)?;
    let client = authenticate(&state, &id, &secret)?;
    if grant != "client_credentials" {
        return Err(oauth_error(
            "unsupported_grant_type",
            format!("grant_type '{grant}' is not supported here; use client_credentials"),
        ));
    }
    // A client's stored scope is canonical; read it as such.
    let allowed = Scopes::parse(&client.scope).map_err(|bad| {
        ApiError::internal(anyhow::anyhow!(
            "OAuth client {id} has an unknown stored scope '{bad}'"
        ))
    })?;
    let scope = match params.get("scope") {
        None => allowed,
        Some(asked) => Scopes::parse(asked)
            .ok()
            .filter(|s| allowed.covers(*s))
            .ok_or_else(|| {
                oauth_error(
                    "invalid_scope",
                    format!(
                        "scope '{asked}' is not within this client's scope ('{allowed}'); ask \
                         for some of it, or omit scope for all of it"
                    ),
                )
            })?,
    };
    let granted = oauth::issue(&state, &client.client_id, scope, now(&state));
    Ok(HttpResponse::Ok()
        .insert_header(shown_once())
        .insert_header((header::PRAGMA, "no-cache"))
        .json(serde_json::json!({
            "access_token": granted.access_token,
            "token_type": "Bearer",
            "expires_in": granted.expires_in,
            "scope": granted.scope.to_string(),
        })))
}
