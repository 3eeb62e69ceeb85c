//! The vendor host (`vendor.<base>`): a vendor's customers, their custom hosts and
//! packages, the customers' ledgers and usage, and their requests for more seats.
mod customers;
mod hosts;
mod ledger;
mod packages;
mod requests;
mod usage;

use actix_web::web;

/// Mounts the vendor host's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(customers::configure)
        .configure(hosts::configure)
        .configure(packages::configure)
        .configure(ledger::configure)
        .configure(usage::configure)
        .configure(requests::configure)
        .configure(super::session::configure);
}
