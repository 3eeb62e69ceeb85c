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
/// 1 while the tenant is quarantined after a crash loop (its requests get 503), else 0.
pub const TENANT_QUARANTINED: &str = "permetrix_tenant_quarantined";
/// Times the tenant was quarantined after a crash loop.
pub const TENANT_QUARANTINES: &str = "permetrix_tenant_quarantines_total";
/// Requests held until the `Retry-After` their connection was given with a 503
/// `tenant_overloaded` (the client retried early).
pub const EARLY_RETRIES_HELD: &str = "permetrix_early_retries_held_total";
/// Time of one storage flush + fsync.
pub const FLUSH_DURATION: &str = "permetrix_storage_flush_duration_seconds";
/// Writes made durable by one flush.
pub const FLUSH_BATCH_SIZE: &str = "permetrix_storage_flush_batch_size";

/// Outbox events some active webhook endpoint has not received yet, over all tenants.
pub const WEBHOOK_OUTBOX_DEPTH: &str = "permetrix_webhook_outbox_depth";
/// Webhook delivery attempts, by outcome.
pub const WEBHOOK_DELIVERIES: &str = "permetrix_webhook_deliveries_total";
/// Events dropped undelivered because a tenant's outbox was full.
pub const WEBHOOK_EVENTS_DROPPED: &str = "permetrix_webhook_events_dropped_total";
/// Webhook endpoints disabled after failing for the whole retry period.
pub const WEBHOOK_ENDPOINTS_DISABLED: &str = "permetrix_webhook_endpoints_disabled_total";

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
    /// How a webhook delivery attempt ended.
    pub const OUTCOME: &str = "outcome";
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

/// Tenants this broker owns now (their actors run here), read at scrape time.
pub const TENANTS_OWNED: &str = "permetrix_tenants_owned";
/// Tenants acquired by this broker (at activation).
pub const TENANT_ACQUISITIONS: &str = "permetrix_tenant_acquisitions_total";
/// Tenants released by this broker (passivation, deletion; not the release of every
/// tenant at shutdown, which is one step of the store).
pub const TENANT_RELEASES: &str = "permetrix_tenant_releases_total";
/// Writes refused because another broker owns their tenant now (their actor stops).
pub const FENCED_WRITES: &str = "permetrix_fenced_writes_total";
/// Idle tenant actors stopped to free their memory.
pub const PASSIVATIONS: &str = "permetrix_tenant_passivations_total";
/// Times this broker could not prove its lease and stopped every tenant's actor.
pub const LEASE_LOSSES: &str = "permetrix_broker_lease_losses_total";
/// Requests for a tenant owned by another broker answered with `fly-replay`.
pub const REQUESTS_REPLAYED: &str = "permetrix_requests_replayed_total";
/// Requests for a tenant owned by another broker forwarded to it (`--peer-forwarding`).
pub const REQUESTS_FORWARDED: &str = "permetrix_requests_forwarded_total";
/// Requests for a tenant owned by another broker that could not be routed there
/// (answered `503` with `Retry-After`: a replayed or forwarded request that found yet
/// another owner, no way to reach the owner, or the owner unreachable).
pub const REQUESTS_UNROUTED: &str = "permetrix_requests_unrouted_total";
