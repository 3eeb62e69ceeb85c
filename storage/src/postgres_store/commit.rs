//! Group commit across tenants: many tenants' writes in one statement per batch.
//!
//! Writers queue their records and get a ticket at once ([`Committer::append`]). The
//! committer task takes everything queued as one batch and sends it as a single
//! statement — one round trip, one transaction — whose first part touches every
//! tenant's owner row under the epoch its writes carry (the fence, `batch::BATCH`). The rows
//! of tenants whose fence did not come back are not written, and their writers get
//! [`crate::StorageError::Fenced`]; the others' tickets resolve once the commit returns
//! (with `synchronous_commit = on`: once it is durable). Writes that arrive meanwhile
//! form the next batch. Two batches may be in flight on two connections when their
//! tenants are disjoint, so one tenant's writes always commit in order.
//!
//! Within a batch, a tenant's records are collapsed to the last write of each key (a
//! lease put and deleted in the same batch writes nothing). Append-only records are
//! plain inserts: a key already stored, or inserted twice in one batch, is a fork and
//! fails that tenant's writes loudly instead of overwriting.
//!
//! A batch that fails (the connection broke, the database refused) fails its writers,
//! and every write of those tenants queued behind them: they were made on top of the
//! failed ones. Such a tenant takes no writes until it is loaded again
//! ([`Committer::clear_poison`]).
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::Notify;

use super::connect::Connector;
use super::lease::Lease;
use super::pool::Conn;
use crate::group_commit::Settle;
use crate::{Durable, Epoch, FlushObserver, StorageError, TenantId};

mod batch;

use batch::commit;

/// Batches in flight at once (on as many connections).
const MAX_IN_FLIGHT: usize = 2;
/// Writes per batch at most (bounds the statement's size).
const MAX_BATCH: usize = 4096;
/// One record a write makes: the full key (see [`crate::keys`]) and the value, or its
/// removal.
pub(super) struct Rec {
    key: Vec<u8>,
    /// Where the id starts in `key` (the kind byte is just before it).
    id_at: usize,
    value: Option<Vec<u8>>,
}

impl Rec {
    /// `record` of `tenant`, as [`crate::layout::record_of`] made it.
    pub(super) fn new(
        tenant: &TenantId,
        (key, value): (Vec<u8>, Option<Vec<u8>>),
    ) -> Result<Self, StorageError> {
        let id_len = crate::keys::split(tenant, &key)
            .map(|(_, id)| id.len())
            .ok_or_else(|| {
                StorageError::Unavailable(format!("a record key of tenant {tenant} is malformed"))
            })?;
        Ok(Rec {
            id_at: key.len() - id_len,
            key,
            value,
        })
    }

    fn kind(&self) -> u8 {
        self.key[self.id_at - 1]
    }

    fn id(&self) -> &[u8] {
        &self.key[self.id_at..]
    }
}

struct Write {
    /// Position in the queue of all writes (per tenant: commit order).
    seq: u64,
    tenant: TenantId,
    epoch: Epoch,
    records: Vec<Rec>,
    settle: Settle,
}

/// Per tenant with writes not settled yet.
struct Tally {
    /// `seq` of its last write queued.
    last: u64,
    /// Every write of it up to this `seq` has settled.
    settled: u64,
    /// A write of it failed: it takes no writes until it is loaded again.
    poisoned: bool,
}

struct Queue {
    writes: VecDeque<Write>,
    tenants: HashMap<TenantId, Tally>,
    next_seq: u64,
    closed: bool,
    finished: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the committer task: a write was queued, or the store is closing.
    wake: Notify,
    /// Wakes callers waiting for writes to settle (with the queue's mutex).
    settled: Condvar,
    lease: Arc<Lease>,
    observer: Option<Arc<dyn FlushObserver>>,
    fenced: AtomicU64,
}

/// The group committer of one store.
pub(super) struct Committer {
    shared: Arc<Shared>,
}

