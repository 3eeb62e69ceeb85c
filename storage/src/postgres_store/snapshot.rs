//! Snapshots of a PostgreSQL store in the backup format ([`crate::snapshot`]), with the
//! sled store's trees and keys: a backup of either store restores into either.
//!
//! Export reads one repeatable-read transaction (every committed write whole, nothing
//! half); restore writes one transaction into an empty database (all or nothing).
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use super::PgStore;
use super::connect::Connector;
use super::platform::BUMP_VERSION;
use super::pool::{Conn, Pool};
use super::runtime::Runtime;
use super::schema;
use crate::backend::Table;
use crate::codec;
use crate::keys;
use crate::layout::append_only;
use crate::records::FormatRecord;
use crate::sled_store::{FORMAT_KEY, LAYOUT, MAGIC, META_TREE, TENANT_TREE};
use crate::snapshot::{self, Item, SnapshotReader, SnapshotStats, SnapshotWriter};
use crate::{Durability, StorageError, TenantId, Timestamp};

/// Rows read or written per statement.
const PAGE: i64 = 10_000;

const CREATED_AT: &str =
    "SELECT (extract(epoch FROM applied_at) * 1000)::bigint FROM schema_version WHERE version = 1";
const PLATFORM_FIRST: &str =
    "SELECT scope, id, value FROM platform WHERE tbl = $1 ORDER BY scope, id LIMIT $2";
const PLATFORM_NEXT: &str = "SELECT scope, id, value FROM platform
     WHERE tbl = $1 AND (scope, id) > ($3, $4) ORDER BY scope, id LIMIT $2";
const TENANTS_FIRST: &str = "SELECT tenant, kind, id, value FROM (
         SELECT tenant, kind, id, value FROM tenant_records
         UNION ALL SELECT tenant, kind, id, value FROM tenant_log) s
     ORDER BY tenant, kind, id LIMIT $1";
const TENANTS_NEXT: &str = "SELECT tenant, kind, id, value FROM (
         SELECT tenant, kind, id, value FROM tenant_records
         UNION ALL SELECT tenant, kind, id, value FROM tenant_log) s
     WHERE (tenant, kind, id) > ($2, $3, $4)
     ORDER BY tenant, kind, id LIMIT $1";
const IS_EMPTY: &str = "SELECT NOT (EXISTS (SELECT 1 FROM platform)
     OR EXISTS (SELECT 1 FROM tenant_records) OR EXISTS (SELECT 1 FROM tenant_log)
     OR EXISTS (SELECT 1 FROM tenant_owner))";
const INSERT_RECORDS: &str = r#"INSERT INTO tenant_records (tenant, kind, id, value)
     SELECT * FROM unnest($1::text[], $2::"char"[], $3::bytea[], $4::bytea[])"#;
const INSERT_LOG: &str = r#"INSERT INTO tenant_log (tenant, kind, id, value)
     SELECT * FROM unnest($1::text[], $2::"char"[], $3::bytea[], $4::bytea[])"#;
const INSERT_PLATFORM: &str = "INSERT INTO platform (tbl, scope, id, value)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[])";

const READING: &str = "reading the store for a snapshot";

fn read_err(e: tokio_postgres::Error) -> StorageError {
    StorageError::io(READING, e)
}

