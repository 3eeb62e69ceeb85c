//! The old license server's SQLite file, built from the documented shapes
//! (`IMPORT-SOURCE.md`) with the anomalies found in the field, and `permetrix import
//! sqlite` run on it as the real binary.
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use rusqlite::{Connection, params};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::app::TestApp;
use super::process::{Process, ServerProcess, permetrix};

/// Keys the old server issued (the file holds only their SHA-256).
pub const OLD_KEY: &str = "acme_live_pk_7Qm2xV9rT4bN8kLp3Zw6";
pub const OLD_ADMIN_KEY: &str = "live_pk_admin_H5sJ2kQ9wE7rT1yU";
pub const OLD_REVOKED_KEY: &str = "acme_live_pk_revoked_0000000000";
pub const GLOBEX_OLD_KEY: &str = "globex_live_pk_4Hf8Gd2Ks9Lq";
/// The secret compiled into the old signed clients.
pub const OLD_SIGNING_SECRET: &str = "techvendor-signing-secret-2024-0123456789";
/// Ann's password; the file holds its passlib `pbkdf2_sha256` hash.
pub const ANN_PASSWORD: &str = "Pässwort 1";
const ANN_HASH: &str =
    "$pbkdf2-sha256$29000$..................../w$oqCfOxmhYxDRf9M/Kc30wl7iVXn.Kn18YxpeSihhOJo";

pub const OLD_ECU: &str = "ECU Development Suite";
pub const OLD_CAN: &str = "CAN Bus Analyzer Pro";
pub const OLD_MBD: &str = "Model-Based Design Studio";
/// Seats held in the single-tenant file: two of OLD_ECU, three of OLD_CAN (whose total is 2).
pub const HELD_ECU: [&str; 2] = [
    "6f1d2c3b-4a59-4e68-b7c6-d5e4f3a2b1c0",
    "7a2e3d4c-5b6a-4f79-88d7-e6f5a4b3c2d1",
];
pub const HELD_CAN: [&str; 3] = [
    "8b3f4e5d-6c7b-4a8a-99e8-f7a6b5c4d3e2",
    "9c4a5f6e-7d8c-4b9b-aaf9-a8b7c6d5e4f3",
    "0d5b6a7f-8e9d-4cac-bb0a-b9c8d7e6f5a4",
];
pub const HELD_GLOBEX: &str = "1e6c7b8a-9f0e-4dbd-8c1b-cad9e8f7a6b5";

pub fn sha256_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// An ISO 8601 time `secs_ago` seconds before now, with an offset, as Python wrote it.
fn ago(secs_ago: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::seconds(secs_ago);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]+00:00"
    );
    t.format(&f).unwrap()
}

const SINGLE_TABLES: &str = "
CREATE TABLE licenses (tool TEXT PRIMARY KEY, total INTEGER, borrowed INTEGER,
    commit_qty INTEGER, max_overage INTEGER, commit_price REAL, overage_price_per_license REAL);
ALTER TABLE licenses ADD COLUMN vendor_total INTEGER;
ALTER TABLE licenses ADD COLUMN vendor_commit_qty INTEGER;
ALTER TABLE licenses ADD COLUMN vendor_max_overage INTEGER;
ALTER TABLE licenses ADD COLUMN customer_total INTEGER;
ALTER TABLE licenses ADD COLUMN customer_commit_qty INTEGER;
ALTER TABLE licenses ADD COLUMN customer_max_overage INTEGER;
ALTER TABLE licenses ADD COLUMN customer_max_spend REAL;
CREATE TABLE borrows (id TEXT PRIMARY KEY, tool TEXT, user TEXT, borrowed_at TEXT,
    is_overage INTEGER);
CREATE TABLE overage_charges (id TEXT PRIMARY KEY, tool TEXT, borrow_id TEXT, user TEXT,
    charged_at TEXT, amount REAL);
