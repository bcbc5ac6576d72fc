//! Keyset pagination: opaque cursors, page sizes, and the SQL that walks an index.
//!
//! A cursor names the sort it belongs to and the (sort value, id) of the last item served;
//! the next page starts strictly after it. Cost does not grow with depth, and ties on the
//! sort value are broken by id so a walk never skips or repeats an item.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::{MySql, QueryBuilder};

use crate::error::Error;

/// `{"items": [...], "next_cursor": "..." | null}`
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The `limit` query parameter: 1..=100, 20 when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    pub const MAX: u32 = 100;

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Limit(20)
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = u32::deserialize(deserializer)?;
        if (1..=Self::MAX).contains(&value) {
            Ok(Limit(value))
        } else {
            Err(serde::de::Error::custom("must be between 1 and 100"))
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CursorData {
    /// The sort the cursor was made for; replaying it under another sort is an error.
    s: String,
    /// The last item's sort value, as text (timestamps, decimals and names all round-trip).
    v: String,
    i: u64,
}

/// The longest cursor accepted, in bytes: a 200-character name written entirely in JSON
/// escapes still fits, and nothing longer is decoded.
pub const MAX_CURSOR_LEN: usize = 2048;

/// The position after the last item of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub value: String,
    pub id: u64,
}

impl Cursor {
    pub fn encode(sort: &str, value: String, id: u64) -> String {
        let data = CursorData {
            s: sort.to_string(),
            v: value,
            i: id,
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&data).expect("a cursor always serialises"))
    }

    /// Decodes a cursor made for `sort`; anything else is the client's invalid input. The
    /// value is still text: [`Keyset::push_cursor`] reads it as what its column holds.
    pub fn decode(sort: &str, text: &str) -> Result<Cursor, Error> {
        if text.len() > MAX_CURSOR_LEN {
            return Err(invalid_cursor());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid_cursor())?;
        let data: CursorData = serde_json::from_slice(&bytes).map_err(|_| invalid_cursor())?;
        if data.s != sort || data.i == 0 {
            return Err(invalid_cursor());
        }
        Ok(Cursor {
            value: data.v,
            id: data.i,
        })
    }
}

/// The refusal of a cursor that this listing did not make.
pub fn invalid_cursor() -> Error {
    Error::invalid("cursor", "is not a cursor from this listing")
}

/// What a listing's sort column holds, and so which cursor values are acceptable. Only a
/// value the column can hold reaches the query: sqlx cannot encode some values a client
/// could write (a date in year -1) and panics when one is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortValue {
    /// A `DATETIME(6)`, written as [`crate::time::cursor_value`] writes it.
    Time,
    /// A `DECIMAL(12,2)` amount, written with exactly two decimals, within the amounts the
    /// shop allows.
    Money,
    /// Text of at most this many characters (the column's size).
    Text { max_chars: usize },
}

/// One way to order a listing: a column (always with `id` as tie-breaker) and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyset {
    /// The qualified column, e.g. `p.price`. Must come from code, never from input.
    pub column: &'static str,
    /// The id column of the same table, e.g. `p.id`.
    pub id_column: &'static str,
    pub descending: bool,
}

impl Keyset {
    /// Continues after `cursor`, if given, reading its value strictly as `value`: a cursor
    /// of another sort, a value the column cannot hold, or anything else is invalid input
    /// naming `cursor`, and nothing is bound.
    pub fn push_cursor(
        &self,
        qb: &mut QueryBuilder<'_, MySql>,
        sort: &str,
        cursor: Option<&str>,
        value: SortValue,
    ) -> Result<(), Error> {
        let Some(text) = cursor else {
            return Ok(());
        };
        let cursor = Cursor::decode(sort, text)?;
        match value {
            SortValue::Time => {
                let at =
                    crate::time::parse_cursor_value(&cursor.value).ok_or_else(invalid_cursor)?;
                self.push_after(qb, at, cursor.id);
            }
            SortValue::Money => {
                let amount =
                    crate::money::parse_cursor_value(&cursor.value).ok_or_else(invalid_cursor)?;
                self.push_after(qb, amount, cursor.id);
            }
            SortValue::Text { max_chars } => {
                if cursor.value.chars().count() > max_chars {
                    return Err(invalid_cursor());
                }
                self.push_after(qb, cursor.value, cursor.id);
            }
        }
        Ok(())
    }

    /// For listings ordered by a `DATETIME(6)` column: continues after `cursor`, if given.
    pub fn push_time_cursor(
        &self,
        qb: &mut QueryBuilder<'_, MySql>,
        sort: &str,
        cursor: Option<&str>,
    ) -> Result<(), Error> {
        self.push_cursor(qb, sort, cursor, SortValue::Time)
    }

