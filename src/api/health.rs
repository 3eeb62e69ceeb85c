use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::error::ApiError;
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready))
        .route("/version", web::get().to(version));
}

/// Liveness: the process answers.
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness: crash recovery finished before the listener was bound, so answering means
/// recovered; the store must also be in service (not out of it after an I/O error).
async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.platform.store().available()?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready", "storage": "ok"})))
}

async fn version() -> HttpResponse {
    HttpResponse::Ok().json(json!({"name": "permetrix", "version": env!("CARGO_PKG_VERSION")}))
}
