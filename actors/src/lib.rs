//! Tenant actors for permetrix.
//!
//! One supervised actix actor per tenant owns that tenant's state: pools, active
//! leases, settings, restrictions, spend counters and the head of its charge ledger.
//! Nothing else mutates them. The HTTP layer talks to this crate through a
//! [`Registry`] handle and typed messages ([`messages`]); no actix type leaves the crate.
//!
//! # Layout
//!
//! From the rules up to the handle the HTTP layer holds (each module uses only those
//! above it):
//!
//! - [`domain`] — the rules as plain Rust (no I/O, `now` passed in), unit- and
//!   property-tested; its input types parse request fields at the edge.
//! - [`overload`] — the overload policy: admission, turns, fairness on an arbiter, held
//!   early retries.
//! - [`quarantine`] — crash-loop quarantine: restart intensity and period (Erlang's),
//!   and the observers told of a quarantine.
//! - [`outbox`] — the hooks between a tenant's webhook outbox and the delivery worker
//!   above this crate.
//! - `shared` — what the registry, the edge and one tenant's actor share (view, events,
//!   outbox hooks, admission, turns, the stale mark).
//! - `reply` — [`Reply`]: the answer to a message, owed until its write is durable and
//!   settled by whoever awaits it.
//! - `waiters` — the reply channels of queued borrows and the hand-over of seats to
//!   them.
//! - `handling` — [`TenantMessage`] and [`TenantCx`]: what a handler may touch.
//! - [`messages`] — the verbs (`Borrow`, `Return`, `Heartbeat`, `Status`, …).
//! - `tenant_actor` — the actor: message in → domain → write → reply once durable.
//!   Panics are caught at the handler boundary; the supervisor restarts the actor and
//!   it reloads its state from storage.
//! - [`placement`] — which node owns a tenant (always this one today) and which arbiter
//!   thread hosts it (fixed by hash).
//! - `idle_cache` — idle tenants' states kept for fan-out reads.
//! - [`registry`] — tenant id → actor address in a `DashMap`; activation on first use
//!   (asynchronous, single-flight, through [`permetrix_storage::Ownership`]), admission
//!   and turns before a message is sent; passivation of idle actors, eviction of fenced
//!   ones, and the lease watchdog.
//! - `fanout` — concurrent snapshots of many tenants with a deadline.
//! - [`reports`] — usage and ledger reports read back from storage, beside the actors
//!   (a history can be long; it is never held in an actor's memory).
//!
//! # Invariants
//!
//! - A reply that reports a mutation is sent only after the mutation is durable
//!   (the store's ticket resolved); the actor keeps serving other messages meanwhile.
//! - If a write fails (at once, or later when its flush fails), the actor's memory may
//!   be ahead of the store, so it reloads before its next message; it also reloads when
//!   the store was reopened after a failure ([`permetrix_storage::Store::incarnation`]).
//!   Memory never stays ahead of disk.
//! - Different tenants never share a lock on the borrow path.
//! - At most one actor of a tenant runs on this broker, and one acquisition of a tenant
//!   is in progress at a time. An actor whose write was fenced, or whose broker cannot
//!   prove its lease, answers nothing more from memory: it drops its state and stops.
#![warn(missing_docs)]

pub mod clock;
pub mod domain;
mod error;
mod fanout;
mod handling;
mod idle_cache;
pub mod messages;
pub mod metrics;
pub mod outbox;
pub mod overload;
pub mod placement;
pub mod quarantine;
pub mod registry;
mod reply;
pub mod reports;
mod shared;
mod tenant_actor;
mod view;
mod waiters;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::TenantError;
pub use handling::{TenantCx, TenantMessage};
pub use outbox::{NoWebhooks, OutboxHooks, OutboxObserver, TenantOutbox};
pub use overload::DEFAULT_TENANT_CONCURRENCY;
pub use quarantine::{QuarantineEvent, QuarantineObserver, RestartIntensity};
pub use registry::{LEASE_CHECK_EVERY, MailboxStats, Registry, RegistryConfig, Route};
pub use reply::Reply;
pub use view::TenantView;

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod farm_tests;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod quarantine_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_outbox;
#[cfg(test)]
mod tests_reports;
