//! Usage of the vendor's customers (`GET /api/vendor/usage`): the tenant's report
//! (`api::tenant::usage`) for each live customer, limited to the vendor's products.
use actix_web::{HttpResponse, web};
use permetrix_actors::domain::rfc3339;
use permetrix_storage::TenantId;
use permetrix_storage::records::Lifecycle;

use crate::api::reporting::{Format, Window, blocking, csv_response};
use crate::api::tenant::usage::{CustomerUsage, UsageQuery, csv_rows, tenant_products, window_of};
use crate::auth::VendorAuth;
use crate::http::error::Result;
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/vendor/usage", web::get().to(vendor_usage));
}

fn vendor_reply(
    format: Format,
    window: Window,
    customers: Vec<CustomerUsage>,
    missing: Vec<String>,
) -> Result<HttpResponse> {
    match format {
        Format::Csv => csv_response(csv_rows(&customers)),
        Format::Json => Ok(HttpResponse::Ok().json(serde_json::json!({
            "from": rfc3339(window.from),
            "to": rfc3339(window.to),
            "customers": customers,
            "partial": !missing.is_empty(),
            "missing": missing,
        }))),
    }
}

async fn vendor_usage(
    state: web::Data<AppState>,
    caller: VendorAuth,
    query: web::Query<UsageQuery>,
) -> Result<HttpResponse> {
    let format = Format::parse(query.format.as_deref())?;
    let window = window_of(&state, &query)?;
    let mut customers = Vec::new();
    for id in state.platform.vendor_tenant_ids(&caller.vendor)? {
        if let Some(r) = state.platform.tenant(&id)?
            && r.lifecycle == Lifecycle::Active
            && r.vendor_id == caller.vendor.as_str()
        {
            customers.push((id, r.company_name));
        }
    }
    // Which products each customer has of this vendor: from the live pools (idle
    // tenants are read from storage, not activated).
    let ids: Vec<TenantId> = customers.iter().map(|(id, _)| id.clone()).collect();
    let snapshots = state.registry.snapshots(&ids, state.fanout_deadline).await;
    let mut missing = Vec::new();
    let mut wanted = Vec::new();
    for ((id, company_name), (_, snapshot)) in customers.into_iter().zip(snapshots) {
        match snapshot {
            Ok(s) => {
                let products: Vec<(String, String)> = s
                    .tools
                    .iter()
                    .filter(|t| t.vendor_id == caller.vendor.as_str())
                    .map(|t| (t.product_id.clone(), t.tool.clone()))
                    .collect();
                wanted.push((id, company_name, products));
            }
            Err(e) => {
                tracing::warn!(tenant = %id, error = %e, "tenant missing from usage report");
                missing.push(id.to_string());
            }
        }
    }
    let store = state.registry.store().clone();
    let customers = blocking(move || {
        wanted
            .into_iter()
            .map(|(id, company_name, products)| {
                Ok(CustomerUsage {
                    tenant_id: id.to_string(),
                    company_name,
                    products: tenant_products(store.as_ref(), &id, products, window)?,
                })
            })
            .collect::<std::result::Result<Vec<_>, permetrix_storage::StorageError>>()
    })
    .await?;
    vendor_reply(format, window, customers, missing)
}