CREATE TABLE users (username TEXT PRIMARY KEY, password_hash TEXT);
ALTER TABLE users ADD COLUMN tenant_id TEXT;
ALTER TABLE users ADD COLUMN role TEXT DEFAULT 'admin';
ALTER TABLE users ADD COLUMN status TEXT;
ALTER TABLE users ADD COLUMN setup_token TEXT;
ALTER TABLE users ADD COLUMN created_at TEXT;
ALTER TABLE users ADD COLUMN last_login_at TEXT;
ALTER TABLE users ADD COLUMN vendor_id TEXT;
CREATE TABLE api_keys (id TEXT PRIMARY KEY, tenant_id TEXT, key_hash TEXT UNIQUE, name TEXT,
    environment TEXT, created_at TEXT, last_used_at TEXT, expires_at TEXT, status TEXT,
    scopes TEXT DEFAULT 'borrow,return,status');
";

/// The multi-tenant tables added beside the old ones: the old tables gain a
/// `tenant_id` (and `licenses` a `package_id`).
const MULTI_TABLES: &str = "
CREATE TABLE tenants (tenant_id TEXT PRIMARY KEY, company_name TEXT, domain TEXT,
    crm_id TEXT UNIQUE, status TEXT, created_at TEXT);
ALTER TABLE tenants ADD COLUMN admin_user_id TEXT;
CREATE TABLE vendors (vendor_id TEXT PRIMARY KEY, vendor_name TEXT, contact_email TEXT,
    api_key_hash TEXT, created_at TEXT);
ALTER TABLE vendors ADD COLUMN status TEXT;
ALTER TABLE vendors ADD COLUMN admin_user_id TEXT;
CREATE TABLE license_packages (package_id TEXT PRIMARY KEY, tenant_id TEXT, vendor_id TEXT,
    product_id TEXT, product_name TEXT, crm_opportunity_id TEXT, status TEXT,
    provisioned_at TEXT);
ALTER TABLE licenses ADD COLUMN tenant_id TEXT;
ALTER TABLE licenses ADD COLUMN package_id TEXT;
ALTER TABLE borrows ADD COLUMN tenant_id TEXT;
ALTER TABLE overage_charges ADD COLUMN tenant_id TEXT;
";

fn key(c: &Connection, id: &str, tenant: Option<&str>, key: &str, status: &str, scopes: &str) {
    c.execute(
        "INSERT INTO api_keys (id, tenant_id, key_hash, name, environment, created_at, \
         last_used_at, expires_at, status, scopes) VALUES (?1, ?2, ?3, ?4, 'live', \
         '2025-01-02T03:04:05.000006+00:00', '2025-11-07T09:00:00', NULL, ?5, ?6)",
        params![
            id,
            tenant,
            sha256_hex(key),
            format!("{id} farm"),
            status,
            scopes
        ],
    )
    .unwrap();
}

