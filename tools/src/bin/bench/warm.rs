//! Warm requests: HTTP to the `serve` binary beside the same work without HTTP (the floor).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use web::state::AppState;

use crate::fixture::Fixture;
use crate::{HttpClient, PASSWORD};

pub const BY_ID: &str = "GET /products/{id}";
pub const FIRST_PAGE: &str = "GET /products?limit=20";
/// Every order for the same three products: the busiest moment of a shop.
pub const FLASH_SALE: &str = "POST /orders (flash sale: same 3 products)";
/// The same sale by variant: three sizes of one product.
pub const FLASH_SALE_SIZES: &str = "POST /orders (flash sale: 3 sizes of one product)";

/// Whether a scenario is a sale, whose orders are placed by the buyers in turn.
pub fn is_sale(scenario: &str) -> bool {
    scenario == FLASH_SALE || scenario == FLASH_SALE_SIZES
}

#[derive(Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub method: &'static str,
    pub path: String,
    pub body: Option<Value>,
    pub status: u16,
    pub requests: usize,
}

pub fn scenarios(f: &Fixture) -> Vec<Scenario> {
    let lines: Vec<Value> = f
        .product_ids
        .iter()
        .map(|id| json!({"product_id": id, "quantity": 1}))
        .collect();
    vec![
        Scenario {
            name: BY_ID,
            method: "GET",
            path: format!("/products/{}", f.product_ids[0]),
            body: None,
            status: 200,
            requests: 500,
        },
        Scenario {
            name: FIRST_PAGE,
            method: "GET",
            path: "/products?limit=20".into(),
            body: None,
            status: 200,
            requests: 500,
        },
        Scenario {
            name: "GET /products (page 100k deep)",
            method: "GET",
            path: format!("/products?limit=20&cursor={}", f.deep_cursor),
            body: None,
            status: 200,
            requests: 500,
        },
        Scenario {
            name: FLASH_SALE,
            method: "POST",
            path: "/orders".into(),
            body: Some(json!({"items": lines})),
            status: 201,
            requests: 300,
        },
        Scenario {
            name: FLASH_SALE_SIZES,
            method: "POST",
            path: "/orders".into(),
            body: Some(json!({"items": f.size_ids.iter()
                .map(|id| json!({"variant_id": id, "quantity": 1}))
                .collect::<Vec<_>>()})),
            status: 201,
            requests: 300,
        },
        Scenario {
            name: "POST /users/login",
            method: "POST",
            path: "/users/login".into(),
            body: Some(json!({"email": f.email, "password": PASSWORD})),
            status: 200,
            requests: 40,
        },
    ]
}

/// The function that serves a scenario's route.
pub fn function_of(scenario: &str) -> &'static str {
    match scenario {
        FLASH_SALE | FLASH_SALE_SIZES => "orders",
        "POST /users/login" => "users",
        _ => "products",
    }
}

/// The same work as a scenario, straight through the domain functions and sqlx.
pub async fn floor(state: AppState, f: Fixture, scenario: &'static str) {
    use domain::products::{ProductQuery, get, list};
    match scenario {
        BY_ID => {
            get(&state.pool, f.product_ids[0]).await.unwrap();
        }
        FIRST_PAGE => {
            list(&state.pool, &ProductQuery::default()).await.unwrap();
        }
        "GET /products (page 100k deep)" => {
            let query = ProductQuery {
                cursor: Some(f.deep_cursor.clone()),
                ..ProductQuery::default()
            };
            list(&state.pool, &query).await.unwrap();
        }
        FLASH_SALE | FLASH_SALE_SIZES => {
            let items: Vec<domain::orders::Item> = if scenario == FLASH_SALE {
                let products = f.product_ids.iter();
                products
                    .map(|id| domain::orders::Item::Product(*id))
                    .collect()
            } else {
                let sizes = f.size_ids.iter();
                sizes.map(|id| domain::orders::Item::Variant(*id)).collect()
            };
            let lines: Vec<domain::orders::WantedLine> = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| domain::orders::WantedLine::new(item, 1, i))
                .collect();
            let buyer = domain::orders::Buyer::Own(domain::caller::Claimed {
                id: f.buyer_ids[next_buyer() % f.buyer_ids.len()],
                token_version: 0,
            });
            let limits = state.order_limits();
            platform::db::transaction(&state.pool, |tx| {
                let lines = lines.clone();
                Box::pin(async move {
                    let placed = domain::orders::place(
                        tx,
                        buyer,
                        &lines,
                        &domain::addresses::Shipping::Nowhere,
                        None,
                        limits,
                    )
                    .await?;
                    placed.take_stock(tx).await
                })
            })
            .await
            .unwrap();
        }
        "POST /users/login" => {
            let credentials: domain::users::Credentials =
                serde_json::from_value(json!({"email": f.email, "password": PASSWORD})).unwrap();
            let client = domain::users::ClientAddress::parse("127.0.0.1");
            let account = domain::users::login(&state.pool, credentials, &client)
                .await
                .unwrap();
            state.tokens.issue(&account).await.unwrap();
        }
        other => unreachable!("{other}"),
    }
}

