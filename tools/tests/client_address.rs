//! The `serve` host counts logins under the socket peer's address, the way Lambda counts
//! them under API Gateway's `sourceIp`: two loopback addresses are two clients, and a
//! forwarding header changes nothing.

#[path = "common/raw_http.rs"]
mod raw_http;

use std::net::{IpAddr, SocketAddr};

use serde_json::json;
use sqlx::MySqlPool;

async fn login(server: SocketAddr, from: IpAddr, password: &str, spoof: &str) -> raw_http::Reply {
    let body = json!({"email": "ada@example.com", "password": password}).to_string();
    let headers = [("X-Forwarded-For", spoof), ("X-Real-IP", spoof)];
    raw_http::send(server, from, "POST", "/users/login", &headers, Some(&body)).await
}

#[sqlx::test(migrator = "domain::MIGRATOR")]
async fn the_socket_peer_is_the_client_address(pool: MySqlPool) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    let router = tools::serve::router(testkit::state(pool.clone()));
    tokio::spawn(tools::serve::serve(listener, router));
    let (owner, stranger) = (IpAddr::from([127, 0, 0, 1]), IpAddr::from([127, 0, 0, 2]));
    let body = json!({"name": "Ada", "email": "ada@example.com", "password": "correct horse"});
    let registered = raw_http::send(
        server,
        owner,
        "POST",
        "/users/register",
        &[],
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(registered.status, 201, "{registered:?}");

    for _ in 0..5 {
        let reply = login(server, stranger, "wrong horse", "127.0.0.1").await;
        assert_eq!(reply.status, 401, "{reply:?}");
    }
    let refused = login(server, stranger, "correct horse", "127.0.0.1").await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert!(refused.header("retry-after").is_some());
    let owner_in = login(server, owner, "correct horse", "127.0.0.2").await;
    assert_eq!(owner_in.status, 200, "{owner_in:?}");

    let rows: Vec<(String, u32)> =
        sqlx::query_as("SELECT CAST(client_address AS CHAR), failures FROM login_throttle")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows, vec![("127.0.0.2".to_string(), 5)]);
}
