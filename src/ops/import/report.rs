//! The import's report: what the file held, what was (or would be) created per tenant
//! and vendor, the secrets made (shown once), and every anomaly with its table and row.
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::Path;

use permetrix_storage::records::SignaturePolicy;

use super::anomalies::{Anomalies, Outcome};
use super::apply::Issued;
use super::compare::{VendorVerdict, Verdict};
use super::plan::{Draft, VendorDraft};
use super::rows::TABLES;

/// Anomalies listed per table; the rest are counted.
const LISTED_PER_TABLE: usize = 50;

/// Everything the report shows.
pub struct Report<'a> {
    /// The file.
    pub source: &'a Path,
    /// The data directory.
    pub target: &'a str,
    /// Nothing is written.
    pub dry_run: bool,
    /// What the file is (shapes, where single-tenant rows go).
    pub shape: String,
    /// Rows per table in the file.
    pub counts: &'a BTreeMap<&'static str, usize>,
    /// Found while reading and planning.
    pub anomalies: &'a Anomalies,
    /// Tenants and what becomes of them.
    pub tenants: &'a [(Draft, Verdict)],
    /// Vendors and what becomes of them.
    pub vendors: &'a [(VendorDraft, VendorVerdict)],
    /// Why nothing is imported, if anything stops it.
    pub refusals: &'a [String],
    /// Secrets made by a real run.
    pub issued: Option<&'a Issued>,
    /// Length of `--signing-secret`, if given.
    pub signing_secret: Option<usize>,
}

