//! The cluster under test: a real PostgreSQL, three `permetrix serve --store postgres://…`
//! processes on loopback (distinct `FLY_MACHINE_ID`s, one server key, a short lease), the
//! test proxy in front, and a direct line to the database to read ownership and leases.
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use super::LOOPBACK;
use crate::helpers::*;

/// Seconds a broker's lease lasts (`--lease-ttl`).
pub const TTL: Duration = Duration::from_secs(2);
/// How long after a fault every tenant must answer again: the lease, plus a few seconds
/// for the next request to acquire and load (a slow debug build on a busy machine).
pub const RECOVERY: Duration = Duration::from_secs(TTL.as_secs() + 5);
/// How long the proxy waits for a machine's answer before the client gets a 504.
const PROXY_TIMEOUT: Duration = Duration::from_secs(2);

/// One broker: its Fly machine id and, while it runs, its process.
pub struct Broker {
    pub id: String,
    pub server: Option<ServerProcess>,
}

impl Broker {
    /// The running process (panics if it is down).
    pub fn process(&self) -> &ServerProcess {
        self.server.as_ref().expect("the broker runs")
    }

    /// A client of this broker alone.
    pub fn app(&self) -> TestApp {
        self.process().app()
    }
}

pub struct Cluster {
    store: TestStore,
    /// Where the brokers' database is.
    pub url: String,
    pub db: Db,
    pub brokers: Vec<Broker>,
    pub proxy: FlyProxy,
}

impl Cluster {
    /// Three brokers on a new database of the test process's PostgreSQL, behind the
    /// proxy. `None` (after printing why) where PostgreSQL is not available; a failure
    /// instead under `PERMETRIX_REQUIRE_POSTGRES=1`.
    pub async fn start(test: &str) -> Option<Cluster> {
        let store = TestStore::postgres(test)?;
        // One after the other: the first creates the schema.
        let brokers: Vec<Broker> = (1..=3)
            .map(|n| {
                let id = format!("m{n}");
                let server = start_broker(&store, &id);
                Broker {
                    id,
                    server: Some(server),
                }
            })
            .collect();
        let machines: Vec<_> = brokers
            .iter()
            .map(|b| (b.id.clone(), b.process().addr))
            .collect();
        let proxy = FlyProxy::start(LOOPBACK, &machines, PROXY_TIMEOUT).expect("the proxy starts");
        let url = store.url().expect("a PostgreSQL store").to_owned();
        Some(Cluster {
            db: Db::connect(&url).await,
            url,
            store,
            brokers,
            proxy,
        })
    }

    /// A client of the proxy (with the operator token of the brokers).
    pub fn via_proxy(&self) -> TestApp {
        let token = self.brokers[0].app().admin_token;
        TestApp::remote(self.proxy.addr, &token)
    }

    /// The broker with machine id `id`.
    pub fn broker(&self, id: &str) -> &Broker {
        self.brokers.iter().find(|b| b.id == id).expect("a broker")
    }

    fn broker_mut(&mut self, id: &str) -> &mut Broker {
        self.brokers
            .iter_mut()
            .find(|b| b.id == id)
            .expect("a broker")
    }

    /// Takes the process of broker `id` (which then counts as down).
    pub fn take(&mut self, id: &str) -> ServerProcess {
        self.broker_mut(id).server.take().expect("the broker runs")
    }

    /// Starts broker `id` again (a new registration under the same machine id).
    pub fn restart(&mut self, id: &str) {
        let server = start_broker(&self.store, id);
        self.proxy.set(id, server.addr);
        self.broker_mut(id).server = Some(server);
    }

    /// The running brokers' ids.
    pub fn running(&self) -> Vec<String> {
        self.brokers
            .iter()
            .filter(|b| b.server.is_some())
            .map(|b| b.id.clone())
            .collect()
    }
}

fn start_broker(store: &TestStore, id: &str) -> ServerProcess {
    // Its connections carry its machine id as their application name, so that the test
    // can tell one broker's statements from another's in the database.
    let url = store.url().expect("a PostgreSQL store");
    let sep = if url.contains('?') { '&' } else { '?' };
    let named = TestStore::Postgres {
        url: format!("{url}{sep}application_name={id}"),
    };
    TestApp::builder()
        .store(&named)
        .args(&["--lease-ttl", &TTL.as_secs().to_string()])
        .env("FLY_MACHINE_ID", id)
        .process()
}

