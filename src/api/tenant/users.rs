//! Tenant portal users (`/api/users`), created and removed by a tenant admin.
use actix_web::{HttpResponse, web};
use permetrix_actors::domain::rfc3339;
use permetrix_storage::records::{UserRecord, UserRole};
use permetrix_storage::{StorageError, TenantId};
use serde::Deserialize;
use serde_json::json;

use crate::auth::password;
use crate::auth::secrets::random_hex;
use crate::auth::{TenantAdmin, now};
use crate::http::error::{ApiError, Result};
use crate::server::state::AppState;

use crate::api::session::MAX_PASSWORD;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/users", web::get().to(list))
        .route("/api/users", web::post().to(create))
        .route("/api/users/{username}", web::delete().to(delete))
        .route(
            "/api/users/{username}/password",
            web::put().to(set_password),
        );
}

/// Shortest password accepted (as for vendor portal passwords).
const MIN_PASSWORD: usize = 8;
/// Longest user name.
const MAX_USERNAME: usize = 64;

/// A user name: 1-64 of `a-z 0-9 . _ @ + -`, starting with a letter or digit, folded
/// to lowercase (so e-mail addresses work, and `/` never reaches a storage key). `None`
/// if `raw` is none.
pub fn valid_username(raw: &str) -> Option<String> {
    let name = raw.to_lowercase();
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || ".@_+-".contains(c);
    let valid = !name.is_empty()
        && name.len() <= MAX_USERNAME
        && name.chars().all(ok_char)
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    valid.then_some(name)
}

fn username(raw: &str) -> Result<String> {
    valid_username(raw).ok_or_else(|| {
        ApiError::invalid(format!(
            "username must have 1 to {MAX_USERNAME} characters out of a-z, 0-9 and . _ @ + -, \
             starting with a letter or digit"
        ))
    })
}

fn role(raw: &str) -> Result<UserRole> {
    match raw {
        "admin" => Ok(UserRole::Admin),
        "viewer" => Ok(UserRole::Viewer),
        other => Err(ApiError::invalid(format!(
            "role '{other}' is not valid; use 'admin' or 'viewer'"
        ))),
    }
}

fn check_password(password: &str) -> Result<()> {
    let length = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&length) {
        return Err(ApiError::invalid(format!(
            "password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )));
    }
    Ok(())
}

/// How a user's password is kept, for the listing: `set` (argon2id), `imported` (the
/// old license server's hash, replaced at the next login), `not_set` (cannot log in
/// until an admin sets one).
fn password_state(hash: Option<&str>) -> &'static str {
    match hash {
        None => "not_set",
        Some(h) if h.starts_with(password::passlib::PREFIX) => "imported",
        Some(_) => "set",
    }
}

fn role_name(role: UserRole) -> &'static str {
    match role {
        UserRole::Admin => "admin",
        UserRole::Viewer => "viewer",
    }
}

fn rate_limit(state: &AppState, caller: &TenantAdmin) -> Result<()> {
    state.security.limit_tenant_management(
        &caller.tenant,
        &("users", caller.credential()),
        now(state).millis(),
    )
}

/// 409 if the tenant has as many users as it may (call under the creation lock).
fn check_user_cap(state: &AppState, tenant: &TenantId) -> Result<()> {
    let max = state.security.limits.max_users_per_tenant;
    let users = state.platform.tenant_users(tenant)?.len();
    if users >= max {
        return Err(ApiError::Conflict {
            code: "too_many_users",
            detail: format!(
                "this tenant has {users} portal users, the most it may; delete one first"
            ),
        });
    }
    Ok(())
}

#[derive(Deserialize)]
// A misspelt field would otherwise be ignored and the change silently not made.
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: String,
    role: String,
}

