//! Property tests of the page cursor: whatever text arrives as `cursor`, decoding it and
//! applying it to a keyset gives a continued query or a 400 naming `cursor`, never a panic.
//! Applying binds the values (sqlx encodes at bind time, and panicked on values it could
//! not encode), so no database is needed to find those.

use chrono::{Datelike, NaiveDate};
use domain::error::Error;
use domain::page::{Cursor, Keyset, SortValue};
use proptest::prelude::*;
use sqlx::{MySql, QueryBuilder};

const KEYSET: Keyset = Keyset {
    column: "t.c",
    id_column: "t.id",
    descending: false,
};

/// Every kind of column a listing sorts by (times, amounts, product and category names).
const VALUES: [SortValue; 4] = [
    SortValue::Time,
    SortValue::Money,
    SortValue::Text { max_chars: 200 },
    SortValue::Text { max_chars: 100 },
];

/// Applies `cursor` for sort `s` to each kind of column: a 400 naming `cursor`, or the
/// continued query with its three values bound.
fn apply_everywhere(cursor: &str) -> Vec<bool> {
    VALUES
        .iter()
        .map(|value| {
            let mut qb: QueryBuilder<MySql> = QueryBuilder::new("SELECT 1 FROM t WHERE 1 = 1");
            match KEYSET.push_cursor(&mut qb, "s", Some(cursor), *value) {
                Ok(()) => {
                    assert!(qb.sql().ends_with("t.id > ?))"), "{}", qb.sql());
                    true
                }
                Err(Error::Invalid(fields)) => {
                    assert_eq!(fields.len(), 1);
                    assert_eq!(fields[0].field, "cursor");
                    assert_eq!(qb.sql(), "SELECT 1 FROM t WHERE 1 = 1", "nothing bound");
                    false
                }
                Err(other) => panic!("not a 400: {other:?}"),
            }
        })
        .collect()
}

/// Text of any kind a client could send: printable, any Unicode, or cursor-like base64.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".*",
        "[A-Za-z0-9_-]{0,200}",
        proptest::collection::vec(any::<u8>(), 0..300)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    ]
}

/// Values a cursor's `v` could hold: anything, or something close to a timestamp or an
/// amount (right shape, any numbers, signs and years).
fn any_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any_text(),
        "[+-]?[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2} [0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\\.[0-9]{0,9})?",
        "[+-]?[0-9]{0,30}(\\.[0-9]{0,30})?([eE][+-]?[0-9]{1,4})?",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary text as a cursor.
    #[test]
    fn any_text_is_a_cursor_or_a_400(text in any_text()) {
        apply_everywhere(&text);
        let _ = Cursor::decode("s", &text);
    }

    /// Well-formed cursors of the right sort carrying any value and any id: the case of
    /// the reported crash (a date in year -1) and its relatives.
    #[test]
    fn any_value_under_the_right_sort_is_read_strictly(value in any_value(), id in any::<u64>()) {
        let accepted = apply_everywhere(&Cursor::encode("s", value.clone(), id));
        if id == 0 {
            prop_assert_eq!(accepted, vec![false; VALUES.len()]);
        }
    }

    /// Any instant chrono can represent, in the cursor's own format: years outside what
    /// a `DATETIME(6)` column holds are refused, the rest continue exactly there.
    #[test]
    fn instants_beyond_the_column_are_refused(
        days in (NaiveDate::MIN.num_days_from_ce())..=(NaiveDate::MAX.num_days_from_ce()),
        micros in 0u64..86_400_000_000,
    ) {
        let date = NaiveDate::from_num_days_from_ce_opt(days).unwrap();
        let at = date.and_hms_opt(0, 0, 0).unwrap()
            + chrono::Duration::microseconds(micros as i64);
        let text = at.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
        let accepted = apply_everywhere(&Cursor::encode("s", text.clone(), 1))[0];
        let holdable = (1000..=9999).contains(&at.year());
        prop_assert_eq!(accepted, holdable, "{}", text);
        if holdable {
            prop_assert_eq!(domain::time::parse_cursor_value(&text), Some(at));
        }
    }

    /// A cursor made for one sort is refused by every other.
    #[test]
    fn other_sorts_are_refused(sort in "[a-z_-]{0,12}", value in any_value()) {
        prop_assume!(sort != "s");
        let cursor = Cursor::encode(&sort, value, 1);
        prop_assert_eq!(apply_everywhere(&cursor), vec![false; VALUES.len()]);
    }
}
