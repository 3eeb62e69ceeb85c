//! The tenant's rules as plain, synchronous Rust: seats, commit vs overage, customer
//! restrictions, spend caps, leases and the charge ledger.
//!
//! Nothing here does I/O or reads a clock: every operation takes `now` and returns the
//! records to persist ([`Effects`]); the actor persists them and replies. That keeps
//! the rules unit-testable and the actor a thin shell. Input arrives parsed
//! ([`ToolName`], [`LeaseSeconds`], [`Seats`], …): each rule on a field is checked
//! once, by its type's `parse`.
//!
//! # Layout
//!
//! The modules build on each other in one direction, from plain values up to the
//! operations on [`TenantState`]:
//!
//! - values: `input` (parsed request fields), `views` (what replies show),
//!   `webhook_events` (what vendors are told), `effects` (what an operation changed),
//!   `borrow` (a borrow asked and granted), `error`;
//! - the parts of a tenant's memory, each knowing nothing of the state around it:
//!   `pool`, `ledger`, `usage`, `expiry` (leases by expiry), `idempotency` (remembered
//!   keys), `nonces` (v2 signature nonces seen), `queue` (waiters per pool), `outbox`
//!   (the webhook outbox's ends and the refusals not written yet), `offline` (offline
//!   checkout: its input and the package's offline limits);
//! - `state`: [`TenantState`] itself, loading, settings, pools, status;
//! - operations added to it by topic: `leasing` (borrow, return, heartbeat, expiry),
//!   `retries` (idempotent borrow and return), `waiting` (the wait queue), `budget`,
//!   `package`, `requests`, `limits` (the commercial model).
mod borrow;
mod budget;
mod calendar;
mod effects;
mod error;
mod expiry;
mod idempotency;
mod input;
mod leasing;
mod ledger;
mod limits;
mod nonces;
mod offline;
mod outbox;
mod package;
mod pool;
mod queue;
mod requests;
mod retries;
mod state;
mod usage;
mod views;
mod waiting;
mod webhook_events;

pub use borrow::{BorrowRequest, Grant, Returned};
pub use calendar::month_of;
pub use effects::{Effects, TenantEvent, TenantEventKind};
pub use error::DomainError;
pub use expiry::EXPIRED_MEMORY;
pub use idempotency::{IdempotencyKey, IdempotencyTicket, KEY_RETENTION, MAX_KEY_LEN};
pub use input::{
    LeaseSeconds, MAX_NAME, MAX_OVERAGE_EXPOSURE_CENTS, Seats, ToolName, UserName, WaitSeconds,
    check_overage_exposure, check_seat_sum, text_field,
};
pub use ledger::{LedgerHead, chain_hash, verify_chain};
pub use limits::UserLimit;
pub use nonces::{MAX_NONCES, SIGNATURE_WINDOW, SignedNonce};
pub use offline::{MAX_FINGERPRINT, MAX_OFFLINE_HOURS, OfflineCheckout, OfflineHours};
pub use outbox::{DENIAL_WINDOW, OutboxPolicy, Staged, stage_stored};
pub use pool::{Limits, Pool};
pub use queue::{MAX_WAITERS_PER_POOL, QueueEntry, Queued, Served, WaiterId, is_queueable};
pub use state::{ProvisionRequest, SettingsPatch, TenantState};
pub use views::{LeaseView, TenantSnapshot, ToolStatus, UsageTotals, rfc3339};

pub use budget::{BudgetLine, Change, RestrictionPatch};
pub use package::{PackagePatch, SeatLimits, resolve_limits};
pub use requests::{Decided, Decision, MoreRequest};
pub use usage::{PoolUsage, UsageHead};
pub use webhook_events::{DenialSummary, EventMask, Quarantine, WebhookEvent, WebhookEventKind};

#[cfg(test)]
mod farm_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_commercial;
#[cfg(test)]
mod tests_offline;
#[cfg(test)]
mod tests_outbox;
