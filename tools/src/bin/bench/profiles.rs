//! `make bench-profiles`: the release profile chosen by what a request costs.
//!
//! `.ci/bench-profiles` builds `serve`, the products and orders functions and the bare
//! `lambda_http` binary once per candidate profile, each into its own directory. This runs
//! every candidate's `serve` side by side, measuring them in turns (three rounds, the
//! median kept) so that the machine's drift touches each alike, then their cold starts, and
//! writes the table into BENCHMARKS.md between the markers below; `make bench` keeps it.

use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use crate::cold::COLD_SAMPLES;
use crate::fixture::Fixture;
use crate::warm::{self, call, measure, wait_until_up};
use crate::{HttpClient, bill, cold, cpu};

pub const BEGIN: &str = "<!-- BEGIN release profiles (make bench-profiles) -->";
pub const END: &str = "<!-- END release profiles -->";
const ROUNDS: usize = 3;
/// CPU differences smaller than this share are treated as equal (see [`render`]).
const SAME_CPU: f64 = 0.03;
/// The scenarios whose server CPU decides: one read by key, one list, one order.
const SCENARIOS: [&str; 3] = [warm::BY_ID, warm::FIRST_PAGE, warm::FLASH_SALE];
/// The memory size the table prices, the smallest: where CPU weighs most.
const PRICED_MB: u32 = 128;

pub struct Candidate {
    pub name: String,
    pub dir: PathBuf,
}

/// `name=dir` arguments, as `.ci/bench-profiles` passes them.
pub fn parse(args: &[String]) -> Vec<Candidate> {
    args.iter()
        .map(|arg| {
            let (name, dir) = arg.split_once('=').expect("candidates are name=dir");
            Candidate {
                name: name.to_string(),
                dir: PathBuf::from(dir),
            }
        })
        .collect()
}

struct Measured {
    /// Server CPU per request and the client's wall time, median of the rounds, by scenario.
    cpu: Vec<Duration>,
    wall: Vec<Duration>,
    /// The products function's: one anonymous read, the nearest to the bare binary's one
    /// answer.
    cold: Duration,
    /// The orders function's: a token checked and a customer's orders listed.
    orders_cold: Duration,
    bare_cold: Duration,
    size: Option<u64>,
}

/// What a function's cold start may take: twice the bare binary's, plus the one database
/// connection a function opens for its first request and the bare binary never does (the
/// same target as `make bench`'s cold-start table).
fn fits(m: &Measured, db_connection: Duration) -> bool {
    m.cold <= m.bare_cold * 2 + db_connection
}

