//! The load: clients that borrow and return through the proxy and retry every operation
//! with its `Idempotency-Key` until it gets a definite answer, as a build farm's client
//! would across a broker's death; what they were told (the acknowledged borrows, returns
//! and overage charges); and a monitor that reads every pool's status while they run.
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use actix_rt::task::JoinHandle;
use serde_json::{Value, json};

use crate::helpers::*;

/// Pause before a client retries (its retry policy, not a wait for the server).
const BACKOFF: Duration = Duration::from_millis(50);

/// A borrow that was acknowledged (answered 200).
#[derive(Debug, Clone)]
pub struct Granted {
    pub tenant: String,
    pub tool: String,
    pub overage: bool,
}

/// What the clients were told.
#[derive(Default)]
pub struct Ledger {
    /// Acknowledged borrows not returned (by borrow id).
    pub held: HashMap<String, Granted>,
    /// Acknowledged returns: borrow id → tenant.
    pub returned: HashMap<String, String>,
    /// Acknowledged overage borrows: borrow id → tenant (each booked one charge).
    pub charged: HashMap<String, String>,
    pub borrows: u64,
    pub returns: u64,
    /// Borrows refused for want of seats (409).
    pub refused: u64,
    /// Sends of an operation after the first (the same idempotency key again).
    pub retries: u64,
}

impl Ledger {
    pub fn acknowledged(&self) -> u64 {
        self.borrows + self.returns
    }

    fn granted(&mut self, id: &str, granted: Granted) {
        self.borrows += 1;
        if granted.overage {
            self.charged.insert(id.to_owned(), granted.tenant.clone());
        }
        self.held.insert(id.to_owned(), granted);
    }
}

pub type Shared = Rc<RefCell<Ledger>>;

/// Sends one request with an idempotency key; `None` if it got no answer.
pub async fn keyed(
    app: &TestApp,
    host: &str,
    path: &str,
    key: &str,
    token: &str,
    body: &Value,
) -> Option<Reply> {
    let sent = app
        .client
        .post(app.url(path))
        .insert_header(("Host", host))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .insert_header(("Idempotency-Key", key))
        .send_json(body)
        .await
        .ok()?;
    Some(read(sent).await)
}

/// Whether a reply is worth the same request again: no answer, an overloaded or
/// unavailable broker, or the proxy's 502/504.
fn retriable(reply: &Option<Reply>) -> bool {
    reply
        .as_ref()
        .is_none_or(|r| r.status.is_server_error() || r.status.as_u16() == 429)
}

/// Sends `key`'s request through `app` until the answer is definite; the first send
/// may go elsewhere (`first`). Counts the retries.
pub async fn until_definite(
    ledger: &Shared,
    app: &TestApp,
    first: Option<Option<Reply>>,
    send: impl AsyncFn(&TestApp) -> Option<Reply>,
) -> Reply {
    let mut reply = match first {
        Some(reply) => reply,
        None => send(app).await,
    };
    while retriable(&reply) {
        ledger.borrow_mut().retries += 1;
        actix_rt::time::sleep(BACKOFF).await;
        reply = send(app).await;
    }
    reply.expect("a definite reply")
}

/// Books a definite borrow reply: granted (200) or no seat (409). Returns the borrow id.
pub fn book_borrow(ledger: &Shared, t: &Tenant, tool: &str, reply: &Reply) -> Option<String> {
    match reply.status.as_u16() {
        200 => {
            let id = reply.body["id"].as_str().expect("a borrow id").to_owned();
            let granted = Granted {
                tenant: t.id.clone(),
                tool: tool.to_owned(),
                overage: reply.body["is_overage"] == true,
            };
            ledger.borrow_mut().granted(&id, granted);
            Some(id)
        }
        409 => {
            ledger.borrow_mut().refused += 1;
            None
        }
        other => panic!("borrow of {tool} at {}: {other} {}", t.id, reply.body),
    }
}

/// Borrows `tool` at `t` under `key` until the answer is definite; the borrow id if
/// granted.
pub async fn borrow(
    ledger: &Shared,
    app: &TestApp,
    t: &Tenant,
    tool: &str,
    user: &str,
    key: &str,
) -> Option<String> {
    let body = borrow_body(tool, user);
    let reply = until_definite(ledger, app, None, async |app| {
        keyed(app, &t.host, "/licenses/borrow", key, &t.admin_key, &body).await
    })
    .await;
    book_borrow(ledger, t, tool, &reply)
}

