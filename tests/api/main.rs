//! Integration tests: the real server on a free port, with a temporary data directory,
//! spoken to over HTTP. One test binary; one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod helpers;

mod bootstrap_flow;
mod concurrency;
mod hostile;
mod input_errors;
mod isolation;
mod isolation_matrix;
mod restart;
mod security_keys;
mod security_limits;
mod security_sessions;
mod security_signatures;
mod security_support;
