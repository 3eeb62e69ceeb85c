//! Crash-loop quarantine: Erlang's restart intensity and period.
//!
//! A supervised tenant actor that panics is restarted with its state reloaded from
//! storage. A bug that fires on every request (or on every reload) would restart it
//! forever, burning its arbiter thread and logging a panic per request. So, as an
//! Erlang supervisor gives up after more than `intensity` restarts within `period`,
//! a tenant whose actor restarts more than [`RestartIntensity::max_restarts`] times
//! within [`RestartIntensity::period`] is **quarantined**: its actor keeps no state,
//! its requests are refused at admission, and other tenants are untouched. Only an
//! operator lifts it ([`Registry::resume`](crate::Registry::resume)); the next
//! message then reloads the state from storage.
//!
//! [`RestartHistory`] is the rule as a plain struct (no clock, no I/O);
//! [`QuarantineObserver`] is the hook through which the rest of the server learns of
//! a quarantine (metrics go through [`TenantMetrics`](crate::metrics::TenantMetrics)).
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use permetrix_storage::{TenantId, Timestamp, VendorId};

use crate::TenantError;

/// How many restarts within how long quarantine a tenant (Erlang's intensity and
/// period).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartIntensity {
    /// Restarts tolerated within [`RestartIntensity::period`]; one more quarantines the
    /// tenant. At least 1.
    pub max_restarts: u32,
    /// The sliding window the restarts are counted in.
    pub period: Duration,
}

impl RestartIntensity {
    /// The defaults: more than 5 restarts within 60 s. A panic now and then (a rare
    /// bug) never adds up to that; a bug that fires on every request does within
    /// seconds.
    pub const DEFAULT: RestartIntensity = RestartIntensity {
        max_restarts: 5,
        period: Duration::from_secs(60),
    };
}

impl Default for RestartIntensity {
    fn default() -> Self {
        RestartIntensity::DEFAULT
    }
}

/// What a restart means for the tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the intensity: restart and reload.
    Restart,
    /// One restart too many within the period: quarantine.
    Quarantine,
}

/// The recent restarts of one tenant, judged against a [`RestartIntensity`]. Holds at
/// most `max_restarts + 1` instants.
#[derive(Clone, Debug)]
pub struct RestartHistory {
    intensity: RestartIntensity,
    /// Instants of the restarts within the period, oldest first.
    restarts: VecDeque<Timestamp>,
}

impl RestartHistory {
    /// No restarts yet.
    pub fn new(intensity: RestartIntensity) -> Self {
        RestartHistory {
            intensity: RestartIntensity {
                max_restarts: intensity.max_restarts.max(1),
                ..intensity
            },
            restarts: VecDeque::new(),
        }
    }

    /// Records a restart at `now` and says whether it is one too many.
    pub fn record(&mut self, now: Timestamp) -> Verdict {
        let window = i64::try_from(self.intensity.period.as_millis()).unwrap_or(i64::MAX);
        let start = now.millis().saturating_sub(window);
        // A restart exactly `period` ago has left the window.
        while self.restarts.front().is_some_and(|at| at.millis() <= start) {
            self.restarts.pop_front();
        }
        self.restarts.push_back(now);
        let max = usize::try_from(self.intensity.max_restarts).unwrap_or(usize::MAX);
        if self.restarts.len() > max {
            // Only the last `max + 1` can matter for the next verdict.
            while self.restarts.len() > max.saturating_add(1) {
                self.restarts.pop_front();
            }
            Verdict::Quarantine
        } else {
            Verdict::Restart
        }
    }

    /// Restarts counted in the window as of the last [`RestartHistory::record`].
    pub fn recent(&self) -> usize {
        self.restarts.len()
    }

    /// Forgets every restart (the tenant was resumed).
    pub fn clear(&mut self) {
        self.restarts.clear();
    }

    /// The intensity this history is judged against.
    pub fn intensity(&self) -> RestartIntensity {
        self.intensity
    }
}

/// A tenant put in quarantine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantineEvent {
    /// The tenant.
    pub tenant: TenantId,
    /// Its vendor.
    pub vendor: VendorId,
    /// Restarts counted within the period (one more than tolerated).
    pub restarts: u32,
    /// The period they were counted in.
    pub period: Duration,
    /// When the quarantine began.
    pub at: Timestamp,
}

/// Learns when a tenant is quarantined or resumed (webhooks, alerting). Registered with
/// [`Registry::observe_quarantines`](crate::Registry::observe_quarantines).
///
/// `quarantined` runs on the tenant's arbiter thread while its actor restarts, and
/// `resumed` on the caller of [`Registry::resume`](crate::Registry::resume): both must
/// return quickly and never block (hand the event to a queue or a task).
pub trait QuarantineObserver: Send + Sync + 'static {
    /// The tenant was quarantined.
    fn quarantined(&self, event: &QuarantineEvent);
    /// An operator lifted the tenant's quarantine.
    fn resumed(&self, _tenant: &TenantId) {}
}

/// What every tenant of a registry shares about quarantine: the intensity and the
/// observers.
pub(crate) struct Supervision {
    pub(crate) intensity: RestartIntensity,
    observers: RwLock<Vec<Arc<dyn QuarantineObserver>>>,
}

impl Supervision {
    pub(crate) fn new(intensity: RestartIntensity) -> Self {
        Supervision {
            intensity,
            observers: RwLock::new(Vec::new()),
        }
    }

    pub(crate) fn observe(&self, observer: Arc<dyn QuarantineObserver>) {
        self.observers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(observer);
    }

    fn each(&self, f: impl Fn(&dyn QuarantineObserver)) {
        for o in self
            .observers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            f(o.as_ref());
        }
    }
}

