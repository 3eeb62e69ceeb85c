//! The customer's budget (`/config/budget`, `/config/protection`), admin scope:
//! restrictions that may only lower the vendor's limits, and a monthly overage cap.
//!
//! In both bodies a field that is absent stays as it is, `null` clears it (the
//! vendor's limit applies again, or no cap), and a number sets it.
use actix_web::{HttpResponse, web};
use permetrix_actors::domain::{Change, RestrictionPatch, Seats, ToolName};
use permetrix_actors::messages::{GetBudget, Restrict, SetSpendCap};
use permetrix_storage::Money;
use serde::Deserialize;

use crate::auth::TenantAdmin;
use crate::http::error::{ApiError, Result};
use crate::http::input::nullable;
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/config/budget", web::get().to(get_budget))
        .route("/config/budget", web::put().to(put_budget))
        .route("/config/protection", web::put().to(put_protection));
}

async fn get_budget(state: web::Data<AppState>, caller: TenantAdmin) -> Result<HttpResponse> {
    let tools = state.registry.send(&caller.tenant, GetBudget).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "tools": tools })))
}

#[derive(Deserialize)]
// A misspelt field would otherwise be ignored and the change silently not made.
#[serde(deny_unknown_fields)]
struct BudgetBody {
    tool: String,
    #[serde(default, deserialize_with = "nullable")]
    total: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    max_overage: Option<Option<i64>>,
}

fn seat_change(field: &str, v: Option<Option<i64>>) -> Result<Change<Seats>> {
    match v {
        None => Ok(Change::Keep),
        Some(None) => Ok(Change::Clear),
        Some(Some(n)) => Seats::parse(field, n)
            .map(Change::Set)
            .map_err(|e| ApiError::invalid(format!("{e}, or null to clear the restriction"))),
    }
}

async fn put_budget(
    state: web::Data<AppState>,
    caller: TenantAdmin,
    body: web::Json<BudgetBody>,
) -> Result<HttpResponse> {
    let b = body.into_inner();
    let tool = ToolName::parse(&b.tool)?;
    let patch = RestrictionPatch {
        total: seat_change("total", b.total)?,
        max_overage: seat_change("max_overage", b.max_overage)?,
    };
    if patch == RestrictionPatch::default() {
        return Err(ApiError::invalid(
            "nothing to change: send total and/or max_overage (a number lowers the limit, null clears the restriction)",
        ));
    }
    let line = state
        .registry
        .send(&caller.tenant, Restrict { tool, patch })
        .await?;
    Ok(HttpResponse::Ok().json(line))
}

#[derive(Deserialize)]
// A misspelt field would otherwise be ignored and the change silently not made.
#[serde(deny_unknown_fields)]
struct ProtectionBody {
    tool: String,
    #[serde(default, deserialize_with = "nullable")]
    max_spend: Option<Option<f64>>,
}

async fn put_protection(
    state: web::Data<AppState>,
    caller: TenantAdmin,
    body: web::Json<ProtectionBody>,
) -> Result<HttpResponse> {
    let b = body.into_inner();
    let tool = ToolName::parse(&b.tool)?;
    let max_spend = match b.max_spend {
        None => {
            return Err(ApiError::invalid(
                "max_spend is required: a monthly overage cap (e.g. 2500.00), or null to remove the cap",
            ));
        }
        Some(None) => None,
        Some(Some(v)) => {
            Some(Money::from_decimal(v).map_err(|e| ApiError::invalid(format!("max_spend: {e}")))?)
        }
    };
    let line = state
        .registry
        .send(&caller.tenant, SetSpendCap { tool, max_spend })
        .await?;
    Ok(HttpResponse::Ok().json(line))
}
