//! Which broker owns a tenant, kept in `tenant_owner` (SCALE-OUT.md, invariants 1–4).
//!
//! - A tenant may be acquired when it is unowned, or its owner's lease has lapsed on
//!   the database clock (or this broker owns it already: a new generation that fences
//!   its own older writes). Acquisition raises the epoch by one and loads the tenant's
//!   state in the same transaction; it waits behind a batch that holds the owner row, so
//!   it loads what that batch wrote.
//! - Release sets the owner to nothing, only under the epoch it was acquired with, after
//!   the tenant's queued writes have settled.
use std::sync::atomic::Ordering;

use tokio_postgres::Row;

use super::PgStore;
use super::lease::{FORGET_OLD_BROKERS, Lease, REGISTER};
use super::pool::Conn;
use super::reads::PgSource;
use crate::layout;
use crate::{
    Acquisition, Broker, Epoch, Location, Ownership, OwnershipCounters, StorageError, TenantId,
};

const ENSURE_ROW: &str = "INSERT INTO tenant_owner (tenant, owner, epoch) VALUES ($1, NULL, 0)
     ON CONFLICT (tenant) DO NOTHING";

/// Takes the tenant if it is free (see the module docs) and this broker's own lease is
/// live in the database; returns the new epoch.
const TAKE: &str = "UPDATE tenant_owner o SET owner = $2, epoch = o.epoch + 1
     WHERE o.tenant = $1
       AND EXISTS (SELECT 1 FROM brokers b WHERE b.node = $2 AND b.lease_until > now())
       AND (o.owner IS NULL OR o.owner = $2 OR NOT EXISTS (
             SELECT 1 FROM brokers b WHERE b.node = o.owner AND b.lease_until > now()))
     RETURNING o.epoch";

const LOCATE: &str = "SELECT o.owner, o.epoch, b.machine_id, b.address,
            coalesce(b.lease_until > now(), false)
     FROM tenant_owner o LEFT JOIN brokers b ON b.node = o.owner
     WHERE o.tenant = $1";

const RELEASE: &str =
    "UPDATE tenant_owner SET owner = NULL WHERE tenant = $1 AND owner = $2 AND epoch = $3";

const RELEASE_ALL: &str = "UPDATE tenant_owner SET owner = NULL WHERE owner = $1";

const END_LEASE: &str = "DELETE FROM brokers WHERE node = $1";

/// Acquisitions tried before giving up when the owner changes under the attempt.
const ACQUIRE_TRIES: usize = 3;

fn column<'r, T: tokio_postgres::types::FromSql<'r>>(
    row: &'r Row,
    index: usize,
) -> Result<T, StorageError> {
    row.try_get(index)
        .map_err(|e| StorageError::io("reading tenant ownership", e))
}

/// Where `tenant` lives, as `node` sees it.
fn locate_on(conn: &mut Conn, tenant: &TenantId, node: &str) -> Result<Location, StorageError> {
    let rows = conn.query_now(
        LOCATE,
        &[&tenant.as_str()],
        format!("locating tenant {tenant}"),
    )?;
    let Some(row) = rows.first() else {
        return Ok(Location::Unowned);
    };
    let owner: Option<String> = column(row, 0)?;
    let live: bool = column(row, 4)?;
    match owner {
        Some(owner) if live && owner == node => {
            Ok(Location::Local(Epoch::new(column::<i64>(row, 1)? as u64)))
        }
        Some(owner) if live => Ok(Location::Remote(Broker {
            node: owner,
            machine_id: column(row, 2)?,
            address: column::<Option<String>>(row, 3)?.unwrap_or_default(),
        })),
        _ => Ok(Location::Unowned),
    }
}

/// Registers `node` with a fresh lease, in the transaction `conn` is in.
pub(super) fn register(conn: &mut Conn, lease: &Lease, node: &str) -> Result<u64, StorageError> {
    conn.execute_now(FORGET_OLD_BROKERS, &[], "forgetting long-lapsed brokers")?;
    let sent = Lease::now();
    conn.execute_now(
        REGISTER,
        &[&node, &lease.machine_id, &lease.address, &lease.ttl_secs()],
        "registering this broker",
    )?;
    Ok(sent)
}