/// One tenant's quarantine: its restart history and whether it is quarantined now.
pub(crate) struct Quarantine {
    supervision: Arc<Supervision>,
    /// Read on every admission: the quarantined tenant's requests are refused there.
    flag: AtomicBool,
    /// Touched only by restarts and resumes (rare), so a mutex is fine.
    history: Mutex<RestartHistory>,
}

impl Quarantine {
    pub(crate) fn new(supervision: Arc<Supervision>) -> Self {
        let history = RestartHistory::new(supervision.intensity);
        Quarantine {
            supervision,
            flag: AtomicBool::new(false),
            history: Mutex::new(history),
        }
    }

    pub(crate) fn is_on(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// The refusal of a quarantined tenant's requests.
    pub(crate) fn refusal(&self) -> TenantError {
        let intensity = self.supervision.intensity;
        TenantError::Quarantined {
            restarts: intensity.max_restarts.saturating_add(1),
            period: intensity.period,
        }
    }

    /// Records a restart; on one too many, turns the quarantine on and tells the
    /// observers (the caller logs and updates metrics).
    pub(crate) fn restarted(
        &self,
        tenant: &TenantId,
        vendor: &VendorId,
        now: Timestamp,
    ) -> Option<QuarantineEvent> {
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        // Told once: a tenant already quarantined handles no message, so it cannot
        // restart again; should it anyway, nobody is told twice.
        if history.record(now) == Verdict::Restart || self.flag.swap(true, Ordering::AcqRel) {
            return None;
        }
        let event = QuarantineEvent {
            tenant: tenant.clone(),
            vendor: vendor.clone(),
            restarts: u32::try_from(history.recent()).unwrap_or(u32::MAX),
            period: history.intensity().period,
            at: now,
        };
        drop(history);
        self.supervision.each(|o| o.quarantined(&event));
        Some(event)
    }

    /// Lifts the quarantine and forgets the restarts; whether it was on.
    pub(crate) fn lift(&self, tenant: &TenantId) -> bool {
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        history.clear();
        let was = self.flag.swap(false, Ordering::AcqRel);
        drop(history);
        if was {
            self.supervision.each(|o| o.resumed(tenant));
        }
        was
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    fn history(max_restarts: u32, period_secs: u64) -> RestartHistory {
        RestartHistory::new(RestartIntensity {
            max_restarts,
            period: Duration::from_secs(period_secs),
        })
    }

    #[test]
    fn more_than_max_restarts_within_the_period_quarantine() {
        let mut h = history(3, 60);
        for t in [0, 10, 20] {
            assert_eq!(h.record(at(t)), Verdict::Restart);
        }
        assert_eq!(h.record(at(30)), Verdict::Quarantine);
        assert_eq!(h.recent(), 4);
    }

    #[test]
    fn restarts_older_than_the_period_leave_the_window() {
        let mut h = history(2, 60);
        assert_eq!(h.record(at(0)), Verdict::Restart);
        assert_eq!(h.record(at(30)), Verdict::Restart);
        // The first one is exactly 60 s old: outside the window.
        assert_eq!(h.record(at(60)), Verdict::Restart);
        assert_eq!(h.recent(), 2);
        assert_eq!(h.record(at(61)), Verdict::Quarantine);
    }

    #[test]
    fn a_steady_trickle_below_the_intensity_never_quarantines() {
        let mut h = history(1, 10);
        for i in 0..1_000 {
            assert_eq!(h.record(at(i * 11)), Verdict::Restart);
            assert!(h.recent() <= 2);
        }
    }

    #[test]
    fn memory_stays_bounded_in_a_crash_loop() {
        let mut h = history(5, 3600);
        for i in 0..10_000 {
            let _ = h.record(Timestamp::from_millis(i));
        }
        assert_eq!(h.recent(), 6);
    }

    #[test]
    fn clearing_starts_the_count_again_and_zero_means_one() {
        let mut h = history(0, 60);
        assert_eq!(h.intensity().max_restarts, 1);
        assert_eq!(h.record(at(0)), Verdict::Restart);
        assert_eq!(h.record(at(1)), Verdict::Quarantine);
        h.clear();
        assert_eq!(h.record(at(2)), Verdict::Restart);
    }

    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);

    impl QuarantineObserver for Seen {
        fn quarantined(&self, e: &QuarantineEvent) {
            self.0
                .lock()
                .unwrap()
                .push(format!("quarantined {} {}", e.tenant, e.restarts));
        }
        fn resumed(&self, tenant: &TenantId) {
            self.0.lock().unwrap().push(format!("resumed {tenant}"));
        }
    }

    #[test]
    fn observers_hear_of_the_quarantine_once_and_of_the_resume() {
        let supervision = Arc::new(Supervision::new(RestartIntensity {
            max_restarts: 1,
            period: Duration::from_secs(60),
        }));
        let seen = Arc::new(Seen::default());
        supervision.observe(seen.clone());
        let q = Quarantine::new(supervision);
        let (acme, vector) = (
            TenantId::parse("acme").unwrap(),
            VendorId::parse("vector").unwrap(),
        );
        assert!(q.restarted(&acme, &vector, at(0)).is_none());
        assert!(!q.is_on());
        let event = q.restarted(&acme, &vector, at(1)).unwrap();
        assert_eq!((event.restarts, event.at), (2, at(1)));
        assert!(q.is_on());
        assert!(matches!(
            q.refusal(),
            TenantError::Quarantined { restarts: 2, .. }
        ));
        assert!(q.lift(&acme));
        assert!(!q.lift(&acme), "a second resume finds nothing to lift");
        assert!(!q.is_on());
        assert_eq!(
            *seen.0.lock().unwrap(),
            ["quarantined acme 2", "resumed acme"]
        );
    }
}
