//! One batch: the statement that fences and writes it, and what happens when it fails.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use tokio_postgres::error::SqlState;

use super::{Shared, Write};
use crate::layout::append_only;
use crate::postgres_store::connect::Connector;
use crate::postgres_store::pool::Conn;
use crate::{Epoch, FlushReport, StorageError};

/// Times a batch is retried after a deadlock or serialization failure (the database
/// rolled it back whole, so retrying is safe).
const MAX_RETRIES: u32 = 5;

/// One batch: fence, then write, the tenants whose fence came back; returns them.
const BATCH: &str = r#"
WITH fence AS (
    UPDATE tenant_owner o SET epoch = o.epoch
    FROM unnest($1::text[], $2::bigint[]) AS f(tenant, epoch)
    WHERE o.tenant = f.tenant AND o.epoch = f.epoch AND o.owner = $3
    RETURNING o.tenant
), put AS (
    INSERT INTO tenant_records (tenant, kind, id, value)
    SELECT r.tenant, r.kind, r.id, r.value
    FROM unnest($4::text[], $5::"char"[], $6::bytea[], $7::bytea[]) AS r(tenant, kind, id, value)
    WHERE r.tenant IN (SELECT tenant FROM fence)
    ON CONFLICT (tenant, kind, id) DO UPDATE SET value = EXCLUDED.value
), del AS (
    DELETE FROM tenant_records t
    USING unnest($8::text[], $9::"char"[], $10::bytea[]) AS d(tenant, kind, id)
    WHERE t.tenant = d.tenant AND t.kind = d.kind AND t.id = d.id
      AND d.tenant IN (SELECT tenant FROM fence)
), log AS (
    INSERT INTO tenant_log (tenant, kind, id, value)
    SELECT r.tenant, r.kind, r.id, r.value
    FROM unnest($11::text[], $12::"char"[], $13::bytea[], $14::bytea[]) AS r(tenant, kind, id, value)
    WHERE r.tenant IN (SELECT tenant FROM fence)
), log_del AS (
    DELETE FROM tenant_log t
    USING unnest($15::text[], $16::"char"[], $17::bytea[]) AS d(tenant, kind, id)
    WHERE t.tenant = d.tenant AND t.kind = d.kind AND t.id = d.id
      AND d.tenant IN (SELECT tenant FROM fence)
)
SELECT tenant FROM fence
"#;

/// After a batch failed on a duplicate append-only key: which of its tenants (owned
/// under the epoch their writes carry) hold one of its keys already.
const FORKED: &str = r#"
SELECT DISTINCT x.tenant
FROM unnest($1::text[], $2::"char"[], $3::bytea[], $4::bigint[]) AS x(tenant, kind, id, epoch)
JOIN tenant_log l ON l.tenant = x.tenant AND l.kind = x.kind AND l.id = x.id
JOIN tenant_owner o ON o.tenant = x.tenant AND o.epoch = x.epoch AND o.owner = $5
"#;

/// Commits one batch and settles its writes; returns the connection if it still works.
pub(super) async fn commit(
    shared: &Shared,
    connector: &Connector,
    conn: Option<Conn>,
    mut writes: Vec<Write>,
) -> Option<Conn> {
    let started = Instant::now();
    let size = writes.len() as u64;
    let mut conn = match conn {
        Some(conn) if !conn.is_closed() => conn,
        _ => match connector.connect().await {
            Ok(client) => Conn::new(client),
            Err(e) => {
                tracing::error!(error = %e, writes = size, "cannot reach PostgreSQL; the batch is not written");
                report(shared, size, started, false);
                shared.settle(writes, Err(e.to_string().into()));
                return None;
            }
        },
    };
    let node = shared.lease.node();
    let mut retries = 0;
    let outcome = loop {
        if writes.is_empty() {
            break Ok(HashSet::new());
        }
        match attempt(&mut conn, &node, &writes).await {
            Attempt::Done(outcome) => break outcome,
            Attempt::Forked(forked) => writes = fail_forked(shared, writes, &forked),
            Attempt::Retry(_) if retries < MAX_RETRIES => retries += 1,
            Attempt::Retry(e) => break Err(e),
        }
    };
    report(shared, size, started, outcome.is_ok());
    // After a failure the connection may be on its way down (a terminated backend
    // closes it a moment later): the next batch opens a fresh one.
    let keep = outcome.is_ok() && !conn.is_closed();
    let outcome = outcome.map_err(|e| {
        let reason = StorageError::io("committing a batch to PostgreSQL", e).to_string();
        tracing::error!(error = %reason, writes = size, "a batch was not committed; its tenants must be loaded again");
        Arc::<str>::from(reason)
    });
    shared.settle(writes, outcome);
    keep.then_some(conn)
}

