//! The per-tenant families, rendered at scrape time.
//!
//! Reading at scrape time (rather than keeping labelled children in registered
//! vectors) is what makes two guarantees cheap: a removed tenant leaves no series
//! behind (its entry is gone, so nothing is rendered), and the cardinality guard can
//! fold idle tenants into `tenant="_other"` without touching the hot paths.
//!
//! **Cardinality guard.** When more than `max_tenants` tenants have series, the
//! `max_tenants` most recently active ones (a non-empty mailbox counts as active now)
//! keep their own `tenant` label; every other tenant's series are summed into
//! `tenant="_other"` (counters and histograms add up, gauges add up per tool). Sums
//! over all tenants stay exact; a tenant moving between its own label and `_other`
//! looks like a counter reset to Prometheus, which `rate()` tolerates.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use permetrix_actors::Registry;
use permetrix_storage::TenantId;
use prometheus::core::{Collector, Desc, Metric};
use prometheus::proto::{self, MetricFamily, MetricType};

use super::families::{
    ATTEMPTS, BORROW_DURATION, BORROWED, FAILURE, MAILBOX_DEPTH, MESSAGE_DURATION, OVERAGE,
    OVERAGE_CHECKOUTS, QUARANTINED, QUARANTINES, REJECTIONS, RESTARTS, SPECS, SUCCESS, Spec, TOTAL,
};
use super::names;
use super::tenant::{TenantSeries, TenantSeriesMap};

/// Collects every family with a `tenant` label.
pub(crate) struct TenantCollector {
    series: Arc<TenantSeriesMap>,
    /// Source of mailbox depths; set once the actors are started.
    mailboxes: Arc<OnceLock<Registry>>,
    max_tenants: usize,
    descs: Vec<Desc>,
}

impl TenantCollector {
    pub(crate) fn new(
        series: Arc<TenantSeriesMap>,
        mailboxes: Arc<OnceLock<Registry>>,
        max_tenants: usize,
    ) -> prometheus::Result<Self> {
        let descs = SPECS
            .iter()
            .map(|s| {
                Desc::new(
                    s.name.to_owned(),
                    s.help.to_owned(),
                    s.labels.iter().map(|l| (*l).to_owned()).collect(),
                    HashMap::new(),
                )
            })
            .collect::<prometheus::Result<_>>()?;
        Ok(TenantCollector {
            series,
            mailboxes,
            max_tenants,
            descs,
        })
    }
}

/// A sample being summed: counters and gauges are one number, histograms a set.
enum Value {
    Scalar(f64),
    Histogram(proto::Histogram),
}

impl Value {
    fn add(&mut self, other: Value) {
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => *a += b,
            (Value::Histogram(a), Value::Histogram(b)) => {
                a.set_sample_count(a.get_sample_count() + b.get_sample_count());
                a.set_sample_sum(a.get_sample_sum() + b.get_sample_sum());
                // Same family, same bucket bounds: cumulative counts add up bucket-wise.
                let buckets = a
                    .get_bucket()
                    .iter()
                    .zip(b.get_bucket())
                    .map(|(x, y)| {
                        let mut sum = x.clone();
                        sum.set_cumulative_count(x.cumulative_count() + y.cumulative_count());
                        sum
                    })
                    .collect();
                a.set_bucket(buckets);
            }
            _ => {}
        }
    }
}

/// One family's samples by label values; equal label sets are summed.
struct Family {
    spec: &'static Spec,
    samples: BTreeMap<Vec<String>, Value>,
}

impl Family {
    fn new(spec: &'static Spec) -> Self {
        Family {
            spec,
            samples: BTreeMap::new(),
        }
    }

    fn add(&mut self, labels: Vec<String>, value: Value) {
        match self.samples.get_mut(&labels) {
            Some(existing) => existing.add(value),
            None => {
                self.samples.insert(labels, value);
            }
        }
    }

    fn into_proto(self) -> MetricFamily {
        let spec = self.spec;
        let metrics = self
            .samples
            .into_iter()
            .map(|(values, value)| {
                let pairs = spec
                    .labels
                    .iter()
                    .zip(values)
                    .map(|(name, value)| {
                        let mut pair = proto::LabelPair::default();
                        pair.set_name((*name).to_owned());
                        pair.set_value(value);
                        pair
                    })
                    .collect();
                let mut metric = proto::Metric::from_label(pairs);
                match (spec.kind, value) {
                    (MetricType::COUNTER, Value::Scalar(v)) => {
                        let mut c = proto::Counter::default();
                        c.set_value(v);
                        metric.set_counter(c);
                    }
                    (_, Value::Scalar(v)) => {
                        let mut g = proto::Gauge::default();
                        g.set_value(v);
                        metric.set_gauge(g);
                    }
                    (_, Value::Histogram(h)) => metric.set_histogram(h),
                }
                metric
            })
            .collect();
        let mut family = MetricFamily::default();
        family.set_name(spec.name.to_owned());
        family.set_help(spec.help.to_owned());
        family.set_field_type(spec.kind);
        family.set_metric(metrics);
        family
    }
}

