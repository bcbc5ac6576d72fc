//! What a pooled session sends the server, counted by the server itself: the facts behind
//! README's account of the RDS Proxy (it pins a session on `SET` and on server-side
//! prepared statements) and of `wait_timeout`. If a sqlx upgrade changes one of these,
//! this fails and README's proxy section needs another look.

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{Executor, MySqlConnection, MySqlPool, Row};

/// Counters read through the text protocol (`raw_sql`), so that reading them prepares
/// nothing; what they report is the session's history up to the read.
async fn counters(conn: &mut MySqlConnection) -> (u64, u64) {
    let mut set = 0;
    let mut prepared = 0;
    for row in conn
        .fetch_all(sqlx::raw_sql(
            "SHOW SESSION STATUS WHERE Variable_name IN ('Com_set_option', 'Com_stmt_prepare')",
        ))
        .await
        .unwrap()
    {
        let name: String = row.get(0);
        let value: String = row.get(1);
        match name.as_str() {
            "Com_set_option" => set = value.parse().unwrap(),
            "Com_stmt_prepare" => prepared = value.parse().unwrap(),
            _ => {}
        }
    }
    (set, prepared)
}

#[sqlx::test(migrations = false)]
async fn a_pooled_session_sets_its_variables_and_prepares_every_bound_query(
    _: MySqlPoolOptions,
    options: MySqlConnectOptions,
) {
    // As the functions build it: production pool, production options (UTC session).
    let pool: MySqlPool = platform::db::pool_with(options.timezone(Some("+00:00".into())), 1);
    let mut conn = pool.acquire().await.unwrap();
    let (set_at_connect, prepared_at_connect) = counters(&mut conn).await;
    // sqlx's own `SET sql_mode=..., time_zone=..., NAMES ...` and the pool's `wait_timeout`.
    assert_eq!(set_at_connect, 2, "two SET statements on connect");
    assert_eq!(prepared_at_connect, 0);
    let timeout: u64 = sqlx::query_scalar("SELECT @@SESSION.wait_timeout")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(timeout, platform::db::SERVER_IDLE_TIMEOUT.as_secs());

    // Every query with a bound value is a server-side prepared statement, prepared once
    // per connection and cached.
    for _ in 0..3 {
        let _: i64 = sqlx::query_scalar("SELECT ? + 1")
            .bind(1_i64)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    }
    let (_, prepared) = counters(&mut conn).await;
    assert_eq!(
        prepared - prepared_at_connect,
        2,
        "the timeout read and the bound query"
    );
    drop(conn);
    pool.close().await;
}

#[sqlx::test(migrations = false)]
async fn no_connect_option_of_sqlx_avoids_server_side_prepared_statements(
    _: MySqlPoolOptions,
    options: MySqlConnectOptions,
) {
    // Every session setting sqlx sends, turned off, and no statement cache: what remains is
    // the least sqlx 0.8 can send.
    let bare = options
        .statement_cache_capacity(0)
        .pipes_as_concat(false)
        .no_engine_substitution(false)
        .set_names(false)
        .timezone(None);
    let mut conn: MySqlConnection = sqlx::ConnectOptions::connect(&bare).await.unwrap();
    let (set, prepared_before) = counters(&mut conn).await;
    assert_eq!(set, 0, "nothing is SET on connect any more");
    for _ in 0..3 {
        let _: i64 = sqlx::query_scalar("SELECT ? + 1")
            .bind(1_i64)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    }
    // Without the cache each bound query is prepared (and closed) again: still the binary
    // protocol, one more round trip each, and still a prepared statement to a proxy.
    let (_, prepared) = counters(&mut conn).await;
    assert_eq!(prepared - prepared_before, 3);
}
