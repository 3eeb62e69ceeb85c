//! permetrix — the server crate: the `permetrix` binary's command line, the HTTP layer and
//! server start-up. Tenant state lives in `permetrix-actors`, durable state in
//! `permetrix-storage`; the client programs (`permetrix load`, `permetrix run`) are the
//! `permetrix-client` crate.
//!
//! The HTTP layer authenticates, resolves the tenant from the `Host` header, sends a
//! typed message to the tenant's actor through the [`permetrix_actors::Registry`] and
//! maps the reply to HTTP. It never touches tenant state itself.
//!
//! The rooms, each importing only from those listed before it:
//!
//! - [`metrics`]: Prometheus families and collectors.
//! - [`http`]: the edge. Host routing, input parsing, request limits, rate limiting,
//!   held retries, the request log, and [`http::error::ApiError`], the one error that
//!   becomes an HTTP answer.
//! - [`auth`]: credentials. API keys, portal sessions, passwords, the operator token,
//!   request signatures, sealed secrets, login throttles. Reads the running server
//!   through [`auth::AuthContext`], never through the server's state itself.
//! - [`api`]: the handlers, by host: [`api::tenant`], [`api::vendor`],
//!   [`api::operator`], and what they share (health, portal sessions, accounts,
//!   reports).
//! - [`web`]: the portals' pages and assets.
//! - [`ops`]: operator tools. Backup and restore, demo data, start-up checks,
//!   storage-fault handling, supervision figures, fault injection (tests only).
//! - [`server`]: start-up and configuration, the application state that composes the
//!   rooms above, shutdown, logging.
//! - [`cli`]: the command line (`main.rs` only parses it and dispatches).
pub mod api;
pub mod auth;
pub mod cli;
pub mod http;
pub mod metrics;
pub mod ops;
pub mod server;
pub mod web;
