//! permetrix-client: programs that talk to a permetrix server over HTTP, as its users'
//! machines do. It depends on no part of the server.
//!
//! - [`run`]: `permetrix run`, which holds a seat while a command runs (borrow with
//!   queueing, heartbeats, return, signals forwarded).
//! - [`load`]: `permetrix load`, an open- or closed-loop load generator with latency
//!   histograms.
//! - [`signing`]: how a client signs a borrow; the server's verifier uses the same
//!   canonical strings.
//! - [`offline_token`]: the offline token of an offline checkout (claims, signing,
//!   JWKS, verification); the server signs with it, [`token`] (`permetrix token
//!   verify`) checks one without the broker.
//!
//! - [`tls`]: the HTTP client's TLS (public roots, plus `--ca-cert`).
//!
//! The `permetrix` binary embeds [`run::RunArgs`] and [`load::LoadArgs`] in its command
//! line and calls [`run::run`] and [`load::main`].
pub mod load;
pub mod offline_token;
pub mod run;
pub mod signing;
pub mod tls;
pub mod token;
