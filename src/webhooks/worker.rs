//! The delivery worker: one lane per (active endpoint, tenant this node delivers for).
//! A lane delivers its tenant's events to its endpoint one at a time, in outbox order;
//! a failed event is retried (with backoff) before any later one, so each endpoint sees
//! each tenant's events in order. Lanes run concurrently up to
//! `--webhooks-concurrency`; a dead receiver holds only its own lanes, and no borrow
//! ever waits for a lane.
//!
//! At start the worker makes a lane for every active endpoint and every live tenant of
//! its vendor, from the stored cursors, and each lane reads its tenant's outbox from
//! storage: undelivered events are found after a restart without activating any
//! tenant's actor. Afterwards actors signal when events become durable.
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use permetrix_storage::records::{Lifecycle, WebhookDeliveryRecord};
use permetrix_storage::{StorageError, Store, TenantId, Timestamp, VendorId};
use tokio::sync::mpsc;

use super::attempt::{self, AttemptCx, Job, Outcome, Retry};
use super::endpoints::Endpoint;
use super::hooks::TenantProgress;
use super::{Inner, Signal, client, delivers_for};

mod upkeep;

/// A lane whose storage failed is tried again after this long.
const STORAGE_RETRY: Duration = Duration::from_secs(5);
/// The longest the loop sleeps without a retry due (it wakes for signals anyway).
const IDLE_WAKE: Duration = Duration::from_secs(3600);
/// Settled deliveries kept per endpoint (the portal's "recent deliveries").
const KEEP_DELIVERIES: usize = 100;
/// New deliveries of an endpoint between two prunings.
const PRUNE_EVERY: u32 = 50;

/// A lane: one endpoint, one tenant.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct LaneKey {
    endpoint: Arc<str>,
    tenant: TenantId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Nothing to do until its tenant signals.
    Idle,
    /// In the ready queue.
    Queued,
    /// A step is running; `again`: run another when it ends (events came meanwhile).
    Busy { again: bool },
    /// Its head event failed; it is tried again at this time.
    Waiting(Timestamp),
}

struct Lane {
    endpoint: Arc<Endpoint>,
    progress: Arc<TenantProgress>,
    /// The last event of the tenant the endpoint has (or skipped); `None` until the
    /// lane first reads: it starts at the endpoint's creation.
    cursor: Option<u64>,
    retry: Option<Retry>,
    state: State,
    /// The endpoint was deleted or disabled while a step ran: drop the lane after it.
    retired: bool,
}

/// What a finished step reports back to the loop.
enum Done {
    Lane(LaneKey, Outcome),
    /// A resend finished.
    Resent(Resend),
}

/// A settled delivery to send again: endpoint and delivery ids.
type Resend = (Arc<str>, String);

pub(super) struct Worker {
    inner: Arc<Inner>,
    cx: Rc<AttemptCx>,
    lanes: HashMap<LaneKey, Lane>,
    /// Endpoint ids of each tenant's lanes.
    by_tenant: HashMap<TenantId, Vec<Arc<str>>>,
    ready: VecDeque<LaneKey>,
    timers: BTreeSet<(Timestamp, LaneKey)>,
    in_flight: usize,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: mpsc::UnboundedReceiver<Done>,
    /// Per tenant: the newest durable event seen, and the outbox depth last reported.
    depth: HashMap<TenantId, (u64, u64)>,
    /// New deliveries per endpoint since its last pruning.
    since_prune: HashMap<Arc<str>, u32>,
    /// Endpoints being disabled (until their change comes back as a signal).
    disabling: HashSet<Arc<str>>,
    /// Resends waiting for a slot.
    resends: VecDeque<(Arc<Endpoint>, WebhookDeliveryRecord)>,
    /// Resends queued or in flight: each delivery is resent once at a time, however
    /// often it is asked for.
    resending: HashSet<Resend>,
}

