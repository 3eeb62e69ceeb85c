//! What the report endpoints (usage, ledger) share: time windows, output formats and
//! CSV that spreadsheets open safely.
use actix_web::HttpResponse;
use permetrix_actors::domain::month_of;
use permetrix_storage::Timestamp;

use crate::http::error::{ApiError, Result};
use crate::http::input::parse_time;

/// Output format of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/json` (the default).
    Json,
    /// `text/csv`, one header line.
    Csv,
}

impl Format {
    /// Parses `?format=`.
    pub fn parse(v: Option<&str>) -> Result<Format> {
        match v.unwrap_or("json") {
            "json" | "" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            other => Err(ApiError::invalid(format!(
                "format '{other}' is not known; use 'json' or 'csv'"
            ))),
        }
    }
}

/// A half-open time window `[from, to)`.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Start, included.
    pub from: Timestamp,
    /// End, excluded.
    pub to: Timestamp,
}

/// Midnight UTC on the first day of `now`'s month.
pub fn month_start(now: Timestamp) -> Timestamp {
    let month = month_of(now);
    let date = time::Month::try_from((month % 100) as u8)
        .ok()
        .and_then(|m| time::Date::from_calendar_date((month / 100) as i32, m, 1).ok());
    date.map_or(Timestamp::from_millis(0), |d| {
        Timestamp::from_secs(d.midnight().assume_utc().unix_timestamp())
    })
}

impl Window {
    /// Parses `from`/`to` (RFC 3339 or `YYYY-MM-DD`, meaning midnight UTC); missing
    /// ends default to `default_from` and to just after `now`.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        default_from: Timestamp,
        now: Timestamp,
    ) -> Result<Window> {
        let from = parse_time("from", from)?.unwrap_or(default_from);
        let to = parse_time("to", to)?.unwrap_or(Timestamp::from_millis(now.millis() + 1));
        if to <= from {
            return Err(ApiError::invalid(
                "'to' must be after 'from' (the window is from <= t < to)",
            ));
        }
        Ok(Window { from, to })
    }
}

/// A text cell as a spreadsheet should show it: cells that start like a formula
/// (`=`, `+`, `-`, `@`) get a leading `'` so that opening the file runs nothing.
///
/// So does a cell that starts with `'` itself, which makes the rule reversible: a reader
/// removes one leading `'` from any cell that has one and gets the value exactly (the
/// ledger's hashes are checked on those values).
pub fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\'']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

/// Writes CSV rows (the first is the header) into a `text/csv` response.
pub fn csv_response(rows: Vec<Vec<String>>) -> Result<HttpResponse> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.write_record(&row).map_err(ApiError::internal)?;
    }
    let bytes = writer.into_inner().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .body(bytes))
}

/// Runs a storage read on the blocking pool (report reads can be long).
pub async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> std::result::Result<T, permetrix_storage::StorageError> + Send + 'static,
    T: Send + 'static,
{
    actix_web::web::block(f)
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a reader does: one leading `'` off.
    fn uncell(s: &str) -> &str {
        s.strip_prefix('\'').unwrap_or(s)
    }

    #[test]
    fn cells_run_nothing_and_give_their_value_back() {
        for value in [
            "=1+1", "+x", "-2", "@cmd", "'=x", "''", "'", "plain", "", "a=b",
        ] {
            let c = cell(value);
            assert!(!c.starts_with(['=', '+', '-', '@']), "{c}");
            assert_eq!(uncell(&c), value);
        }
    }
}
