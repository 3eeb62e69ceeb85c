//! Set-up shared by the actor-level tests: a tenant registered as the vendor API does
//! it, with one "ecu" pool provisioned through its actor; a store with injectable
//! faults ([`Flaky`]); a polling helper.
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use permetrix_storage::backend::{PlatformBackend, PlatformKey, PlatformWrite, Table};
use permetrix_storage::records::{
    ChargeRecord, MoreRequestRecord, OutboxRecord, PackageRecord, UsageRecord,
};
use permetrix_storage::test_records;
use permetrix_storage::{
    Durability, Durable, DurableGate, Epoch, Money, Platform, SledConfig, SledStore, StorageError,
    Store, TenantId, TenantMutation, TenantRecords, Timestamp,
};

use crate::domain::{BorrowRequest, Grant, ProvisionRequest};
use crate::messages::{Borrow, Provision};
use crate::{Registry, Reply, TenantCx, TenantError, TenantMessage};

/// The "ecu" pool (product name "ECU") a test tenant gets.
#[derive(Clone, Copy)]
pub(crate) struct Pool {
    pub commit: u32,
    pub overage: u32,
    pub overage_cents: i64,
}

impl Pool {
    /// `seats` commit seats, no overage.
    pub(crate) fn commit_only(seats: u32) -> Self {
        Pool {
            commit: seats,
            overage: 0,
            overage_cents: 0,
        }
    }
}

/// Registers tenant `id` of vendor "vector" at `at` (nothing is activated).
pub(crate) async fn register_tenant(store: &Arc<dyn Store>, id: &str, at: Timestamp) -> TenantId {
    Platform::new(Arc::clone(store))
        .create_tenant(
            &test_records::tenant(id, at),
            &test_records::admin_key(id, "admin", at),
        )
        .unwrap()
        .wait()
        .await
        .unwrap();
    TenantId::parse(id).unwrap()
}

/// Registers tenant `id` of vendor "vector" at `at` and provisions `pool` for it.
pub(crate) async fn add_tenant(
    store: &Arc<dyn Store>,
    registry: &Registry,
    id: &str,
    at: Timestamp,
    pool: Pool,
) -> TenantId {
    let tenant = register_tenant(store, id, at).await;
    let base = test_records::package("ecu", pool.commit, at);
    let package = PackageRecord {
        package_id: format!("pkg-{id}"),
        ..test_records::with_overage(base, pool.overage, Money::from_cents(pool.overage_cents))
    };
    registry
        .send(&tenant, Provision(ProvisionRequest { package }))
        .await
        .unwrap();
    tenant
}

/// A borrow by `user` of the test pool, answered at once (no wait, no key).
pub(crate) fn borrow(user: &str) -> Borrow {
    Borrow::now(request(user, None))
}

/// `user`'s request for a seat of the test pool, with the lease length given.
pub(crate) fn request(user: &str, lease_seconds: Option<u32>) -> BorrowRequest {
    BorrowRequest::parse("ECU", user, lease_seconds).unwrap()
}

/// Borrows a seat of the test pool for `user` at once; panics if none is granted.
pub(crate) async fn grant(registry: &Registry, tenant: &TenantId, user: &str) -> Grant {
    match registry.send(tenant, borrow(user)).await {
        Ok(outcome) => outcome
            .granted_now()
            .unwrap_or_else(|| panic!("{user} was not granted a seat at once")),
        Err(e) => panic!("{user} was refused a seat: {e}"),
    }
}

/// A store whose writes can be made to fail, or to be lost (applied, then never
/// durable), whose incarnation can be moved on, and which fences a tenant's writes
/// under any epoch but the one in `epochs` (as a store shared by several brokers does).
pub(crate) struct Flaky {
    pub(crate) inner: SledStore,
    pub(crate) fail_writes: AtomicBool,
    pub(crate) lose_writes: AtomicBool,
    /// Writes are applied, and their durability waits for a gate in `held`.
    pub(crate) hold_writes: AtomicBool,
    pub(crate) held: Mutex<Vec<DurableGate>>,
    pub(crate) incarnation: AtomicU64,
    /// Each tenant's current epoch; a tenant not in it is never fenced.
    pub(crate) epochs: Mutex<HashMap<TenantId, Epoch>>,
}

impl Flaky {
    /// A sled store in `dir` with no fault set.
    pub(crate) fn open(dir: &Path) -> Self {
        Flaky {
            inner: SledStore::open(SledConfig::new(dir)).unwrap(),
            fail_writes: AtomicBool::new(false),
            lose_writes: AtomicBool::new(false),
            hold_writes: AtomicBool::new(false),
            held: Mutex::new(Vec::new()),
            incarnation: AtomicU64::new(0),
            epochs: Mutex::new(HashMap::new()),
        }
    }

    fn refuse(&self, tenant: &TenantId, epoch: Epoch) -> Result<(), StorageError> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(StorageError::Unavailable("injected write failure".into()));
        }
        match self.epochs.lock().unwrap().get(tenant) {
            Some(current) if *current != epoch => Err(StorageError::Fenced {
                tenant: tenant.to_string(),
            }),
            _ => Ok(()),
        }
    }
}