impl PgStore {
    /// See [`crate::Store::export`].
    pub(super) fn export_snapshot(
        &self,
        out: &mut SnapshotWriter<'_>,
    ) -> Result<u64, StorageError> {
        // What was acknowledged before the snapshot began is in it.
        self.committer.settle_all();
        self.pool
            .get()?
            .transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", |c| {
                write_all(c, out)
            })
    }

    /// Restores the snapshot file `from` into the empty PostgreSQL database at `url`
    /// (its schema is created if missing). The whole file is verified before anything
    /// is written, and it is written in one transaction: a failure leaves the database
    /// as it was. Data-directory files in the snapshot (a sled store's `server.key`)
    /// never go to the database: their names are returned, and the deployment's
    /// `PERMETRIX_SERVER_KEY` must hold that key.
    pub fn restore(url: &str, from: &Path) -> Result<PgRestore, StorageError> {
        let open = || {
            File::open(from)
                .map(BufReader::new)
                .map_err(|e| StorageError::io(format!("opening the backup {}", from.display()), e))
        };
        let bad = |e: std::io::Error| {
            StorageError::Foreign(format!("cannot restore {}: {e}", from.display()))
        };
        let stats = snapshot::verify(open()?).map_err(bad)?;
        let runtime = Runtime::start()?;
        let connector = Arc::new(Connector::new(url, Durability::Strict)?);
        let target = connector.target().to_owned();
        let pool = Pool::new(connector, runtime.handle().clone(), 1);
        let mut conn = pool.get()?;
        conn.transaction("BEGIN", |c| schema::migrate(c, &target))?;
        let skipped_files = conn.transaction("BEGIN", |c| {
            let empty: bool = c
                .query_now(IS_EMPTY, &[], "checking that the database is empty")?
                .first()
                .map(|row| row.try_get(0))
                .transpose()
                .map_err(|e| StorageError::io("checking that the database is empty", e))?
                .unwrap_or(false);
            if !empty {
                return Err(StorageError::Foreign(format!(
                    "the database {target} already holds permetrix data; restore into a new \
                     or empty database (a restore never overwrites a store)"
                )));
            }
            let mut reader = SnapshotReader::new(open()?).map_err(bad)?;
            let skipped = import(c, &mut reader).map_err(|e| match e {
                Import::Snapshot(e) => bad(e),
                Import::Store(e) => e,
            })?;
            c.execute_now(BUMP_VERSION, &[], "raising the platform version")?;
            Ok(skipped)
        })?;
        Ok(PgRestore {
            stats,
            skipped_files,
        })
    }
}

/// What [`PgStore::restore`] did.
#[derive(Debug)]
pub struct PgRestore {
    /// What the snapshot held.
    pub stats: SnapshotStats,
    /// Data-directory files of the snapshot that were not restored (the server key
    /// never goes to the database).
    pub skipped_files: Vec<String>,
}

fn write_all(c: &mut Conn, out: &mut SnapshotWriter<'_>) -> Result<u64, StorageError> {
    let write_err = |e| StorageError::io("writing the snapshot", e);
    let created_ms: i64 = c
        .query_now(CREATED_AT, &[], "reading when the store was created")?
        .first()
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(read_err)?
        .unwrap_or(0);
    let marker = FormatRecord {
        magic: MAGIC.into(),
        layout: LAYOUT,
        created_at: Timestamp::from_millis(created_ms),
    };
    out.tree(META_TREE.as_bytes()).map_err(write_err)?;
    out.entry(FORMAT_KEY, &codec::encode(&marker))
        .map_err(write_err)?;
    let mut entries = 1;

    let mut tables = Table::ALL;
    tables.sort_by_key(|t| t.name());
    for table in tables {
        out.tree(table.name().as_bytes()).map_err(write_err)?;
        let mut last: Option<(String, String)> = None;
        loop {
            let rows = match &last {
                None => c.query_now(PLATFORM_FIRST, &[&table.name(), &PAGE], READING)?,
                Some((scope, id)) => {
                    c.query_now(PLATFORM_NEXT, &[&table.name(), &PAGE, scope, id], READING)?
                }
            };
            for row in &rows {
                let scope: String = row.try_get(0).map_err(read_err)?;
                let id: String = row.try_get(1).map_err(read_err)?;
                let value: &[u8] = row.try_get(2).map_err(read_err)?;
                let key = if table.scoped() {
                    format!("{scope}/{id}")
                } else {
                    id.clone()
                };
                out.entry(key.as_bytes(), value).map_err(write_err)?;
                entries += 1;
                last = Some((scope, id));
            }
            if (rows.len() as i64) < PAGE {
                break;
            }
        }
    }

    out.tree(TENANT_TREE.as_bytes()).map_err(write_err)?;
    let mut last: Option<(String, i8, Vec<u8>)> = None;
    loop {
        let rows = match &last {
            None => c.query_now(TENANTS_FIRST, &[&PAGE], READING)?,
            Some((tenant, kind, id)) => {
                c.query_now(TENANTS_NEXT, &[&PAGE, tenant, kind, id], READING)?
            }
        };
        for row in &rows {
            let tenant: String = row.try_get(0).map_err(read_err)?;
            let kind: i8 = row.try_get(1).map_err(read_err)?;
            let id: Vec<u8> = row.try_get(2).map_err(read_err)?;
            let value: &[u8] = row.try_get(3).map_err(read_err)?;
            let tenant_id = TenantId::parse(&tenant).map_err(|e| {
                StorageError::Foreign(format!(
                    "the database holds records of a bad tenant id: {e}"
                ))
            })?;
            out.entry(&keys::key(&tenant_id, kind as u8, &id), value)
                .map_err(write_err)?;
            entries += 1;
            last = Some((tenant, kind, id));
        }
        if (rows.len() as i64) < PAGE {
            break;
        }
    }
    Ok(entries)
}

