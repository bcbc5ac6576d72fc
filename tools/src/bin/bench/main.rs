//! `make bench`: latency, throughput, cold start and memory of the API, each beside a floor.
//!
//! - Warm requests go over loopback HTTP to the release `serve` binary (the same routers the
//!   functions run); the floor issues the same SQL through the same domain functions with no
//!   HTTP or JSON in front. Client and server share this machine's cores.
//! - Cold start: each function binary is started against a loopback stand-in for the Lambda
//!   runtime API and timed from process start to its first response; beside it, a bare
//!   `lambda_http` binary and one fresh database connection + query.
//! - Bootstrap sizes come from `cargo lambda build --release --arm64` (`make package`).
//!
//! Writes the table to BENCHMARKS.md.

mod bill;
mod cold;
mod cpu;
mod external;
mod fixture;
mod flash;
mod ping;
mod profiles;
mod report;
mod warm;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use axum::body::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use cold::{bootstrap_sizes, cold_starts, fresh_connection_round_trip, peak_rss_kib};
use fixture::{Fixture, bench_state, prepare_database};
use report::render;
use warm::{Row, call, floor, measure, scenarios, wait_until_up};

const JWT_SECRET: &str = "benchmark-signing-key-benchmark-signing-key";
/// Seals webhook secrets: `serve` and the events function refuse to start without one.
const WEBHOOK_KEY: &str = "benchmark-webhook-sealing-key-benchmark-sealing-key";
const PRODUCTS: u64 = 100_000;
const PASSWORD: &str = "benchmark password";
/// The flash sale places thousands of orders that stay pending: the cap is raised to its
/// highest so that the benchmark measures placing them, not refusing them.
const MAX_PENDING_ORDERS: u32 = 10_000;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