/// The single-tenant rows, with every anomaly the field has: a `borrowed` counter
/// above the rows and rows above a pool's total, a naive timestamp, an unparseable one,
/// a borrow id that is no UUID, a borrow of an unknown tool, an amount with fractions
/// of a cent, a negative amount, a negative count, a `pending` password, a vendor
/// portal user, a revoked key and a malformed key hash.
fn single_rows(c: &Connection) {
    c.execute_batch(&format!(
        "INSERT INTO licenses (tool, total, borrowed, commit_qty, max_overage, commit_price,
             overage_price_per_license, customer_max_spend)
         VALUES ('{OLD_ECU}', 20, 7, 1, 19, 1000.0, 500.0, 2500.0),
                ('{OLD_CAN}', 2, 3, 2, 0, 0, 0, NULL),
                ('Broken Tool', 5, 0, -1, 6, 0, 0, NULL);
         INSERT INTO borrows (id, tool, user, borrowed_at, is_overage) VALUES
           ('{e0}', '{OLD_ECU}', 'dev1', '2025-11-07T10:15:02.123456+00:00', 0),
           ('{e1}', '{OLD_ECU}', 'dev2', '2025-11-07T10:16:02.123456', 1),
           ('{c0}', '{OLD_CAN}', 'ci1', '2025-11-07 10:17:00', 0),
           ('{c1}', '{OLD_CAN}', 'ci2', '2025-11-07T10:18:00+00:00', 0),
           ('{c2}', '{OLD_CAN}', 'ci3', '2025-11-07T10:19:00+00:00', 0),
           ('not-a-uuid', '{OLD_ECU}', 'dev3', '2025-11-07T10:20:00+00:00', 0),
           ('2f7d8c9b-0a1f-4ece-9d2c-dbeaf9a8b7c6', 'Broken Tool', 'dev4',
            '2025-11-07T10:21:00+00:00', 0),
           ('3a8e9d0c-1b2a-4fdf-8e3d-ecfba0b9c8d7', '{OLD_ECU}', 'dev5', 'yesterday', 0);",
        e0 = HELD_ECU[0],
        e1 = HELD_ECU[1],
        c0 = HELD_CAN[0],
        c1 = HELD_CAN[1],
        c2 = HELD_CAN[2],
    ))
    .unwrap();
    for (id, user, at, amount) in [
        (
            "ch-2025-1",
            "dev9",
            "2025-10-03T08:00:00+00:00".to_owned(),
            500.0,
        ),
        ("ch-now-1", "dev2", ago(120), 500.0),
        ("ch-now-2", "dev2", ago(60), 12.345),
        ("ch-bad", "dev2", ago(30), -5.0),
    ] {
        c.execute(
            "INSERT INTO overage_charges (id, tool, borrow_id, user, charged_at, amount) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, OLD_ECU, HELD_ECU[1], user, at, amount],
        )
        .unwrap();
    }
    c.execute_batch(&format!(
        "INSERT INTO users (username, password_hash, role, status, created_at, vendor_id) VALUES
           ('Ann', '{ANN_HASH}', 'admin', 'active', '2025-01-01T00:00:00', NULL),
           ('bob', 'pending', 'viewer', 'active', NULL, NULL),
           ('vendy', 'pending', 'admin', 'active', NULL, 'techvendor');"
    ))
    .unwrap();
    key(
        c,
        "key_00000000000000a1",
        None,
        OLD_KEY,
        "active",
        "borrow,return,status",
    );
    key(
        c,
        "key_00000000000000a2",
        None,
        OLD_ADMIN_KEY,
        "active",
        "admin",
    );
    key(
        c,
        "key_00000000000000a3",
        None,
        OLD_REVOKED_KEY,
        "revoked",
        "borrow,return,status",
    );
    c.execute(
        "INSERT INTO api_keys (id, key_hash, name, status) VALUES ('key_00000000000000a4', \
         'not-a-sha256', 'broken', 'active')",
        [],
    )
    .unwrap();
}

/// The multi-tenant rows: tenant globex of vendor techvendor with one pool, one seat
/// held, one key and one user.
fn multi_rows(c: &Connection) {
    c.execute_batch(&format!(
        "INSERT INTO tenants (tenant_id, company_name, domain, crm_id, status, created_at) VALUES
           ('globex', 'Globex Motors', 'globex.permetrix.fly.dev', 'crm-42', 'active',
            '2025-03-01T00:00:00+00:00');
         INSERT INTO vendors (vendor_id, vendor_name, contact_email, api_key_hash, created_at)
           VALUES ('techvendor', 'Tech Vendor GmbH', 'licensing@techvendor.example',
                   '{vendor_hash}', '2025-01-01T00:00:00+00:00');
         INSERT INTO license_packages (package_id, tenant_id, vendor_id, product_id, product_name,
             crm_opportunity_id, status, provisioned_at) VALUES
           ('pkg-globex-mbd', 'globex', 'techvendor', 'mbd-studio', '{OLD_MBD}', 'opp-7', 'active',
            '2025-03-02T00:00:00+00:00');
         INSERT INTO licenses (tenant_id, package_id, tool, total, borrowed, commit_qty,
             max_overage, commit_price, overage_price_per_license) VALUES
           ('globex', 'pkg-globex-mbd', '{OLD_MBD}', 4, 1, 2, 2, 0, 600.0);
         INSERT INTO borrows (tenant_id, id, tool, user, borrowed_at, is_overage) VALUES
           ('globex', '{HELD_GLOBEX}', '{OLD_MBD}', 'gdev1', '2025-11-07T10:15:02+00:00', 0);
         INSERT INTO users (tenant_id, username, password_hash, role, status) VALUES
           ('globex', 'gina', 'pending', 'admin', 'active');",
        vendor_hash = sha256_hex("techvendor_live_vk_old"),
    ))
    .unwrap();
    key(
        c,
        "key_00000000000000b1",
        Some("globex"),
        GLOBEX_OLD_KEY,
        "active",
        "borrow,return,status",
    );
}

