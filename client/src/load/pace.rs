//! Where request slots come from: at once (closed loop) or released at the offered
//! rate by a ticker thread (open loop), each with its intended send time.
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// Where slots come from.
pub(super) enum Pace {
    Closed { end: Instant, max: Option<u64> },
    Open(Arc<OpenPace>),
}

pub(super) struct OpenPace {
    pub(super) start: Instant,
    pub(super) rate: f64,
    pub(super) permits: Semaphore,
    pub(super) released: AtomicU64,
    pub(super) max: Option<u64>,
}

/// Slots taken so far (single-threaded: shared by the lanes of this thread).
pub(super) struct Taken(pub(super) Cell<u64>);

impl Pace {
    /// The intended send time of the next slot, or `None` once the run is over.
    pub(super) async fn next(&self, taken: &Taken) -> Option<Instant> {
        match self {
            Pace::Closed { end, max } => {
                let now = Instant::now();
                let i = taken.0.get();
                if now >= *end || max.is_some_and(|m| i >= m) {
                    return None;
                }
                taken.0.set(i + 1);
                Some(now)
            }
            Pace::Open(p) => {
                let permit = p.permits.acquire().await.ok()?;
                permit.forget();
                let i = taken.0.get();
                taken.0.set(i + 1);
                if p.max.is_some_and(|m| i + 1 >= m) {
                    // The last slot: lanes still waiting for one are done.
                    p.permits.close();
                }
                Some(p.start + Duration::from_secs_f64(i as f64 / p.rate))
            }
        }
    }
}

/// Releases open-loop slots at the offered rate until `end`, on its own thread (the
/// async timer has 1 ms granularity, which would delay every slot by up to 1 ms).
pub(super) fn ticker(pace: Arc<OpenPace>, end: Instant) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut released = 0u64;
        loop {
            let now = Instant::now();
            if now >= end {
                pace.permits.close();
                return;
            }
            let due = ((now - pace.start).as_secs_f64() * pace.rate) as u64 + 1;
            let due = pace.max.map_or(due, |m| due.min(m));
            if due > released {
                pace.permits.add_permits((due - released) as usize);
                released = due;
                pace.released.store(released, Ordering::Release);
            }
            if pace.max == Some(released) {
                // Every slot is out; the lane that takes the last one closes.
                return;
            }
            let next = pace.start + Duration::from_secs_f64(released as f64 / pace.rate);
            let wait = next.saturating_duration_since(Instant::now());
            std::thread::sleep(wait.clamp(Duration::from_micros(20), Duration::from_millis(50)));
        }
    })
}
