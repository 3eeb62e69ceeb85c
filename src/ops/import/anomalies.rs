//! What the import found in the file that was not as it should be, each tied to the
//! table and row it came from.
use std::fmt;

/// What became of a row with an anomaly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Not imported.
    Skipped,
    /// Imported with the change the detail says.
    Adjusted,
    /// Imported as it was; worth knowing.
    Noted,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Skipped => "not imported",
            Outcome::Adjusted => "adjusted",
            Outcome::Noted => "note",
        }
    }
}

/// One anomaly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    /// The file's table.
    pub table: &'static str,
    /// The row: its id in the file (or `#n`, its position).
    pub row: String,
    /// The tenant the row belongs to, where known.
    pub tenant: Option<String>,
    /// What became of it.
    pub outcome: Outcome,
    /// What was found, and what was done.
    pub detail: String,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.table, self.row)?;
        if let Some(t) = &self.tenant {
            write!(f, " (tenant {t})")?;
        }
        write!(f, ": {}: {}", self.outcome.label(), self.detail)
    }
}

/// Where a row is, to tie anomalies to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The file's table.
    pub table: &'static str,
    /// The row's id in the file, or `#n`.
    pub row: String,
    /// Its tenant, once known.
    pub tenant: Option<String>,
}

impl Origin {
    /// An anomaly of this row.
    pub fn anomaly(&self, outcome: Outcome, detail: impl Into<String>) -> Anomaly {
        Anomaly {
            table: self.table,
            row: self.row.clone(),
            tenant: self.tenant.clone(),
            outcome,
            detail: detail.into(),
        }
    }
}

/// The anomalies found so far, in the order found.
#[derive(Clone, Debug, Default)]
pub struct Anomalies(pub Vec<Anomaly>);

impl Anomalies {
    /// Records that `origin` was not imported, and why.
    pub fn skip(&mut self, origin: &Origin, detail: impl Into<String>) {
        self.0.push(origin.anomaly(Outcome::Skipped, detail));
    }

    /// Records that `origin` was imported with a change.
    pub fn adjust(&mut self, origin: &Origin, detail: impl Into<String>) {
        self.0.push(origin.anomaly(Outcome::Adjusted, detail));
    }

    /// Records something worth knowing about `origin`.
    pub fn note(&mut self, origin: &Origin, detail: impl Into<String>) {
        self.0.push(origin.anomaly(Outcome::Noted, detail));
    }

    /// How many rows of `table` were not imported.
    pub fn skipped_in(&self, table: &str) -> usize {
        self.0
            .iter()
            .filter(|a| a.table == table && a.outcome == Outcome::Skipped)
            .count()
    }
}
