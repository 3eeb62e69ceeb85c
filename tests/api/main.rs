//! Integration tests: the real server on a free port, with a temporary data directory,
//! spoken to over HTTP. One test binary; one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod helpers;

mod bootstrap_flow;
mod concurrency;
mod events;
mod fanout;
mod input_errors;
mod isolation;
mod metrics;
mod metrics_labels;
mod metrics_request_log;
mod restart;
