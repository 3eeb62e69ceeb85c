//! permetrix — the server crate: the `permetrix` binary's command line, the HTTP layer and
//! server start-up. Tenant state lives in `permetrix-actors`, durable state in
//! `permetrix-storage`; the client programs (`permetrix load`, `permetrix run`) are the
//! `permetrix-client` crate.
//!
//! The HTTP layer authenticates, resolves the tenant from the `Host` header, sends a
//! typed message to the tenant's actor through the [`permetrix_actors::Registry`] and
//! maps the reply to HTTP. It never touches tenant state itself.
//!
//! The rooms, each importing only from the rooms listed before it; the one exception is
//! the application state ([`server::state::AppState`]), which composes the rooms and is
//! what handlers take. `scripts/check-module-cycles.py src` finds no import circle.
//!
//! - [`metrics`]: Prometheus families and collectors, and the supervision figures.
//! - [`store_choice`]: which store (`--store`) and connecting to the shared one.
//! - [`http`]: the edge. Host routing, input parsing, request limits, rate limiting,
//!   held retries, the request log, and [`http::error::ApiError`], the one error that
//!   becomes an HTTP answer. Reads the state through [`http::Edge`].
//! - [`auth`]: credentials. API keys, portal sessions, passwords, the operator token,
//!   request signatures, sealed secrets, login throttles. Reads the state through
//!   [`auth::AuthContext`].
//! - [`web`]: the portals' pages and assets.
//! - [`webhooks`]: vendors' webhook endpoints and the delivery worker that POSTs their
//!   customers' outbox events to them.
//! - [`api`]: the JSON API by host: [`api::tenant`], [`api::vendor`],
//!   [`api::operator`], and what they share (health, portal login, accounts, reports).
//! - [`ops`]: operator tools. Backup and restore, demo data, start-up checks,
//!   storage-fault handling, fault injection (test builds only).
//! - [`server`]: configuration and start-up, the application state, shutdown, logging,
//!   the panic hook.
//! - [`cli`]: the command line (`main.rs` only parses it and dispatches).
pub mod api;
pub mod auth;
pub mod cli;
pub mod http;
pub mod metrics;
pub mod ops;
pub mod server;
pub mod store_choice;
pub mod web;
pub mod webhooks;