impl Worker {
    pub(super) fn new(inner: Arc<Inner>, store: Arc<dyn Store>) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let client = client::client(&inner.settings);
        Worker {
            cx: Rc::new(AttemptCx {
                inner: Arc::clone(&inner),
                store,
                client,
            }),
            inner,
            lanes: HashMap::new(),
            by_tenant: HashMap::new(),
            ready: VecDeque::new(),
            timers: BTreeSet::new(),
            in_flight: 0,
            done_tx,
            done_rx,
            depth: HashMap::new(),
            since_prune: HashMap::new(),
            disabling: HashSet::new(),
            resends: VecDeque::new(),
            resending: HashSet::new(),
        }
    }

    pub(super) async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Signal>) {
        let endpoints: Vec<String> = self
            .inner
            .endpoints
            .iter()
            .map(|e| e.key().clone())
            .collect();
        for id in endpoints {
            self.endpoint_changed(&id);
        }
        loop {
            self.fire_timers();
            self.dispatch();
            let wait = self
                .timers
                .first()
                .map(|(at, _)| self.inner.clock.now().until(*at));
            tokio::select! {
                signal = inbox.recv() => match signal {
                    Some(signal) => self.on_signal(signal),
                    None => return,
                },
                Some(done) = self.done_rx.recv() => self.on_done(done),
                () = tokio::time::sleep(wait.unwrap_or(IDLE_WAKE)), if wait.is_some() => {}
            }
        }
    }

    fn on_signal(&mut self, signal: Signal) {
        match signal {
            Signal::Tenant(tenant) => self.tenant_changed(&tenant),
            Signal::Endpoint(id) => self.endpoint_changed(&id),
            Signal::Resend { endpoint, delivery } => self.resend(&endpoint, &delivery),
            Signal::Kick => {}
        }
    }

    /// New durable events (or a freshly loaded actor): make sure the tenant has its
    /// lanes, and run the idle ones.
    fn tenant_changed(&mut self, tenant: &TenantId) {
        let Some(progress) = self
            .inner
            .tenants
            .get(tenant)
            .map(|p| Arc::clone(p.value()))
        else {
            return;
        };
        progress.taken();
        if !delivers_for(tenant) {
            return;
        }
        for endpoint in self.inner.active_endpoints(&progress.vendor) {
            self.ensure_lane(&endpoint, tenant, &progress);
        }
        for key in self.keys_of(tenant) {
            self.wake(&key);
        }
        self.update_depth(tenant, 0);
    }

    /// An endpoint was created, disabled, enabled or deleted: its lanes follow.
    fn endpoint_changed(&mut self, id: &str) {
        self.disabling.remove(id);
        let endpoint = self
            .inner
            .endpoints
            .get(id)
            .map(|e| Arc::clone(e.value()))
            .filter(|e| e.active);
        let Some(endpoint) = endpoint else {
            let keys: Vec<LaneKey> = self
                .lanes
                .keys()
                .filter(|k| &*k.endpoint == id)
                .cloned()
                .collect();
            for key in keys {
                self.retire(&key);
            }
            return;
        };
        let tenants = match self.tenants_of(&endpoint.vendor) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(endpoint = id, error = %e, "cannot list the vendor's tenants for webhooks");
                return;
            }
        };
        for tenant in tenants {
            let progress = self.inner.progress(&tenant, &endpoint.vendor);
            self.ensure_lane(&endpoint, &tenant, &progress);
            let key = LaneKey {
                endpoint: Arc::from(id),
                tenant,
            };
            if let Some(lane) = self.lanes.get_mut(&key) {
                lane.endpoint = Arc::clone(&endpoint);
            }
            self.wake(&key);
        }
    }

    /// The live tenants of `vendor` this node delivers for.
    fn tenants_of(&self, vendor: &VendorId) -> Result<Vec<TenantId>, StorageError> {
        let platform = &self.inner.platform;
        let mut out = Vec::new();
        for tenant in platform.vendor_tenant_ids(vendor)? {
            let live = platform.tenant(&tenant)?.is_some_and(|t| {
                t.lifecycle == Lifecycle::Active && t.vendor_id == vendor.as_str()
            });
            if live && delivers_for(&tenant) {
                out.push(tenant);
            }
        }
        Ok(out)
    }

    /// Makes the lane of `endpoint` and `tenant` if there is none, from its stored
    /// cursor.
    fn ensure_lane(
        &mut self,
        endpoint: &Arc<Endpoint>,
        tenant: &TenantId,
        progress: &Arc<TenantProgress>,
    ) {
        let key = LaneKey {
            endpoint: Arc::from(endpoint.id.as_str()),
            tenant: tenant.clone(),
        };
        if let Some(lane) = self.lanes.get_mut(&key) {
            lane.retired = false;
            return;
        }
        let cursor = match self.inner.platform.webhook_cursor(&endpoint.id, tenant) {
            Ok(c) => c.map(|c| c.delivered_seq),
            Err(e) => {
                tracing::error!(endpoint = %endpoint.id, tenant = %tenant, error = %e, "cannot read a webhook cursor; the lane starts later");
                return;
            }
        };
        self.by_tenant
            .entry(tenant.clone())
            .or_default()
            .push(Arc::clone(&key.endpoint));
        self.lanes.insert(
            key,
            Lane {
                endpoint: Arc::clone(endpoint),
                progress: Arc::clone(progress),
                cursor,
                retry: None,
                state: State::Idle,
                retired: false,
            },
        );
    }

    /// Runs a lane soon: queued if idle, once more if busy. A lane waiting to retry
    /// keeps waiting: new events do not hurry a failing receiver.
    fn wake(&mut self, key: &LaneKey) {
        let Some(lane) = self.lanes.get_mut(key) else {
            return;
        };
        match lane.state {
            State::Idle => {
                lane.state = State::Queued;
                self.ready.push_back(key.clone());
            }
            State::Busy { .. } => lane.state = State::Busy { again: true },
            State::Queued | State::Waiting(_) => {}
        }
    }

    fn retire(&mut self, key: &LaneKey) {
        let Some(lane) = self.lanes.get_mut(key) else {
            return;
        };
        if matches!(lane.state, State::Busy { .. }) {
            lane.retired = true;
        } else {
            self.remove(key);
        }
    }

    fn remove(&mut self, key: &LaneKey) {
        if let Some(lane) = self.lanes.remove(key) {
            if let State::Waiting(at) = lane.state {
                self.timers.remove(&(at, key.clone()));
            }
            if let Some(endpoints) = self.by_tenant.get_mut(&key.tenant) {
                endpoints.retain(|e| *e != key.endpoint);
            }
            self.update_delivered(&key.tenant);
            self.update_depth(&key.tenant, 0);
        }
    }

    /// Moves lanes whose retry time has come to the ready queue.
    fn fire_timers(&mut self) {
        let now = self.inner.clock.now();
        while let Some((at, key)) = self.timers.first().cloned() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            if let Some(lane) = self.lanes.get_mut(&key)
                && lane.state == State::Waiting(at)
            {
                lane.state = State::Queued;
                self.ready.push_back(key);
            }
        }
    }

    /// Starts resends, then queued lanes, while fewer than the limit are in flight.
    fn dispatch(&mut self) {
        let limit = self.inner.settings.concurrency.max(1);
        while self.in_flight < limit {
            let Some((endpoint, delivery)) = self.resends.pop_front() else {
                break;
            };
            self.in_flight += 1;
            let (cx, done) = (Rc::clone(&self.cx), self.done_tx.clone());
            actix_rt::spawn(async move {
                let key = (Arc::from(endpoint.id.as_str()), delivery.id.clone());
                attempt::resend(&cx, &endpoint, delivery).await;
                let _ = done.send(Done::Resent(key));
            });
        }
        while self.in_flight < limit {
            let Some(key) = self.ready.pop_front() else {
                return;
            };
            let Some(lane) = self.lanes.get_mut(&key) else {
                continue;
            };
            if lane.state != State::Queued {
                continue;
            }
            lane.state = State::Busy { again: false };
            let job = Job {
                endpoint: Arc::clone(&lane.endpoint),
                tenant: key.tenant.clone(),
                progress: Arc::clone(&lane.progress),
                cursor: lane.cursor,
                retry: lane.retry,
            };
            self.in_flight += 1;
            let (cx, done) = (Rc::clone(&self.cx), self.done_tx.clone());
            actix_rt::spawn(async move {
                let outcome = attempt::step(&cx, job).await;
                let _ = done.send(Done::Lane(key, outcome));
            });
        }
    }

    fn on_done(&mut self, done: Done) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let (key, outcome) = match done {
            Done::Lane(key, outcome) => (key, outcome),
            Done::Resent(resend) => {
                self.resending.remove(&resend);
                return;
            }
        };
        let Some(lane) = self.lanes.get_mut(&key) else {
            return;
        };
        if lane.retired {
            self.remove(&key);
            return;
        }
        let again = lane.state == State::Busy { again: true };
        let mut counted = false;
        let (next, head) = match outcome {
            Outcome::Idle { cursor, head } => {
                lane.cursor = cursor;
                lane.retry = None;
                (if again { State::Queued } else { State::Idle }, Some(head))
            }
            Outcome::Delivered {
                cursor,
                head,
                new_delivery,
            } => {
                lane.cursor = Some(cursor);
                lane.retry = None;
                counted = new_delivery;
                (State::Queued, Some(head))
            }
            Outcome::Failed {
                retry,
                head,
                new_delivery,
            } => {
                lane.retry = Some(retry);
                counted = new_delivery;
                (State::Waiting(retry.next_at), Some(head))
            }
            Outcome::GaveUp { why } => {
                lane.state = State::Idle;
                self.give_up(&key, why);
                return;
            }
            Outcome::Unavailable(e) => {
                tracing::warn!(endpoint = %key.endpoint, tenant = %key.tenant, error = %e, "webhook lane paused: storage unavailable");
                let at = self.inner.clock.now().plus(STORAGE_RETRY);
                (State::Waiting(at), None)
            }
        };
        if counted {
            self.count_delivery(&key.endpoint);
        }
        if let Some(lane) = self.lanes.get_mut(&key) {
            lane.state = next;
        }
        match next {
            State::Queued => self.ready.push_back(key.clone()),
            State::Waiting(at) => {
                self.timers.insert((at, key.clone()));
            }
            State::Idle | State::Busy { .. } => {}
        }
        self.update_delivered(&key.tenant);
        if let Some(head) = head {
            self.update_depth(&key.tenant, head);
        }
    }
}