impl PlatformBackend for Flaky {
    fn platform_get(
        &self,
        table: Table,
        key: PlatformKey<'_>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.platform_get(table, key)
    }
    fn platform_scan(
        &self,
        t: Table,
        s: Option<&str>,
    ) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        self.inner.platform_scan(t, s)
    }
    fn platform_apply(&self, writes: &[PlatformWrite<'_>]) -> Result<Durable, StorageError> {
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(StorageError::Unavailable("injected write failure".into()));
        }
        self.inner.platform_apply(writes)
    }
}

impl Store for Flaky {
    fn load_tenant(&self, tenant: &TenantId) -> Result<TenantRecords, StorageError> {
        self.inner.load_tenant(tenant)
    }
    fn append(
        &self,
        tenant: &TenantId,
        epoch: Epoch,
        m: &[TenantMutation],
    ) -> Result<Durable, StorageError> {
        self.refuse(tenant, epoch)?;
        if self.lose_writes.load(Ordering::SeqCst) {
            // Accepted, then lost with a failed flush: the disk never sees it.
            return Ok(Durable::failed("injected flush failure"));
        }
        let durable = self.inner.append(tenant, epoch, m)?;
        if self.hold_writes.load(Ordering::SeqCst) {
            let (ticket, gate) = Durable::gated();
            self.held.lock().unwrap().push(gate);
            return Ok(ticket);
        }
        Ok(durable)
    }
    fn charges(&self, t: &TenantId, a: u64, l: usize) -> Result<Vec<ChargeRecord>, StorageError> {
        self.inner.charges(t, a, l)
    }
    fn usage_events(
        &self,
        t: &TenantId,
        product: &str,
        start: (Timestamp, u64),
        end: Timestamp,
        limit: usize,
    ) -> Result<Vec<UsageRecord>, StorageError> {
        self.inner.usage_events(t, product, start, end, limit)
    }
    fn usage_before(
        &self,
        t: &TenantId,
        product: &str,
        before: Timestamp,
    ) -> Result<Option<UsageRecord>, StorageError> {
        self.inner.usage_before(t, product, before)
    }
    fn outbox(&self, t: &TenantId, a: u64, l: usize) -> Result<Vec<OutboxRecord>, StorageError> {
        self.inner.outbox(t, a, l)
    }
    fn more_requests(&self, t: &TenantId) -> Result<Vec<MoreRequestRecord>, StorageError> {
        self.inner.more_requests(t)
    }
    fn more_request(
        &self,
        t: &TenantId,
        id: &str,
    ) -> Result<Option<MoreRequestRecord>, StorageError> {
        self.inner.more_request(t, id)
    }
    fn durability(&self) -> Durability {
        self.inner.durability()
    }
    fn shutdown(&self) -> Result<(), StorageError> {
        self.inner.shutdown()
    }
    fn incarnation(&self) -> u64 {
        self.incarnation.load(Ordering::SeqCst)
    }
}

/// Polls `done` until it holds, yielding to the actors in between, then (for work on
/// blocking threads) pausing a millisecond between looks, for at most ten seconds.
pub(crate) async fn until(what: &str, done: impl Fn() -> bool) {
    for attempt in 0..11_000 {
        if done() {
            return;
        }
        if attempt < 1_000 {
            actix_rt::task::yield_now().await;
        } else {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
    panic!("never happened: {what}");
}

/// Blocks its tenant's actor, and with it its arbiter thread, until released, so that
/// messages queue up behind it and the arbiter's other tenants cannot answer.
struct Hold(mpsc::Receiver<()>, mpsc::Sender<()>);

impl TenantMessage for Hold {
    type Reply = ();
    const KIND: &'static str = "hold";
    fn handle(self, _: &mut TenantCx<'_>) -> Reply<()> {
        let _ = self.1.send(());
        let _ = self.0.recv();
        Reply::ready(Ok(()))
    }
}

/// A tenant actor blocked by [`hold`].
pub(crate) struct Held {
    /// Send on it to let the actor go on.
    pub(crate) release: mpsc::Sender<()>,
    /// The hold's own answer.
    pub(crate) reply: actix_rt::task::JoinHandle<Result<(), TenantError>>,
}

/// Blocks `tenant`'s actor from inside; returns once the actor has picked the block up.
pub(crate) async fn hold(registry: &Registry, tenant: &TenantId) -> Held {
    let (release, gate) = mpsc::channel();
    let (entered_tx, entered) = mpsc::channel();
    let (registry, tenant) = (registry.clone(), tenant.clone());
    let reply =
        actix_rt::spawn(async move { registry.send(&tenant, Hold(gate, entered_tx)).await });
    until("the actor picks up Hold", || entered.try_recv().is_ok()).await;
    Held { release, reply }
}

/// Panics inside the actor after a phantom borrow (test-only: no production path
/// panics).
pub struct Explode;

impl TenantMessage for Explode {
    type Reply = ();
    const KIND: &'static str = "explode";
    fn handle(self, cx: &mut TenantCx<'_>) -> Reply<()> {
        let now = cx.now();
        let _ = cx
            .state()
            .borrow(&crate::test_support::request("ghost", None), now);
        panic!("injected fault");
    }
}