#[tokio::main]
async fn main() {
    let server = std::env::var("BENCH_DATABASE_SERVER")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let url = format!("{server}/shop_bench");
    let bin_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();

    eprintln!("preparing {PRODUCTS} products in {url} ...");
    let pool = prepare_database(&url).await;
    let fixture = Fixture::load(&pool).await;
    let state = bench_state(&url);
    let mut buyer_tokens = Vec::new();
    for id in &fixture.buyer_ids {
        buyer_tokens.push(customer_token(&state, *id).await);
    }
    let buyer_tokens = std::sync::Arc::new(buyer_tokens);
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();

    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--profiles") {
        let candidates = profiles::parse(&args[1..]);
        let token = customer_token(&state, fixture.user_id).await;
        let section = profiles::run(
            &candidates,
            &client,
            &pool,
            &url,
            &fixture,
            &token,
            buyer_tokens,
        )
        .await;
        println!("{section}");
        let path = workspace_root().join("BENCHMARKS.md");
        let existing = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, profiles::with_section(&existing, &section))
            .expect("write BENCHMARKS.md");
        return;
    }

    let (mut serve, base) = start_serve(&bin_dir, &url);
    wait_until_up(&client, &base).await;

    let login = json!({"email": fixture.email, "password": PASSWORD});
    let logged_in = call(
        &client,
        "POST",
        &format!("{base}/users/login"),
        None,
        Some(&login),
        200,
    )
    .await;
    let token = serde_json::from_slice::<Value>(&logged_in).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    let mut rows = Vec::new();
    let mut requests = 0usize;
    let mut flash_cpu = flash::Cpu::default();
    // Server CPU and wall time per request at concurrency 1, by scenario, for the bill.
    let mut alone: Vec<(&'static str, std::time::Duration, std::time::Duration)> = Vec::new();
    let mut statements = flash::Statements::default();
    for scenario in scenarios(&fixture) {
        // Reads and the flash sale are quick and noisy on shared cores: three runs each, the
        // report takes the median ratio.
        let repeats = if scenario.method == "GET" || warm::is_sale(scenario.name) {
            3
        } else {
            1
        };
        for (concurrency, _) in [1usize, 16]
            .into_iter()
            .flat_map(|c| (0..repeats).map(move |r| (c, r)))
        {
            let n = scenario.requests * if concurrency == 1 { 1 } else { 4 };
            if warm::is_sale(scenario.name) {
                fixture::holds_run_out(&pool).await;
            }
            let server_cpu = cpu::Meter::start(serve.id());
            let asked = flash::statements_so_far(&pool).await;
            // Each flash-sale order is placed by the next buyer; everything else by one user.
            let tokens = if warm::is_sale(scenario.name) {
                buyer_tokens.clone()
            } else {
                std::sync::Arc::new(vec![token.clone()])
            };
            let http = warm::over_http(&client, &base, tokens, &scenario, n, concurrency).await;
            requests += n + n / 10;
            if concurrency == 1 {
                let per_request = server_cpu.per_op(warm::runs(n) as f64).worker;
                let cpu = std::time::Duration::from_secs_f64(per_request.unwrap_or(0.0) / 1e6);
                alone.push((scenario.name, http.p50, cpu));
                if scenario.name == warm::FLASH_SALE {
                    let asked = flash::statements_so_far(&pool).await - asked - 1;
                    statements.http = asked as f64 / warm::runs(n) as f64;
                }
            }
            if warm::is_sale(scenario.name) {
                fixture::holds_run_out(&pool).await;
            }
            let floor = {
                let (state, fixture, name) = (state.clone(), fixture.clone(), scenario.name);
                measure(n, concurrency, move || {
                    floor(state.clone(), fixture.clone(), name)
                })
                .await
            };
            rows.push(Row {
                name: scenario.name,
                concurrency,
                http,
                floor,
            });
        }
    }

    eprintln!("the flash sale's floor, and wrk ...");
    let (buyers, products) = (&fixture.buyer_ids, &fixture.product_ids);
    let asked = flash::statements_so_far(&pool).await;
    flash::order_floor(&state.pool, products, buyers, 200, 1, flash::Checks::None).await;
    statements.order_floor =
        (flash::statements_so_far(&pool).await - asked - 1) as f64 / warm::runs(200) as f64;
    fixture::holds_run_out(&pool).await;
    let asked = flash::statements_so_far(&pool).await;
    flash::order_floor(&state.pool, products, buyers, 200, 1, flash::Checks::All).await;
    statements.checked_floor =
        (flash::statements_so_far(&pool).await - asked - 1) as f64 / warm::runs(200) as f64;
    // The floors, the domain code and POST /orders run three times in turns, each reporting
    // its median run (with that run's CPU): measured minutes apart, the same floor's rate
    // moved by half (one run of the order floor alone came out at half its usual rate, and
    // POST /orders read 1.19x it), which no ratio between them can survive.
    let sales: Vec<warm::Scenario> = scenarios(&fixture)
        .into_iter()
        .filter(|s| warm::is_sale(s.name))
        .collect();
    let mut turns: [Vec<(warm::Stats, cpu::PerOp)>; flash::CONTENDERS] = Default::default();
    for _ in 0..3 {
        for (turn, runs) in turns.iter_mut().enumerate() {
            if turn > 0 {
                fixture::holds_run_out(&pool).await;
            }
            let http = turn >= 6;
            let meter = cpu::Meter::start(if http { serve.id() } else { std::process::id() });
            let run = match turn {
                0 => flash::lock_floor(&state.pool, products, 1200, 16).await,
                1..=4 => {
                    use flash::Checks;
                    let checks = [
                        Checks::None,
                        Checks::Lock,
                        Checks::LockAndCount,
                        Checks::All,
                    ];
                    let checks = checks[turn - 1];
                    flash::order_floor(&state.pool, products, buyers, 1200, 16, checks).await
                }
                5 => {
                    let (state, fixture) = (state.clone(), fixture.clone());
                    warm::measure(1200, 16, move || {
                        floor(state.clone(), fixture.clone(), warm::FLASH_SALE)
                    })
                    .await
                }
                _ => {
                    let sale = &sales[turn - 6];
                    warm::over_http(&client, &base, buyer_tokens.clone(), sale, 1200, 16).await
                }
            };
            runs.push((run, meter.per_op(warm::runs(1200) as f64)));
        }
    }
    let [
        lock,
        order,
        locked,
        counted,
        checked,
        domain,
        http,
        by_variant,
    ] = turns.map(median_run);
    let sale = flash::Sale {
        lock_floor: lock.0,
        order_floor: order.0,
        locked_floor: locked.0,
        counted_floor: counted.0,
        checked_floor: checked.0,
        domain: domain.0,
        http: http.0,
        by_variant: by_variant.0,
    };
    (
        flash_cpu.lock_floor,
        flash_cpu.order_floor,
        flash_cpu.locked_floor,
        flash_cpu.counted_floor,
        flash_cpu.checked_floor,
        flash_cpu.domain,
    ) = (lock.1, order.1, locked.1, counted.1, checked.1, domain.1);
    let release = ping::release_cost(&url, &state.pool, fixture.product_ids[0], 2000).await;
    let external = if external::available() {
        external::pin_server(serve.id(), true);
        let work = std::env::temp_dir();
        let order = json!({"items": fixture.product_ids.iter()
            .map(|id| json!({"product_id": id, "quantity": 1})).collect::<Vec<_>>()});
        let mut runs = vec![
            (
                warm::BY_ID,
                external::run(
                    &work,
                    &format!("{base}/products/{}", fixture.product_ids[0]),
                    "GET",
                    None,
                    &[],
                ),
            ),
            (
                warm::FIRST_PAGE,
                external::run(
                    &work,
                    &format!("{base}/products?limit=20"),
                    "GET",
                    None,
                    &[],
                ),
            ),
        ];
        // Three runs, the median one kept with its CPU, as for the floors it is compared with.
        let mut sales = Vec::new();
        for _ in 0..3 {
            fixture::holds_run_out(&pool).await;
            let meter = cpu::Meter::start(serve.id());
            let sale = external::run(
                &work,
                &format!("{base}/orders"),
                "POST",
                Some(&order),
                &buyer_tokens,
            );
            let cpu = meter.per_op(sale.requests as f64);
            sales.push((sale, cpu));
        }
        sales.sort_by(|a, b| a.0.per_second.total_cmp(&b.0.per_second));
        let (sale, cpu) = sales.swap_remove(1);
        flash_cpu.http = cpu;
        runs.push((warm::FLASH_SALE, sale));
        external::pin_server(serve.id(), false);
        requests += 10_000;
        runs
    } else {
        eprintln!("wrk or taskset is missing: no figures from an external generator");
        Vec::new()
    };

    // Top up to 10k requests before reading the server's peak memory.
    while requests < 10_000 {
        call(
            &client,
            "GET",
            &format!("{base}/products/{}", fixture.product_ids[0]),
            None,
            None,
            200,
        )
        .await;
        requests += 1;
    }
    let rss_kib = peak_rss_kib(serve.id());
    let _ = serve.kill();
    let _ = serve.wait();

    eprintln!("measuring cold starts ...");
    // The discounts and events functions serve admins only: their cold starts are measured
    // with an admin's token, one of the buyers promoted once the warm runs are done.
    let admin = domain::users::Account {
        id: fixture.buyer_ids[0],
        role: domain::role::Role::Admin,
        token_version: 0,
    };
    sqlx::query("UPDATE users SET role = 'admin' WHERE id = ?")
        .bind(admin.id)
        .execute(&pool)
        .await
        .unwrap();
    let admin_token = state.tokens.issue(&admin).await.unwrap().token;
    let cold = cold_starts(&bin_dir, &url, &fixture, (&token, &admin_token)).await;
    let db_round_trip = fresh_connection_round_trip(&url).await;
    let sizes = bootstrap_sizes();
    let bill = bill::render(&bill_routes(&alone, &cold)) + &ping::render(&release);

    let report = render(
        &rows,
        &sale,
        &statements,
        &flash_cpu,
        &external,
        &cold,
        db_round_trip,
        &sizes,
        rss_kib,
        requests,
        &bill,
        // Set by `make bench-profiles`, which runs this right after writing its table.
        std::env::var_os("BENCH_AFTER_PROFILES").is_some(),
    );
    println!("{report}");
    // The release profile table is written by make bench-profiles (just before, when it runs
    // this): kept.
    let path = workspace_root().join("BENCHMARKS.md");
    let kept = std::fs::read_to_string(&path)
        .ok()
        .and_then(|existing| profiles::kept_section(&existing))
        .map_or(String::new(), |section| format!("\n{section}"));
    std::fs::write(&path, report + &kept).expect("write BENCHMARKS.md");
}