/// The next flash-sale buyer, in turn: every buyer's orders spread over the whole run.
pub fn next_buyer() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[derive(Clone, Copy)]
pub struct Stats {
    pub p50: Duration,
    pub p99: Duration,
    pub per_second: f64,
}

/// How many calls [`measure`] makes for `n` measured ones, warm-up included.
pub fn runs(n: usize) -> usize {
    n + (n / 10).max(5)
}

/// Runs `n` calls of `work` on `concurrency` workers after a short warm-up.
pub async fn measure<F, Fut>(n: usize, concurrency: usize, work: F) -> Stats
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    for _ in 0..runs(n) - n {
        work().await;
    }
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (work, latencies) = (work.clone(), latencies.clone());
            let share = n / concurrency + usize::from(w < n % concurrency);
            tokio::spawn(async move {
                for _ in 0..share {
                    let t = Instant::now();
                    work().await;
                    latencies.lock().unwrap().push(t.elapsed());
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = started.elapsed();
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        per_second: n as f64 / elapsed.as_secs_f64(),
    }
}

/// `n` requests of `scenario` to `base` on `concurrency` connections, each with the next of
/// `tokens` (a sale's buyers take turns; other scenarios pass one token).
pub async fn over_http(
    client: &HttpClient,
    base: &str,
    tokens: Arc<Vec<String>>,
    scenario: &Scenario,
    n: usize,
    concurrency: usize,
) -> Stats {
    let (client, uri, scenario) = (
        client.clone(),
        Arc::new(format!("{base}{}", scenario.path)),
        Arc::new(scenario.clone()),
    );
    measure(n, concurrency, move || {
        let (client, uri, tokens, scenario) = (
            client.clone(),
            uri.clone(),
            tokens.clone(),
            scenario.clone(),
        );
        async move {
            let token = &tokens[next_buyer() % tokens.len()];
            call(
                &client,
                scenario.method,
                &uri,
                Some(token),
                scenario.body.as_ref(),
                scenario.status,
            )
            .await;
        }
    })
    .await
}

/// One request; the body is checked for status only, so the client spends as little CPU as
/// it can on the cores it shares with the server.
pub async fn call(
    client: &HttpClient,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<&Value>,
    status: u16,
) -> Bytes {
    let mut request = hyper::Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            Bytes::from(serde_json::to_vec(body).unwrap())
        }
        None => Bytes::new(),
    };
    let response = client
        .request(request.body(Full::new(body)).unwrap())
        .await
        .expect("request");
    let got = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        got,
        status,
        "{method} {uri}: {}",
        String::from_utf8_lossy(&bytes)
    );
    bytes
}

pub async fn wait_until_up(client: &HttpClient, base: &str) {
    for _ in 0..300 {
        let request = hyper::Request::get(format!("{base}/products?limit=1"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        if let Ok(response) = client.request(request).await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("serve did not come up");
}

pub struct Row {
    pub name: &'static str,
    pub concurrency: usize,
    pub http: Stats,
    pub floor: Stats,
}