/// Returns borrow `id` at `t` under `key` until the answer is definite; it must be 200
/// (the borrow was acknowledged, so it must still be there).
pub async fn give_back(ledger: &Shared, app: &TestApp, t: &Tenant, id: &str, key: &str) {
    let body = json!({ "id": id });
    let reply = until_definite(ledger, app, None, async |app| {
        keyed(app, &t.host, "/licenses/return", key, &t.admin_key, &body).await
    })
    .await;
    assert_eq!(
        reply.status.as_u16(),
        200,
        "return of acknowledged borrow {id} at {}: {}",
        t.id,
        reply.body
    );
    let mut ledger = ledger.borrow_mut();
    ledger.returns += 1;
    ledger.held.remove(id);
    ledger.returned.insert(id.to_owned(), t.id.clone());
}

/// Starts `clients` clients over `tenants`, each holding at most one seat of `tool` per
/// tenant: on each visit it returns the seat it holds there, then borrows another.
/// They run until `stop` is set.
pub fn start_clients(
    clients: usize,
    via: &TestApp,
    tenants: &Rc<Vec<Tenant>>,
    tool: &'static str,
    ledger: &Shared,
    stop: &Rc<Cell<bool>>,
) -> Vec<JoinHandle<()>> {
    (0..clients)
        .map(|c| {
            let (app, tenants) = (via.detached(), Rc::clone(tenants));
            let (ledger, stop) = (Rc::clone(ledger), Rc::clone(stop));
            actix_rt::spawn(async move {
                let mut mine: BTreeMap<usize, String> = BTreeMap::new();
                let mut op = 0u64;
                while !stop.get() {
                    let n = (c + op as usize) % tenants.len();
                    let t = &tenants[n];
                    if let Some(id) = mine.remove(&n) {
                        give_back(&ledger, &app, t, &id, &format!("c{c}-r{op}")).await;
                    }
                    let user = format!("farm{c}");
                    let key = format!("c{c}-b{op}");
                    if let Some(id) = borrow(&ledger, &app, t, tool, &user, &key).await {
                        mine.insert(n, id);
                    }
                    op += 1;
                }
            })
        })
        .collect()
}

/// What the monitor saw: status reads, and any pool over its seats.
#[derive(Default)]
pub struct Watch {
    pub reads: u64,
    pub over: Vec<String>,
}

/// Reads every tenant's pools through the proxy until `stop`, noting any pool with more
/// seats borrowed than it has, or more overage than allowed.
pub fn start_monitor(
    via: &TestApp,
    tenants: &Rc<Vec<Tenant>>,
    stop: &Rc<Cell<bool>>,
) -> JoinHandle<Watch> {
    let (app, tenants, stop) = (via.detached(), Rc::clone(tenants), Rc::clone(stop));
    actix_rt::spawn(async move {
        let mut watch = Watch::default();
        while !stop.get() {
            for t in tenants.iter() {
                let reply = app.tenant_get(t, "/licenses/status").await;
                if reply.status.as_u16() != 200 {
                    continue;
                }
                watch.reads += 1;
                for pool in reply.body.as_array().expect("a status array") {
                    let over_total = pool["borrowed"].as_u64() > pool["total"].as_u64();
                    let over_overage = pool["overage"].as_u64() > pool["max_overage"].as_u64();
                    if over_total || over_overage {
                        watch.over.push(format!("{}: {pool}", t.id));
                    }
                }
            }
        }
        watch
    })
}

/// Waits until the clients have `more` acknowledged operations beyond what they had.
pub async fn progress(ledger: &Shared, more: u64) {
    let target = ledger.borrow().acknowledged() + more;
    wait_until("the clients make progress", || async {
        ledger.borrow().acknowledged() >= target
    })
    .await;
}

/// Ids of `t`'s borrows of `tool` that the clients hold.
pub fn held_at(ledger: &Ledger, t: &Tenant, tool: &str) -> HashSet<String> {
    ledger
        .held
        .iter()
        .filter(|(_, g)| g.tenant == t.id && g.tool == tool)
        .map(|(id, _)| id.clone())
        .collect()
}
