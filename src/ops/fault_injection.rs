//! Test builds only (cargo feature `fault-injection`): routes that break a tenant on
//! purpose, so the integration tests can show what a fault does over HTTP.
//!
//! The feature is enabled by the integration tests and benchmarks through a
//! dev-dependency of this crate on itself; `cargo build --release` builds a binary
//! without these routes. On a tenant host, with an admin key of that tenant:
//!
//! - `POST /_faults/panic` — the tenant's actor panics (after changing its state in
//!   memory, as a real bug would); the supervisor restarts it with state reloaded.
//! - `POST /_faults/stall` — the actor takes no further message until released (its
//!   arbiter thread keeps serving other tenants); messages queue up to the mailbox
//!   capacity. Answers once the actor is stalled. With `?until=sigterm` the stall ends
//!   when the process receives SIGTERM instead (requests queued behind it are then in
//!   flight during the graceful shutdown).
//! - `POST /_faults/release` — ends the stall.
use std::sync::Arc;

use actix_web::{HttpResponse, web};
use dashmap::DashMap;
use permetrix_actors::domain::BorrowRequest;
use permetrix_actors::{Reply, TenantCx, TenantMessage};
use permetrix_storage::TenantId;
use serde::Deserialize;
use serde_json::json;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::Notify;

use crate::auth::TenantAdmin;
use crate::http::error::{ApiError, Result};
use crate::http::host::HostGuard;
use crate::server::state::AppState;

/// Stalled tenants and how to release them (one per server).
#[derive(Clone, Default)]
pub struct Faults {
    stalls: Arc<DashMap<TenantId, Arc<Notify>>>,
}

/// Mounts `/_faults/*` on tenant hosts; a [`Faults`] must be registered as app data of
/// the server. Must come before the API's tenant scope, which answers every path it does
/// not know with 404.
pub fn mount(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/_faults")
            .guard(HostGuard::Tenant)
            .configure(configure),
    );
}

/// The routes inside the `/_faults` scope.
fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/panic", web::post().to(panic_actor))
        .route("/stall", web::post().to(stall))
        .route("/release", web::post().to(release));
}

/// Panics inside the actor after leaving its memory inconsistent.
struct Explode;

impl TenantMessage for Explode {
    type Reply = ();
    const KIND: &'static str = "fault_panic";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<()> {
        let now = cx.now();
        let tool = cx.state().pools().first().map(|p| p.name().to_owned());
        let phantom = tool.and_then(|t| BorrowRequest::parse(&t, "fault-injection", None).ok());
        if let Some(req) = phantom {
            // A phantom borrow that is never persisted: the reload must drop it.
            let _ = cx.state().borrow(&req, now);
        }
        panic!("fault injection: tenant actor panic requested");
    }
}

/// Pauses the actor's mailbox until released.
enum Stall {
    /// By `POST /_faults/release`.
    Request(Arc<Notify>),
    /// By SIGTERM.
    Sigterm(Signal),
}

impl TenantMessage for Stall {
    type Reply = ();
    const KIND: &'static str = "fault_stall";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<()> {
        match self {
            Stall::Request(release) => cx.pause_mailbox(async move { release.notified().await }),
            Stall::Sigterm(mut sigterm) => cx.pause_mailbox(async move {
                sigterm.recv().await;
            }),
        }
        Reply::ready(Ok(()))
    }
}

#[derive(Deserialize)]
struct StallQuery {
    until: Option<String>,
}

async fn panic_actor(state: web::Data<AppState>, caller: TenantAdmin) -> Result<HttpResponse> {
    state.registry.send(&caller.tenant, Explode).await?;
    Err(ApiError::internal(anyhow::anyhow!(
        "the injected panic did not happen"
    )))
}

async fn stall(
    state: web::Data<AppState>,
    faults: web::Data<Faults>,
    caller: TenantAdmin,
    query: web::Query<StallQuery>,
) -> Result<HttpResponse> {
    if query.until.as_deref() == Some("sigterm") {
        // Registered before the answer, so a SIGTERM sent after it is seen.
        let sigterm = signal(SignalKind::terminate()).map_err(ApiError::internal)?;
        state
            .registry
            .send(&caller.tenant, Stall::Sigterm(sigterm))
            .await?;
        return Ok(HttpResponse::Ok().json(json!({"status": "stalled until SIGTERM"})));
    }
    let release = Arc::new(Notify::new());
    if faults
        .stalls
        .insert(caller.tenant.clone(), Arc::clone(&release))
        .is_some()
    {
        return Err(ApiError::invalid("this tenant is stalled already"));
    }
    if let Err(e) = state
        .registry
        .send(&caller.tenant, Stall::Request(release))
        .await
    {
        faults.stalls.remove(&caller.tenant);
        return Err(e.into());
    }
    Ok(HttpResponse::Ok().json(json!({"status": "stalled"})))
}

async fn release(faults: web::Data<Faults>, caller: TenantAdmin) -> Result<HttpResponse> {
    let (_, release) = faults
        .stalls
        .remove(&caller.tenant)
        .ok_or_else(|| ApiError::invalid("this tenant is not stalled"))?;
    // A stored permit: the release holds even if the actor has not reached its wait.
    release.notify_one();
    Ok(HttpResponse::Ok().json(json!({"status": "released"})))
}
