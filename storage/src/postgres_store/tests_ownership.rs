//! Ownership against a real server: two [`PgStore`]s on one database are two brokers.
//! A lease is made to lapse the way it does in production (the database sees no
//! renewal in time), never by reaching into the store.
use std::sync::Arc;
use std::time::Duration;

use super::tests::{Sql, acquire, config, database, tenant, wait_until};
use super::*;
use crate::test_records::lease;
use crate::{Acquisition, Location, Ownership, TenantMutation};

const TTL: Duration = Duration::from_secs(2);

fn broker(url: &str, name: &str) -> PgStore {
    PgStore::connect(url, config(name, TTL)).unwrap()
}

/// Ends `store`'s lease on the database clock, as if it had not renewed in time.
fn lapse(sql: &Sql, store: &PgStore) {
    sql.run(&format!(
        "UPDATE brokers SET lease_until = now() - interval '1 second' WHERE node = '{}'",
        store.node()
    ));
}

#[tokio::test]
async fn a_stale_owner_is_fenced_and_epochs_only_grow() {
    let Some(url) = database("fencing") else {
        return;
    };
    let sql = Sql::new(&url);
    let (a, b) = (broker(&url, "a:1"), broker(&url, "b:1"));
    let acme = tenant("acme");
    let first = acquire(&a, "acme");
    assert_eq!(a.locate(&acme).unwrap(), Location::Local(first));
    match b.acquire(&acme).unwrap() {
        Acquisition::OwnedBy(owner) => {
            assert_eq!((owner.node, owner.address), (a.node(), "a:1".to_owned()));
        }
        other => panic!("b acquired a tenant a owns: {other:?}"),
    }
    let kept = lease("ecu");
    a.append(&acme, first, &[TenantMutation::PutLease(kept.clone())])
        .unwrap()
        .wait()
        .await
        .unwrap();

    lapse(&sql, &a);
    let second = match b.acquire(&acme).unwrap() {
        Acquisition::Acquired { epoch, records } => {
            assert_eq!(records.leases, vec![kept.clone()]);
            epoch
        }
        other => panic!("the lapsed owner kept the tenant: {other:?}"),
    };
    assert!(second > first);
    // The old owner still thinks it owns acme: its write is refused, not made.
    let late = a
        .append(&acme, first, &[TenantMutation::PutLease(lease("late"))])
        .unwrap()
        .wait()
        .await;
    assert!(matches!(late, Err(StorageError::Fenced { .. })), "{late:?}");
    assert_eq!(a.counters().fenced_writes, 1);
    assert_eq!(b.load_tenant(&acme).unwrap().leases, vec![kept]);

    // Its next renewal learns that the lease is gone; it cannot acquire until it rejoins.
    wait_until("a notices its lease is gone", TTL * 3, || !a.lease_holds());
    assert_eq!(a.counters().leases_lost, 1);
    assert!(a.acquire(&tenant("globex")).is_err());
    let old_node = a.node();
    a.rejoin().unwrap();
    assert!(a.lease_holds());
    assert_ne!(a.node(), old_node);
    assert!(matches!(a.acquire(&acme).unwrap(), Acquisition::OwnedBy(_)));

    b.release(&acme, second).unwrap();
    assert_eq!(b.locate(&acme).unwrap(), Location::Unowned);
    let third = acquire(&a, "acme");
    assert!(third > second);
    // A release under an old epoch changes nothing.
    b.release(&acme, second).unwrap();
    assert_eq!(a.locate(&acme).unwrap(), Location::Local(third));
    assert_eq!(b.counters().releases, 1);
    assert_eq!(a.counters().acquisitions, 2);
}

