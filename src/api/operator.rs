//! The main host (`<base>`): the operator's administration of vendors and tenants,
//! signing-secret rotation, platform and supervision figures, and `/metrics`.
mod admin;
pub mod metrics;
mod signing;
mod stats;

use actix_web::web;

/// Mounts the main host's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(admin::configure)
        .configure(stats::configure)
        .configure(metrics::configure)
        .configure(signing::configure);
}
