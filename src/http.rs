//! The HTTP edge: what every request meets before and after its handler.
//!
//! Host routing ([`host`], [`custom_hosts`]), input parsing ([`input`]), size and time limits
//! ([`limits`]), keyed rate limiting ([`rate_limit`]), held early retries
//! ([`retry_hold`]), routing to the broker that owns a tenant ([`routing`]), the
//! request log ([`request_log`]), the headers of every response ([`headers`]) and the
//! one mapping of errors to HTTP ([`error`]).
//!
//! The middleware reads what it needs from the application state through [`Edge`], so
//! that this room does not depend on the server that composes it.
pub mod custom_hosts;
pub mod error;
pub mod headers;
pub mod host;
pub mod input;
pub mod limits;
pub mod rate_limit;
pub mod request_log;
pub mod retry_hold;
pub mod routing;

use permetrix_actors::Registry;

use crate::metrics::Metrics;
use custom_hosts::CustomHosts;
use host::BaseDomains;
use limits::Limits;
use routing::Routing;

/// What the edge middleware reads from the application state (registered as
/// `web::Data<S>`; the middleware is instantiated for that `S`).
pub trait Edge: 'static {
    /// Base domains, for host routing.
    fn bases(&self) -> &BaseDomains;
    /// The tenants' custom hosts, for host routing.
    fn custom_hosts(&self) -> &CustomHosts;
    /// Size, time and rate limits.
    fn limits(&self) -> &Limits;
    /// Where request figures are recorded.
    fn metrics(&self) -> &Metrics;
    /// The tenants' actors (routing asks where a tenant lives).
    fn registry(&self) -> &Registry;
    /// How requests reach tenants owned by other brokers.
    fn routing(&self) -> &Routing;
}
