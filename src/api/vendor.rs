//! The vendor host (`vendor.<base>`): a vendor's customers, their custom hosts and
//! packages, the customers' ledgers and usage, their requests for more seats, and the
//! vendor's OAuth clients with the token endpoint, its webhook endpoints, and the keys of
//! offline tokens (with the public JWKS).
mod customers;
mod hosts;
mod ledger;
mod oauth;
mod offline_keys;
mod packages;
mod requests;
mod usage;
mod webhooks;

use actix_web::web;

/// Mounts the vendor host's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(customers::configure)
        .configure(hosts::configure)
        .configure(packages::configure)
        .configure(offline_keys::configure)
        .configure(ledger::configure)
        .configure(usage::configure)
        .configure(requests::configure)
        .configure(oauth::configure)
        .configure(webhooks::configure)
        .configure(super::session::configure);
}
