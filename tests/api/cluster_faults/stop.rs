//! SIGSTOP an owner past its lease while a write is in flight, then SIGCONT it.
//!
//! To have a write truly in flight, the test holds the tenant's owner row in the
//! database: the owner's next batch for it waits there (seen in `pg_stat_activity`), and a
//! second borrow, applied in the owner's memory, queues behind it. Then the owner is
//! stopped, the row let go (the waiting batch commits while the owner sleeps), and the
//! owner is kept stopped until the database shows its lease lapsed and another broker
//! acquired the tenant. Woken, the owner must answer nothing from its memory, and the
//! write it still had queued must be fenced.
use std::time::{Duration, Instant};

use serde_json::json;

use super::cluster::{Cluster, Owner, RowLock};
use super::forced;
use super::load::{Shared, book_borrow, keyed, until_definite};
use crate::helpers::*;

/// A tool every tenant has next to the one the clients use, so that the stopped owner's
/// borrows always find a seat (a write to make).
pub const SPARE: Tool = Tool {
    name: "Spare Seats",
    id: "spare-seats",
    commit: 4,
    overage: 0,
    price: 0.0,
};

/// What the stop showed.
pub struct Stopped {
    pub machine: String,
    /// From SIGSTOP until the tenant answered at another broker.
    pub recovered_in: Duration,
    /// The woken owner's fenced writes and lease losses (its /metrics).
    pub fenced: f64,
    pub lease_losses: f64,
}

/// A tenant owned by a running broker, and that owner.
async fn live_owned<'t>(c: &Cluster, tenants: &'t [Tenant]) -> (&'t Tenant, Owner) {
    let running = c.running();
    wait_until("a tenant is owned by a running broker", || async {
        for t in tenants {
            if let Some(owner) = c.db.owner(&t.id).await
                && running.contains(&owner.machine)
                && !c.db.lapsed(&owner.node).await
            {
                return Ok((t, owner));
            }
        }
        Err("none")
    })
    .await
}

/// A borrow of the spare tool at `app` (the owner itself), answered whenever it is.
fn direct_borrow(
    app: &TestApp,
    t: &Tenant,
    user: &str,
    key: &'static str,
) -> actix_rt::task::JoinHandle<Option<Reply>> {
    let (app, host, token) = (app.detached(), t.host.clone(), t.admin_key.clone());
    let body = borrow_body(SPARE.name, user);
    actix_rt::spawn(async move { keyed(&app, &host, "/licenses/borrow", key, &token, &body).await })
}

/// Settles borrow `key` through the proxy and books it. One the owner acknowledged is
/// asked for again (as a client that lost the answer would) and must come back as the
/// same borrow from the new owner; any other is retried until definite.
async fn settle(ledger: &Shared, via: &TestApp, t: &Tenant, key: &str, first: Option<Reply>) {
    let body = borrow_body(SPARE.name, key);
    let send = async |app: &TestApp| {
        keyed(app, &t.host, "/licenses/borrow", key, &t.admin_key, &body).await
    };
    match first {
        Some(first) if first.status.as_u16() == 200 => {
            book_borrow(ledger, t, SPARE.name, &first);
            let again = until_definite(ledger, via, None, send).await;
            assert_eq!(again.body["id"], first.body["id"], "{}", again.body);
            assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
        }
        first => {
            let reply = until_definite(ledger, via, Some(first), send).await;
            book_borrow(ledger, t, SPARE.name, &reply);
        }
    }
}

pub async fn stop_an_owner_past_its_lease(
    c: &Cluster,
    via: &TestApp,
    tenants: &[Tenant],
    ledger: &Shared,
) -> Stopped {
    let (t, owner) = live_owned(c, tenants).await;
    let asleep = c.broker(&owner.machine);
    let direct = asleep.app();
    let other = c
        .running()
        .into_iter()
        .find(|m| *m != owner.machine)
        .expect("another broker runs");

    let lock = RowLock::take(&c.url, &t.id).await;
    let in_flight = direct_borrow(&direct, t, "stop-1", "stop-1");
    wait_until("a batch of the owner waits on the tenant's row", || async {
        c.db.batches_waiting_for(&lock, &owner.machine).await >= 1
    })
    .await;
    let queued = direct_borrow(&direct, t, "stop-2", "stop-2");
    wait_until("the second borrow is in the owner's memory", || async {
        let mine = direct.tenant_get(t, "/borrows?user=stop-2").await;
        mine.status.as_u16() == 200 && mine.body.as_array().is_some_and(|b| b.len() == 1)
    })
    .await;

    asleep.process().signal(Signal::SIGSTOP);
    let stopped_at = Instant::now();
    lock.release().await;
    // Stopped past its lease: until the database says the lease lapsed and another
    // broker acquired the tenant (asked for it through the proxy at that broker).
    let status = format!("/licenses/{}/status", SPARE.id);
    let key = Some(t.admin_key.as_str());
    wait_until(
        "the stopped owner's lease lapsed and another broker acquired the tenant",
        || async {
            // Another machine under a newer epoch: a comparison of node ids would also
            // take the stopped broker's own new registration (it may have lost its lease
            // under load and registered again before the stop) for a move.
            let moved =
                c.db.owner(&t.id)
                    .await
                    .is_some_and(|o| o.machine != owner.machine && o.epoch > owner.epoch);
            if !moved {
                let _ = forced(via, &other, "GET", &t.host, &status, key, None).await;
            }
            moved && c.db.machine_lapsed(&owner.machine).await
        },
    )
    .await;
    wait_until("the tenant answers at another broker", || async {
        let reply = forced(via, &other, "GET", &t.host, &status, key, None);
        reply.await.status.as_u16() == 200
    })
    .await;
    let recovered_in = stopped_at.elapsed();

    asleep.process().signal(Signal::SIGCONT);
    let in_flight = in_flight.await.expect("the first borrow's task");
    let queued = queued.await.expect("the second borrow's task");
    assert!(
        queued.as_ref().is_none_or(|r| r.status.as_u16() != 200),
        "a write queued by an owner whose lease lapsed was acknowledged: {:?}",
        queued.as_ref().map(|r| &r.body)
    );
    // Nothing from its memory: the woken owner refuses, or sends the request on.
    let probe = direct.tenant_get(t, &status).await;
    assert_ne!(
        probe.status.as_u16(),
        200,
        "answered from stale memory: {}",
        probe.body
    );
    if let Some(replay) = probe.headers.get("fly-replay") {
        assert_ne!(replay, &format!("instance={}", owner.machine)[..]);
    }
    let woken = asleep.app();
    let counters = wait_until("the woken owner's late write was fenced", || async {
        let m = scrape(&woken).await;
        let fenced = at(&m, "permetrix_fenced_writes_total");
        let losses = at(&m, "permetrix_broker_lease_losses_total");
        if fenced >= 1.0 && losses >= 1.0 {
            Ok((fenced, losses))
        } else {
            Err(json!({"fenced": fenced, "lease_losses": losses}))
        }
    })
    .await;

    settle(ledger, via, t, "stop-1", in_flight).await;
    settle(ledger, via, t, "stop-2", queued).await;
    Stopped {
        machine: owner.machine,
        recovered_in,
        fenced: counters.0,
        lease_losses: counters.1,
    }
}
