//! The tenant's rules as plain, synchronous Rust: seats, commit vs overage, customer
//! restrictions, spend caps, leases and the charge ledger.
//!
//! Nothing here does I/O or reads a clock: every operation takes `now` and returns the
//! records to persist ([`Effects`]); the actor persists them and replies. That keeps
//! the rules unit-testable and the actor a thin shell.
mod budget;
mod calendar;
mod error;
mod expiry;
mod idempotency;
mod ledger;
mod limits;
mod package;
mod pool;
mod queue;
mod requests;
mod state;
mod usage;
mod views;

pub use calendar::month_of;
pub use error::DomainError;
pub use expiry::EXPIRED_MEMORY;
pub use idempotency::{IdempotencyKey, IdempotencyTicket, KEY_RETENTION, MAX_KEY_LEN};
pub use ledger::{LedgerHead, chain_hash, verify_chain};
pub use limits::UserLimit;
pub use pool::{Limits, Pool};
pub use queue::{MAX_WAITERS_PER_POOL, QueueEntry, Queued, Served, WaiterId, is_queueable};
pub use state::{
    BorrowRequest, Effects, Grant, ProvisionRequest, Returned, SettingsPatch, TenantEvent,
    TenantEventKind, TenantState,
};
pub use views::{LeaseView, TenantSnapshot, ToolStatus, UsageTotals, rfc3339};

pub use budget::{BudgetLine, Change, RestrictionPatch};
pub use package::{PackagePatch, SeatLimits, resolve_limits};
pub use requests::{Decided, Decision, MoreRequest};
pub use usage::{PoolUsage, UsageHead};

/// Shortest lease a client may ask for.
pub const MIN_LEASE_SECONDS: u32 = 30;
/// Longest lease a client may ask for.
pub const MAX_LEASE_SECONDS: u32 = 86_400;
/// Lease length when neither the request nor the tenant says otherwise.
pub const DEFAULT_LEASE_SECONDS: u32 = 3_600;

#[cfg(test)]
mod farm_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_commercial;