pub async fn run(
    candidates: &[Candidate],
    client: &HttpClient,
    pool: &sqlx::MySqlPool,
    url: &str,
    fixture: &Fixture,
    token: &str,
    buyer_tokens: Arc<Vec<String>>,
) -> String {
    let servers: Vec<(Child, String)> = candidates
        .iter()
        .map(|c| crate::start_serve(&c.dir, url))
        .collect();
    for (_, base) in &servers {
        wait_until_up(client, base).await;
    }
    let all = warm::scenarios(fixture);
    let picked: Vec<&warm::Scenario> = SCENARIOS
        .iter()
        .map(|name| all.iter().find(|s| s.name == *name).unwrap())
        .collect();
    // samples[candidate][scenario] = [(cpu, wall); ROUNDS]
    let mut samples = vec![vec![Vec::new(); picked.len()]; candidates.len()];
    for round in 0..ROUNDS {
        eprintln!("profiles: round {} of {ROUNDS} ...", round + 1);
        for (c, (server, base)) in servers.iter().enumerate() {
            for (s, scenario) in picked.iter().enumerate() {
                let n = if warm::is_sale(scenario.name) {
                    300
                } else {
                    1000
                };
                let tokens = if warm::is_sale(scenario.name) {
                    buyer_tokens.clone()
                } else {
                    Arc::new(vec![token.to_string()])
                };
                if warm::is_sale(scenario.name) {
                    crate::fixture::holds_run_out(pool).await;
                }
                let meter = cpu::Meter::start(server.id());
                let (client, base, scenario) = (client.clone(), base.clone(), (*scenario).clone());
                let stats = measure(n, 1, move || {
                    let (client, base, tokens, scenario) = (
                        client.clone(),
                        base.clone(),
                        tokens.clone(),
                        scenario.clone(),
                    );
                    async move {
                        let token = &tokens[warm::next_buyer() % tokens.len()];
                        call(
                            &client,
                            scenario.method,
                            &format!("{base}{}", scenario.path),
                            Some(token),
                            scenario.body.as_ref(),
                            scenario.status,
                        )
                        .await;
                    }
                })
                .await;
                let per_request = meter.per_op(warm::runs(n) as f64).worker.unwrap_or(0.0);
                samples[c][s].push((Duration::from_secs_f64(per_request / 1e6), stats.p50));
            }
        }
    }
    for (mut server, _) in servers {
        let _ = server.kill();
        let _ = server.wait();
    }

    eprintln!("profiles: cold starts ...");
    let mut measured = Vec::new();
    for (c, candidate) in candidates.iter().enumerate() {
        let median = |s: usize, pick: fn(&(Duration, Duration)) -> Duration| {
            let mut v: Vec<Duration> = samples[c][s].iter().map(pick).collect();
            v.sort();
            v[v.len() / 2]
        };
        let colds = cold::cold_starts(
            &candidate.dir,
            url,
            fixture,
            (token, token),
            Some(&["bare-lambda", "products", "orders"]),
        )
        .await;
        let cold_of = |name: &str| {
            colds
                .iter()
                .find(|c| c.name == name)
                .map_or(Duration::ZERO, |c| c.median)
        };
        measured.push(Measured {
            cpu: (0..picked.len()).map(|s| median(s, |x| x.0)).collect(),
            wall: (0..picked.len()).map(|s| median(s, |x| x.1)).collect(),
            cold: cold_of("products"),
            orders_cold: cold_of("orders"),
            bare_cold: cold_of("bare-lambda"),
            size: std::fs::metadata(candidate.dir.join("products"))
                .ok()
                .map(|m| m.len()),
        });
    }
    let db_connection = cold::fresh_connection_round_trip(url).await;
    render(candidates, &measured, db_connection)
}

