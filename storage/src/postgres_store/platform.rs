//! Platform records in PostgreSQL: `platform(tbl, scope, id, value)`, scope `''` in the
//! tables that have none. A batch of writes is one transaction, sent pipelined, that
//! also raises `platform_version` (other brokers poll it to refresh their read copies).
use futures_util::future::join_all;
use tokio_postgres::types::ToSql;

use super::PgStore;
use super::pool::pg_err;
use super::runtime::block_on;
use crate::backend::{PlatformBackend, PlatformKey, PlatformWrite, Table};
use crate::{Durable, StorageError};

const GET: &str = "SELECT value FROM platform WHERE tbl = $1 AND scope = $2 AND id = $3";
const SCAN: &str = "SELECT id, value FROM platform WHERE tbl = $1 AND scope = $2 ORDER BY id";
const PUT: &str = "INSERT INTO platform (tbl, scope, id, value) VALUES ($1, $2, $3, $4)
     ON CONFLICT (tbl, scope, id) DO UPDATE SET value = EXCLUDED.value";
const INSERT: &str = "INSERT INTO platform (tbl, scope, id, value) VALUES ($1, $2, $3, $4)
     ON CONFLICT (tbl, scope, id) DO NOTHING";
const DELETE: &str = "DELETE FROM platform WHERE tbl = $1 AND scope = $2 AND id = $3";
pub(super) const BUMP_VERSION: &str = "UPDATE platform_version SET version = version + 1";
pub(super) const VERSION: &str = "SELECT version FROM platform_version";

/// `key`'s scope column.
fn scope<'a>(key: &PlatformKey<'a>) -> &'a str {
    key.scope.unwrap_or("")
}

impl PlatformBackend for PgStore {
    fn platform_get(
        &self,
        table: Table,
        key: PlatformKey<'_>,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let context = || format!("reading {} '{key}'", table.name());
        let rows =
            self.pool
                .get()?
                .query_now(GET, &[&table.name(), &scope(&key), &key.id], context())?;
        rows.first()
            .map(|row| row.try_get(0).map_err(|e| StorageError::io(context(), e)))
            .transpose()
    }

    fn platform_scan(
        &self,
        table: Table,
        scope: Option<&str>,
    ) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let context = || format!("scanning {}", table.name());
        let rows =
            self.pool
                .get()?
                .query_now(SCAN, &[&table.name(), &scope.unwrap_or("")], context())?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get(0).map_err(|e| StorageError::io(context(), e))?,
                    row.try_get(1).map_err(|e| StorageError::io(context(), e))?,
                ))
            })
            .collect()
    }

    fn platform_apply(&self, writes: &[PlatformWrite<'_>]) -> Result<Durable, StorageError> {
        let mut conn = self.pool.get()?;
        conn.transaction("BEGIN", |c| {
            let context = "writing platform records";
            let [put, insert, delete, bump] = block_on(async {
                Ok::<_, tokio_postgres::Error>([
                    c.statement(PUT).await?,
                    c.statement(INSERT).await?,
                    c.statement(DELETE).await?,
                    c.statement(BUMP_VERSION).await?,
                ])
            })
            .map_err(pg_err(context))?;
            let client = c.client();
            let fields: Vec<(&str, &str, &str, Option<&Vec<u8>>)> = writes
                .iter()
                .map(|write| match write {
                    PlatformWrite::Put { table, key, value }
                    | PlatformWrite::Insert { table, key, value } => {
                        (table.name(), scope(key), key.id, Some(value))
                    }
                    PlatformWrite::Delete { table, key } => {
                        (table.name(), scope(key), key.id, None)
                    }
                })
                .collect();
            let params: Vec<Vec<&(dyn ToSql + Sync)>> = fields
                .iter()
                .map(|(table, scope, id, value)| {
                    let mut params: Vec<&(dyn ToSql + Sync)> = vec![table, scope, id];
                    if let Some(value) = value {
                        params.push(value);
                    }
                    params
                })
                .collect();
            // Sent together (one round trip); the server runs them in order.
            let mut runs: Vec<_> = writes
                .iter()
                .zip(&params)
                .map(|(write, params)| {
                    let statement = match write {
                        PlatformWrite::Put { .. } => &put,
                        PlatformWrite::Insert { .. } => &insert,
                        PlatformWrite::Delete { .. } => &delete,
                    };
                    client.execute(statement, params)
                })
                .collect();
            runs.push(client.execute(&bump, &[]));
            let done = block_on(join_all(runs));
            for (write, outcome) in writes.iter().zip(&done) {
                let changed = outcome
                    .as_ref()
                    .map_err(|e| StorageError::io(context, clone_error(e)))?;
                if let PlatformWrite::Insert { table, key, .. } = write
                    && *changed == 0
                {
                    return Err(StorageError::AlreadyExists {
                        table: table.name(),
                        key: key.to_string(),
                    });
                }
            }
            if let Some(Err(e)) = done.last() {
                return Err(StorageError::io(context, clone_error(e)));
            }
            Ok(())
        })?;
        // Committed: with synchronous commit on, durable as well.
        Ok(Durable::done())
    }
}

/// The driver's errors are not `Clone`; keep what they say.
fn clone_error(e: &tokio_postgres::Error) -> std::io::Error {
    std::io::Error::other(match e.as_db_error() {
        Some(db) => format!("{e}: {}", db.message()),
        None => e.to_string(),
    })
}

impl PgStore {
    /// The platform version: raised by every platform write of any broker. A broker
    /// that keeps read copies of platform records reloads them when it moves.
    pub fn platform_version(&self) -> Result<u64, StorageError> {
        let context = "reading the platform version";
        let rows = self.pool.get()?.query_now(VERSION, &[], context)?;
        let version: i64 = rows
            .first()
            .ok_or_else(|| StorageError::Unavailable("the platform_version row is missing".into()))?
            .try_get(0)
            .map_err(|e| StorageError::io(context, e))?;
        Ok(version as u64)
    }
}