impl PgStore {
    fn lease_lapsed(&self, tenant: &TenantId) -> StorageError {
        StorageError::Unavailable(format!(
            "this broker's lease has lapsed: it cannot own tenant {tenant} until it registers \
             again"
        ))
    }
}

impl Ownership for PgStore {
    fn locate(&self, tenant: &TenantId) -> Result<Location, StorageError> {
        let node = self.lease.node();
        locate_on(&mut *self.pool.get()?, tenant, &node)
    }

    fn acquire(&self, tenant: &TenantId) -> Result<Acquisition, StorageError> {
        for _ in 0..ACQUIRE_TRIES {
            if !self.lease.holds() {
                return Err(self.lease_lapsed(tenant));
            }
            let node = self.lease.node();
            let mut conn = self.pool.get()?;
            let outcome = conn.transaction("BEGIN", |c| {
                c.execute_now(ENSURE_ROW, &[&tenant.as_str()], "adding an owner row")?;
                let taken = c.query_now(
                    TAKE,
                    &[&tenant.as_str(), &&*node],
                    format!("acquiring tenant {tenant}"),
                )?;
                match taken.first() {
                    Some(row) => {
                        let epoch = Epoch::new(column::<i64>(row, 0)? as u64);
                        let records = layout::load(&mut PgSource(c), tenant)?;
                        Ok(Some(Acquisition::Acquired {
                            epoch,
                            records: Box::new(records),
                        }))
                    }
                    None => match locate_on(c, tenant, &node)? {
                        Location::Remote(broker) => Ok(Some(Acquisition::OwnedBy(broker))),
                        // Our own lease lapsed in the database, or the owner's lapsed
                        // just now: look again.
                        Location::Local(_) | Location::Unowned => Ok(None),
                    },
                }
            })?;
            match outcome {
                Some(acquired @ Acquisition::Acquired { .. }) => {
                    self.committer.clear_poison(tenant);
                    self.acquisitions.fetch_add(1, Ordering::Relaxed);
                    return Ok(acquired);
                }
                Some(owned) => return Ok(owned),
                None => continue,
            }
        }
        Err(self.lease_lapsed(tenant))
    }

    fn release(&self, tenant: &TenantId, epoch: Epoch) -> Result<(), StorageError> {
        self.committer.settle(tenant);
        let node = self.lease.node();
        let released = self.pool.get()?.execute_now(
            RELEASE,
            &[&tenant.as_str(), &&*node, &(epoch.get() as i64)],
            format!("releasing tenant {tenant}"),
        )?;
        if released == 1 {
            self.releases.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn lease_holds(&self) -> bool {
        self.lease.holds()
    }

    fn rejoin(&self) -> Result<(), StorageError> {
        let old = self.lease.node();
        let new = self.lease.new_node();
        let sent = self.pool.get()?.transaction("BEGIN", |c| {
            let sent = register(c, &self.lease, &new)?;
            // Nothing is owned under the old registration any more: its tenants may be
            // acquired at once (a batch still holding one of their rows finishes first).
            c.execute_now(
                RELEASE_ALL,
                &[&&*old],
                "releasing the old registration's tenants",
            )?;
            c.execute_now(END_LEASE, &[&&*old], "ending the old registration")?;
            Ok(sent)
        })?;
        self.lease.registered(new, sent);
        tracing::info!(node = %self.lease.node(), previous = %old, "this broker registered again");
        Ok(())
    }

    fn leave(&self) -> Result<(), StorageError> {
        // "After the last write is durable": every write queued so far settles first.
        self.committer.settle_all();
        let node = self.lease.node();
        let released = self.pool.get()?.transaction("BEGIN", |c| {
            let released = c.execute_now(RELEASE_ALL, &[&&*node], "releasing every tenant")?;
            c.execute_now(END_LEASE, &[&&*node], "ending this broker's lease")?;
            Ok(released)
        })?;
        self.lease.end();
        self.releases.fetch_add(released, Ordering::Relaxed);
        tracing::info!(%node, tenants = released, "this broker left: its tenants are released");
        Ok(())
    }

    fn counters(&self) -> OwnershipCounters {
        OwnershipCounters {
            acquisitions: self.acquisitions.load(Ordering::Relaxed),
            releases: self.releases.load(Ordering::Relaxed),
            fenced_writes: self.committer.fenced(),
            leases_lost: self.lease.losses(),
        }
    }
}
