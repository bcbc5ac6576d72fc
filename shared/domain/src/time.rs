//! Timestamps: stored as UTC `DATETIME(6)`, shown as RFC 3339 to the second.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::Serializer;

/// `2026-11-24T09:30:00Z`
pub fn timestamp<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Cursors keep the microseconds the database orders by.
pub fn cursor_value(at: DateTime<Utc>) -> String {
    at.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

pub fn parse_cursor_value(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.6f").ok()
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