impl Report<'_> {
    fn refused(&self) -> bool {
        !self.refusals.is_empty()
    }

    /// "created", or what a dry run or a refusal makes of it.
    fn created(&self) -> &'static str {
        if self.refused() {
            "not written (refused)"
        } else if self.dry_run {
            "would be created"
        } else {
            "created"
        }
    }

    fn table(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<18}{:>8}{:>10}{:>14}",
            "table", "rows", "imported", "not imported"
        )?;
        for t in TABLES {
            let Some(&rows) = self.counts.get(t) else {
                continue;
            };
            let skipped = self.anomalies.skipped_in(t);
            writeln!(
                f,
                "{t:<18}{rows:>8}{:>10}{skipped:>14}",
                rows.saturating_sub(skipped)
            )?;
        }
        Ok(())
    }

    fn vendors(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\nvendors")?;
        for (v, verdict) in self.vendors {
            let what = match verdict {
                VendorVerdict::New => self.created().to_owned(),
                VendorVerdict::Existing => "exists in the store; used as it is".into(),
                VendorVerdict::Conflict(_) => "REFUSED (see below)".into(),
            };
            writeln!(f, "  {:<20} {what}", v.id.as_str())?;
            if *verdict != VendorVerdict::New {
                continue;
            }
            match self.signing_secret {
                Some(_) => writeln!(
                    f,
                    "  {:<20} signing secret: the one given (--signing-secret), sealed",
                    ""
                )?,
                None => writeln!(
                    f,
                    "  {:<20} signing secret: generated (no --signing-secret)",
                    ""
                )?,
            }
            if let Some((_, key, generated)) = self
                .issued
                .and_then(|i| i.vendors.iter().find(|(id, _, _)| *id == v.id))
            {
                writeln!(f, "  {:<20} vendor API key (shown once): {key}", "")?;
                if let Some(secret) = generated {
                    writeln!(f, "  {:<20} signing secret (shown once): {secret}", "")?;
                }
            }
        }
        Ok(())
    }

    fn tenant(&self, f: &mut fmt::Formatter<'_>, d: &Draft, verdict: &Verdict) -> fmt::Result {
        let what = match verdict {
            Verdict::New => self.created().to_owned(),
            Verdict::Unchanged => {
                "unchanged: imported before with the same data (its admin key was \
                                   printed then)"
                    .into()
            }
            Verdict::Resume { .. } => format!(
                "{} (finishing an import that stopped halfway)",
                self.created()
            ),
            Verdict::Conflict(_) => "REFUSED (see below)".into(),
        };
        writeln!(f, "  {} (vendor {}): {what}", d.id, d.tenant.vendor_id)?;
        let revoked = d.keys.iter().filter(|k| k.key.revoked_at.is_some()).count();
        let no_password = d.users.iter().filter(|u| u.password_hash.is_none()).count();
        writeln!(
            f,
            "    pools {}, customer restrictions {}, held seats {}, charges {} (total {}; \
             rounding to cents {:+.4}), spend counters {}",
            d.packages.len(),
            d.restrictions.len(),
            d.leases.len(),
            d.charges.len(),
            d.charged(),
            d.rounding,
            d.spend.len()
        )?;
        writeln!(
            f,
            "    API keys {} imported ({revoked} revoked), users {} ({no_password} without a \
             password: a tenant admin sets one)",
            d.keys.len(),
            d.users.len()
        )?;
        let policy = match d.settings.signature_policy {
            SignaturePolicy::Off => "off",
            SignaturePolicy::V1 => "v1",
            SignaturePolicy::V2 => "v2",
        };
        writeln!(
            f,
            "    settings: anonymous status {}, signature policy {policy}, default lease {} s",
            if d.settings.anonymous_status {
                "on"
            } else {
                "off"
            },
            d.settings.default_lease_seconds
        )?;
        if let Some((_, key)) = self
            .issued
            .and_then(|i| i.admin_keys.iter().find(|(id, _)| *id == d.id))
        {
            writeln!(f, "    admin key (shown once): {key}")?;
        } else if matches!(verdict, Verdict::New | Verdict::Resume { .. }) && !self.refused() {
            writeln!(f, "    admin key: made and shown by the real run")?;
        }
        Ok(())
    }

    fn anomalies(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all = &self.anomalies.0;
        let count = |o: Outcome| all.iter().filter(|a| a.outcome == o).count();
        writeln!(
            f,
            "\nanomalies: {} (rows not imported: {}, adjusted: {}, notes: {})",
            all.len(),
            count(Outcome::Skipped),
            count(Outcome::Adjusted),
            count(Outcome::Noted)
        )?;
        // By table, in the order the tables are read; within one, in the order found.
        let mut sorted: Vec<_> = all.iter().collect();
        sorted.sort_by_key(|a| TABLES.iter().position(|t| *t == a.table));
        let mut listed: BTreeMap<&str, usize> = BTreeMap::new();
        for a in sorted {
            let n = listed.entry(a.table).or_default();
            *n += 1;
            if *n <= LISTED_PER_TABLE {
                writeln!(f, "  {a}")?;
            }
        }
        for (table, n) in listed.into_iter().filter(|(_, n)| *n > LISTED_PER_TABLE) {
            writeln!(f, "  … and {} more in {table}", n - LISTED_PER_TABLE)?;
        }
        Ok(())
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.dry_run {
            " (dry run: nothing is written)"
        } else {
            ""
        };
        writeln!(
            f,
            "permetrix import sqlite {} → {}{mode}",
            self.source.display(),
            self.target
        )?;
        writeln!(f, "file: {}; read in one transaction\n", self.shape)?;
        self.table(f)?;
        if let Some(len) = self.signing_secret.filter(|&n| n < 32) {
            writeln!(
                f,
                "\nnote: the signing secret has {len} characters; secrets permetrix makes have 64. \
                 Once the clients can be updated, rotate it \
                 (POST /api/admin/vendors/{{id}}/rotate-signing-secret)"
            )?;
        }
        self.vendors(f)?;
        writeln!(f, "\ntenants")?;
        for (d, verdict) in self.tenants {
            self.tenant(f, d, verdict)?;
        }
        self.anomalies(f)?;
        if self.refused() {
            writeln!(f, "\nREFUSED — nothing was written:")?;
            for r in self.refusals {
                writeln!(f, "  - {r}")?;
            }
        }
        Ok(())
    }
}

/// The report as text.
pub fn render(r: &Report<'_>) -> String {
    let mut s = String::new();
    let _ = write!(s, "{r}");
    s
}
