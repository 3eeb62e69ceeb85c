//! Per-user limits (`/config/limits`), admin scope.
use actix_web::{HttpResponse, web};
use permetrix_actors::domain::ToolName;
use permetrix_actors::messages::{GetUserLimits, SetUserLimit};
use serde::Deserialize;
use serde_json::json;

use crate::auth::TenantAdmin;
use crate::http::error::{ApiError, Result};
use crate::http::input::optional;
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/config/limits", web::get().to(get_limits))
        .route("/config/limits", web::put().to(put_limit));
}

#[derive(Deserialize)]
struct LimitsQuery {
    tool: Option<String>,
}

/// Every tool's limit (`{tools:[{tool, product_id, max_per_user}]}`), or one tool's
/// (`?tool=`: `{tool, product_id, max_per_user}`).
async fn get_limits(
    state: web::Data<AppState>,
    caller: TenantAdmin,
    query: web::Query<LimitsQuery>,
) -> Result<HttpResponse> {
    let tool = optional(query.tool.as_deref(), |t| Ok(ToolName::parse(t)?))?;
    let limits = state.registry.send(&caller.tenant, GetUserLimits).await?;
    match tool {
        None => Ok(HttpResponse::Ok().json(json!({ "tools": limits }))),
        Some(t) => limits
            .into_iter()
            .find(|l| l.tool == t.as_str() || l.product_id == t.as_str())
            .map(|l| HttpResponse::Ok().json(l))
            .ok_or_else(|| {
                permetrix_actors::domain::DomainError::UnknownTool(t.into_string()).into()
            }),
    }
}

#[derive(Deserialize)]
// A misspelt field would otherwise be ignored and the change silently not made.
#[serde(deny_unknown_fields)]
struct PutLimit {
    tool: String,
    /// Required, but may be null (clears the limit): `Option<Option<_>>` tells a
    /// missing field from an explicit null.
    #[serde(default, deserialize_with = "present")]
    max_per_user: Option<Option<u32>>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

async fn put_limit(
    state: web::Data<AppState>,
    caller: TenantAdmin,
    body: web::Json<PutLimit>,
) -> Result<HttpResponse> {
    let body = body.into_inner();
    let tool = ToolName::parse(&body.tool)?;
    let max_per_user = body.max_per_user.ok_or_else(|| {
        ApiError::invalid("max_per_user is required: a number of seats, or null to clear the limit")
    })?;
    let limit = state
        .registry
        .send(&caller.tenant, SetUserLimit { tool, max_per_user })
        .await?;
    Ok(HttpResponse::Ok().json(limit))
}
