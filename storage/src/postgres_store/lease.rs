//! This broker's lease: one `brokers` row per registration, renewed every TTL/4 on the
//! database clock, and a local deadline that says whether the lease is still proven.
//!
//! The local deadline is kept on `CLOCK_BOOTTIME`, which keeps counting while the
//! process is stopped (SIGSTOP) or the machine sleeps: a broker that wakes up late sees
//! at once that its deadline passed, before it answers anything. The deadline is set
//! from the moment a renewal was *sent* (the database's `now()` is later than that, so
//! the database lease always outlives the local one), less a margin for clock-rate
//! differences. Once it has passed, the lease is lost for good: a late renewal never
//! revives it, and only a new registration ([`Lease::registered`]) holds again.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustix::time::{ClockId, clock_gettime};
use tokio::sync::Notify;

use super::connect::Connector;
use super::pool::Conn;
use crate::StorageError;

/// Registers a broker with a lease of `$4` seconds from now.
pub(super) const REGISTER: &str = "INSERT INTO brokers (node, machine_id, address, lease_until)
     VALUES ($1, $2, $3, now() + make_interval(secs => $4))";

/// Extends a lease that has not lapsed yet. A lapsed lease is never renewed: its
/// tenants may belong to other brokers already.
const RENEW: &str = "UPDATE brokers SET lease_until = now() + make_interval(secs => $2)
     WHERE node = $1 AND lease_until > now()";

/// Forgets broker rows that lapsed long ago (no tenant can be fenced on them any more:
/// any broker may acquire their tenants).
pub(super) const FORGET_OLD_BROKERS: &str =
    "DELETE FROM brokers WHERE lease_until < now() - interval '1 day'";

/// Nanoseconds on `CLOCK_BOOTTIME`.
fn boottime() -> u64 {
    let now = clock_gettime(ClockId::Boottime);
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}

/// The lease of this broker.
pub(super) struct Lease {
    ttl: Duration,
    /// Subtracted from every local deadline.
    margin: Duration,
    /// `<machine id or advertised address>`: the part of the node id that stays.
    node_prefix: String,
    pub(super) machine_id: Option<String>,
    pub(super) address: String,
    /// The current registration (`<prefix>:<uuid>`).
    node: RwLock<Arc<str>>,
    /// Until when (boottime nanoseconds) the lease is proven.
    deadline: AtomicU64,
    /// The deadline passed (or the database refused a renewal): nothing revives it.
    lost: AtomicBool,
    losses: AtomicU64,
    /// The store is closing: the renewer ends.
    stopping: AtomicBool,
    /// Wakes the renewer (a new registration, or closing).
    wake: Notify,
}

impl Lease {
    pub(super) fn new(ttl: Duration, machine_id: Option<String>, address: String) -> Self {
        Lease {
            ttl,
            margin: ttl / 10,
            node_prefix: machine_id.clone().unwrap_or_else(|| address.clone()),
            machine_id,
            address,
            node: RwLock::new(Arc::from("")),
            deadline: AtomicU64::new(0),
            lost: AtomicBool::new(true),
            losses: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    pub(super) fn ttl_secs(&self) -> f64 {
        self.ttl.as_secs_f64()
    }

    /// The current registration's node id.
    pub(super) fn node(&self) -> Arc<str> {
        Arc::clone(&self.node.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// A node id for a new registration.
    pub(super) fn new_node(&self) -> String {
        format!("{}:{}", self.node_prefix, uuid::Uuid::new_v4())
    }

    /// Whether the lease is proven now.
    pub(super) fn holds(&self) -> bool {
        if self.lost.load(Ordering::Acquire) {
            return false;
        }
        if boottime() >= self.deadline.load(Ordering::Acquire) {
            self.lose("its local deadline passed before a renewal succeeded");
            return false;
        }
        true
    }

    /// Marks the lease lost (once).
    pub(super) fn lose(&self, why: &str) {
        if !self.lost.swap(true, Ordering::AcqRel) {
            self.losses.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(node = %self.node(), why, "this broker's lease is lost; it stops serving until it registers again");
        }
    }

    /// Ends the lease without counting a loss (graceful leave).
    pub(super) fn end(&self) {
        self.lost.store(true, Ordering::Release);
    }

    pub(super) fn losses(&self) -> u64 {
        self.losses.load(Ordering::Relaxed)
    }

    /// Nanoseconds on the lease clock, taken just before a registration or renewal is
    /// sent.
    pub(super) fn now() -> u64 {
        boottime()
    }

    fn deadline_after(&self, sent: u64) -> u64 {
        let proven = self.ttl.saturating_sub(self.margin).as_nanos() as u64;
        sent.saturating_add(proven)
    }

    /// `node` is registered now, by a statement sent at `sent`.
    pub(super) fn registered(&self, node: String, sent: u64) {
        *self.node.write().unwrap_or_else(|p| p.into_inner()) = Arc::from(node);
        self.deadline
            .store(self.deadline_after(sent), Ordering::Release);
        self.lost.store(false, Ordering::Release);
        self.wake.notify_one();
    }

    /// A renewal of `node` sent at `sent` succeeded: extends the deadline, unless the
    /// lease was lost meanwhile (a renewal that arrives late revives nothing).
    fn renewed(&self, node: &str, sent: u64) {
        if *self.node() != *node || !self.holds() {
            return;
        }
        self.deadline
            .fetch_max(self.deadline_after(sent), Ordering::AcqRel);
    }

    /// Stops the renewer.
    pub(super) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// Renews the lease every TTL/4 over a connection of its own, so that no other work
/// queues in front of it. Ends when the store closes.
pub(super) async fn renew(lease: Arc<Lease>, connector: Arc<Connector>) {
    let period = lease.ttl / 4;
    let mut conn: Option<Conn> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = lease.wake.notified() => {}
        }
        if lease.stopping.load(Ordering::Acquire) {
            return;
        }
        if !lease.holds() {
            // Lost: only a new registration (rejoin) makes the renewer work again.
            continue;
        }
        let node = lease.node();
        let sent = Lease::now();
        let attempt = async {
            let conn = match &mut conn {
                Some(c) if !c.is_closed() => c,
                _ => conn.insert(Conn::new(connector.connect().await?)),
            };
            conn.execute(RENEW, &[&&*node, &lease.ttl_secs()])
                .await
                .map_err(|e| StorageError::io("renewing the broker lease", e))
        };
        // A renewal that takes longer than the lease is of no use any more.
        let outcome = tokio::time::timeout(lease.ttl, attempt).await;
        match outcome {
            Ok(Ok(1)) => lease.renewed(&node, sent),
            Ok(Ok(_)) => {
                if *lease.node() == *node {
                    lease.lose("the database says its lease lapsed");
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "renewing the broker lease failed; retrying");
                conn = None;
            }
            Err(_) => {
                tracing::warn!("renewing the broker lease timed out; retrying");
                conn = None;
            }
        }
    }
}