/// What one try of a batch came to.
enum Attempt {
    /// Committed (the tenants whose fence came back), or failed for good.
    Done(Result<HashSet<String>, tokio_postgres::Error>),
    /// Rolled back because these tenants forked: fail them, commit the rest.
    Forked(HashSet<String>),
    /// Rolled back whole by a conflict the database resolves by retrying.
    Retry(tokio_postgres::Error),
}

async fn attempt(conn: &mut Conn, node: &str, writes: &[Write]) -> Attempt {
    let rows = Rows::build(writes);
    if !rows.forked.is_empty() {
        return Attempt::Forked(rows.forked);
    }
    match rows.execute(conn, node).await {
        Ok(passed) => Attempt::Done(Ok(passed)),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            match rows.forked_in_store(conn, node).await {
                Ok(forked) if !forked.is_empty() => Attempt::Forked(forked),
                // Gone by the time it was looked up: try again.
                Ok(_) => Attempt::Retry(e),
                Err(lookup) => Attempt::Done(Err(lookup)),
            }
        }
        Err(e)
            if matches!(
                e.code(),
                Some(&SqlState::T_R_DEADLOCK_DETECTED) | Some(&SqlState::T_R_SERIALIZATION_FAILURE)
            ) =>
        {
            Attempt::Retry(e)
        }
        Err(e) => Attempt::Done(Err(e)),
    }
}

fn report(shared: &Shared, batch_size: u64, started: Instant, ok: bool) {
    if let Some(observer) = &shared.observer {
        observer.flushed(FlushReport {
            batch_size,
            duration: started.elapsed(),
            ok,
        });
    }
}

/// Fails the writes of `forked` tenants (and poisons them); returns the others.
fn fail_forked(shared: &Shared, writes: Vec<Write>, forked: &HashSet<String>) -> Vec<Write> {
    let (bad, good): (Vec<Write>, Vec<Write>) = writes
        .into_iter()
        .partition(|w| forked.contains(w.tenant.as_str()));
    for tenant in forked {
        tracing::error!(
            %tenant,
            "an append-only record (ledger charge, usage event) was written twice under one \
             key: two writers forked the tenant's history; its write is refused"
        );
    }
    let reason: Arc<str> = Arc::from(
        "an append-only record (ledger charge or usage event) with this sequence number is \
         stored already: the tenant's history forked; nothing of this write was stored",
    );
    shared.settle(bad, Err(reason));
    good
}

/// Key of a record within a batch.
type Key<'a> = (&'a str, u8, &'a [u8]);

/// What one append-only key does in a batch.
enum LogOp<'a> {
    Insert(&'a [u8]),
    Delete,
}

/// A batch as the columns of [`BATCH`].
#[derive(Default)]
struct Rows<'a> {
    fence_tenants: Vec<&'a str>,
    fence_epochs: Vec<i64>,
    put: Columns<'a>,
    del: Columns<'a>,
    log: Columns<'a>,
    log_del: Columns<'a>,
    /// Epoch of each `log` row (for [`FORKED`]).
    log_epochs: Vec<i64>,
    /// Tenants that insert one append-only key twice within the batch.
    forked: HashSet<String>,
}

