//! The operator API on the main host.
use actix_web::{HttpResponse, web};
use permetrix_actors::TenantError;
use permetrix_actors::domain::rfc3339;
use permetrix_storage::records::Lifecycle;
use permetrix_storage::{TenantId, VendorId};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use crate::api::accounts::{self, NewVendor};
use crate::auth::OperatorAuth;
use crate::http::error::{ApiError, Result};
use crate::http::headers::shown_once;
use crate::http::input::{optional_text, text};
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/admin/vendors", web::post().to(create_vendor))
        .route("/api/admin/vendors", web::get().to(list_vendors))
        .route("/api/admin/vendors/{id}", web::delete().to(delete_vendor))
        .route("/api/admin/tenants", web::get().to(list_tenants))
        .route("/api/admin/tenants/{id}", web::delete().to(delete_tenant))
        .route(
            "/api/admin/tenants/{id}/resume",
            web::post().to(resume_tenant),
        );
}

#[derive(Deserialize)]
// A misspelt field would otherwise be ignored and the change silently not made.
#[serde(deny_unknown_fields)]
struct NewVendorBody {
    vendor_id: String,
    vendor_name: String,
    contact_email: Option<String>,
    password: Option<String>,
    signing_secret: Option<String>,
}

fn lifecycle(l: Lifecycle) -> &'static str {
    match l {
        Lifecycle::Active => "active",
        Lifecycle::Deleted => "deleted",
    }
}

async fn create_vendor(
    state: web::Data<AppState>,
    _: OperatorAuth,
    body: web::Json<NewVendorBody>,
) -> Result<HttpResponse> {
    let b = body.into_inner();
    let vendor_id = VendorId::parse(&b.vendor_id).map_err(|e| ApiError::invalid(e.to_string()))?;
    if b.password.as_deref().is_some_and(|p| p.chars().count() < 8) {
        return Err(ApiError::invalid(
            "password must have at least 8 characters",
        ));
    }
    let created = accounts::create_vendor(
        &state,
        NewVendor {
            vendor_id,
            vendor_name: text("vendor_name", &b.vendor_name, 200)?,
            contact_email: optional_text("contact_email", b.contact_email.as_deref(), 254)?,
            password: b.password.map(SecretString::from),
            signing_secret: b.signing_secret.map(SecretString::from),
        },
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(shown_once())
        .json(created))
}

async fn list_vendors(state: web::Data<AppState>, _: OperatorAuth) -> Result<HttpResponse> {
    let vendors: Vec<_> = state
        .platform
        .vendors()?
        .into_iter()
        .map(|v| {
            json!({
                "vendor_id": v.vendor_id,
                "vendor_name": v.vendor_name,
                "contact_email": v.contact_email,
                "status": lifecycle(v.lifecycle),
                "created_at": rfc3339(v.created_at),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "vendors": vendors })))
}

async fn list_tenants(state: web::Data<AppState>, _: OperatorAuth) -> Result<HttpResponse> {
    let tenants: Vec<_> = state
        .platform
        .tenants()?
        .into_iter()
        .map(|t| {
            json!({
                "tenant_id": t.tenant_id,
                "vendor_id": t.vendor_id,
                "company_name": t.company_name,
                "domain": t.domain,
                "crm_id": t.crm_id,
                "custom_hosts": t.custom_hosts,
                "status": lifecycle(t.lifecycle),
                "created_at": rfc3339(t.created_at),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "tenants": tenants })))
}

async fn delete_tenant(
    state: web::Data<AppState>,
    _: OperatorAuth,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    accounts::delete_tenant(&state, &path).await?;
    Ok(HttpResponse::Ok().json(json!({"status": "deleted", "tenant_id": path.into_inner()})))
}

/// Lifts a crash-loop quarantine (`resumed: true`), or confirms there is none
/// (`resumed: false`): safe to repeat.
async fn resume_tenant(
    state: web::Data<AppState>,
    _: OperatorAuth,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let unknown = || ApiError::NotFound {
        code: "unknown_tenant",
        detail: format!("no live tenant '{}'", path.as_str()),
    };
    let id = TenantId::parse(&path).map_err(|_| unknown())?;
    let resumed = match state.registry.resume(&id).await {
        Ok(resumed) => resumed,
        Err(TenantError::UnknownTenant) => return Err(unknown()),
        Err(e) => return Err(e.into()),
    };
    Ok(HttpResponse::Ok().json(json!({
        "tenant_id": id.as_str(),
        "resumed": resumed,
        "quarantined": false,
    })))
}

async fn delete_vendor(
    state: web::Data<AppState>,
    _: OperatorAuth,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    accounts::delete_vendor(&state, &path).await?;
    Ok(HttpResponse::Ok().json(json!({"status": "deleted", "vendor_id": path.into_inner()})))
}
