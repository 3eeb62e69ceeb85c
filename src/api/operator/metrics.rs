//! `GET /metrics`: the Prometheus text format. It names every tenant, so on the public
//! port it needs the operator token or `PERMETRIX_METRICS_TOKEN`; `--metrics-bind`
//! serves it without a credential on a listener of its own ([`serve_privately`]), meant
//! for a private network.
use std::net::{SocketAddr, TcpListener};

use actix_web::dev::{Payload, Server};
use actix_web::middleware::from_fn;
use actix_web::{App, FromRequest, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context;

use crate::auth::{OperatorAuth, bearer};
use crate::http::error::{ApiError, Result};
use crate::http::headers;
use crate::metrics::CONTENT_TYPE;
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

/// The public port: the metrics token, or whatever the operator token passes.
async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse> {
    let token = bearer(&req)?.ok_or_else(|| {
        ApiError::unauthorized(
            "/metrics needs 'Authorization: Bearer <operator token or PERMETRIX_METRICS_TOKEN>'",
        )
    })?;
    if !state
        .metrics_token
        .as_ref()
        .is_some_and(|t| t.matches(&token))
    {
        OperatorAuth::from_request(&req, &mut Payload::None).await?;
    }
    render(state).await
}

async fn render(state: web::Data<AppState>) -> Result<HttpResponse> {
    let body = state.metrics.render().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(body))
}

async fn not_served() -> Result<HttpResponse> {
    Err(ApiError::not_found(
        "this listener serves GET /metrics only",
    ))
}

/// Serves `GET /metrics` without a credential on `addr` (one worker; no signal
/// handling: the caller stops it with the main server). Returns the bound address and
/// the running server, which the caller must drive.
pub fn serve_privately(
    addr: SocketAddr,
    state: web::Data<AppState>,
) -> anyhow::Result<(SocketAddr, Server)> {
    let listener = TcpListener::bind(addr)
        .with_context(|| format!("binding the metrics listener {addr} (--metrics-bind)"))?;
    let bound = listener.local_addr()?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(from_fn(headers::nosniff))
            .route("/metrics", web::get().to(render))
            .default_service(web::to(not_served))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)
    .context("starting the metrics listener")?
    .run();
    Ok((bound, server))
}