#[derive(Default)]
struct Columns<'a> {
    tenants: Vec<&'a str>,
    kinds: Vec<i8>,
    ids: Vec<&'a [u8]>,
    values: Vec<&'a [u8]>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, (tenant, kind, id): Key<'a>, value: Option<&'a [u8]>) {
        self.tenants.push(tenant);
        // Kind bytes are ASCII letters: the same in `"char"`'s signed encoding.
        self.kinds.push(kind as i8);
        self.ids.push(id);
        if let Some(value) = value {
            self.values.push(value);
        }
    }
}

impl<'a> Rows<'a> {
    fn build(writes: &'a [Write]) -> Self {
        let mut rows = Rows::default();
        let mut epochs: HashMap<&'a str, Epoch> = HashMap::new();
        let mut replaceable: HashMap<Key<'a>, Option<&'a [u8]>> = HashMap::new();
        let mut log: HashMap<Key<'a>, (LogOp<'a>, Epoch)> = HashMap::new();
        for w in writes {
            let tenant = w.tenant.as_str();
            epochs.insert(tenant, w.epoch);
            for rec in &w.records {
                let key = (tenant, rec.kind(), rec.id());
                let value = rec.value.as_deref();
                if !append_only(rec.kind()) {
                    replaceable.insert(key, value);
                    continue;
                }
                match (log.get(&key).map(|(op, _)| op), value) {
                    (None, Some(v)) => {
                        log.insert(key, (LogOp::Insert(v), w.epoch));
                    }
                    (None, None) => {
                        log.insert(key, (LogOp::Delete, w.epoch));
                    }
                    // Inserted and removed within the batch: nothing to write.
                    (Some(LogOp::Insert(_)), None) => {
                        log.remove(&key);
                    }
                    (Some(LogOp::Delete), None) => {}
                    (Some(_), Some(_)) => {
                        rows.forked.insert(tenant.to_owned());
                    }
                }
            }
        }
        for (tenant, epoch) in epochs {
            rows.fence_tenants.push(tenant);
            rows.fence_epochs.push(epoch.get() as i64);
        }
        for (key, value) in replaceable {
            match value {
                Some(v) => rows.put.push(key, Some(v)),
                None => rows.del.push(key, None),
            }
        }
        for (key, (op, epoch)) in log {
            match op {
                LogOp::Insert(v) => {
                    rows.log.push(key, Some(v));
                    rows.log_epochs.push(epoch.get() as i64);
                }
                LogOp::Delete => rows.log_del.push(key, None),
            }
        }
        rows
    }

    /// Runs [`BATCH`]; returns the tenants whose fence came back.
    async fn execute(
        &self,
        conn: &mut Conn,
        node: &str,
    ) -> Result<HashSet<String>, tokio_postgres::Error> {
        let rows = conn
            .query(
                BATCH,
                &[
                    &self.fence_tenants,
                    &self.fence_epochs,
                    &node,
                    &self.put.tenants,
                    &self.put.kinds,
                    &self.put.ids,
                    &self.put.values,
                    &self.del.tenants,
                    &self.del.kinds,
                    &self.del.ids,
                    &self.log.tenants,
                    &self.log.kinds,
                    &self.log.ids,
                    &self.log.values,
                    &self.log_del.tenants,
                    &self.log_del.kinds,
                    &self.log_del.ids,
                ],
            )
            .await?;
        tenants(&rows)
    }

    /// The tenants (passing their fence) of whose append-only keys one is stored.
    async fn forked_in_store(
        &self,
        conn: &mut Conn,
        node: &str,
    ) -> Result<HashSet<String>, tokio_postgres::Error> {
        let rows = conn
            .query(
                FORKED,
                &[
                    &self.log.tenants,
                    &self.log.kinds,
                    &self.log.ids,
                    &self.log_epochs,
                    &node,
                ],
            )
            .await?;
        tenants(&rows)
    }
}

/// The first column of `rows`: tenant ids.
fn tenants(rows: &[tokio_postgres::Row]) -> Result<HashSet<String>, tokio_postgres::Error> {
    rows.iter().map(|row| row.try_get::<_, String>(0)).collect()
}
