//! Timestamps: stored as UTC `DATETIME(6)`, shown as RFC 3339 to the second.

use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, Timelike, Utc};
use serde::Serializer;

/// `2026-11-24T09:30:00Z`
pub fn timestamp<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

const CURSOR_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f";

/// Cursors keep the microseconds the database orders by.
pub fn cursor_value(at: DateTime<Utc>) -> String {
    at.naive_utc().format(CURSOR_FORMAT).to_string()
}

/// A cursor's timestamp, only as [`cursor_value`] writes it and only within what a
/// `DATETIME(6)` column holds (years 1000 to 9999, no leap second): anything else would
/// fail to bind, or bind as another instant.
pub fn parse_cursor_value(text: &str) -> Option<NaiveDateTime> {
    let at = NaiveDateTime::parse_from_str(text, CURSOR_FORMAT).ok()?;
    let holdable = (1000..=9999).contains(&at.year()) && at.nanosecond() < 1_000_000_000;
    (holdable && at.format(CURSOR_FORMAT).to_string() == text).then_some(at)
}

/// [`timestamp`] for an optional instant: `null` when absent.
pub fn optional_timestamp<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => timestamp(at, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_timestamps_are_read_only_as_written_and_within_the_column() {
        let at: DateTime<Utc> = "2026-11-24T09:30:00.123456Z".parse().unwrap();
        let text = cursor_value(at);
        assert_eq!(text, "2026-11-24 09:30:00.123456");
        assert_eq!(parse_cursor_value(&text), Some(at.naive_utc()));
        for bad in [
            "-0001-01-01 00:00:00.000000",
            "0999-12-31 23:59:59.999999",
            "+10000-01-01 00:00:00.000000",
            "2026-12-31 23:59:60.000000",
            "2026-11-24 09:30:00",
            "2026-11-24 09:30:00.1234567",
            "2026-11-24T09:30:00.123456",
            " 2026-11-24 09:30:00.123456",
            "2026-02-30 00:00:00.000000",
            "",
        ] {
            assert_eq!(parse_cursor_value(bad), None, "{bad}");
        }
        assert!(parse_cursor_value("1000-01-01 00:00:00.000000").is_some());
        assert!(parse_cursor_value("9999-12-31 23:59:59.999999").is_some());
    }
}
