//! `GET /metrics` on the main host: the Prometheus text format.
use actix_web::{HttpResponse, web};

use crate::http::error::{ApiError, Result};
use crate::metrics::CONTENT_TYPE;
use crate::server::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse> {
    let body = state.metrics.render().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().content_type(CONTENT_TYPE).body(body))
}
