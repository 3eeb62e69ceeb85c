use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::error::ApiError;
use crate::server::state::AppState;

/// The methods every health endpoint answers.
const ALLOW: &str = "GET, HEAD";

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Resources rather than method-guarded routes, so that another method on these
    // paths is 405 with `Allow` (probes send HEAD) instead of an unknown route.
    cfg.service(probe(
        "/health",
        web::get().to(health),
        web::head().to(health),
    ))
    .service(probe("/ready", web::get().to(ready), web::head().to(ready)))
    .service(probe(
        "/version",
        web::get().to(version),
        web::head().to(version),
    ));
}

fn probe(path: &str, get: actix_web::Route, head: actix_web::Route) -> actix_web::Resource {
    web::resource(path)
        .route(get)
        .route(head)
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow: ALLOW })
        }))
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