/// The single-tenant shape.
pub fn single_tenant_db(path: &Path) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(SINGLE_TABLES).unwrap();
    single_rows(&c);
}

/// The multi-tenant shape only (every row has a tenant).
pub fn multi_tenant_db(path: &Path) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(SINGLE_TABLES).unwrap();
    c.execute_batch(MULTI_TABLES).unwrap();
    multi_rows(&c);
}

/// Both at once: the single-tenant rows (no tenant_id) beside a multi-tenant tenant.
pub fn both_shapes_db(path: &Path) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(SINGLE_TABLES).unwrap();
    single_rows(&c);
    c.execute_batch(MULTI_TABLES).unwrap();
    multi_rows(&c);
}

/// What `permetrix import sqlite` did: its exit status, its report (stdout) and its log.
pub struct ImportRun {
    pub status: ExitStatus,
    pub report: String,
    pub log: Vec<String>,
}

/// Runs `permetrix import sqlite FILE --data-dir DIR ARGS…` (the signing secret, if
/// any, through the environment, as the docs advise).
pub fn import(
    file: &Path,
    data_dir: &Path,
    args: &[&str],
    signing_secret: Option<&str>,
) -> ImportRun {
    import_with_env(file, data_dir, args, signing_secret, &[])
}

/// [`import`] with more environment variables (`PERMETRIX_SERVER_KEY`, say).
pub fn import_with_env(
    file: &Path,
    data_dir: &Path,
    args: &[&str],
    signing_secret: Option<&str>,
    env: &[(&str, &str)],
) -> ImportRun {
    let out: PathBuf = data_dir.with_extension("report.txt");
    let mut command = permetrix();
    command
        .args(["import", "sqlite"])
        .arg(file)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("PERMETRIX_SIGNING_SECRET")
        .envs(env.iter().copied())
        .stdout(Stdio::from(std::fs::File::create(&out).unwrap()));
    if let Some(secret) = signing_secret {
        command.env("PERMETRIX_SIGNING_SECRET", secret);
    }
    let (status, log) = Process::spawn(&mut command).wait_exit();
    let report = std::fs::read_to_string(&out).unwrap();
    ImportRun {
        status,
        report,
        log,
    }
}

impl ImportRun {
    /// The line of the report that contains `needle`.
    pub fn line(&self, needle: &str) -> &str {
        self.report
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in the report:\n{}", self.report))
    }

    /// The admin key the report printed for `tenant`.
    pub fn admin_key(&self, tenant: &str) -> String {
        let prefix = format!("pmx_t_{tenant}_");
        self.report
            .split_whitespace()
            .find(|w| w.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no admin key of {tenant} in the report:\n{}", self.report))
            .to_owned()
    }
}

/// A move: the old file, and the data directory beside it that it is imported into.
pub struct Move {
    dir: tempfile::TempDir,
}

impl Move {
    pub fn new(build: fn(&Path)) -> Move {
        let dir = tempfile::tempdir().unwrap();
        build(&dir.path().join("licenses.db"));
        Move { dir }
    }

    pub fn file(&self) -> std::path::PathBuf {
        self.dir.path().join("licenses.db")
    }

    pub fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    pub fn import(&self, args: &[&str], secret: Option<&str>) -> ImportRun {
        import(&self.file(), &self.data(), args, secret)
    }

    pub fn server(&self) -> ServerProcess {
        TestApp::builder().data_dir(&self.data()).process()
    }
}

/// Asserts that an import succeeded, showing its report and log if not.
#[track_caller]
pub fn succeeded(run: &ImportRun) {
    assert!(
        run.status.success(),
        "import failed: {}\n{}\n{}",
        run.status,
        run.report,
        run.log.join("\n")
    );
}

/// The status object of `tool` in a status array.
pub fn status_of<'a>(status: &'a Value, tool: &str) -> &'a Value {
    status
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["tool"] == tool)
        .unwrap_or_else(|| panic!("no {tool} in {status}"))
}
