//! `permetrix import sqlite`: moving in from the old license server's SQLite file, with
//! its keys, passwords, held seats and charges intact.
//!
//! The steps, each a module, each using only those before it:
//! - `cells`: the file's tables as read (column names, dynamically typed cells);
//!   `sqlite` fills them from the file (cargo feature `sqlite`), read-only and in one
//!   transaction;
//! - `rows`: typed rows, each checked, or skipped with an anomaly naming its table and
//!   row id (`anomalies`, `time`);
//! - `plan`: per tenant, the records it gets and the vendors it needs;
//! - `compare`: whether each is new, imported already, half imported, or in conflict
//!   with the store;
//! - `apply`: the writes, through the `Store` trait and `Platform` verbs only, all or
//!   nothing per tenant;
//! - `report`: what was (or, with `--dry-run`, would be) created, and every anomaly.
pub mod anomalies;
pub mod apply;
pub mod cells;
pub mod compare;
#[cfg(test)]
mod fixtures;
pub mod plan;
pub mod report;
pub mod rows;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod time;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use permetrix_storage::{TenantId, Timestamp, VendorId};
use secrecy::{ExposeSecret, SecretString};

use crate::store_choice::StoreKind;

use anomalies::Anomalies;
use cells::RawFile;
use compare::{VendorVerdict, Verdict};
use plan::Settings;

/// What `permetrix import sqlite` was asked to do.
pub struct Options {
    /// The old license server's SQLite file.
    pub path: PathBuf,
    /// The data directory of the store.
    pub data_dir: PathBuf,
    /// The store: the embedded one in `data_dir`, or a shared PostgreSQL store.
    pub store: StoreKind,
    /// The deployment's server key (`PERMETRIX_SERVER_KEY`): required with a shared
    /// store, checked against `server.key` with sled.
    pub server_key: Option<SecretString>,
    /// The tenant the single-tenant rows move into.
    pub tenant: Option<TenantId>,
    /// The single tenant's vendor; the vendor of tenants whose packages name none.
    pub vendor: Option<VendorId>,
    /// The old server's request-signing secret.
    pub signing_secret: Option<SecretString>,
    /// Plan and report only.
    pub dry_run: bool,
}

/// What a run produced: its report, and whether it was refused (nothing written).
pub struct Outcome {
    /// The report (secrets made are in it, shown once).
    pub report: String,
    /// Something stopped the import; nothing was written.
    pub refused: bool,
}

/// Files with fewer rows than this import without a progress bar.
const PROGRESS_FROM: u64 = 5_000;

/// A progress bar on stderr, drawn only for large imports on a terminal.
fn progress(message: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{msg:>14} [{bar:40}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

/// Shows `bar` if the work is large enough to need it.
fn show_if_large(bar: &ProgressBar, len: u64) {
    if len >= PROGRESS_FROM {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(200));
    }
}

/// Reads the file's tables.
fn read_file(path: &Path) -> anyhow::Result<RawFile> {
    #[cfg(feature = "sqlite")]
    {
        let bar = progress("reading rows");
        // The reader sets the length once it has counted the rows.
        let file = sqlite::read(path, &bar);
        bar.finish_and_clear();
        file
    }
    #[cfg(not(feature = "sqlite"))]
    {
        anyhow::bail!(
            "this permetrix was built without SQLite support, so it cannot read {}; build it \
             with the cargo feature `sqlite` (on by default)",
            path.display()
        )
    }
}

/// Runs an import: reads the file, plans each tenant, compares with the store, and
/// (unless refused or a dry run) writes; returns the report.
pub fn run(o: &Options) -> anyhow::Result<Outcome> {
    let now = Timestamp::now();
    let target = apply::open(&o.data_dir, &o.store, o.server_key.as_ref(), o.dry_run)?;
    let file = read_file(&o.path)?;
    if file.is_empty() {
        anyhow::bail!(
            "{} holds none of the old license server's tables ({}); is it the right file?",
            o.path.display(),
            rows::TABLES.join(", ")
        );
    }
    let mut anomalies = Anomalies::default();
    let rows = rows::read(&file, now, &mut anomalies);
    let settings = Settings {
        now,
        single_tenant: o.tenant.clone(),
        vendor: o.vendor.clone(),
        signing_secret: o.signing_secret.is_some(),
    };
    let digest = |sha256_hex: &str| target.secrets.legacy_key_digest(sha256_hex);
    let drafts = plan::draft(&rows, &settings, &digest, &mut anomalies);
    let mut refusals = drafts.refusals.clone();
    let mut vendors = Vec::new();
    for v in drafts.vendors.values() {
        let (stored, secret_matches) = target.vendor(&v.id, o.signing_secret.as_ref())?;
        let verdict = compare::vendor(v, stored.as_ref(), secret_matches);
        if let VendorVerdict::Conflict(why) = &verdict {
            refusals.push(why.clone());
        }
        vendors.push((v.clone(), verdict));
    }
    let mut tenants = Vec::new();
    for d in drafts.tenants {
        let verdict = compare::tenant(&d, &target.existing(&d)?);
        if let Verdict::Conflict(why) = &verdict {
            refusals.push(why.clone());
        }
        tenants.push((d, verdict));
    }
    let issued = if refusals.is_empty() && !o.dry_run {
        let bar = progress("tenants");
        bar.set_length(tenants.len() as u64);
        show_if_large(&bar, rows.counts.values().sum::<usize>() as u64);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the runtime the writes wait on")?;
        let written = runtime.block_on(apply::write(
            &target,
            &tenants,
            &vendors,
            o.signing_secret.as_ref(),
            now,
            &bar,
        ));
        bar.finish_and_clear();
        Some(written?)
    } else {
        None
    };
    target.close()?;
    let written_to = match o.store {
        StoreKind::Sled => o.data_dir.display().to_string(),
        // The URL may carry a password.
        StoreKind::Postgres(_) => "the PostgreSQL store".to_owned(),
    };
    let report = report::Report {
        source: &o.path,
        target: &written_to,
        dry_run: o.dry_run,
        shape: shape(&rows, o.tenant.as_ref(), o.vendor.as_ref()),
        counts: &rows.counts,
        anomalies: &anomalies,
        tenants: &tenants,
        vendors: &vendors,
        refusals: &refusals,
        issued: issued.as_ref(),
        signing_secret: o
            .signing_secret
            .as_ref()
            .map(|s| s.expose_secret().chars().count()),
    };
    Ok(Outcome {
        report: report::render(&report),
        refused: !refusals.is_empty(),
    })
}

/// What the file is, in words.
fn shape(rows: &rows::Rows, tenant: Option<&TenantId>, vendor: Option<&VendorId>) -> String {
    let single = match (tenant, vendor) {
        (Some(t), Some(v)) => Some(format!("single-tenant rows (into tenant {t}, vendor {v})")),
        _ => None,
    };
    match (rows.multi_tenant, single) {
        (true, Some(s)) => format!("multi-tenant tables and {s}"),
        (true, None) => "multi-tenant tables".into(),
        (false, Some(s)) => s,
        (false, None) => "single-tenant tables".into(),
    }
}