    /// Appends `AND (col > ? OR (col = ? AND id > ?))` (or `<` when descending).
    /// The expanded form, unlike a row comparison, is turned into an index range by both
    /// MySQL and MariaDB. Private: only values checked by [`Self::push_cursor`] come here.
    fn push_after<'a, V>(&self, qb: &mut QueryBuilder<'a, MySql>, value: V, id: u64)
    where
        V: 'a + sqlx::Encode<'a, MySql> + sqlx::Type<MySql> + Clone + Send,
    {
        let op = if self.descending { " < " } else { " > " };
        qb.push(" AND (")
            .push(self.column)
            .push(op)
            .push_bind(value.clone())
            .push(" OR (")
            .push(self.column)
            .push(" = ")
            .push_bind(value)
            .push(" AND ")
            .push(self.id_column)
            .push(op)
            .push_bind(id)
            .push("))");
    }

    /// Appends `ORDER BY col dir, id dir LIMIT n` (one extra row tells if a next page
    /// exists).
    pub fn push_order_and_limit(&self, qb: &mut QueryBuilder<'_, MySql>, limit: Limit) {
        let dir = if self.descending { " DESC" } else { " ASC" };
        qb.push(" ORDER BY ")
            .push(self.column)
            .push(dir)
            .push(", ")
            .push(self.id_column)
            .push(dir)
            .push(" LIMIT ")
            .push_bind(limit.get() + 1);
    }
}

/// Trims the extra row fetched by [`Keyset::push_order_and_limit`] and makes the cursor.
pub fn into_page<T>(
    mut rows: Vec<T>,
    limit: Limit,
    sort: &str,
    position: impl Fn(&T) -> (String, u64),
) -> Page<T> {
    let next_cursor = if rows.len() > limit.get() as usize {
        rows.truncate(limit.get() as usize);
        rows.last().map(|last| {
            let (value, id) = position(last);
            Cursor::encode(sort, value, id)
        })
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_sorts() {
        let text = Cursor::encode("price", "19.99".into(), 42);
        let cursor = Cursor::decode("price", &text).unwrap();
        assert_eq!(
            cursor,
            Cursor {
                value: "19.99".into(),
                id: 42
            }
        );
        assert!(Cursor::decode("-price", &text).is_err());
        assert!(Cursor::decode("price", "not a cursor").is_err());
        assert!(Cursor::decode("price", "").is_err());
    }

    /// What each kind of column accepts from a cursor, and that a refusal binds nothing.
    #[test]
    fn cursor_values_are_read_as_their_column_holds_them() {
        let keyset = Keyset {
            column: "t.c",
            id_column: "t.id",
            descending: true,
        };
        let apply = |value: SortValue, text: &str, id: u64| {
            let mut qb: QueryBuilder<MySql> = QueryBuilder::new("SELECT 1 WHERE 1 = 1");
            let cursor = Cursor::encode("s", text.to_string(), id);
            let outcome = keyset.push_cursor(&mut qb, "s", Some(&cursor), value);
            (outcome.is_ok(), qb.sql().to_string())
        };
        let text = SortValue::Text { max_chars: 3 };
        for (value, good, bad) in [
            (
                SortValue::Time,
                "2026-11-24 09:30:00.000000",
                // The cursor of the report: a year MySQL cannot hold, which sqlx panicked on.
                "-0001-01-01 00:00:00.000000",
            ),
            (SortValue::Money, "19.99", "100000000.00"),
            (text, "abc", "abcd"),
        ] {
            let (ok, sql) = apply(value, good, 7);
            assert!(ok && sql.contains("t.c < ?"), "{value:?} {good}: {sql}");
            let (ok, sql) = apply(value, bad, 7);
            assert!(
                !ok && sql == "SELECT 1 WHERE 1 = 1",
                "{value:?} {bad}: {sql}"
            );
        }
        let mut qb: QueryBuilder<MySql> = QueryBuilder::new("");
        let reported =
            "eyJzIjoiLWNyZWF0ZWRfYXQiLCJ2IjoiLTAwMDEtMDEtMDEgMDA6MDA6MDAuMDAwMDAwIiwiaSI6MX0";
        let err = keyset
            .push_cursor(&mut qb, "-created_at", Some(reported), SortValue::Time)
            .unwrap_err();
        assert!(matches!(&err, Error::Invalid(fields) if fields[0].field == "cursor"));
        let long = "A".repeat(MAX_CURSOR_LEN + 1);
        assert!(Cursor::decode("s", &long).is_err());
        let extra = URL_SAFE_NO_PAD.encode(r#"{"s":"s","v":"abc","i":1,"x":0}"#);
        assert!(Cursor::decode("s", &extra).is_err());
        assert!(keyset.push_cursor(&mut qb, "s", None, text).is_ok());
    }

    #[test]
    fn limit_bounds() {
        let parse = |s: &str| serde_json::from_str::<Limit>(s);
        assert_eq!(parse("1").unwrap().get(), 1);
        assert_eq!(parse("100").unwrap().get(), 100);
        assert!(parse("0").is_err());
        assert!(parse("101").is_err());
        assert!(parse("-1").is_err());
        assert_eq!(Limit::default().get(), 20);
    }
}
