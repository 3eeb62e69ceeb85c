//! Tenant API keys (`/api/keys`), admin scope.
use actix_web::{HttpResponse, web};
use permetrix_actors::domain::rfc3339;
use permetrix_storage::records::Scope;
use serde::{Deserialize, Serialize};

use crate::accounts::{self, scope_name};
use crate::auth::TenantAdmin;
use crate::error::{ApiError, Result};
use crate::input::text;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/keys", web::get().to(list))
        .route("/api/keys", web::post().to(create))
        .route("/api/keys/{key_id}", web::delete().to(revoke));
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
}

async fn list(state: web::Data<AppState>, caller: TenantAdmin) -> Result<HttpResponse> {
    let keys: Vec<KeyInfo> = state
        .platform
        .tenant_api_keys(&caller.tenant)?
        .into_iter()
        .map(|k| KeyInfo {
            key_id: k.key_id,
            name: k.name,
            scope: scope_name(k.scope),
            created_at: rfc3339(k.created_at),
            revoked: k.revoked_at.is_some(),
            revoked_at: k.revoked_at.map(rfc3339),
            expires_at: k.expires_at.map(rfc3339),
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "keys": keys })))
}

#[derive(Deserialize)]
struct NewKey {
    name: String,
    scope: String,
}

async fn create(
    state: web::Data<AppState>,
    caller: TenantAdmin,
    body: web::Json<NewKey>,
) -> Result<HttpResponse> {
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
    let created = accounts::create_key(&state, &caller.tenant, name, scope).await?;
    Ok(HttpResponse::Created().json(created))
}

async fn revoke(
    state: web::Data<AppState>,
    caller: TenantAdmin,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    accounts::revoke_key(&state, &caller.tenant, &path).await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({"status": "revoked", "key_id": path.into_inner()})))
}
