//! Tenant API keys (`/api/keys`), admin scope, rate-limited per credential.
use actix_web::{HttpResponse, web};
use permetrix_actors::domain::rfc3339;
use permetrix_storage::records::Scope;
use serde::{Deserialize, Serialize};

use crate::api::accounts::{self, scope_name};
use crate::auth::{TenantAdmin, now};
use crate::http::error::{ApiError, Result};
use crate::http::headers::shown_once;
use crate::http::input::text;
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/keys", web::get().to(list))
        .route("/api/keys", web::post().to(create))
        .route("/api/keys/{key_id}", web::delete().to(revoke))
        .route("/api/keys/{key_id}/rotate", web::post().to(rotate));
}

/// Takes one request from the caller's and the tenant's key-management allowance (429
/// when spent).
fn rate_limit(state: &AppState, caller: &TenantAdmin) -> Result<()> {
    state.security.limit_tenant_management(
        &caller.tenant,
        &("keys", caller.credential()),
        now(state).millis(),
    )
}

#[derive(Serialize)]
struct KeyInfo {
    key_id: String,
    name: String,
    scope: &'static str,
    created_at: String,
    revoked: bool,
    revoked_at: Option<String>,
    expires_at: Option<String>,
    expired: bool,
    last_used_at: Option<String>,
    /// `true` on a key imported from the old license server (the key its clients
    /// already have); absent on the others, so the listing of other keys is as before.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    imported: bool,
    /// The old server's environment label of an imported key.
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<String>,
}

async fn list(state: web::Data<AppState>, caller: TenantAdmin) -> Result<HttpResponse> {
    rate_limit(&state, &caller)?;
    let at = now(&state);
    let mut keys = Vec::new();
    for k in state.platform.tenant_api_keys(&caller.tenant)? {
        let last_used = state.security.key_usage.last_used(
            &state.platform,
            &caller.tenant,
            &k.key_id,
            &k.digest,
        )?;
        let imported = state
            .platform
            .legacy_key(&k.digest)?
            .filter(|l| l.tenant_id == caller.tenant.as_str() && l.key_id == k.key_id);
        keys.push(KeyInfo {
            imported: imported.is_some(),
            environment: imported.and_then(|l| l.environment),
            name: k.name,
            scope: scope_name(k.scope),
            created_at: rfc3339(k.created_at),
            revoked: k.revoked_at.is_some(),
            revoked_at: k.revoked_at.map(rfc3339),
            expires_at: k.expires_at.map(rfc3339),
            expired: k.expires_at.is_some_and(|e| at >= e),
            last_used_at: last_used.map(rfc3339),
            key_id: k.key_id,
        });
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "keys": keys })))
}

#[derive(Deserialize)]
// A misspelt field would otherwise be ignored and the change silently not made.
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    scope: String,
    /// RFC 3339 time or `YYYY-MM-DD` (midnight UTC); absent: the key never expires.
    expires_at: Option<String>,
}

async fn create(
    state: web::Data<AppState>,
    caller: TenantAdmin,
    body: web::Json<NewKey>,
) -> Result<HttpResponse> {
    rate_limit(&state, &caller)?;
    let name = text("name", &body.name, 100)?;
    let scope = match body.scope.as_str() {
        "admin" => Scope::Admin,
        "borrow" => Scope::Borrow,
        other => {
            return Err(ApiError::invalid(format!(
                "scope '{other}' is not valid; use 'admin' or 'borrow'"
            )));
        }
    };
    let expires_at = crate::http::input::parse_time("expires_at", body.expires_at.as_deref())?;
    if expires_at.is_some_and(|e| e <= now(&state)) {
        return Err(ApiError::invalid(
            "expires_at is in the past; give a future time, or omit it for a key that does not expire",
        ));
    }
    let _one_at_a_time = state.security.creation_lock(&caller.tenant).await;
    let max = state.security.limits.max_keys_per_tenant;
    let live = state
        .platform
        .tenant_api_keys(&caller.tenant)?
        .iter()
        .filter(|k| k.revoked_at.is_none())
        .count();
    if live >= max {
        return Err(ApiError::Conflict {
            code: "too_many_keys",
            detail: format!(
                "this tenant holds {live} API keys, the most it may; revoke one it no longer uses"
            ),
        });
    }
    let created =
        accounts::create_expiring_key(&state, &caller.tenant, name, scope, expires_at).await?;
    Ok(HttpResponse::Created()
        .insert_header(shown_once())
        .json(created))
}

async fn revoke(
    state: web::Data<AppState>,
    caller: TenantAdmin,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    rate_limit(&state, &caller)?;
    accounts::revoke_key(&state, &caller.tenant, &path).await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({"status": "revoked", "key_id": path.into_inner()})))
}

async fn rotate(
    state: web::Data<AppState>,
    caller: TenantAdmin,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    rate_limit(&state, &caller)?;
    let rotated = accounts::rotate_key(&state, &caller.tenant, &path).await?;
    Ok(HttpResponse::Created().json(rotated))
}