/// The owner of a tenant as the database records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The registration (`<machine id>:<uuid of that start>`).
    pub node: String,
    pub machine: String,
    pub epoch: i64,
}

/// Reads of the brokers' database.
pub struct Db {
    client: Client,
}

/// A client of the database whose connection runs on the test's runtime.
async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("the test connects to PostgreSQL");
    actix_rt::spawn(connection);
    client
}

impl Db {
    async fn connect(url: &str) -> Db {
        Db {
            client: connect(url).await,
        }
    }

    /// Who owns `tenant` now (`None`: nobody).
    pub async fn owner(&self, tenant: &str) -> Option<Owner> {
        let row = self
            .client
            .query_opt(
                "SELECT o.owner, b.machine_id, o.epoch FROM tenant_owner o
                 JOIN brokers b ON b.node = o.owner WHERE o.tenant = $1",
                &[&tenant],
            )
            .await
            .expect("the owner is read")?;
        Some(Owner {
            node: row.get(0),
            machine: row.get::<_, Option<String>>(1).unwrap_or_default(),
            epoch: row.get(2),
        })
    }

    /// The machine whose live registration owns the most tenants.
    pub async fn busiest(&self) -> Option<String> {
        let row = self
            .client
            .query_opt(
                "SELECT b.machine_id FROM tenant_owner o JOIN brokers b ON b.node = o.owner
                 WHERE b.lease_until > now()
                 GROUP BY b.machine_id ORDER BY count(*) DESC, b.machine_id LIMIT 1",
                &[],
            )
            .await
            .expect("the owners are read")?;
        row.get(0)
    }

    /// Whether the lease of registration `node` has lapsed on the database's clock.
    /// Whether every registration of `machine` has lapsed (a broker that lost its lease
    /// registers again under a new node id, so one node's lapse says little).
    pub async fn machine_lapsed(&self, machine: &str) -> bool {
        let row = self
            .client
            .query_one(
                "SELECT coalesce(bool_and(lease_until < now()), true) FROM brokers
                 WHERE machine_id = $1",
                &[&machine],
            )
            .await
            .expect("the leases are read");
        row.get(0)
    }

    pub async fn lapsed(&self, node: &str) -> bool {
        let row = self
            .client
            .query_one(
                "SELECT coalesce(bool_and(lease_until < now()), true) FROM brokers WHERE node = $1",
                &[&node],
            )
            .await
            .expect("the lease is read");
        row.get(0)
    }

    /// Write batches of the broker on `machine` that wait for `lock` (so: fence its
    /// tenant). Only those: other statements wait on row locks now and then under load,
    /// and counting them would let a test go on before the owner's batch is in flight.
    pub async fn batches_waiting_for(&self, lock: &RowLock, machine: &str) -> i64 {
        self.client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE $1 = ANY(pg_blocking_pids(pid)) AND query LIKE '%WITH fence AS%'
                   AND application_name = $2",
                &[&lock.pid, &machine],
            )
            .await
            .expect("the activity is read")
            .get(0)
    }
}

/// A transaction of the test holding `tenant`'s owner row: every batch that fences on it
/// waits in the database until [`RowLock::release`].
pub struct RowLock {
    client: Client,
    /// The backend holding the lock.
    pid: i32,
}

impl RowLock {
    pub async fn take(url: &str, tenant: &str) -> RowLock {
        let client = connect(url).await;
        client.batch_execute("BEGIN").await.expect("BEGIN");
        let held = client
            .query(
                "SELECT 1 FROM tenant_owner WHERE tenant = $1 FOR UPDATE",
                &[&tenant],
            )
            .await
            .expect("the owner row is locked");
        assert_eq!(held.len(), 1, "{tenant} has an owner row");
        let pid = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .expect("the backend's pid")
            .get(0);
        RowLock { client, pid }
    }

    pub async fn release(self) {
        self.client
            .batch_execute("ROLLBACK")
            .await
            .expect("ROLLBACK");
    }
}
