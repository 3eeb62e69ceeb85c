//! permetrix — the binary crate: command line, configuration, the HTTP layer (hosts,
//! credentials, signatures, routes, errors) and server start-up.
//!
//! The HTTP layer authenticates, resolves the tenant from the `Host` header, sends a
//! typed message to the tenant's actor through the [`permetrix_actors::Registry`] and
//! maps the reply to HTTP. It never touches tenant state itself.
pub mod accounts;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod demo;
pub mod error;
#[cfg(feature = "fault-injection")]
pub mod fault_injection;
pub mod host;
pub mod input;
pub mod limits;
pub mod load;
pub mod metrics;
pub mod ratelimit;
pub mod request_log;
pub mod retry_hold;
pub mod routes;
pub mod run;
pub mod secrets;
pub mod server;
pub mod shutdown;
pub mod signature;
pub mod startup_checks;
pub mod state;
pub mod storage_faults;
pub mod supervision;
pub mod telemetry;
pub mod web;
