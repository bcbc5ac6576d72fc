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