enum Import {
    /// The snapshot itself is unusable.
    Snapshot(std::io::Error),
    Store(StorageError),
}

impl From<StorageError> for Import {
    fn from(e: StorageError) -> Self {
        Import::Store(e)
    }
}

fn unusable(what: impl Into<String>) -> Import {
    Import::Snapshot(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        what.into(),
    ))
}

/// Where the entries of the current tree go.
enum Target {
    Meta,
    Tenants,
    Platform(Table),
    /// sled's own default tree: holds nothing of ours.
    Unused,
}

/// Tenant records collected for one multi-row insert.
#[derive(Default)]
struct TenantRows {
    tenants: Vec<String>,
    kinds: Vec<i8>,
    ids: Vec<Vec<u8>>,
    values: Vec<Vec<u8>>,
}

impl TenantRows {
    fn flush(&mut self, c: &mut Conn, sql: &'static str) -> Result<(), StorageError> {
        if self.values.is_empty() {
            return Ok(());
        }
        let tenants: Vec<&str> = self.tenants.iter().map(String::as_str).collect();
        let ids: Vec<&[u8]> = self.ids.iter().map(Vec::as_slice).collect();
        let values: Vec<&[u8]> = self.values.iter().map(Vec::as_slice).collect();
        c.execute_now(
            sql,
            &[&tenants, &self.kinds, &ids, &values],
            "restoring tenant records",
        )?;
        *self = TenantRows::default();
        Ok(())
    }
}

/// Platform records collected for one multi-row insert.
#[derive(Default)]
struct PlatformRows {
    tables: Vec<&'static str>,
    scopes: Vec<String>,
    ids: Vec<String>,
    values: Vec<Vec<u8>>,
}

impl PlatformRows {
    fn flush(&mut self, c: &mut Conn) -> Result<(), StorageError> {
        if self.values.is_empty() {
            return Ok(());
        }
        let scopes: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
        let ids: Vec<&str> = self.ids.iter().map(String::as_str).collect();
        let values: Vec<&[u8]> = self.values.iter().map(Vec::as_slice).collect();
        c.execute_now(
            INSERT_PLATFORM,
            &[&self.tables, &scopes, &ids, &values],
            "restoring platform records",
        )?;
        *self = PlatformRows::default();
        Ok(())
    }
}