async fn customer_token(state: &web::state::AppState, id: u64) -> String {
    let account = domain::users::Account {
        id,
        role: domain::role::Role::Customer,
        token_version: 0,
    };
    state.tokens.issue(&account).await.unwrap().token
}

/// Each measured route with its function's cold start (the median of a scenario's runs at
/// concurrency 1), and the bare `lambda_http` function: the least any Lambda request bills.
fn bill_routes(
    alone: &[(&'static str, std::time::Duration, std::time::Duration)],
    cold: &[cold::Cold],
) -> Vec<bill::Route> {
    let cold_of = |name: &str| {
        cold.iter()
            .find(|c| c.name == name)
            .map_or(std::time::Duration::ZERO, |c| c.median)
    };
    let mut names: Vec<&str> = alone.iter().map(|(name, ..)| *name).collect();
    names.dedup();
    let mut routes: Vec<bill::Route> = names
        .into_iter()
        .map(|name| {
            let mut runs: Vec<_> = alone.iter().filter(|(n, ..)| *n == name).collect();
            runs.sort_by_key(|(_, warm, _)| *warm);
            let (_, warm, cpu) = runs[runs.len() / 2];
            bill::Route {
                name: name.to_string(),
                warm: *warm,
                cpu: *cpu,
                cold: cold_of(warm::function_of(name)),
            }
        })
        .collect();
    // The bare function's own warm invocations through the runtime API: its answer is a
    // constant, so that is all a Lambda request costs before any work of its own.
    let bare = cold.iter().find(|c| c.name == "bare-lambda");
    routes.push(bill::Route {
        name: "bare lambda_http (the floor)".into(),
        warm: bare.map_or(std::time::Duration::ZERO, |c| c.warm.wall),
        cpu: bare
            .and_then(|c| c.warm.cpu.worker)
            .map_or(std::time::Duration::ZERO, |us| {
                std::time::Duration::from_secs_f64(us / 1e6)
            }),
        cold: cold_of("bare-lambda"),
    });
    routes
}

/// A release `serve` from `dir` on a port of its own, and its base URL.
pub fn start_serve(dir: &Path, url: &str) -> (Child, String) {
    let port = free_port();
    let child = Command::new(dir.join("serve"))
        .env("DATABASE_URL", url)
        .env("JWT_SECRET", JWT_SECRET)
        .env("WEBHOOK_KEY", WEBHOOK_KEY)
        .env("DB_MAX_CONNECTIONS", "16")
        .env("MAX_PENDING_ORDERS", MAX_PENDING_ORDERS.to_string())
        .env("PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", dir.join("serve").display()));
    (child, format!("http://127.0.0.1:{port}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// Of several runs of one floor, the one with the median throughput, and its CPU.
fn median_run(mut runs: Vec<(warm::Stats, cpu::PerOp)>) -> (warm::Stats, cpu::PerOp) {
    runs.sort_by(|a, b| a.0.per_second.total_cmp(&b.0.per_second));
    let middle = runs.len() / 2;
    runs.swap_remove(middle)
}