/// The candidates' table and the one it chooses: the lowest server CPU over the three
/// scenarios (the only part of a request's bill the profile changes: waiting on the
/// database is the same whatever the code) among those whose cold start [`fits`]. The
/// profile in Cargo.toml (`BENCH_COMMITTED_PROFILE`, named as a candidate) is kept while
/// it fits and is within [`SAME_CPU`] of the lowest: runs of the same binaries differ by
/// that much, and a choice that flips between runs on noise is no choice.
fn render(candidates: &[Candidate], measured: &[Measured], db_connection: Duration) -> String {
    let total = |m: &Measured| m.cpu.iter().sum::<Duration>();
    let committed_name = std::env::var("BENCH_COMMITTED_PROFILE").ok();
    let committed = candidates
        .iter()
        .position(|c| Some(&c.name) == committed_name.as_ref());
    let cheapest = (0..candidates.len())
        .filter(|&i| fits(&measured[i], db_connection))
        .min_by_key(|&i| total(&measured[i]));
    let chosen = match (committed, cheapest) {
        (Some(kept), Some(best))
            if fits(&measured[kept], db_connection)
                && total(&measured[kept]).as_secs_f64()
                    <= total(&measured[best]).as_secs_f64() * (1.0 + SAME_CPU) =>
        {
            Some(kept)
        }
        _ => cheapest,
    };
    let mut out = format!("{BEGIN}\n## Release profile: chosen by CPU per request\n\n");
    out.push_str(&format!(
        "One run ({date}): each candidate's `serve` measured in turns with the others, \
         {ROUNDS} rounds, the median kept; server CPU per request at concurrency 1 (what a \
         Lambda instance bills, one request at a time). Cold start: process start to first \
         response through the loopback runtime API, median of {COLD_SAMPLES}, beside the same profile's \
         bare `lambda_http` binary. The limit applies to the products function (one \
         anonymous read: the nearest to the bare binary's one answer): twice the bare \
         binary's plus one fresh database connection ({db:.1} ms here), which a function \
         opens for its first request and the bare binary never does. The orders function's \
         first request also checks a token and lists orders: shown, not limited. Size: the products binary for this machine (x86_64; `make package` gives the \
         arm64 bootstraps). Every candidate has `panic = \"unwind\"` and \
         `codegen-units = 1`. $ per million: the duration part of Lambda's bill for a \
         million flash-sale orders at {PRICED_MB} MB on arm64, from their CPU and wall time \
         (the bill's model below), before each request's rounding up to the millisecond, \
         which would hide the difference.\n\n",
        date = chrono::Utc::now().format("%Y-%m-%d"),
        db = db_connection.as_secs_f64() * 1e3,
    ));
    out.push_str("| profile |");
    for s in SCENARIOS {
        out.push_str(&format!(" {s}: CPU µs |"));
    }
    out.push_str(
        " CPU µs, the three | cold start ms: products | orders | bare | size KiB | flash sale $ per million |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (i, (candidate, m)) in candidates.iter().zip(measured).enumerate() {
        let mark = if Some(i) == chosen { " **chosen**" } else { "" };
        out.push_str(&format!("| {}{mark} |", candidate.name));
        for cpu in &m.cpu {
            out.push_str(&format!(" {:.0} |", cpu.as_secs_f64() * 1e6));
        }
        let route = bill::Route {
            name: String::new(),
            warm: m.wall[2],
            cpu: m.cpu[2],
            cold: Duration::ZERO,
        };
        out.push_str(&format!(
            " {:.0} | {:.1}{} | {:.1} | {:.1} | {} | {:.4} |\n",
            total(m).as_secs_f64() * 1e6,
            m.cold.as_secs_f64() * 1e3,
            if fits(m, db_connection) { "" } else { " over" },
            m.orders_cold.as_secs_f64() * 1e3,
            m.bare_cold.as_secs_f64() * 1e3,
            m.size.map_or("-".into(), |b| (b / 1024).to_string()),
            bill::duration_per_million_unrounded(&route, PRICED_MB),
        ));
    }
    let verdict = match (chosen, committed) {
        (None, _) => "none (every candidate's cold start is over its limit)".to_string(),
        (Some(i), Some(kept)) if i == kept => format!(
            "{}, the profile in Cargo.toml's `[profile.release]`: it fits, and no candidate \
             costs {:.0} % less CPU than it",
            candidates[i].name,
            SAME_CPU * 100.0
        ),
        (Some(i), _) => format!(
            "{}; Cargo.toml's `[profile.release]` ({}) should change to it",
            candidates[i].name,
            committed_name
                .as_deref()
                .unwrap_or("not among the candidates")
        ),
    };
    out.push_str(&format!("\nChosen: {verdict}.\n{END}\n"));
    out
}

/// BENCHMARKS.md with its profile section replaced by `section` (added if it has none).
pub fn with_section(existing: &str, section: &str) -> String {
    match (existing.find(BEGIN), existing.find(END)) {
        (Some(begin), Some(end)) => format!(
            "{}{}{}",
            &existing[..begin],
            section.trim_end(),
            &existing[end + END.len()..]
        ),
        _ => format!("{}\n{section}", existing.trim_end()),
    }
}

/// The profile section of an earlier BENCHMARKS.md, for `make bench` to keep.
pub fn kept_section(existing: &str) -> Option<String> {
    let begin = existing.find(BEGIN)?;
    let end = existing.find(END)? + END.len();
    Some(format!("{}\n", &existing[begin..end]))
}