/// Writes every entry of the snapshot; returns the names of the files it skipped.
fn import(
    c: &mut Conn,
    reader: &mut SnapshotReader<BufReader<File>>,
) -> Result<Vec<String>, Import> {
    let mut skipped = Vec::new();
    let mut target: Option<Target> = None;
    let (mut records, mut log) = (TenantRows::default(), TenantRows::default());
    let mut platform = PlatformRows::default();
    let mut marker = false;
    while let Some(item) = reader.next_item().map_err(Import::Snapshot)? {
        match item {
            Item::File { name, .. } => skipped.push(name),
            Item::Tree(name) => {
                let name = String::from_utf8_lossy(&name).into_owned();
                target = Some(match name.as_str() {
                    META_TREE => Target::Meta,
                    TENANT_TREE => Target::Tenants,
                    "__sled__default" => Target::Unused,
                    other => Target::Platform(
                        Table::ALL
                            .into_iter()
                            .find(|t| t.name() == other)
                            .ok_or_else(|| {
                                unusable(format!(
                                    "it holds a table '{other}' this build does not know"
                                ))
                            })?,
                    ),
                });
            }
            Item::Entry { key, value } => match &target {
                None => return Err(unusable("an entry comes before any tree")),
                Some(Target::Unused) => {
                    return Err(unusable("it holds entries in sled's default tree"));
                }
                Some(Target::Meta) => {
                    if key == FORMAT_KEY {
                        let format: FormatRecord = codec::decode(&value).map_err(|e| {
                            unusable(format!("its format marker is unreadable: {e}"))
                        })?;
                        if format.magic != MAGIC || format.layout > LAYOUT {
                            return Err(unusable(format!(
                                "it is of a store of layout {} ('{}'); this build reads layout \
                                 {LAYOUT}",
                                format.layout, format.magic
                            )));
                        }
                        marker = true;
                    }
                    // Other entries (sled's checkpoint number) belong to a data directory.
                }
                Some(Target::Tenants) => {
                    let (tenant, kind, id) = split_tenant_key(&key)?;
                    let buffer = if append_only(kind) {
                        &mut log
                    } else {
                        &mut records
                    };
                    buffer.tenants.push(tenant);
                    buffer.kinds.push(kind as i8);
                    buffer.ids.push(id);
                    buffer.values.push(value);
                }
                Some(Target::Platform(table)) => {
                    let key = String::from_utf8(key)
                        .map_err(|_| unusable("a platform key is not UTF-8"))?;
                    let (scope, id) = if table.scoped() {
                        let (scope, id) = key.split_once('/').ok_or_else(|| {
                            unusable(format!("a key of {} has no scope", table.name()))
                        })?;
                        (scope.to_owned(), id.to_owned())
                    } else {
                        (String::new(), key)
                    };
                    platform.tables.push(table.name());
                    platform.scopes.push(scope);
                    platform.ids.push(id);
                    platform.values.push(value);
                }
            },
        }
        let full = |n: usize| n as i64 >= PAGE;
        if full(records.values.len()) {
            records.flush(c, INSERT_RECORDS)?;
        }
        if full(log.values.len()) {
            log.flush(c, INSERT_LOG)?;
        }
        if full(platform.values.len()) {
            platform.flush(c)?;
        }
    }
    records.flush(c, INSERT_RECORDS)?;
    log.flush(c, INSERT_LOG)?;
    platform.flush(c)?;
    if !marker {
        return Err(unusable(
            "it has no permetrix format marker: it is not a backup of a permetrix store",
        ));
    }
    Ok(skipped)
}

/// `<tenant> 0x00 <kind> <id>` → its parts, the tenant id checked.
fn split_tenant_key(key: &[u8]) -> Result<(String, u8, Vec<u8>), Import> {
    let at = key
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| unusable("a tenant record's key has no tenant"))?;
    let tenant = std::str::from_utf8(&key[..at])
        .ok()
        .and_then(|t| TenantId::parse(t).ok())
        .ok_or_else(|| unusable("a tenant record's key holds no valid tenant id"))?;
    let (&kind, id) = key[at + 1..]
        .split_first()
        .ok_or_else(|| unusable("a tenant record's key has no kind"))?;
    Ok((tenant.as_str().to_owned(), kind, id.to_vec()))
}
