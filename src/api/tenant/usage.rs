//! Usage reports over a time window `[from, to)` (default: this UTC month so far), per
//! product: borrows, peak concurrent seats, overage borrows and amount. Read back from
//! the usage history in storage, scoped to the caller: the tenant's own (`GET /usage`)
//! or the vendor's customers (`GET /api/vendor/usage`).
use actix_web::{HttpResponse, web};
use permetrix_actors::domain::{PoolUsage, rfc3339};
use permetrix_actors::reports;
use permetrix_storage::{Store, TenantId};
use serde::{Deserialize, Serialize};

use crate::api::reporting::{Format, Window, blocking, cell, csv_response, month_start};
use crate::auth::TenantBorrower;
use crate::http::error::Result;
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/usage", web::get().to(tenant_usage));
}

#[derive(Deserialize)]
pub struct UsageQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub format: Option<String>,
}

/// One product's figures.
#[derive(Serialize)]
pub struct ProductUsage {
    product_id: String,
    tool: String,
    #[serde(flatten)]
    usage: PoolUsage,
}

/// One customer's figures.
#[derive(Serialize)]
pub struct CustomerUsage {
    pub tenant_id: String,
    pub company_name: String,
    pub products: Vec<ProductUsage>,
}

/// Reads the usage of `products` (`(product id, name)`) of one tenant.
pub fn tenant_products(
    store: &dyn Store,
    tenant: &TenantId,
    products: Vec<(String, String)>,
    window: Window,
) -> std::result::Result<Vec<ProductUsage>, permetrix_storage::StorageError> {
    products
        .into_iter()
        .map(|(product_id, tool)| {
            let usage = reports::pool_usage(store, tenant, &product_id, window.from, window.to)?;
            Ok(ProductUsage {
                product_id,
                tool,
                usage,
            })
        })
        .collect()
}

const CSV_HEADER: [&str; 12] = [
    "tenant_id",
    "company_name",
    "product_id",
    "tool",
    "borrows",
    "peak_concurrent",
    "overage_borrows",
    "overage_amount",
    "returns",
    "expiries",
    "in_use_at_start",
    "in_use_at_end",
];

pub fn csv_rows(customers: &[CustomerUsage]) -> Vec<Vec<String>> {
    let mut rows = vec![CSV_HEADER.iter().map(|h| (*h).to_owned()).collect()];
    for c in customers {
        for p in &c.products {
            let u = &p.usage;
            rows.push(vec![
                c.tenant_id.clone(),
                cell(&c.company_name),
                cell(&p.product_id),
                cell(&p.tool),
                u.borrows.to_string(),
                u.peak_concurrent.to_string(),
                u.overage_borrows.to_string(),
                u.overage_amount.to_string(),
                u.returns.to_string(),
                u.expiries.to_string(),
                u.in_use_at_start.to_string(),
                u.in_use_at_end.to_string(),
            ]);
        }
    }
    rows
}

pub fn window_of(state: &AppState, q: &UsageQuery) -> Result<Window> {
    let now = state.registry.clock().now();
    Window::parse(q.from.as_deref(), q.to.as_deref(), month_start(now), now)
}

async fn tenant_usage(
    state: web::Data<AppState>,
    caller: TenantBorrower,
    query: web::Query<UsageQuery>,
) -> Result<HttpResponse> {
    let format = Format::parse(query.format.as_deref())?;
    let window = window_of(&state, &query)?;
    let view = state.registry.view(&caller.tenant).await?;
    let products = view
        .tools
        .iter()
        .map(|(name, id, _)| (id.clone(), name.clone()))
        .collect();
    let company_name = state
        .platform
        .tenant(&caller.tenant)?
        .map(|t| t.company_name)
        .unwrap_or_default();
    let store = state.registry.store().clone();
    let tenant = caller.tenant.clone();
    let products =
        blocking(move || tenant_products(store.as_ref(), &tenant, products, window)).await?;
    let customer = CustomerUsage {
        tenant_id: caller.tenant.to_string(),
        company_name,
        products,
    };
    match format {
        Format::Csv => csv_response(csv_rows(std::slice::from_ref(&customer))),
        Format::Json => Ok(HttpResponse::Ok().json(serde_json::json!({
            "from": rfc3339(window.from),
            "to": rfc3339(window.to),
            "tenant_id": customer.tenant_id,
            "products": customer.products,
        }))),
    }
}