impl Committer {
    /// Starts the committer task on the store's runtime.
    pub(super) fn start(
        runtime: &tokio::runtime::Handle,
        connector: Arc<Connector>,
        lease: Arc<Lease>,
        observer: Option<Arc<dyn FlushObserver>>,
    ) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                writes: VecDeque::new(),
                tenants: HashMap::new(),
                next_seq: 1,
                closed: false,
                finished: false,
            }),
            wake: Notify::new(),
            settled: Condvar::new(),
            lease,
            observer,
            fenced: AtomicU64::new(0),
        });
        runtime.spawn(run(Arc::clone(&shared), connector));
        Committer { shared }
    }

    /// Queues one tenant's records, written as its owner under `epoch`.
    pub(super) fn append(
        &self,
        tenant: &TenantId,
        epoch: Epoch,
        records: Vec<Rec>,
    ) -> Result<Durable, StorageError> {
        let (settle, durable) = Settle::new();
        let mut q = self.shared.queue();
        if q.closed {
            return Err(StorageError::ShuttingDown);
        }
        let seq = q.next_seq;
        let tally = q.tenants.entry(tenant.clone()).or_insert(Tally {
            last: seq,
            // Everything of it before this write has settled (it had no entry).
            settled: seq - 1,
            poisoned: false,
        });
        if tally.poisoned {
            return Err(StorageError::FlushFailed(format!(
                "an earlier write of tenant {tenant} failed; its state must be loaded again \
                 before it writes"
            )));
        }
        tally.last = seq;
        q.next_seq += 1;
        q.writes.push_back(Write {
            seq,
            tenant: tenant.clone(),
            epoch,
            records,
            settle,
        });
        drop(q);
        self.shared.wake.notify_one();
        Ok(durable)
    }

    /// Waits until every write of `tenant` queued so far has settled (its reads see
    /// them from then on).
    pub(super) fn settle(&self, tenant: &TenantId) {
        let mut q = self.shared.queue();
        let Some(target) = q.tenants.get(tenant).map(|t| t.last) else {
            return;
        };
        while q.tenants.get(tenant).is_some_and(|t| t.settled < target) {
            q = self.shared.wait(q);
        }
    }

    /// Waits until every write queued so far has settled.
    pub(super) fn settle_all(&self) {
        let mut q = self.shared.queue();
        let targets: Vec<(TenantId, u64)> = q
            .tenants
            .iter()
            .map(|(t, tally)| (t.clone(), tally.last))
            .collect();
        for (tenant, target) in targets {
            while q.tenants.get(&tenant).is_some_and(|t| t.settled < target) {
                q = self.shared.wait(q);
            }
        }
    }

    /// `tenant` was loaded again: it may write again.
    pub(super) fn clear_poison(&self, tenant: &TenantId) {
        let mut q = self.shared.queue();
        if let Some(tally) = q.tenants.get_mut(tenant) {
            tally.poisoned = false;
            if tally.settled == tally.last {
                q.tenants.remove(tenant);
            }
        }
    }

    /// Writes refused by a fence so far.
    pub(super) fn fenced(&self) -> u64 {
        self.shared.fenced.load(Ordering::Relaxed)
    }

    /// Refuses new writes and waits until every queued one has settled.
    pub(super) fn close(&self) {
        let mut q = self.shared.queue();
        q.closed = true;
        self.shared.wake.notify_one();
        while !q.finished {
            q = self.shared.wait(q);
        }
    }
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // Every update of the queue is complete before its lock is released.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, q: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
        self.settled.wait(q).unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the next batch: the queued writes of tenants that have none in flight, in
    /// queue order; a tenant's writes under a second epoch wait for the next batch.
    fn take(&self, busy: &HashSet<TenantId>) -> Option<Vec<Write>> {
        let mut q = self.queue();
        let mut taken: Vec<Write> = Vec::new();
        let mut epochs: HashMap<TenantId, Epoch> = HashMap::new();
        let mut held: HashSet<TenantId> = HashSet::new();
        let mut kept = VecDeque::new();
        for w in q.writes.drain(..) {
            let wait = taken.len() >= MAX_BATCH
                || busy.contains(&w.tenant)
                || held.contains(&w.tenant)
                || epochs.get(&w.tenant).is_some_and(|e| *e != w.epoch);
            if wait {
                held.insert(w.tenant.clone());
                kept.push_back(w);
                continue;
            }
            epochs.insert(w.tenant.clone(), w.epoch);
            taken.push(w);
        }
        q.writes = kept;
        (!taken.is_empty()).then_some(taken)
    }

    /// Settles a batch's writes: `outcome` is the set of tenants whose fence came back,
    /// or why the batch failed.
    fn settle(&self, writes: Vec<Write>, outcome: Result<HashSet<String>, Arc<str>>) {
        let mut q = self.queue();
        let mut poisoned = HashSet::new();
        for w in writes {
            let seq = w.seq;
            let tenant = w.tenant.clone();
            match &outcome {
                Ok(passed) if passed.contains(tenant.as_str()) => w.settle.durable(),
                Ok(_) => {
                    // Counted before the writer hears of it.
                    self.fenced.fetch_add(1, Ordering::Relaxed);
                    w.settle.fenced(tenant.as_str());
                }
                Err(reason) => {
                    w.settle.failed(Arc::clone(reason));
                    poisoned.insert(tenant.clone());
                }
            }
            q.settled_through(&tenant, seq);
        }
        if let Err(reason) = &outcome {
            q.poison(&poisoned, reason);
        }
        drop(q);
        self.settled.notify_all();
    }
}

