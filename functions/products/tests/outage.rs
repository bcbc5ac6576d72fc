//! The database goes away and comes back: the function answers 503 meanwhile and recovers
//! without a restart.

use std::net::ToSocketAddrs;

use sqlx::MySqlPool;
use testkit::{TcpProxy, TestApp};

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn unreachable_database_is_503_and_the_function_recovers(pool: MySqlPool) {
    let options = pool.connect_options();
    let target = (options.get_host(), options.get_port())
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap();
    let proxy = TcpProxy::start(target).await;
    let through_proxy = platform::db::pool_with(
        (*options).clone().host("127.0.0.1").port(proxy.addr.port()),
        2,
    );
    let app = TestApp::new(through_proxy, products::router);

    app.get("/products").send().await.expect(200);

    proxy.stop();
    let down = app.get("/products").send().await;
    let problem = down.problem(503);
    assert_eq!(problem["type"], "/problems/service-unavailable");
    assert!(down.header("retry-after").is_some());
    assert!(
        !down.body.to_string().contains("127.0.0.1"),
        "no internals leak"
    );

    proxy.restart().await;
    app.get("/products").send().await.expect(200);
}

/// A connection that died while idle in the pool (the server's timeout, a frozen Lambda,
/// a failover) is found out before it is used: the next request is answered as usual.
#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn a_connection_that_died_while_idle_is_replaced_unseen(pool: MySqlPool) {
    let own = platform::db::pool_with((*pool.connect_options()).clone(), 1);
    let app = TestApp::new(own.clone(), products::router);
    app.get("/products").send().await.expect(200);
    let id: u64 = sqlx::query_scalar("SELECT CONNECTION_ID()")
        .fetch_one(&own)
        .await
        .unwrap();

    // The server ends the one pooled connection while it sits idle.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    sqlx::query(&format!("KILL {id}"))
        .execute(&pool)
        .await
        .unwrap();

    app.get("/products").send().await.expect(200);
}
