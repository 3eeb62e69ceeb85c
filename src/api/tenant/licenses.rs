//! Borrow, return, heartbeat and status on the tenant host.
use actix_web::{HttpRequest, HttpResponse, web};
use permetrix_actors::TenantView;
use permetrix_actors::domain::{BorrowRequest, OfflineCheckout, UserName, WaitSeconds};
use permetrix_actors::messages::{Heartbeat, ListBorrows, Status};
use permetrix_storage::{BorrowId, TenantId};
use serde::Deserialize;
use serde_json::json;

use crate::auth::signature::{self, SignatureHeaders, Signed};
use crate::auth::{AnyTenantCaller, TenantBorrower};
use crate::http::error::{ApiError, Result};
use crate::http::input::{RawBody, optional, parse_json};
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/licenses/borrow", web::post().to(borrow))
        .route("/licenses/return", web::post().to(return_seat))
        .route("/licenses/status", web::get().to(status_all))
        .route("/licenses/{tool}/status", web::get().to(status_one))
        .route("/licenses/{id}/heartbeat", web::post().to(heartbeat))
        .route("/licenses/{tool}/queue", web::get().to(super::queue::queue))
        .route("/borrows", web::get().to(borrows));
}

#[derive(Deserialize)]
// A misspelt field would otherwise be ignored and the change silently not made.
#[serde(deny_unknown_fields)]
struct BorrowBody {
    tool: String,
    user: String,
    lease_seconds: Option<u32>,
    wait_seconds: Option<u32>,
    /// Hours of offline checkout (an integer; its range is checked by the domain).
    offline_hours: Option<i64>,
    /// The client machine's identifier, for the offline token.
    fingerprint: Option<String>,
}

