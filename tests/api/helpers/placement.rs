//! Brokers of one cluster in one process: an `Ownership` layered over a server's own
//! that places chosen tenants on other brokers (each server keeps its own copy of the
//! store), as a shared store's ownership would say.
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use permetrix_storage::{Acquisition, Broker, Epoch, Location, Ownership, StorageError, TenantId};

use super::app::TestApp;

/// Which tenants live on which other broker, as the test says; every other tenant is
/// the server's own. Counts the fresh look-ups and the leaves.
#[derive(Default)]
pub struct Placement {
    elsewhere: Mutex<HashMap<String, Broker>>,
    locates: AtomicUsize,
    leaves: AtomicUsize,
}

impl Placement {
    /// From now on `tenant` is owned by `broker`.
    pub fn place(&self, tenant: &str, broker: Broker) {
        self.elsewhere
            .lock()
            .unwrap()
            .insert(tenant.to_owned(), broker);
    }

    /// Fresh look-ups of a tenant's owner (`Ownership::locate`) so far.
    pub fn locates(&self) -> usize {
        self.locates.load(Ordering::SeqCst)
    }

    /// Times the server left the cluster (`Ownership::leave`).
    pub fn leaves(&self) -> usize {
        self.leaves.load(Ordering::SeqCst)
    }

    fn owner(&self, tenant: &TenantId) -> Option<Broker> {
        self.elsewhere.lock().unwrap().get(tenant.as_str()).cloned()
    }
}

/// The broker `app` is, on Fly machine `machine`.
pub fn broker_at(app: &TestApp, machine: &str) -> Broker {
    Broker {
        node: format!("{machine}:test"),
        machine_id: Some(machine.to_owned()),
        address: app.addr.to_string(),
    }
}

/// The server's own ownership, with the placement's tenants owned elsewhere.
pub(super) struct Placed {
    pub(super) own: Arc<dyn Ownership>,
    pub(super) placement: Arc<Placement>,
}

impl Ownership for Placed {
    fn locate(&self, tenant: &TenantId) -> Result<Location, StorageError> {
        self.placement.locates.fetch_add(1, Ordering::SeqCst);
        match self.placement.owner(tenant) {
            Some(broker) => Ok(Location::Remote(broker)),
            None => self.own.locate(tenant),
        }
    }

    fn acquire(&self, tenant: &TenantId) -> Result<Acquisition, StorageError> {
        match self.placement.owner(tenant) {
            Some(broker) => Ok(Acquisition::OwnedBy(broker)),
            None => self.own.acquire(tenant),
        }
    }

    fn release(&self, tenant: &TenantId, epoch: Epoch) -> Result<(), StorageError> {
        self.own.release(tenant, epoch)
    }

    fn lease_holds(&self) -> bool {
        self.own.lease_holds()
    }

    fn rejoin(&self) -> Result<(), StorageError> {
        self.own.rejoin()
    }

    fn leave(&self) -> Result<(), StorageError> {
        self.placement.leaves.fetch_add(1, Ordering::SeqCst);
        self.own.leave()
    }
}
