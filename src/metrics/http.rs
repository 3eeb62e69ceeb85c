//! HTTP request counters and latency, by route pattern, method and status.
use std::time::Duration;

use actix_web::http::Method;
use dashmap::DashMap;
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts};

use super::names::{self, label};

/// Request latency buckets (seconds).
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `license_http_requests_total` and `license_http_request_duration_seconds`.
pub(crate) struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    /// Children resolved once per label set: the vectors' own lookup takes one lock
    /// shared by every request, this map is sharded.
    children: DashMap<(String, &'static str, u16), (IntCounter, Histogram)>,
    /// `permetrix_early_retries_held_total`.
    early_retries_held: IntCounter,
}

/// The method label: the standard methods by name, anything else as `OTHER` (clients
/// choose the method, so it must not open an unbounded label).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

impl HttpMetrics {
    pub(crate) fn new(registry: &prometheus::Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(names::HTTP_REQUESTS, "HTTP requests answered."),
            &[label::ROUTE, label::METHOD, label::STATUS_CODE],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(names::HTTP_DURATION, "HTTP request latency in seconds.")
                .buckets(BUCKETS.to_vec()),
            &[label::ROUTE, label::METHOD],
        )?;
        let early_retries_held = IntCounter::new(
            names::EARLY_RETRIES_HELD,
            "Requests held until the Retry-After their connection was given with a 503.",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(early_retries_held.clone()))?;
        Ok(HttpMetrics {
            requests,
            duration,
            children: DashMap::new(),
            early_retries_held,
        })
    }

    /// Counts a request held for retrying before its `Retry-After`.
    pub(crate) fn early_retry_held(&self) {
        self.early_retries_held.inc();
    }

    /// Records one answered request. `route` is the matched pattern (or
    /// [`names::UNMATCHED_ROUTE`]), never the raw path.
    pub(crate) fn observe(&self, route: String, method: &Method, status: u16, elapsed: Duration) {
        let method = method_label(method);
        let key = (route, method, status);
        if let Some(c) = self.children.get(&key) {
            c.0.inc();
            c.1.observe(elapsed.as_secs_f64());
            return;
        }
        let status_text = status.to_string();
        let counter =
            self.requests
                .with_label_values(&[key.0.as_str(), method, status_text.as_str()]);
        let histogram = self.duration.with_label_values(&[key.0.as_str(), method]);
        counter.inc();
        histogram.observe(elapsed.as_secs_f64());
        self.children.insert(key, (counter, histogram));
    }
}
