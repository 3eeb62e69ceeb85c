//! The operator's figures: platform totals gathered from every live tenant
//! (`GET /api/admin/stats`), and restarts, refusals and mailbox depth per tenant
//! (`GET /api/admin/actors`, counted by [`SupervisionStats`]).
use actix_web::{HttpResponse, web};
use permetrix_actors::domain::UsageTotals;
use permetrix_storage::TenantId;
use permetrix_storage::records::Lifecycle;
use serde_json::json;

use crate::auth::OperatorAuth;
use crate::http::error::Result;
use crate::metrics::supervision::SupervisionStats;
use crate::server::state::AppState;

/// Mounts `GET /api/admin/stats` and `GET /api/admin/actors` (main host, operator token).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/admin/stats", web::get().to(stats))
        .route("/api/admin/actors", web::get().to(actors));
}

/// Restarts, refusals and mailbox depth per tenant, and their totals.
async fn actors(
    state: web::Data<AppState>,
    stats: web::Data<SupervisionStats>,
    _: OperatorAuth,
) -> Result<HttpResponse> {
    let mailboxes: std::collections::HashMap<TenantId, (usize, usize)> = state
        .registry
        .mailboxes()
        .into_iter()
        .map(|m| (m.tenant, (m.depth, m.capacity)))
        .collect();
    let counts = stats.counts();
    let quarantined = state.registry.quarantined();
    let tenants: Vec<_> = counts
        .iter()
        .map(|(tenant, restarts, rejections)| {
            let mailbox = mailboxes.get(tenant);
            json!({
                "tenant": tenant.as_str(),
                "active": mailbox.is_some(),
                "quarantined": quarantined.contains(tenant),
                "restarts": restarts,
                "mailbox_rejections": rejections,
                "mailbox_depth": mailbox.map_or(0, |m| m.0),
                "mailbox_capacity": mailbox.map(|m| m.1),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "restarts_total": counts.iter().map(|c| c.1).sum::<u64>(),
        "mailbox_rejections_total": counts.iter().map(|c| c.2).sum::<u64>(),
        "quarantined": quarantined.iter().map(TenantId::as_str).collect::<Vec<_>>(),
        "tenants": tenants,
    })))
}

/// Platform totals, gathered from every live tenant (fan-out with a deadline).
async fn stats(state: web::Data<AppState>, _: OperatorAuth) -> Result<HttpResponse> {
    let vendors = state.platform.vendors()?;
    let tenants: Vec<TenantId> = state
        .platform
        .tenants()?
        .into_iter()
        .filter(|t| t.lifecycle == Lifecycle::Active)
        .filter_map(|t| TenantId::parse(&t.tenant_id).ok())
        .collect();
    let snapshots = state
        .registry
        .snapshots(&tenants, state.fanout_deadline)
        .await;
    let mut usage = UsageTotals::default();
    let mut missing = Vec::new();
    for (id, snap) in snapshots {
        match snap {
            Ok(s) => {
                usage.borrowed += s.usage.borrowed;
                usage.total += s.usage.total;
                usage.overage += s.usage.overage;
            }
            Err(_) => missing.push(id.to_string()),
        }
    }
    Ok(HttpResponse::Ok().json(json!({
        "vendors": vendors.iter().filter(|v| v.lifecycle == Lifecycle::Active).count(),
        "tenants": tenants.len(),
        "active_actors": state.registry.active_count(),
        "usage": usage,
        "partial": !missing.is_empty(),
        "missing": missing,
    })))
}
