//! The shared test harness, the only module test modules import from:
//!
//! - one way to start the app, [`TestApp::builder`]: in this process (`spawn()`, with a
//!   manual clock or configuration changes) or as the real binary (`process()`);
//! - one process harness, [`Process`] (and [`ServerProcess`] for `permetrix serve`):
//!   start, signal, read the log, wait for the exit, restart on the same data;
//! - one polling helper, [`wait_until`];
//! - [`FlyProxy`], a proxy that honours `fly-replay` as Fly's does, for brokers of one
//!   cluster;
//! - the requests, accounts and readers the suites share, as methods of [`TestApp`] or
//!   functions here, the old license server's files to import ([`old_server`]), and a
//!   webhook [`Receiver`] on loopback, and a [`TlsProxy`] that terminates TLS before a
//!   server;
//! - [`inside`]: the one place that names the server's modules and the actors' messages.
mod accounts;
mod app;
mod calls;
mod events;
mod fly_proxy;
mod inside;
mod metrics;
mod offline;
mod old_server;
mod placement;
mod poll;
mod portal;
mod process;
mod raw;
mod receiver;
mod seats;
mod stores;
mod tls_proxy;

pub use accounts::*;
pub use app::*;
pub use calls::*;
pub use events::*;
pub use fly_proxy::*;
pub use inside::{
    CookieSecurity, ServeConfig, default_keep_alive, host, offline_token, signing, two_copies,
};
pub use metrics::*;
pub use offline::*;
pub use old_server::*;
pub use placement::*;
pub use poll::*;
pub use portal::*;
pub use process::*;
pub use raw::*;
pub use receiver::*;
pub use seats::*;
pub use stores::*;
pub use tls_proxy::*;
