//! Storage flush duration and batch size, reported by the group-commit flusher.
use permetrix_storage::{FlushObserver, FlushReport};
use prometheus::{Histogram, HistogramOpts};

use super::names;

/// Flush + fsync buckets (seconds).
const DURATION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];
/// Writes per flush.
const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0,
];

/// Receives one report per flush on the flusher thread.
pub(crate) struct FlushMetrics {
    duration: Histogram,
    batch_size: Histogram,
}

impl FlushMetrics {
    pub(crate) fn new(registry: &prometheus::Registry) -> prometheus::Result<Self> {
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                names::FLUSH_DURATION,
                "Time of one storage flush + fsync, in seconds (failed flushes included).",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
        )?;
        let batch_size = Histogram::with_opts(
            HistogramOpts::new(
                names::FLUSH_BATCH_SIZE,
                "Writes made durable by one storage flush.",
            )
            .buckets(BATCH_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(batch_size.clone()))?;
        Ok(FlushMetrics {
            duration,
            batch_size,
        })
    }
}

impl FlushObserver for FlushMetrics {
    fn flushed(&self, report: FlushReport) {
        self.duration.observe(report.duration.as_secs_f64());
        // Batch sizes are far below 2^53: exact as f64.
        self.batch_size.observe(report.batch_size as f64);
    }
}
