//! The shared test harness, the only module test modules import from:
//!
//! - one way to start the app, [`TestApp::builder`]: in this process (`spawn()`, with a
//!   manual clock or configuration changes) or as the real binary (`process()`);
//! - one process harness, [`Process`] (and [`ServerProcess`] for `permetrix serve`):
//!   start, signal, read the log, wait for the exit, restart on the same data;
//! - one polling helper, [`wait_until`];
//! - the requests, accounts and readers the suites share, as methods of [`TestApp`] or
//!   functions here;
//! - [`inside`]: the one place that names the server's modules and the actors' messages.
mod accounts;
mod app;
mod calls;
mod events;
mod inside;
mod metrics;
mod poll;
mod portal;
mod process;
mod raw;
mod seats;

pub use accounts::*;
pub use app::*;
pub use calls::*;
pub use events::*;
pub use inside::{CookieSecurity, host, signing};
pub use metrics::*;
pub use poll::*;
pub use portal::*;
pub use process::*;
pub use raw::*;
pub use seats::*;
