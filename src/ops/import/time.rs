//! The old file's timestamps: ISO 8601 text, with an offset
//! (`2025-11-07T10:15:02.123456+00:00`) or naive (`2025-11-07T10:15:02.123456`,
//! meaning UTC), with `T` or a space between date and time (Python's `isoformat()` and
//! `str()`, SQLite's `CURRENT_TIMESTAMP`).
use permetrix_storage::Timestamp;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// A parsed timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The instant (milliseconds; finer digits are dropped).
    pub at: Timestamp,
    /// The text had no offset and was taken as UTC.
    pub naive: bool,
}

/// Parses one timestamp; `None` if it is no ISO 8601 date and time.
pub fn parse(text: &str) -> Option<Parsed> {
    let text = text.trim();
    // Only the separator between date and time may be a space.
    let normal: String = text
        .char_indices()
        .map(|(i, c)| if i == 10 && c == ' ' { 'T' } else { c })
        .collect();
    if let Ok(t) = OffsetDateTime::parse(&normal, &Rfc3339) {
        return Some(Parsed {
            at: millis(t),
            naive: false,
        });
    }
    let naive = format_description!(
        version = 2,
        "[year]-[month]-[day]T[hour]:[minute][optional [:[second][optional [.[subsecond]]]]]"
    );
    // An offset without a colon (`+0000`) or a bare date is not what the old server wrote.
    PrimitiveDateTime::parse(&normal, naive)
        .ok()
        .map(|t| Parsed {
            at: millis(t.assume_utc()),
            naive: true,
        })
}

fn millis(t: OffsetDateTime) -> Timestamp {
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    Timestamp::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: i64 = 1_762_510_502_123; // 2025-11-07T10:15:02.123Z

    #[test]
    fn offsets_and_naive_times_are_read_as_utc() {
        for (text, naive) in [
            ("2025-11-07T10:15:02.123456+00:00", false),
            ("2025-11-07 10:15:02.123456+00:00", false),
            ("2025-11-07T11:15:02.123+01:00", false),
            ("2025-11-07T10:15:02.123Z", false),
            ("2025-11-07T10:15:02.123456", true),
            (" 2025-11-07 10:15:02.123 ", true),
        ] {
            let parsed = parse(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(
                parsed,
                Parsed {
                    at: Timestamp::from_millis(AT),
                    naive
                },
                "{text}"
            );
        }
        let whole = parse("2025-11-07 10:15:02").unwrap();
        assert_eq!(whole.at, Timestamp::from_millis(AT - 123));
        assert_eq!(
            parse("2025-11-07T10:15").unwrap().at,
            Timestamp::from_secs(1_762_510_500)
        );
    }

    #[test]
    fn anything_else_is_no_timestamp() {
        for text in [
            "",
            "yesterday",
            "2025-11-07",
            "2025-13-07T10:15:02",
            "1762510502",
            "2025-11-07X10:15:02",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
