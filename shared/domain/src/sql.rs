//! Pieces of SQL that many modules build queries with.

use sqlx::{MySql, QueryBuilder};

/// Appends `?, ?, ...)` for an `IN (` list of ids.
pub(crate) fn push_ids(qb: &mut QueryBuilder<'_, MySql>, ids: &[u64]) {
    let mut list = qb.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    qb.push(")");
}