/// Which tenants keep their own label: all of them up to `max`, else the `max` most
/// recently active (busy mailboxes and quarantined tenants first: an operator must see
/// those by name).
fn named_tenants(
    series: &[Arc<TenantSeries>],
    depths: &HashMap<TenantId, usize>,
    max: usize,
) -> HashSet<TenantId> {
    let mut ranked: Vec<(bool, u64, &TenantId)> = series
        .iter()
        .map(|s| {
            let busy = s.is_quarantined() || depths.get(s.tenant()).is_some_and(|&d| d > 0);
            (busy, s.last_active(), s.tenant())
        })
        .collect();
    if ranked.len() > max {
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
        ranked.truncate(max);
    }
    ranked.into_iter().map(|(_, _, t)| t.clone()).collect()
}

fn scalar(n: u64) -> Value {
    // Counts far below 2^53: exact as f64.
    Value::Scalar(n as f64)
}

impl Collector for TenantCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let series = self.series.all();
        let depths: HashMap<TenantId, usize> = self
            .mailboxes
            .get()
            .map(|r| r.mailboxes())
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.tenant, m.depth))
            .collect();
        let named = named_tenants(&series, &depths, self.max_tenants);
        let name_of = |t: &TenantId| -> String {
            if named.contains(t) {
                t.to_string()
            } else {
                names::OTHER_TENANTS.to_owned()
            }
        };

        let mut attempts = Family::new(&ATTEMPTS);
        let mut success = Family::new(&SUCCESS);
        let mut failure = Family::new(&FAILURE);
        let mut overage_checkouts = Family::new(&OVERAGE_CHECKOUTS);
        let mut borrow_duration = Family::new(&BORROW_DURATION);
        let mut borrowed = Family::new(&BORROWED);
        let mut total = Family::new(&TOTAL);
        let mut overage = Family::new(&OVERAGE);
        let mut mailbox = Family::new(&MAILBOX_DEPTH);
        let mut messages = Family::new(&MESSAGE_DURATION);
        let mut restarts = Family::new(&RESTARTS);
        let mut rejections = Family::new(&REJECTIONS);
        let mut quarantined = Family::new(&QUARANTINED);
        let mut quarantines = Family::new(&QUARANTINES);

        for s in &series {
            let tenant = name_of(s.tenant());
            for (tool, t) in s.tools() {
                let labels = vec![tenant.clone(), tool.clone()];
                attempts.add(labels.clone(), scalar(t.attempts.load(Ordering::Relaxed)));
                success.add(labels.clone(), scalar(t.success.load(Ordering::Relaxed)));
                overage_checkouts.add(labels, scalar(t.overage_checkouts.load(Ordering::Relaxed)));
                for (reason, n) in t.failures() {
                    failure.add(
                        vec![tenant.clone(), tool.clone(), reason.to_owned()],
                        scalar(n),
                    );
                }
            }
            if s.borrow_duration.get_sample_count() > 0 {
                borrow_duration.add(
                    vec![tenant.clone()],
                    Value::Histogram(s.borrow_duration.metric().get_histogram().clone()),
                );
            }
            for level in s.levels() {
                let labels = vec![tenant.clone(), level.tool];
                borrowed.add(labels.clone(), scalar(u64::from(level.borrowed)));
                total.add(labels.clone(), scalar(u64::from(level.total)));
                overage.add(labels, scalar(u64::from(level.overage)));
            }
            for (kind, h) in s.messages() {
                messages.add(
                    vec![tenant.clone(), kind.to_owned()],
                    Value::Histogram(h.metric().get_histogram().clone()),
                );
            }
            restarts.add(
                vec![tenant.clone()],
                scalar(s.restarts.load(Ordering::Relaxed)),
            );
            rejections.add(
                vec![tenant.clone()],
                scalar(s.rejections.load(Ordering::Relaxed)),
            );
            quarantined.add(vec![tenant.clone()], scalar(u64::from(s.is_quarantined())));
            quarantines.add(vec![tenant], scalar(s.quarantines.load(Ordering::Relaxed)));
        }
        // Depth of every running tenant, read now: a tenant that is gone has no entry.
        for (t, depth) in &depths {
            mailbox.add(vec![name_of(t)], scalar(*depth as u64));
        }

        [
            attempts,
            success,
            failure,
            overage_checkouts,
            borrow_duration,
            borrowed,
            total,
            overage,
            mailbox,
            messages,
            restarts,
            rejections,
            quarantined,
            quarantines,
        ]
        .into_iter()
        .map(Family::into_proto)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_sum_bucket_by_bucket() {
        let bucket = |le: f64, n: u64| {
            let mut b = proto::Bucket::default();
            b.set_upper_bound(le);
            b.set_cumulative_count(n);
            b
        };
        let hist = |count: u64, sum: f64, buckets: Vec<proto::Bucket>| {
            let mut h = proto::Histogram::default();
            h.set_sample_count(count);
            h.set_sample_sum(sum);
            h.set_bucket(buckets);
            Value::Histogram(h)
        };
        let mut a = hist(2, 0.5, vec![bucket(0.1, 1), bucket(1.0, 2)]);
        a.add(hist(3, 1.5, vec![bucket(0.1, 0), bucket(1.0, 3)]));
        let Value::Histogram(h) = a else {
            panic!("not a histogram")
        };
        assert_eq!((h.get_sample_count(), h.get_sample_sum()), (5, 2.0));
        let counts: Vec<u64> = h
            .get_bucket()
            .iter()
            .map(|b| b.cumulative_count())
            .collect();
        assert_eq!(counts, vec![1, 5]);
    }
}
