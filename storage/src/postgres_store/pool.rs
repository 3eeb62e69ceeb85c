//! Connections: one with its prepared statements ([`Conn`]), and a small pool of them
//! for callers on other threads ([`Pool`]), who wait for their own round trips.
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::runtime::Handle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use super::connect::Connector;
use super::runtime::{block_on, run_on};
use crate::StorageError;

/// Parameters of a statement.
pub(super) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// Maps a driver error to a storage error saying what was being done.
pub(super) fn pg_err(
    context: impl Into<String>,
) -> impl FnOnce(tokio_postgres::Error) -> StorageError {
    let context = context.into();
    move |e| StorageError::io(context, e)
}

/// One connection and the statements prepared on it (the SQL is a fixed set of
/// constants, so the cache stays small).
pub(super) struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    pub(super) fn new(client: Client) -> Self {
        Conn {
            client,
            statements: HashMap::new(),
        }
    }

    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    pub(super) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// `sql`, prepared on this connection once.
    pub(super) async fn statement(
        &mut self,
        sql: &'static str,
    ) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    pub(super) async fn query(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let statement = self.statement(sql).await?;
        self.client.query(&statement, params).await
    }

    pub(super) async fn execute(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<u64, tokio_postgres::Error> {
        let statement = self.statement(sql).await?;
        self.client.execute(&statement, params).await
    }

    /// [`Conn::query`], waiting on the calling thread.
    pub(super) fn query_now(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
        context: impl Into<String>,
    ) -> Result<Vec<Row>, StorageError> {
        block_on(self.query(sql, params)).map_err(pg_err(context))
    }

    /// [`Conn::execute`], waiting on the calling thread.
    pub(super) fn execute_now(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
        context: impl Into<String>,
    ) -> Result<u64, StorageError> {
        block_on(self.execute(sql, params)).map_err(pg_err(context))
    }

    /// Runs plain SQL (no parameters), waiting on the calling thread.
    pub(super) fn batch_now(
        &self,
        sql: &str,
        context: impl Into<String>,
    ) -> Result<(), StorageError> {
        block_on(self.client.batch_execute(sql)).map_err(pg_err(context))
    }
}

struct Slots {
    idle: Vec<Conn>,
    /// Connections open, idle or lent.
    open: usize,
}

/// Connections for callers on other threads (reads, ownership, platform writes). At most
/// `max` are open; a caller waits for a free one beyond that.
pub(super) struct Pool {
    slots: Mutex<Slots>,
    freed: Condvar,
    max: usize,
    connector: Arc<Connector>,
    runtime: Handle,
}

impl Pool {
    pub(super) fn new(connector: Arc<Connector>, runtime: Handle, max: usize) -> Self {
        Pool {
            slots: Mutex::new(Slots {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
            max,
            connector,
            runtime,
        }
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        // Two plain fields, consistent at every unlock: a panic elsewhere cannot break them.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection of its own for the caller until the guard drops.
    pub(super) fn get(&self) -> Result<Pooled<'_>, StorageError> {
        let mut slots = self.slots();
        loop {
            while let Some(conn) = slots.idle.pop() {
                if !conn.is_closed() {
                    return Ok(Pooled {
                        pool: self,
                        conn: Some(conn),
                        broken: false,
                    });
                }
                slots.open -= 1;
            }
            if slots.open < self.max {
                slots.open += 1;
                drop(slots);
                let connector = Arc::clone(&self.connector);
                let opened =
                    run_on(&self.runtime, async move { connector.connect().await }).and_then(|r| r);
                return match opened {
                    Ok(client) => Ok(Pooled {
                        pool: self,
                        conn: Some(Conn::new(client)),
                        broken: false,
                    }),
                    Err(e) => {
                        self.slots().open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            slots = self.freed.wait(slots).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// A connection lent by the [`Pool`]; returned on drop unless it broke.
pub(super) struct Pooled<'p> {
    pool: &'p Pool,
    /// `Some` until the guard drops.
    conn: Option<Conn>,
    /// It may still be inside a transaction: close it instead of lending it again.
    broken: bool,
}

impl Pooled<'_> {
    /// Runs `body` in a transaction opened with `begin` (`BEGIN …`): committed if it
    /// succeeds, rolled back if it fails.
    pub(super) fn transaction<T>(
        &mut self,
        begin: &'static str,
        body: impl FnOnce(&mut Conn) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        self.batch_now(begin, "starting a transaction")?;
        match body(self) {
            Ok(value) => {
                self.batch_now("COMMIT", "committing a transaction")?;
                Ok(value)
            }
            Err(e) => {
                if self.batch_now("ROLLBACK", "rolling back").is_err() {
                    self.broken = true;
                }
                Err(e)
            }
        }
    }
}

impl Deref for Pooled<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        match &self.conn {
            Some(conn) => conn,
            None => unreachable!("only drop takes the connection"),
        }
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        match &mut self.conn {
            Some(conn) => conn,
            None => unreachable!("only drop takes the connection"),
        }
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut slots = self.pool.slots();
            if self.broken || conn.is_closed() {
                slots.open -= 1;
            } else {
                slots.idle.push(conn);
            }
            drop(slots);
            self.pool.freed.notify_one();
        }
    }
}
