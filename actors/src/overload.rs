//! The overload policy: what the broker does when requests arrive faster than a tenant,
//! or the whole server, can serve them. Four measures, each in one file here; the
//! registry, the actor and the HTTP edge only call them.
//!
//! # What a client sees
//!
//! 1. **Admission** (`admission`): every tenant's mailbox holds at most
//!    `RegistryConfig::mailbox_capacity` messages (`--mailbox-capacity`). A message
//!    takes a permit of the tenant's semaphore when it is sent and carries it until the
//!    actor picks it up, so permits in use are the mailbox depth (a metric). When none
//!    is free the request is refused at once with `TenantError::Overloaded`: HTTP 503
//!    `tenant_overloaded` with `Retry-After` (`RegistryConfig::retry_after`). Nothing
//!    queues without bound; other tenants are not affected.
//! 2. **Turns while tenants share the server** (`turns`): a tenant alone may have as
//!    many requests in progress as its mailbox admits. Once another tenant has sent a
//!    request within [`SHARED_FOR`], each admitted request first waits for one of its
//!    tenant's `RegistryConfig::tenant_concurrency` turns (`--tenant-concurrency`,
//!    default [`DEFAULT_TENANT_CONCURRENCY`]), and holds it until its write is durable: a flooded tenant keeps only that many
//!    requests' work in the HTTP workers, the arbiters and the flush, ahead of its
//!    neighbours'. The client sees a slower answer, never an error.
//! 3. **Fairness on an arbiter** (`fairness`): several tenants' actors share one
//!    arbiter thread. An actor handles at most [`FAIR_TURN`] messages in a row, then
//!    lets the other actors of its thread run once, so a tenant whose mailbox is
//!    refilled as fast as it drains cannot hold the thread.
//! 4. **Held early retries** (`held_retries`): a connection refused with 503 and
//!    `Retry-After: n` that asks the same tenant again within those n seconds has that
//!    request held (parked, no CPU) until they are over; it then runs as any other.
//!    A client that ignores `Retry-After` thus cannot turn each refusal into more work
//!    for the HTTP workers; clients that honour it never meet the hold.
//!    [`LastRefusal`] is the per-connection bookkeeping; the server's middleware
//!    applies it.
//!
//! BENCHMARKS.md ("Fair share under a flood", "fair turns") has the measurements
//! behind the defaults.
mod admission;
mod fairness;
mod held_retries;
mod turns;

pub(crate) use admission::{Admission, Permit};
pub use fairness::FAIR_TURN;
pub(crate) use fairness::Fairness;
pub use held_retries::LastRefusal;
pub use turns::{DEFAULT_TENANT_CONCURRENCY, SHARED_FOR};
pub(crate) use turns::{Sharing, Turns};
