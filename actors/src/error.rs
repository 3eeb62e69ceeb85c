use std::time::Duration;

use permetrix_storage::{Broker, StorageError};
use thiserror::Error;

use crate::domain::DomainError;

/// Why a message to a tenant produced no reply of its own.
#[derive(Debug, Error)]
pub enum TenantError {
    /// No live tenant has this id. Nothing was activated.
    #[error("no tenant with this id")]
    UnknownTenant,
    /// A rule refused the operation.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The tenant's mailbox is full; retry after the given delay.
    #[error("tenant is busy: its mailbox is full; retry in {} s", retry_after.as_secs().max(1))]
    Overloaded {
        /// Suggested back-off.
        retry_after: Duration,
    },
    /// The actor is restarting or stopped; the request was not applied.
    #[error("tenant actor unavailable: {0}")]
    Unavailable(&'static str),
    /// The write could not be made durable; the request is not acknowledged.
    #[error("storage unavailable: {0}")]
    Storage(#[from] StorageError),
    /// Another broker owns the tenant: the request belongs there
    /// (`SCALE-OUT.md`, "Routing"). Nothing was activated here.
    #[error("tenant is owned by another broker ({})", .0.node)]
    Elsewhere(Broker),
    /// The tenant's actor crashed too often and the tenant is quarantined until an
    /// operator resumes it (see [`crate::quarantine`]). Nothing was applied.
    #[error(
        "tenant is quarantined: its actor crashed {restarts} times within {} s",
        period.as_secs()
    )]
    Quarantined {
        /// Restarts that triggered the quarantine.
        restarts: u32,
        /// The period they happened in.
        period: Duration,
    },
    /// The tenant did not answer before the deadline.
    #[error("tenant did not answer within the deadline")]
    Timeout,
}
