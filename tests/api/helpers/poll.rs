//! The one polling helper: a bounded retry that fails the test with what it was waiting
//! for, instead of a sleep that hopes the server got there.
use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long anything that takes milliseconds (a start, a log line, a state change) may
/// take before the test fails: generous, reached only when something is broken.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Pause between two probes: short, so a wait ends soon after its condition holds.
const INTERVAL: Duration = Duration::from_millis(2);

/// What a probe answers: done (with a value), or not yet (with what it saw instead).
pub trait Probe {
    /// What [`wait_until`] returns once the probe is done.
    type Done;
    /// `Ok` when done; otherwise what was seen, for the timeout message.
    fn settle(self) -> Result<Self::Done, String>;
}

impl Probe for bool {
    type Done = ();
    fn settle(self) -> Result<(), String> {
        if self { Ok(()) } else { Err("false".into()) }
    }
}

impl<T, E: Debug> Probe for Result<T, E> {
    type Done = T;
    fn settle(self) -> Result<T, String> {
        self.map_err(|seen| format!("{seen:?}"))
    }
}

/// Polls `probe` until it is done (`true`, or `Ok`), for at most [`PATIENCE`]; returns
/// its value. Fails the test naming `what` and the last thing the probe saw.
pub async fn wait_until<P, F, Fut>(what: &str, mut probe: F) -> P::Done
where
    P: Probe,
    F: FnMut() -> Fut,
    Fut: Future<Output = P>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        let seen = match probe().await.settle() {
            Ok(done) => return done,
            Err(seen) => seen,
        };
        assert!(
            Instant::now() < deadline,
            "gave up after {PATIENCE:?} waiting until {what}; last seen: {seen}"
        );
        actix_rt::time::sleep(INTERVAL).await;
    }
}
