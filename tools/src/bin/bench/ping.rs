//! What sqlx's pool adds to each query: sqlx 0.8 pings every connection as it returns to
//! the pool (`PoolConnection::return_to_pool`, with no setting to turn it off), a round
//! trip the server answers for each release. The same read is timed through the pool and
//! on one connection held throughout, which is never released and so never pinged.

use std::sync::Arc;

use sqlx::{Connection, MySqlConnection, MySqlPool};
use tokio::sync::Mutex;

use crate::warm::{Stats, measure};

const READ: &str = "SELECT id, name, price FROM products WHERE id = ?";

pub struct Release {
    pub pooled: Stats,
    pub held: Stats,
    /// Statements and pings the server counted per read, each way.
    pub pooled_commands: f64,
    pub held_commands: f64,
}

pub async fn release_cost(url: &str, pool: &MySqlPool, product: u64, n: usize) -> Release {
    let before = commands(pool).await;
    let pooled = {
        let pool = pool.clone();
        measure(n, 1, move || {
            let pool = pool.clone();
            async move {
                sqlx::query(READ)
                    .bind(product)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            }
        })
        .await
    };
    let pooled_commands = (commands(pool).await - before - 1.0) / crate::warm::runs(n) as f64;
    let connection = Arc::new(Mutex::new(MySqlConnection::connect(url).await.unwrap()));
    let before = commands(pool).await;
    let held = measure(n, 1, move || {
        let connection = connection.clone();
        async move {
            let mut connection = connection.lock().await;
            sqlx::query(READ)
                .bind(product)
                .fetch_one(&mut *connection)
                .await
                .unwrap();
        }
    })
    .await;
    let held_commands = (commands(pool).await - before - 1.0) / crate::warm::runs(n) as f64;
    Release {
        pooled,
        held,
        pooled_commands,
        held_commands,
    }
}

/// Statements plus pings the server has answered so far (`Questions` does not count pings).
async fn commands(pool: &MySqlPool) -> f64 {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_admin_commands')",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.iter().map(|(_, v)| v.parse::<f64>().unwrap()).sum()
}

pub fn render(release: &Release) -> String {
    let ms = |s: &Stats| format!("{:.3}", s.p50.as_secs_f64() * 1e3);
    format!(
        "## Between sqlx and the socket: the ping on every release\n\n\
         The same read by primary key at concurrency 1, through the pool and on one connection \
         held throughout (never released, so never pinged):\n\n\
         | | p50 ms | req/s | statements + pings per read |\n|---|---:|---:|---:|\n\
         | through the pool | {} | {:.0} | {:.2} |\n\
         | one held connection | {} | {:.0} | {:.2} |\n\n\
         sqlx 0.8 pings each connection as it returns to the pool, unconditionally \
         (`PoolConnection::return_to_pool`); the pool's `after_release` hook runs before it and \
         cannot skip it. The ping runs in a task of its own after the response is on its way, \
         so it costs the server a round trip and the connection's next user a wait, not the \
         caller. Removing it takes a change in sqlx (an option to skip the release test), or \
         holding one connection per Lambda instance outside the pool (an instance serves one \
         request at a time), which gives up the pool's reconnects and idle timeout.\n\n",
        ms(&release.pooled),
        release.pooled.per_second,
        release.pooled_commands,
        ms(&release.held),
        release.held.per_second,
        release.held_commands,
    )
}