async fn create(
    state: web::Data<AppState>,
    caller: TenantAdmin,
    body: web::Json<NewUser>,
) -> Result<HttpResponse> {
    rate_limit(&state, &caller)?;
    let NewUser {
        username: raw,
        password,
        role: raw_role,
    } = body.into_inner();
    let name = username(&raw)?;
    let role = role(&raw_role)?;
    check_password(&password)?;
    // Checked before the expensive hash (a full tenant does no argon2 work) and again
    // under the lock, where the count and the creation are one step.
    check_user_cap(&state, &caller.tenant)?;
    let hash = state
        .security
        .hash_password(caller.tenant.as_str(), password)
        .await?;
    let _one_at_a_time = state.security.creation_lock(&caller.tenant).await;
    check_user_cap(&state, &caller.tenant)?;
    let record = UserRecord {
        user_id: random_hex::<16>(),
        tenant_id: caller.tenant.to_string(),
        username: name.clone(),
        password_hash: Some(hash),
        role,
        created_at: now(&state),
    };
    state
        .platform
        .add_user(&record)
        .map_err(|e| match e {
            StorageError::AlreadyExists { .. } => ApiError::Conflict {
                code: "already_exists",
                detail: format!("a user '{name}' already exists; choose another name"),
            },
            other => other.into(),
        })?
        .wait()
        .await?;
    Ok(HttpResponse::Created().json(json!({
        "username": record.username,
        "role": role_name(role),
        "created_at": rfc3339(record.created_at),
    })))
}

async fn list(state: web::Data<AppState>, caller: TenantAdmin) -> Result<HttpResponse> {
    rate_limit(&state, &caller)?;
    let users: Vec<_> = state
        .platform
        .tenant_users(&caller.tenant)?
        .into_iter()
        .map(|u| {
            json!({
                "username": u.username,
                "role": role_name(u.role),
                "created_at": rfc3339(u.created_at),
                "password": password_state(u.password_hash.as_deref()),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "users": users })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

/// The tenant has no user called `name`.
fn unknown_user(name: &str) -> ApiError {
    ApiError::NotFound {
        code: "unknown_user",
        detail: format!("this tenant has no user '{name}'"),
    }
}

/// Sets a user's password (one imported without a password, or one who forgot theirs).
/// The user's sessions end: they log in again with the new password.
async fn set_password(
    state: web::Data<AppState>,
    caller: TenantAdmin,
    path: web::Path<String>,
    body: web::Json<NewPassword>,
) -> Result<HttpResponse> {
    rate_limit(&state, &caller)?;
    let unknown = || unknown_user(&path);
    let name = username(&path).map_err(|_| unknown())?;
    if state.platform.user(&caller.tenant, &name)?.is_none() {
        return Err(unknown());
    }
    let NewPassword { password } = body.into_inner();
    check_password(&password)?;
    let hash = state
        .security
        .hash_password(caller.tenant.as_str(), password)
        .await?;
    state
        .platform
        .set_user_password(&caller.tenant, &name, hash, random_hex::<16>())?
        .ok_or_else(unknown)?
        .wait()
        .await?;
    Ok(HttpResponse::Ok().json(json!({"status": "password_set", "username": name})))
}

/// Deletes a user; their sessions stop working on the next request, their event
/// streams at once.
async fn delete(
    state: web::Data<AppState>,
    caller: TenantAdmin,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    rate_limit(&state, &caller)?;
    let unknown = || unknown_user(&path);
    let name = username(&path).map_err(|_| unknown())?;
    state
        .platform
        .remove_user(&caller.tenant, &name)?
        .ok_or_else(unknown)?
        .wait()
        .await?;
    state.streams.end_user(&caller.tenant, &name);
    Ok(HttpResponse::Ok().json(json!({"status": "deleted", "username": name})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_folded_and_never_contain_a_slash() {
        assert_eq!(username("Dev.One@ACME.com").unwrap(), "dev.one@acme.com");
        for bad in ["", "-x", "a/b", "a b", "ä", &"a".repeat(65), ".x"] {
            assert!(username(bad).is_err(), "{bad}");
        }
    }
}
