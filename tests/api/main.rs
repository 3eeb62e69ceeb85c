//! Integration tests: the real server on a free port, with a temporary data directory,
//! spoken to over HTTP. One test binary; one module per area, each importing only from
//! `helpers` (the one harness: how to start the app, the process harness, polling).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod helpers;

mod backup;
mod bootstrap_flow;
mod commercial;
mod commercial_packages;
mod commercial_requests;
mod concurrency;
mod crash;
mod custom_hosts;
mod events;
mod fanout;
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
mod metrics;
mod metrics_labels;
mod metrics_request_log;
mod metrics_supervision;
mod portals;
mod queue;
mod restart;
mod run;
mod security_bodies;
mod security_edge;
mod security_keys;
mod security_limits;
mod security_misc;
mod security_replay;
mod security_sessions;
mod security_signatures;
mod security_streams;
mod security_tenant_limits;
mod shutdown;
mod usage;
