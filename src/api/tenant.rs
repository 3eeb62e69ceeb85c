//! The tenant host (`<tenant>.<base>`): borrowing and returning seats, the queue, the
//! tenant's configuration, keys and portal users, its event stream and its reports.
mod budget;
mod config;
mod events;
mod keys;
pub(super) mod ledger;
mod licenses;
mod limits;
mod offline;
mod queue;
pub(super) mod requests;
pub(super) mod usage;
pub mod users;

use actix_web::web;

/// Mounts the tenant host's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(licenses::configure)
        .configure(config::configure)
        .configure(limits::configure)
        .configure(keys::configure)
        .configure(budget::configure)
        .configure(ledger::configure)
        .configure(usage::configure)
        .configure(requests::configure)
        .configure(users::configure)
        .configure(super::session::configure)
        .configure(events::configure);
}
