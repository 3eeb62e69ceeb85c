//! The old file's tables as read, before any meaning is given to them: named columns
//! and SQLite's dynamically typed cells. The SQLite reader fills these; everything
//! after it works on them, so the rules are tested without a database file.
use std::collections::BTreeMap;

/// One value as SQLite stored it (a column's declared type does not bind its cells).
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// `NULL`.
    Null,
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// A blob (never expected; reported where a value was).
    Blob(Vec<u8>),
}

/// One table: its columns and rows, in the file's row order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawRows {
    /// Column names, lowercase.
    pub columns: Vec<String>,
    /// Rows, one cell per column.
    pub rows: Vec<Vec<Cell>>,
}

impl RawRows {
    /// A table with `columns` and no rows.
    pub fn new(columns: &[&str]) -> Self {
        RawRows {
            columns: columns.iter().map(|c| c.to_ascii_lowercase()).collect(),
            rows: Vec::new(),
        }
    }

    /// Whether the table has column `name`.
    pub fn has(&self, name: &str) -> bool {
        self.columns.iter().any(|c| c == name)
    }

    /// The rows, each able to find its cells by column name.
    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().enumerate().map(|(i, cells)| Row {
            table: self,
            cells,
            position: i + 1,
        })
    }
}

/// The tables the import reads, by name; a table the file lacks is absent.
pub type RawFile = BTreeMap<String, RawRows>;

/// A value that is present but not what the column should hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadCell {
    /// Column name.
    pub column: String,
    /// What was found, shortened.
    pub found: String,
    /// What was expected.
    pub expected: &'static str,
}

impl std::fmt::Display for BadCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is {} (expected {})",
            self.column, self.found, self.expected
        )
    }
}

/// A row reader's refusal reads as its reason.
impl From<BadCell> for String {
    fn from(b: BadCell) -> String {
        b.to_string()
    }
}

/// One row of a [`RawRows`].
#[derive(Clone, Copy)]
pub struct Row<'a> {
    table: &'a RawRows,
    cells: &'a [Cell],
    /// 1-based position in the table (for rows without an id).
    pub position: usize,
}

fn shown(cell: &Cell) -> String {
    match cell {
        Cell::Null => "NULL".into(),
        Cell::Int(i) => i.to_string(),
        Cell::Real(r) => r.to_string(),
        Cell::Text(t) => format!("'{}'", t.chars().take(40).collect::<String>()),
        Cell::Blob(b) => format!("a blob of {} bytes", b.len()),
    }
}

impl<'a> Row<'a> {
    /// The cell of `column`; `Null` when the table has no such column (columns added
    /// later by `ALTER TABLE` may be missing from older files).
    pub fn cell(&self, column: &str) -> &'a Cell {
        self.table
            .columns
            .iter()
            .position(|c| c == column)
            .and_then(|i| self.cells.get(i))
            .unwrap_or(&Cell::Null)
    }

    fn bad(&self, column: &str, expected: &'static str) -> BadCell {
        BadCell {
            column: column.into(),
            found: shown(self.cell(column)),
            expected,
        }
    }

    /// Text, or `None` for `NULL`/missing; numbers are taken as their text.
    pub fn text(&self, column: &str) -> Result<Option<String>, BadCell> {
        match self.cell(column) {
            Cell::Null => Ok(None),
            Cell::Text(t) => Ok(Some(t.clone())),
            Cell::Int(i) => Ok(Some(i.to_string())),
            Cell::Real(r) => Ok(Some(r.to_string())),
            Cell::Blob(_) => Err(self.bad(column, "text")),
        }
    }

    /// Text that must be present and not blank.
    pub fn required_text(&self, column: &str) -> Result<String, BadCell> {
        self.text(column)?
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| self.bad(column, "text"))
    }

    /// A whole number, or `None` for `NULL`/missing; text and integral reals that
    /// hold one are accepted (SQLite keeps what it was given).
    pub fn int(&self, column: &str) -> Result<Option<i64>, BadCell> {
        let bad = || self.bad(column, "a whole number");
        match self.cell(column) {
            Cell::Null => Ok(None),
            Cell::Int(i) => Ok(Some(*i)),
            Cell::Real(r) if r.fract() == 0.0 && r.abs() < 9e15 => Ok(Some(*r as i64)),
            Cell::Text(t) => t.trim().parse().map(Some).map_err(|_| bad()),
            Cell::Real(_) | Cell::Blob(_) => Err(bad()),
        }
    }

    /// A number, or `None` for `NULL`/missing.
    pub fn real(&self, column: &str) -> Result<Option<f64>, BadCell> {
        let bad = || self.bad(column, "a number");
        match self.cell(column) {
            Cell::Null => Ok(None),
            Cell::Int(i) => Ok(Some(*i as f64)),
            Cell::Real(r) if r.is_finite() => Ok(Some(*r)),
            Cell::Text(t) => t
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|r| r.is_finite())
                .map(Some)
                .ok_or_else(bad),
            Cell::Real(_) | Cell::Blob(_) => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_read_as_the_column_means_them() {
        let mut t = RawRows::new(&["Tool", "total", "price", "blob"]);
        t.rows.push(vec![
            Cell::Text("ECU".into()),
            Cell::Text(" 20 ".into()),
            Cell::Int(5),
            Cell::Blob(vec![1, 2]),
        ]);
        t.rows.push(vec![
            Cell::Int(7),
            Cell::Real(3.0),
            Cell::Text("x".into()),
            Cell::Null,
        ]);
        let rows: Vec<Row<'_>> = t.rows().collect();
        assert!(t.has("tool"));
        assert_eq!(rows[0].text("tool"), Ok(Some("ECU".into())));
        assert_eq!(rows[0].int("total"), Ok(Some(20)));
        assert_eq!(rows[0].real("price"), Ok(Some(5.0)));
        assert!(rows[0].text("blob").is_err());
        assert_eq!(rows[1].text("tool"), Ok(Some("7".into())));
        assert_eq!(rows[1].int("total"), Ok(Some(3)));
        let bad = rows[1].real("price").unwrap_err();
        assert_eq!(bad.to_string(), "price is 'x' (expected a number)");
        // A column the file lacks reads as NULL.
        assert_eq!(rows[1].int("vendor_total"), Ok(None));
        assert!(rows[1].required_text("blob").is_err());
        assert_eq!(rows[1].position, 2);
    }
}
