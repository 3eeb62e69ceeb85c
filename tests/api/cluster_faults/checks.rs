//! After the faults, through the proxy: every tenant holds exactly the borrows its
//! clients were told they hold (every acknowledged borrow present, every acknowledged
//! return gone, nothing unacknowledged), every acknowledged overage borrow has its one
//! charge, and every ledger verifies.
use std::collections::HashSet;

use serde_json::Value;

use super::load::{Ledger, held_at};
use super::stop::SPARE;
use crate::helpers::*;

/// The body of a GET at `t` through the proxy, once it answers 200.
async fn settled_get(via: &TestApp, t: &Tenant, path: &str) -> Value {
    wait_until(&format!("{path} of {} answers", t.id), || async {
        let reply = via.tenant_get(t, path).await;
        match reply.status.as_u16() {
            200 => Ok(reply.body),
            _ => Err(reply.body),
        }
    })
    .await
}

fn ids(listed: &Value, field: &str) -> HashSet<String> {
    listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|b| b[field].as_str().expect("an id").to_owned())
        .collect()
}

/// Checks every tenant against what its clients were told; the charges found.
pub async fn every_promise_kept(
    via: &TestApp,
    tenants: &[Tenant],
    pool: &Tool,
    ledger: &Ledger,
) -> usize {
    let mut charges = 0;
    for t in tenants {
        let listed = ids(&settled_get(via, t, "/borrows").await, "id");
        let held: HashSet<String> = [pool.name, SPARE.name]
            .iter()
            .flat_map(|tool| held_at(ledger, t, tool))
            .collect();
        let missing: Vec<_> = held.difference(&listed).collect();
        let unacknowledged: Vec<_> = listed.difference(&held).collect();
        assert!(
            missing.is_empty() && unacknowledged.is_empty(),
            "{}: acknowledged borrows missing {missing:?}; borrows nobody was told of {unacknowledged:?}",
            t.id
        );
        for (id, tenant) in &ledger.returned {
            assert!(
                tenant != &t.id || !listed.contains(id),
                "{}: returned borrow {id} is back",
                t.id
            );
        }

        let booked = settled_get(via, t, "/overage-charges").await;
        let charged = ids(&booked["charges"], "borrow_id");
        let promised: HashSet<String> = ledger
            .charged
            .iter()
            .filter(|(_, tenant)| **tenant == t.id)
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(
            charged, promised,
            "{}: the charges are those acknowledged",
            t.id
        );
        assert_eq!(
            booked["charges"].as_array().map(Vec::len),
            Some(promised.len()),
            "{}: one charge per overage borrow",
            t.id
        );
        charges += promised.len();

        let verified = settled_get(via, t, "/overage-charges/verify").await;
        assert_eq!(verified["valid"], true, "{}: {verified}", t.id);

        for tool in [pool, &SPARE] {
            let status = settled_get(via, t, &format!("/licenses/{}/status", tool.id)).await;
            let held = held_at(ledger, t, tool.name).len() as u64;
            assert_eq!(
                status["borrowed"].as_u64(),
                Some(held),
                "{}: {status}",
                t.id
            );
        }
    }
    charges
}
