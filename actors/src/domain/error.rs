use permetrix_storage::{Money, Timestamp};
use thiserror::Error;

/// A rule said no. Each variant maps to one HTTP status and error code at the edge.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DomainError {
    /// No pool matches the tool name or product id.
    #[error(
        "no tool named '{0}' is provisioned for this tenant; GET /licenses/status lists the tools"
    )]
    UnknownTool(String),
    /// Every seat the active limit allows is taken, and the pool has no overage.
    #[error(
        "all {limit} seats of '{tool}' are in use; retry later or borrow with wait_seconds to queue"
    )]
    NoSeats {
        /// Tool name.
        tool: String,
        /// The active seat limit.
        limit: u32,
    },
    /// The commit is used up and so is the overage allowance.
    #[error(
        "all {limit} seats of '{tool}' are in use, overage included (max_overage {max_overage}); retry later or ask the vendor for more"
    )]
    MaxOverageReached {
        /// Tool name.
        tool: String,
        /// The active seat limit.
        limit: u32,
        /// The active overage allowance.
        max_overage: u32,
    },
    /// The overage borrow would push month-to-date spend over the customer's cap.
    #[error(
        "an overage borrow of '{tool}' costs {price} and would push this month's overage spend ({spent}) above the cap of {cap}; raise or clear the cap with PUT /config/protection"
    )]
    SpendCapReached {
        /// Tool name.
        tool: String,
        /// Charge the borrow would book.
        price: Money,
        /// Month-to-date overage spend.
        spent: Money,
        /// The cap.
        cap: Money,
    },
    /// The user already holds as many seats of the tool as allowed.
    #[error(
        "user '{user}' already holds {max} seat(s) of '{tool}', the per-user limit; return one first"
    )]
    UserLimitReached {
        /// Tool name.
        tool: String,
        /// User.
        user: String,
        /// The limit.
        max: u32,
    },
    /// The borrow id names no active borrow (returned, expired or never issued).
    #[error("no active borrow has this id; it was returned, expired, or never issued")]
    UnknownBorrow,
    /// The package is suspended, revoked, or outside its validity window.
    #[error(
        "the license package for '{tool}' is {why}; borrows are refused until the vendor reactivates it"
    )]
    PackageInactive {
        /// Tool name.
        tool: String,
        /// Human reason.
        why: String,
    },
    /// A customer restriction above the vendor's limit.
    #[error(
        "{field} {requested} exceeds the vendor's limit of {limit} for '{tool}'; customers may only lower limits"
    )]
    ExceedsVendorLimit {
        /// Tool name.
        tool: String,
        /// Which limit.
        field: &'static str,
        /// Asked for.
        requested: u32,
        /// Vendor's limit.
        limit: u32,
    },
    /// The tenant already has a package for this product.
    #[error(
        "tenant already has a package for product '{0}'; change it with PATCH /api/vendor/packages/{{package_id}}"
    )]
    PackageExists(String),
    /// The request is well-formed but violates a rule of the domain.
    #[error("{0}")]
    Invalid(String),
    /// The borrow id names a lease that expired (no heartbeat or return in time); its
    /// seat was freed.
    #[error(
        "this borrow's lease expired at {} and its seat was freed; heartbeat more often than the lease length, and borrow again",
        super::rfc3339(*expired_at)
    )]
    LeaseExpired {
        /// When the lease expired.
        expired_at: Timestamp,
    },
    /// An `Idempotency-Key` was used before with a different request.
    #[error(
        "this Idempotency-Key was already used with a different request; use a fresh key for a new request"
    )]
    IdempotencyKeyReused,
    /// No package with this id was provisioned by the caller.
    #[error("you have no package with id '{0}'; GET /api/vendor/customers lists your packages")]
    UnknownPackage(String),
    /// The package was revoked: it cannot change any more.
    #[error(
        "package '{0}' is revoked and cannot be changed; provision the product again to replace it"
    )]
    PackageRevoked(String),
    /// No request for more seats has this id (for this vendor).
    #[error("no request for more seats has id '{0}'; GET /api/vendor/requests lists them")]
    UnknownRequest(String),
    /// The request was answered already.
    #[error("request '{id}' was already {status}; a new request can be filed")]
    RequestDecided {
        /// Request id.
        id: String,
        /// `approved` or `rejected`.
        status: &'static str,
    },
    /// An offline checkout beyond the package's offline limits (none allowed, too many
    /// hours, or every offline seat out).
    #[error("{why}")]
    OfflineLimitReached {
        /// Tool name.
        tool: String,
        /// Which limit, in a sentence.
        why: String,
    },
    /// A v2 signature nonce this tenant has seen within its window.
    #[error("this X-Nonce was already used; sign every request with a fresh nonce")]
    ReplayedNonce,
    /// A signed timestamp whose window had passed by the time the tenant handled it.
    #[error(
        "X-Timestamp is more than 300 s away from the server's clock; check the client's clock"
    )]
    StaleSignature,
    /// A request for the same package is waiting for the vendor.
    #[error(
        "a request for more seats of '{tool}' is already waiting for the vendor (id '{id}'); wait for its answer"
    )]
    RequestPending {
        /// Tool name.
        tool: String,
        /// The pending request.
        id: String,
    },
}

impl DomainError {
    /// The error code a client sees (the `error` field of the body, the `reason` of
    /// denied events and of borrow failure metrics).
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::UnknownTool(_) => "unknown_tool",
            DomainError::NoSeats { .. } => "no_seats",
            DomainError::MaxOverageReached { .. } => "max_overage_reached",
            DomainError::SpendCapReached { .. } => "spend_cap_reached",
            DomainError::UserLimitReached { .. } => "user_limit_reached",
            DomainError::UnknownBorrow => "unknown_borrow",
            DomainError::PackageInactive { .. } => "package_inactive",
            DomainError::ExceedsVendorLimit { .. } => "exceeds_vendor_limit",
            DomainError::PackageExists(_) => "package_exists",
            DomainError::Invalid(_) => "invalid_request",
            DomainError::LeaseExpired { .. } => "lease_expired",
            DomainError::IdempotencyKeyReused => "idempotency_key_reused",
            DomainError::UnknownPackage(_) => "unknown_package",
            DomainError::PackageRevoked(_) => "package_revoked",
            DomainError::UnknownRequest(_) => "unknown_request",
            DomainError::RequestDecided { .. } => "request_decided",
            DomainError::RequestPending { .. } => "request_pending",
            DomainError::OfflineLimitReached { .. } => "offline_limit_reached",
            DomainError::ReplayedNonce => "replayed_nonce",
            DomainError::StaleSignature => "stale_timestamp",
        }
    }
}
