//! The families with a `tenant` label: names (from [`super::names`]), help texts,
//! types and label names, in one place.
use prometheus::proto::MetricType;

use super::names::{self, label};

/// One per-tenant family: name, help, type and label names.
pub(crate) struct Spec {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) kind: MetricType,
    pub(crate) labels: &'static [&'static str],
}

pub(crate) const ATTEMPTS: Spec = Spec {
    name: names::BORROW_ATTEMPTS,
    help: "Borrow requests that reached a tenant, by tool.",
    kind: MetricType::COUNTER,
    labels: &[label::TENANT, label::TOOL],
};
pub(crate) const SUCCESS: Spec = Spec {
    name: names::BORROW_SUCCESS,
    help: "Borrows granted, by tool.",
    kind: MetricType::COUNTER,
    labels: &[label::TENANT, label::TOOL],
};
pub(crate) const FAILURE: Spec = Spec {
    name: names::BORROW_FAILURE,
    help: "Borrows refused or failed, by tool and error code.",
    kind: MetricType::COUNTER,
    labels: &[label::TENANT, label::TOOL, label::REASON],
};
pub(crate) const OVERAGE_CHECKOUTS: Spec = Spec {
    name: names::OVERAGE_CHECKOUTS,
    help: "Borrows granted beyond the commit (each books an overage charge).",
    kind: MetricType::COUNTER,
    labels: &[label::TENANT, label::TOOL],
};
pub(crate) const BORROW_DURATION: Spec = Spec {
    name: names::BORROW_DURATION,
    help: "Time from a borrow request's arrival at its tenant to the answer, in seconds.",
    kind: MetricType::HISTOGRAM,
    labels: &[label::TENANT],
};
pub(crate) const BORROWED: Spec = Spec {
    name: names::LICENSES_BORROWED,
    help: "Seats in use.",
    kind: MetricType::GAUGE,
    labels: &[label::TENANT, label::TOOL],
};
pub(crate) const TOTAL: Spec = Spec {
    name: names::LICENSES_TOTAL,
    help: "Seats that may be held at once (the limit in force).",
    kind: MetricType::GAUGE,
    labels: &[label::TENANT, label::TOOL],
};
pub(crate) const OVERAGE: Spec = Spec {
    name: names::LICENSES_OVERAGE,
    help: "Overage seats in use.",
    kind: MetricType::GAUGE,
    labels: &[label::TENANT, label::TOOL],
};
pub(crate) const MAILBOX_DEPTH: Spec = Spec {
    name: names::MAILBOX_DEPTH,
    help: "Messages admitted to the tenant's mailbox and not yet picked up by its actor.",
    kind: MetricType::GAUGE,
    labels: &[label::TENANT],
};
pub(crate) const MESSAGE_DURATION: Spec = Spec {
    name: names::MESSAGE_DURATION,
    help: "Time the tenant's actor spent handling one message, in seconds.",
    kind: MetricType::HISTOGRAM,
    labels: &[label::TENANT, label::MESSAGE],
};
pub(crate) const RESTARTS: Spec = Spec {
    name: names::ACTOR_RESTARTS,
    help: "Restarts of the tenant's actor by its supervisor.",
    kind: MetricType::COUNTER,
    labels: &[label::TENANT],
};
pub(crate) const REJECTIONS: Spec = Spec {
    name: names::MAILBOX_REJECTIONS,
    help: "Requests refused with 503 because the tenant's mailbox was full.",
    kind: MetricType::COUNTER,
    labels: &[label::TENANT],
};

pub(crate) const QUARANTINED: Spec = Spec {
    name: names::TENANT_QUARANTINED,
    help: "1 while the tenant is quarantined after a crash loop (its requests get 503 until an operator resumes it), else 0.",
    kind: MetricType::GAUGE,
    labels: &[label::TENANT],
};
pub(crate) const QUARANTINES: Spec = Spec {
    name: names::TENANT_QUARANTINES,
    help: "Times the tenant was quarantined after a crash loop.",
    kind: MetricType::COUNTER,
    labels: &[label::TENANT],
};

pub(crate) const SPECS: [&Spec; 14] = [
    &ATTEMPTS,
    &SUCCESS,
    &FAILURE,
    &OVERAGE_CHECKOUTS,
    &BORROW_DURATION,
    &BORROWED,
    &TOTAL,
    &OVERAGE,
    &MAILBOX_DEPTH,
    &MESSAGE_DURATION,
    &RESTARTS,
    &REJECTIONS,
    &QUARANTINED,
    &QUARANTINES,
];