/// The borrow a body asks for: online, or an offline checkout.
fn borrow_request(input: &BorrowBody) -> Result<BorrowRequest> {
    let request = BorrowRequest::parse(&input.tool, &input.user, input.lease_seconds)?;
    match input.offline_hours {
        Some(hours) => {
            let checkout = OfflineCheckout::parse(hours, input.fingerprint.as_deref())?;
            Ok(request.checked_out(checkout)?)
        }
        None if input.fingerprint.is_some() => Err(ApiError::invalid(
            "fingerprint belongs to an offline borrow; send offline_hours with it",
        )),
        None => Ok(request),
    }
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn borrow(
    state: web::Data<AppState>,
    caller: TenantBorrower,
    req: HttpRequest,
    RawBody(body): RawBody,
) -> Result<HttpResponse> {
    let input: BorrowBody = parse_json(&body)?;
    let mut request = borrow_request(&input)?;
    let wait = input
        .wait_seconds
        .map_or(Ok(WaitSeconds::ZERO), WaitSeconds::parse)?;

    let view = state.registry.view(&caller.tenant).await?;
    // From here on every request ends in exactly one counted outcome.
    let attempt = state
        .metrics
        .borrow_attempt(&caller.tenant, view.tool_name(request.tool.as_str()));
    let headers = SignatureHeaders {
        signature: header(&req, "x-signature"),
        timestamp: header(&req, "x-timestamp"),
        vendor_id: header(&req, "x-vendor-id"),
        version: header(&req, "x-signature-version"),
        nonce: header(&req, "x-nonce"),
    };
    // The signature covers the fields as the client sent them (the user before folding).
    let signed = Signed {
        tool: &input.tool,
        user: &input.user,
        method: req.method().as_str(),
        path: req.path(),
        body: &body,
        api_key: &caller.token,
    };
    let checked = signature::check(
        view.settings.signature_policy,
        &headers,
        &signed,
        view.tool_vendor(request.tool.as_str()),
        |vendor| state.signing_secrets(vendor),
        state.registry.clock().now().secs(),
    )
    .map_err(|e| ApiError::Unauthorized {
        code: e.code(),
        detail: e.detail().into(),
    });
    let result = match checked {
        Ok(nonce) => {
            // The tenant's actor refuses a nonce it has seen, and stores it with the lease.
            request.nonce = nonce;
            grant(&state, &caller.tenant, &req, &view, request, wait).await
        }
        Err(e) => Err(e),
    };
    attempt.finish(match &result {
        Ok(borrowed) => Ok(borrowed.new_overage()),
        Err(e) => Err(e.code()),
    });
    Ok(result?.into_response())
}

/// Borrows (waiting up to `wait`); an offline checkout gets its token.
async fn grant(
    state: &AppState,
    tenant: &TenantId,
    req: &HttpRequest,
    view: &TenantView,
    request: BorrowRequest,
    wait: WaitSeconds,
) -> Result<super::queue::Borrowed> {
    // Online borrows (the hot path) copy nothing.
    let Some(offline) = request.offline.is_some().then(|| request.clone()) else {
        return super::queue::borrow_or_wait(state, tenant, req, request, wait).await;
    };
    let issuer = super::offline::prepare(state, req, view, &offline, wait).await?;
    let mut borrowed = super::queue::borrow_or_wait(state, tenant, req, request, wait).await?;
    let issuer = match issuer {
        Some(issuer) => Ok(issuer),
        // The tool was provisioned after the view was read: prepare now.
        None => match state.registry.view(tenant).await {
            Ok(fresh) => super::offline::prepare(state, req, &fresh, &offline, WaitSeconds::ZERO)
                .await
                .and_then(|i| {
                    i.ok_or_else(|| ApiError::internal(anyhow::anyhow!("granted an unknown tool")))
                }),
            Err(e) => Err(e.into()),
        },
    };
    let token = match issuer {
        Ok(issuer) => super::offline::token(state, tenant, &issuer, &borrowed.lease).await,
        Err(e) => Err(e),
    };
    match token {
        Ok(token) => {
            borrowed.offline_token = Some(token);
            Ok(borrowed)
        }
        Err(e) => {
            if !borrowed.replayed {
                super::offline::give_back(state, tenant, &borrowed.lease).await;
            }
            Err(e)
        }
    }
}

#[derive(Deserialize)]
// A misspelt field would otherwise be ignored and the change silently not made.
#[serde(deny_unknown_fields)]
struct ReturnBody {
    id: String,
}

fn unknown_borrow() -> ApiError {
    ApiError::Domain(permetrix_actors::domain::DomainError::UnknownBorrow)
}

/// A return needs no credential: the unguessable borrow id authorises it. A credential
/// that is sent must still be valid for this tenant.
async fn return_seat(
    state: web::Data<AppState>,
    caller: AnyTenantCaller,
    req: HttpRequest,
    RawBody(body): RawBody,
) -> Result<HttpResponse> {
    let input: ReturnBody = parse_json(&body)?;
    let id = BorrowId::parse(input.id.trim()).map_err(|_| unknown_borrow())?;
    super::queue::return_idempotent(&state, &caller.tenant, &req, id).await
}

async fn heartbeat(
    state: web::Data<AppState>,
    caller: TenantBorrower,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let id = BorrowId::parse(&path).map_err(|_| unknown_borrow())?;
    let lease = state.registry.send(&caller.tenant, Heartbeat(id)).await?;
    let mut reply = json!({
        "id": lease.id.to_string(),
        "lease_expires_at": permetrix_actors::domain::rfc3339(lease.lease_expires_at),
    });
    if lease.offline {
        // Answered, not refused: the checkout holds until it ends, whatever the client
        // does; the flag tells it that no heartbeat is needed.
        reply["offline"] = json!(true);
    }
    Ok(HttpResponse::Ok().json(reply))
}

/// Status may be read without a credential when the tenant allows it.
async fn status_reader(state: &AppState, caller: &AnyTenantCaller) -> Result<TenantId> {
    if caller.auth.is_some() {
        return Ok(caller.tenant.clone());
    }
    let view = state.registry.view(&caller.tenant).await?;
    if view.settings.anonymous_status {
        Ok(caller.tenant.clone())
    } else {
        Err(ApiError::unauthorized(
            "this endpoint needs an API key: send 'Authorization: Bearer <key>'",
        ))
    }
}

async fn status_all(state: web::Data<AppState>, caller: AnyTenantCaller) -> Result<HttpResponse> {
    let tenant = status_reader(&state, &caller).await?;
    let all = state.registry.send(&tenant, Status(None)).await?;
    Ok(HttpResponse::Ok().json(all))
}

async fn status_one(
    state: web::Data<AppState>,
    caller: AnyTenantCaller,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let tenant = status_reader(&state, &caller).await?;
    let tool = path.into_inner();
    let mut one = state.registry.send(&tenant, Status(Some(tool))).await?;
    let status = one
        .pop()
        .ok_or_else(|| ApiError::not_found("no such tool"))?;
    Ok(HttpResponse::Ok().json(status))
}

#[derive(Deserialize)]
struct BorrowsQuery {
    user: Option<String>,
}

async fn borrows(
    state: web::Data<AppState>,
    caller: TenantBorrower,
    query: web::Query<BorrowsQuery>,
) -> Result<HttpResponse> {
    let user = optional(query.user.as_deref(), |u| Ok(UserName::parse(u)?))?;
    let list = state
        .registry
        .send(&caller.tenant, ListBorrows(user))
        .await?;
    if !caller.is_viewer() {
        return Ok(HttpResponse::Ok().json(list));
    }
    // A borrow id is enough to return its seat: viewers see the borrows without them.
    let mut shown = serde_json::to_value(list).map_err(ApiError::internal)?;
    if let Some(items) = shown.as_array_mut() {
        for item in items {
            item["id"] = serde_json::Value::Null;
        }
    }
    Ok(HttpResponse::Ok().json(shown))
}