impl Queue {
    fn settled_through(&mut self, tenant: &TenantId, seq: u64) {
        if let Some(tally) = self.tenants.get_mut(tenant) {
            tally.settled = tally.settled.max(seq);
            if tally.settled == tally.last && !tally.poisoned {
                self.tenants.remove(tenant);
            }
        }
    }

    /// Fails the queued writes of `tenants` (they were made on top of failed ones) and
    /// refuses their next writes until they are loaded again.
    fn poison(&mut self, tenants: &HashSet<TenantId>, reason: &Arc<str>) {
        let mut kept = VecDeque::with_capacity(self.writes.len());
        let mut failed = Vec::new();
        for w in self.writes.drain(..) {
            if tenants.contains(&w.tenant) {
                failed.push(w);
            } else {
                kept.push_back(w);
            }
        }
        self.writes = kept;
        for w in failed {
            let (tenant, seq) = (w.tenant.clone(), w.seq);
            w.settle.failed(Arc::clone(reason));
            self.settled_through(&tenant, seq);
        }
        for tenant in tenants {
            if let Some(tally) = self.tenants.get_mut(tenant) {
                tally.poisoned = true;
            } else {
                self.tenants.insert(
                    tenant.clone(),
                    Tally {
                        last: self.next_seq - 1,
                        settled: self.next_seq - 1,
                        poisoned: true,
                    },
                );
            }
        }
    }
}

/// The committer task: keeps up to [`MAX_IN_FLIGHT`] batches going until the store
/// closes and everything queued has settled.
async fn run(shared: Arc<Shared>, connector: Arc<Connector>) {
    let mut idle: Vec<Conn> = Vec::new();
    let mut in_flight = FuturesUnordered::new();
    let mut busy: HashSet<TenantId> = HashSet::new();
    loop {
        while in_flight.len() < MAX_IN_FLIGHT {
            let Some(writes) = shared.take(&busy) else {
                break;
            };
            let tenants: Vec<TenantId> = writes.iter().map(|w| w.tenant.clone()).collect();
            busy.extend(tenants.iter().cloned());
            let conn = idle.pop();
            let shared = Arc::clone(&shared);
            let connector = Arc::clone(&connector);
            in_flight.push(async move {
                let conn = commit(&shared, &connector, conn, writes).await;
                (conn, tenants)
            });
        }
        if in_flight.is_empty() {
            let q = shared.queue();
            if q.closed && q.writes.is_empty() {
                break;
            }
        }
        tokio::select! {
            Some((conn, tenants)) = in_flight.next(), if !in_flight.is_empty() => {
                for t in &tenants {
                    busy.remove(t);
                }
                if let Some(conn) = conn {
                    idle.push(conn);
                }
            }
            () = shared.wake.notified() => {}
        }
    }
    shared.queue().finished = true;
    shared.settled.notify_all();
}
