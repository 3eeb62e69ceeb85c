//! `/api/vendor/webhooks`: a vendor's webhook endpoints (register, list, delete, enable
//! again), each endpoint's recent deliveries, and resending one. Another vendor's
//! endpoint answers 404 as if it did not exist.
use actix_web::{HttpResponse, web};
use permetrix_actors::domain::{WebhookEventKind, rfc3339};
use permetrix_storage::VendorId;
use permetrix_storage::records::{DeliveryStatus, WebhookDeliveryRecord, WebhookEndpointRecord};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::VendorAuth;
use crate::http::error::{ApiError, Result};
use crate::server::state::AppState;
use crate::webhooks::{MAX_ENDPOINTS_PER_VENDOR, UrlError, WebhookUrl};

/// Deliveries listed per endpoint, newest first.
const LISTED_DELIVERIES: usize = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/vendor/webhooks", web::post().to(create))
        .route("/api/vendor/webhooks", web::get().to(list))
        .route("/api/vendor/webhooks/{id}", web::delete().to(delete))
        .route("/api/vendor/webhooks/{id}/enable", web::post().to(enable))
        .route(
            "/api/vendor/webhooks/{id}/deliveries",
            web::get().to(deliveries),
        )
        .route(
            "/api/vendor/webhooks/{id}/deliveries/{delivery_id}/resend",
            web::post().to(resend),
        );
}

#[derive(Deserialize)]
// A misspelt field would otherwise be ignored.
#[serde(deny_unknown_fields)]
struct NewEndpoint {
    url: String,
    events: Vec<String>,
}

/// The event types named, each once, in the order given.
fn event_kinds(names: &[String]) -> Result<Vec<WebhookEventKind>> {
    if names.is_empty() {
        return Err(ApiError::invalid(format!(
            "events is empty; name at least one of {}",
            known_events()
        )));
    }
    let mut kinds = Vec::new();
    for name in names {
        let kind = WebhookEventKind::parse(name).ok_or_else(|| {
            ApiError::invalid(format!(
                "event type '{}' is not known; use {}",
                name.chars().take(64).collect::<String>(),
                known_events()
            ))
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

fn known_events() -> String {
    WebhookEventKind::ALL
        .map(WebhookEventKind::as_str)
        .join(", ")
}

fn url_error(e: UrlError) -> ApiError {
    let code = match e {
        UrlError::Invalid(_) => "invalid_url",
        UrlError::Private { .. } => "private_address",
    };
    ApiError::BadRequest {
        code,
        detail: e.to_string(),
    }
}

fn unknown_webhook(id: &str) -> ApiError {
    ApiError::NotFound {
        code: "unknown_webhook",
        detail: format!(
            "no webhook endpoint '{}' of yours; GET /api/vendor/webhooks lists them",
            id.chars().take(64).collect::<String>()
        ),
    }
}

fn endpoint_view(e: &WebhookEndpointRecord) -> Value {
    json!({
        "id": e.id,
        "url": e.url,
        "events": e.events,
        "created_at": rfc3339(e.created_at),
        "status": if e.disabled.is_some() { "disabled" } else { "active" },
        "disabled_at": e.disabled.as_ref().map(|(at, _)| rfc3339(*at)),
        "disabled_reason": e.disabled.as_ref().map(|(_, why)| why),
    })
}

fn delivery_view(d: &WebhookDeliveryRecord) -> Value {
    json!({
        "id": d.id,
        "tenant_id": d.tenant_id,
        "event_id": d.event_id,
        "type": d.kind,
        "status": match d.status {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        },
        "attempts": d.attempts,
        "first_attempt_at": rfc3339(d.first_attempt_at),
        "last_attempt_at": rfc3339(d.last_attempt_at),
        "next_attempt_at": d.next_attempt_at.map(rfc3339),
        "response_status": d.response_status,
        "error": d.error,
        "delivered_at": d.delivered_at.map(rfc3339),
    })
}

/// The vendor's endpoint `id`, or 404.
fn own_endpoint(state: &AppState, vendor: &VendorId, id: &str) -> Result<WebhookEndpointRecord> {
    state
        .platform
        .webhook(vendor, id)?
        .ok_or_else(|| unknown_webhook(id))
}

async fn create(
    state: web::Data<AppState>,
    caller: VendorAuth,
    body: web::Json<NewEndpoint>,
) -> Result<HttpResponse> {
    let b = body.into_inner();
    let url = WebhookUrl::parse(&b.url).map_err(url_error)?;
    let kinds = event_kinds(&b.events)?;
    if !state.webhooks.settings().allow_private {
        url.check_public().await.map_err(url_error)?;
    }
    if state.webhooks.list(&caller.vendor)?.len() >= MAX_ENDPOINTS_PER_VENDOR {
        return Err(ApiError::Conflict {
            code: "too_many_webhooks",
            detail: format!(
                "a vendor has at most {MAX_ENDPOINTS_PER_VENDOR} webhook endpoints; delete one first"
            ),
        });
    }
    let (record, secret) = state.webhooks.create(&caller.vendor, &url, &kinds).await?;
    let mut view = endpoint_view(&record);
    view["secret"] = Value::from(secret.expose_secret());
    Ok(HttpResponse::Created().json(view))
}

async fn list(state: web::Data<AppState>, caller: VendorAuth) -> Result<HttpResponse> {
    let endpoints: Vec<Value> = state
        .webhooks
        .list(&caller.vendor)?
        .iter()
        .map(endpoint_view)
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "webhooks": endpoints })))
}

async fn delete(
    state: web::Data<AppState>,
    caller: VendorAuth,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let id = path.into_inner();
    if !state.webhooks.delete(&caller.vendor, &id).await? {
        return Err(unknown_webhook(&id));
    }
    Ok(HttpResponse::Ok().json(json!({ "status": "deleted", "id": id })))
}

async fn enable(
    state: web::Data<AppState>,
    caller: VendorAuth,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let id = path.into_inner();
    let record = state
        .webhooks
        .enable(&caller.vendor, &id)
        .await?
        .ok_or_else(|| unknown_webhook(&id))?;
    Ok(HttpResponse::Ok().json(endpoint_view(&record)))
}

async fn deliveries(
    state: web::Data<AppState>,
    caller: VendorAuth,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let endpoint = own_endpoint(&state, &caller.vendor, &path.into_inner())?;
    let mut list = state.platform.webhook_deliveries(&endpoint.id)?;
    list.sort_by_key(|d| std::cmp::Reverse((d.last_attempt_at, d.seq)));
    let list: Vec<Value> = list
        .iter()
        .take(LISTED_DELIVERIES)
        .map(delivery_view)
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "webhook": endpoint_view(&endpoint),
        "deliveries": list,
    })))
}

async fn resend(
    state: web::Data<AppState>,
    caller: VendorAuth,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (id, delivery_id) = path.into_inner();
    let endpoint = own_endpoint(&state, &caller.vendor, &id)?;
    let delivery = state
        .platform
        .webhook_delivery(&endpoint.id, &delivery_id)?
        .ok_or_else(|| ApiError::NotFound {
            code: "unknown_delivery",
            detail: format!(
                "webhook endpoint {id} has no delivery '{}'; GET its deliveries to list them",
                delivery_id.chars().take(64).collect::<String>()
            ),
        })?;
    state.webhooks.resend(&endpoint.id, &delivery.id);
    Ok(HttpResponse::Accepted().json(json!({
        "id": delivery.id,
        "webhook_id": endpoint.id,
        "status": "queued",
    })))
}
