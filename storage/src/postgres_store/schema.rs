//! The schema, created and migrated at start by versioned migrations.
//!
//! `schema_version` holds one row per migration applied. Every start takes an advisory
//! lock (so brokers starting together migrate once), applies the migrations the
//! database lacks in the same transaction, and refuses a database whose schema is newer
//! than this build: an older binary must never write a layout it does not know.
use super::pool::Conn;
use super::runtime::block_on;
use crate::StorageError;

/// The SQL of each schema version, oldest first: version `n` is `MIGRATIONS[n - 1]`.
/// Append a file to change the schema; never edit one that was released.
const MIGRATIONS: &[&str] = &[include_str!("migrations/v1.sql")];

/// The schema version this build writes.
pub(super) const LATEST: i32 = MIGRATIONS.len() as i32;

/// Key of the advisory lock held while migrating (the bytes of "permetri").
const LOCK: i64 = 0x7065_726d_6574_7269;

/// Brings the schema of the database `conn` is connected to up to [`LATEST`]; call in
/// a transaction. `target` names the database in messages.
pub(super) fn migrate(conn: &mut Conn, target: &str) -> Result<(), StorageError> {
    conn.query_now(
        "SELECT pg_advisory_xact_lock($1)",
        &[&LOCK],
        "waiting for the schema migration lock",
    )?;
    conn.batch_now(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
        "creating the schema_version table",
    )?;
    let current: i32 = conn
        .query_now(
            "SELECT coalesce(max(version), 0) FROM schema_version",
            &[],
            "reading the schema version",
        )?
        .first()
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(|e| StorageError::io("reading the schema version", e))?
        .unwrap_or(0);
    if current > LATEST {
        return Err(StorageError::Foreign(format!(
            "the database {target} has permetrix schema version {current}, and this build \
             knows versions up to {LATEST}: run the permetrix release that migrated it (or a \
             newer one) on every broker of this database, or pass a different --store"
        )));
    }
    for (version, sql) in (1..).zip(MIGRATIONS).skip(current as usize) {
        block_on(conn.client().batch_execute(sql)).map_err(|e| {
            StorageError::Foreign(format!(
                "applying schema version {version} to the database {target} failed ({}); \
                 permetrix needs a database of its own: pass a --store URL naming an empty \
                 database",
                error_chain(&e)
            ))
        })?;
        conn.execute_now(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
            "recording the schema version",
        )?;
        tracing::info!(database = %target, version, "applied a schema migration");
    }
    Ok(())
}

/// The error and its causes, for a message that is shown once.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
