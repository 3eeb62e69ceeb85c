//! Webhook delivery: the outbox depth, deliveries by outcome, events dropped from full
//! outboxes, endpoints disabled. No tenant or endpoint label: deliveries are per
//! endpoint, and an endpoint's state is in the vendor API.
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};

use super::names::{self, label};

/// How one delivery attempt ended (the `outcome` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// The receiver answered something else.
    HttpError,
    /// No answer within the timeout.
    Timeout,
    /// No connection (refused, reset, DNS, TLS).
    ConnectError,
    /// The address is private and the server does not allow that.
    RefusedAddress,
}

impl DeliveryOutcome {
    fn label(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::HttpError => "http_error",
            DeliveryOutcome::Timeout => "timeout",
            DeliveryOutcome::ConnectError => "connect_error",
            DeliveryOutcome::RefusedAddress => "refused_address",
        }
    }
}

/// The webhook families.
pub struct WebhookMetrics {
    depth: IntGauge,
    deliveries: IntCounterVec,
    dropped: IntCounter,
    disabled: IntCounter,
}

impl WebhookMetrics {
    pub(crate) fn new(registry: &prometheus::Registry) -> prometheus::Result<Self> {
        let depth = IntGauge::new(
            names::WEBHOOK_OUTBOX_DEPTH,
            "Outbox events some active endpoint has not received yet, over all tenants.",
        )?;
        let deliveries = IntCounterVec::new(
            Opts::new(
                names::WEBHOOK_DELIVERIES,
                "Webhook delivery attempts, by outcome.",
            ),
            &[label::OUTCOME],
        )?;
        let dropped = IntCounter::new(
            names::WEBHOOK_EVENTS_DROPPED,
            "Events dropped undelivered from full tenant outboxes.",
        )?;
        let disabled = IntCounter::new(
            names::WEBHOOK_ENDPOINTS_DISABLED,
            "Webhook endpoints disabled after failing for the whole retry period.",
        )?;
        registry.register(Box::new(depth.clone()))?;
        registry.register(Box::new(deliveries.clone()))?;
        registry.register(Box::new(dropped.clone()))?;
        registry.register(Box::new(disabled.clone()))?;
        Ok(WebhookMetrics {
            depth,
            deliveries,
            dropped,
            disabled,
        })
    }

    /// Counts one delivery attempt.
    pub fn delivery(&self, outcome: DeliveryOutcome) {
        self.deliveries.with_label_values(&[outcome.label()]).inc();
    }

    /// Counts events dropped from a full outbox.
    pub fn dropped(&self, events: u64) {
        self.dropped.inc_by(events);
    }

    /// Counts an endpoint disabled.
    pub fn endpoint_disabled(&self) {
        self.disabled.inc();
    }

    /// One tenant's outbox depth went from `before` to `now`.
    pub fn outbox_depth_changed(&self, before: u64, now: u64) {
        let delta =
            i64::try_from(now).unwrap_or(i64::MAX) - i64::try_from(before).unwrap_or(i64::MAX);
        self.depth.add(delta);
    }
}