/// A takeover waits for the batch that holds the owner row, then loads what it wrote.
#[tokio::test]
async fn a_takeover_waits_for_the_batch_in_flight_and_loads_it() {
    let Some(url) = database("takeover_waits") else {
        return;
    };
    let sql = Sql::new(&url);
    let a = broker(&url, "a:1");
    let b = Arc::new(broker(&url, "b:1"));
    let acme = tenant("acme");
    let epoch = acquire(&a, "acme");
    let mut held = lease("ecu");
    a.append(&acme, epoch, &[TenantMutation::PutLease(held.clone())])
        .unwrap()
        .wait()
        .await
        .unwrap();
    // Hold the lease row, so that a's next batch passes its fence and then waits.
    let locker = sql.conn();
    locker
        .batch_now(
            "BEGIN; SELECT 1 FROM tenant_records WHERE tenant = 'acme' FOR UPDATE",
            "locking",
        )
        .unwrap();
    held.lease_seconds = 7200;
    let in_flight = a
        .append(&acme, epoch, &[TenantMutation::PutLease(held.clone())])
        .unwrap();
    wait_until("a's batch waits", Duration::from_secs(10), || {
        sql.lock_waiters() == 1
    });
    lapse(&sql, &a);
    let taker = Arc::clone(&b);
    let takeover = std::thread::spawn(move || taker.acquire(&tenant("acme")).unwrap());
    wait_until("b's acquisition waits", Duration::from_secs(10), || {
        sql.lock_waiters() == 2
    });
    locker.batch_now("COMMIT", "unlocking").unwrap();
    in_flight.wait().await.unwrap();
    match takeover.join().unwrap() {
        Acquisition::Acquired {
            epoch: taken,
            records,
        } => {
            assert!(taken > epoch);
            assert_eq!(records.leases, vec![held]);
        }
        other => panic!("b did not take the lapsed tenant: {other:?}"),
    }
}

/// A broker that cannot renew (here: the database holds its row locked) stops
/// holding its lease at its local deadline, and a renewal that lands later does not
/// revive it.
#[test]
fn the_lease_stops_holding_at_the_local_deadline() {
    let Some(url) = database("local_deadline") else {
        return;
    };
    let sql = Sql::new(&url);
    let a = broker(&url, "a:1");
    assert!(a.lease_holds());
    let locker = sql.conn();
    locker
        .batch_now(
            &format!(
                "BEGIN; SELECT 1 FROM brokers WHERE node = '{}' FOR UPDATE",
                a.node()
            ),
            "locking",
        )
        .unwrap();
    wait_until("the local deadline passes", TTL * 3, || !a.lease_holds());
    locker.batch_now("COMMIT", "unlocking").unwrap();
    wait_until("the stalled renewal is done", TTL * 3, || {
        sql.lock_waiters() == 0
    });
    assert!(!a.lease_holds());
    let old = a.node();
    a.rejoin().unwrap();
    assert!(a.lease_holds());
    let left: i64 = sql
        .conn()
        .query_now(
            "SELECT count(*) FROM brokers WHERE node = $1",
            &[&old],
            "test SQL",
        )
        .unwrap()[0]
        .get(0);
    assert_eq!(left, 0, "the old registration is gone");
}

/// A broker that leaves hands every tenant over at once.
#[tokio::test]
async fn leaving_releases_every_tenant_after_its_writes() {
    let Some(url) = database("leaving") else {
        return;
    };
    let (a, b) = (broker(&url, "a:1"), broker(&url, "b:1"));
    let epochs = [acquire(&a, "acme"), acquire(&a, "globex")];
    let last = lease("ecu");
    let ticket = a
        .append(
            &tenant("globex"),
            epochs[1],
            &[TenantMutation::PutLease(last.clone())],
        )
        .unwrap();
    a.leave().unwrap();
    ticket.wait().await.unwrap();
    assert!(!a.lease_holds());
    assert_eq!(a.counters().releases, 2);
    for id in ["acme", "globex"] {
        assert_eq!(b.locate(&tenant(id)).unwrap(), Location::Unowned);
    }
    match b.acquire(&tenant("globex")).unwrap() {
        Acquisition::Acquired { records, .. } => assert_eq!(records.leases, vec![last]),
        other => panic!("{other:?}"),
    }
}
