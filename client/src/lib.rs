//! permetrix-client: programs that talk to a permetrix server over HTTP, as its users'
//! machines do. It depends on no part of the server.
//!
//! - [`run`]: `permetrix run`, which holds a seat while a command runs (borrow with
//!   queueing, heartbeats, return, signals forwarded).
//! - [`load`]: `permetrix load`, an open- or closed-loop load generator with latency
//!   histograms.
//! - [`signing`]: how a client signs a borrow; the server's verifier uses the same
//!   canonical strings.
//!
//! The `permetrix` binary embeds [`run::RunArgs`] and [`load::LoadArgs`] in its command
//! line and calls [`run::run`] and [`load::main`].
pub mod load;
pub mod run;
pub mod signing;
