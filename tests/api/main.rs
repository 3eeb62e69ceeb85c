//! Integration tests: the real server on a free port, with a temporary data directory,
//! spoken to over HTTP. One test binary; one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod helpers;

mod backup;
mod bootstrap_flow;
mod commercial;
mod commercial_helpers;
mod commercial_packages;
mod commercial_requests;
mod concurrency;
mod crash;
mod crash_harness;
mod faults;
mod faults_startup;
mod faults_storage;
mod hostile;
mod input_errors;
mod isolation;
mod isolation_matrix;
mod leases;
mod leases_idempotency;
mod leases_limits;
mod ledger;
mod load;
mod queue;
mod restart;
mod run;
mod security_keys;
mod security_limits;
mod security_sessions;
mod security_signatures;
mod security_support;
mod shutdown;
mod usage;
