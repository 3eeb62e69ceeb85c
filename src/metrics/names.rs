//! Metric and label names: the external contract (API.md, "Metrics"). Dashboards
//! depend on every one of them; change none.

/// Borrow requests that reached a tenant (authenticated, well-formed), by tool.
pub const BORROW_ATTEMPTS: &str = "license_borrow_attempts_total";
/// Borrows granted, by tool.
pub const BORROW_SUCCESS: &str = "license_borrow_success_total";
/// Borrows refused or failed, by tool and reason (an error code).
pub const BORROW_FAILURE: &str = "license_borrow_failure_total";
/// Time from a borrow request's arrival at the tenant to its answer.
pub const BORROW_DURATION: &str = "license_borrow_duration_seconds";
/// Seats in use now.
pub const LICENSES_BORROWED: &str = "licenses_borrowed";
/// Seats that may be held at once now (the limit in force).
pub const LICENSES_TOTAL: &str = "licenses_total";
/// Overage seats in use now.
pub const LICENSES_OVERAGE: &str = "licenses_overage";
/// Borrows granted beyond the commit (each books a charge).
pub const OVERAGE_CHECKOUTS: &str = "license_overage_checkouts_total";
/// HTTP requests answered.
pub const HTTP_REQUESTS: &str = "license_http_requests_total";
/// HTTP request latency.
pub const HTTP_DURATION: &str = "license_http_request_duration_seconds";
/// Messages admitted to a tenant's mailbox and not yet picked up.
pub const MAILBOX_DEPTH: &str = "permetrix_tenant_mailbox_depth";
/// Time a tenant actor spent handling one message (excluding the wait for durability).
pub const MESSAGE_DURATION: &str = "permetrix_tenant_message_duration_seconds";
/// Restarts of a tenant actor by its supervisor.
pub const ACTOR_RESTARTS: &str = "permetrix_tenant_actor_restarts_total";
/// Messages refused because the tenant's mailbox was full (answered 503).
pub const MAILBOX_REJECTIONS: &str = "permetrix_tenant_mailbox_rejections_total";
/// Requests held until the `Retry-After` their connection was given with a 503
/// `tenant_overloaded` (the client retried early).
pub const EARLY_RETRIES_HELD: &str = "permetrix_early_retries_held_total";
/// Time of one storage flush + fsync.
pub const FLUSH_DURATION: &str = "permetrix_storage_flush_duration_seconds";
/// Writes made durable by one flush.
pub const FLUSH_BATCH_SIZE: &str = "permetrix_storage_flush_batch_size";

/// Label names. None carries a user name or a borrow id.
pub mod label {
    /// Tenant id, or [`super::OTHER_TENANTS`].
    pub const TENANT: &str = "tenant";
    /// Tool (product) name as provisioned, or [`super::UNKNOWN_TOOL`].
    pub const TOOL: &str = "tool";
    /// Error code of a failed borrow.
    pub const REASON: &str = "reason";
    /// Route pattern (`/licenses/{tool}/status`), never the raw path.
    pub const ROUTE: &str = "route";
    /// HTTP method.
    pub const METHOD: &str = "method";
    /// HTTP status code.
    pub const STATUS_CODE: &str = "status_code";
    /// Message kind handled by a tenant actor.
    pub const MESSAGE: &str = "message";
}

/// The `tenant` of series aggregated by the cardinality guard.
pub const OTHER_TENANTS: &str = "_other";
/// The `tool` of borrows that name no provisioned tool (the name asked for is not a
/// label: anyone can send any string).
pub const UNKNOWN_TOOL: &str = "_unknown";
/// The `route` of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// The `reason` of a borrow whose client went away before the answer.
pub const CANCELLED: &str = "cancelled";
