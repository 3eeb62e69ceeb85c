//! Reads the old license server's SQLite file: opened read-only (`mode=ro`, and
//! `SQLITE_OPEN_READ_ONLY`), every table read inside one transaction, so that a server
//! still writing to the file cannot tear what is read.
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use indicatif::ProgressBar;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use super::cells::{Cell, RawFile, RawRows};
use super::rows::TABLES;

/// A `file:` URI for `path`, with the characters a URI gives meaning to escaped.
fn uri(path: &Path) -> String {
    let mut out = String::from("file:");
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out.push_str("?mode=ro");
    out
}

fn cell(v: ValueRef<'_>) -> Cell {
    match v {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::Int(i),
        ValueRef::Real(r) => Cell::Real(r),
        ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
    }
}

/// Reads the tables the import knows (those the file has), counting rows on `progress`.
pub fn read(path: &Path, progress: &ProgressBar) -> anyhow::Result<RawFile> {
    if !path.is_file() {
        anyhow::bail!(
            "{} is not a file; pass the path of the old licenses.db",
            path.display()
        );
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(uri(path), flags)
        .with_context(|| format!("opening {} read-only", path.display()))?;
    // A live server holds its write lock only briefly.
    conn.busy_timeout(Duration::from_secs(10))?;
    let tx = conn
        .unchecked_transaction()
        .context("starting the read transaction")?;
    let present: Vec<String> = tx
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(0))?.collect())
        .with_context(|| {
            format!(
                "reading the tables of {} (is it an SQLite database?)",
                path.display()
            )
        })?;
    let wanted: Vec<&str> = TABLES
        .into_iter()
        .filter(|t| present.iter().any(|p| p.eq_ignore_ascii_case(t)))
        .collect();
    let mut total = 0u64;
    for t in &wanted {
        let n: i64 = tx.query_row(&format!("SELECT COUNT(*) FROM \"{t}\""), [], |r| r.get(0))?;
        total += u64::try_from(n).unwrap_or(0);
    }
    progress.set_length(total);
    super::show_if_large(progress, total);
    let mut file = RawFile::new();
    for t in wanted {
        let read = || -> rusqlite::Result<RawRows> {
            let mut stmt = tx.prepare(&format!("SELECT * FROM \"{t}\""))?;
            let names: Vec<String> = stmt.column_names().map(String::from).collect();
            let columns: Vec<&str> = names.iter().map(String::as_str).collect();
            let mut table = RawRows::new(&columns);
            let width = columns.len();
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let cells = (0..width)
                    .map(|i| row.get_ref(i).map(cell))
                    .collect::<rusqlite::Result<Vec<Cell>>>()?;
                table.rows.push(cells);
                progress.inc(1);
            }
            Ok(table)
        };
        let table = read().with_context(|| format!("reading table {t}"))?;
        file.insert(t.to_owned(), table);
    }
    tx.rollback().context("ending the read transaction")?;
    Ok(file)
}
