//! `make bench-profiles`: the release profile chosen by what a request costs.
//!
//! `.ci/bench-profiles` builds `serve`, the products and orders functions and the bare
//! `lambda_http` binary once per candidate profile, each into its own directory. This runs
//! every candidate's `serve` side by side, measuring them in turns (seven rounds, each
//! candidate compared with the committed profile within each round) so that the machine's
//! drift touches each alike, then their cold starts, also in turns, and writes the table
//! into BENCHMARKS.md between the markers below; `make bench` keeps it.

use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use crate::fixture::Fixture;
use crate::warm::{self, call, measure, wait_until_up};
use crate::{HttpClient, bill, cold, cpu};

pub const BEGIN: &str = "<!-- BEGIN release profiles (make bench-profiles) -->";
pub const END: &str = "<!-- END release profiles -->";
/// Rounds of the warm scenarios, every candidate measured once in each. Candidates are
/// compared round by round (see [`relative_cost`]): over three rounds, the same binaries'
/// CPU moved by 5 % between runs minutes apart, more than the profiles differ.
const ROUNDS: usize = 7;
/// The binaries whose cold starts each candidate is measured by, in turns.
const COLD_BINARIES: [&str; 3] = ["bare-lambda", "products", "orders"];
/// Cold starts per binary and candidate, the median kept: a start costs milliseconds, so
/// more of them than `make bench` takes cost little and steady the medians the choice
/// compares.
const COLD_TURNS: usize = 31;
/// Of [`COLD_TURNS`] sorted starts, those this many places either side of the median bound
/// it with 97 % confidence (ranks 10 and 22 of 31, from the binomial distribution).
const MEDIAN_BAND: usize = 6;
/// CPU differences smaller than this share are treated as equal (see [`choose`]): four runs
/// of the same binaries, paired by round, put opt-level 3 with fat LTO at 0.947 to 1.049 of
/// opt-level 2 with fat LTO; a smaller margin lets that spread pick the profile.
const SAME_CPU: f64 = 0.06;
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
    /// Server CPU over the three scenarios in each round.
    round_totals: Vec<Duration>,
    /// The products function's: one anonymous read, the nearest to the bare binary's one
    /// answer.
    cold: Starts,
    /// The orders function's: a token checked and a customer's orders listed.
    orders_cold: Duration,
    bare_cold: Starts,
    size: Option<u64>,
}

/// One binary's cold starts: the median and the range that holds it with 97 % confidence.
#[derive(Debug, Clone, Copy)]
struct Starts {
    median: Duration,
    low: Duration,
    high: Duration,
}

impl Starts {
    fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let mid = samples.len() / 2;
        let band = MEDIAN_BAND.min(mid);
        Self {
            median: samples[mid],
            low: samples[mid - band],
            high: samples[(mid + band).min(samples.len() - 1)],
        }
    }
}

/// What a function's cold start may take: twice the bare binary's, plus the one database
/// connection a function opens for its first request and the bare binary never does (the
/// same target as `make bench`'s cold-start table).
fn limit(bare: Duration, db_connection: Duration) -> Duration {
    bare * 2 + db_connection
}

/// Whether the products function's cold start is within its limit, as far as this run can
/// tell: over only when even the low end of its range is over the limit the high end of the
/// bare binary's range sets. Every candidate's cold start sits near its limit here, and
/// the medians of one binary move by about half a millisecond between runs: a choice made
/// on the medians alone would follow that noise, not the profile.
fn fits(m: &Measured, db_connection: Duration) -> bool {
    m.cold.low <= limit(m.bare_cold.high, db_connection)
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
    // colds[candidate][binary]: taken in turns like the warm rounds, one start of each
    // binary of each candidate per turn, so that the machine's drift over the minutes this
    // takes touches every candidate alike (measured one candidate after another, the bare
    // binary's median moved from 1.5 to 2.3 ms between candidates and decided the choice).
    let mut colds = vec![vec![Vec::new(); COLD_BINARIES.len()]; candidates.len()];
    for _ in 0..COLD_TURNS {
        for (c, candidate) in candidates.iter().enumerate() {
            for (b, name) in COLD_BINARIES.iter().enumerate() {
                let time =
                    cold::first_response(&candidate.dir, name, url, fixture, (token, token)).await;
                colds[c][b].push(time);
            }
        }
    }
    let mut measured = Vec::new();
    for (c, candidate) in candidates.iter().enumerate() {
        let median = |s: usize, pick: fn(&(Duration, Duration)) -> Duration| {
            let mut v: Vec<Duration> = samples[c][s].iter().map(pick).collect();
            v.sort();
            v[v.len() / 2]
        };
        let starts = |b: usize| Starts::of(colds[c][b].clone());
        measured.push(Measured {
            round_totals: (0..ROUNDS)
                .map(|r| (0..picked.len()).map(|s| samples[c][s][r].0).sum())
                .collect(),
            cpu: (0..picked.len()).map(|s| median(s, |x| x.0)).collect(),
            wall: (0..picked.len()).map(|s| median(s, |x| x.1)).collect(),
            bare_cold: starts(0),
            cold: starts(1),
            orders_cold: starts(2).median,
            size: std::fs::metadata(candidate.dir.join("products"))
                .ok()
                .map(|m| m.len()),
        });
    }
    let db_connection = cold::fresh_connection_round_trip(url).await;
    render(candidates, &measured, db_connection)
}

/// `m`'s server CPU over the three scenarios as a share of `base`'s: the median, over the
/// rounds, of the two measured in the same round. Pairing them by round cancels the drift
/// between rounds, which moves every candidate alike and is larger than what tells them
/// apart.
fn relative_cost(m: &Measured, base: &Measured) -> f64 {
    let mut shares: Vec<f64> = m
        .round_totals
        .iter()
        .zip(&base.round_totals)
        .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64().max(f64::EPSILON))
        .collect();
    shares.sort_by(f64::total_cmp);
    shares[shares.len() / 2]
}

/// The candidate chosen: the lowest server CPU over the three scenarios (the only part of
/// a request's bill the profile changes: waiting on the database is the same whatever the
/// code), compared round by round ([`relative_cost`]), among those whose cold start
/// [`fits`]. The profile in Cargo.toml (`committed`) is kept while it fits and no candidate
/// costs [`SAME_CPU`] less: a choice that flips between runs on noise is no choice.
fn choose(
    measured: &[Measured],
    committed: Option<usize>,
    db_connection: Duration,
) -> Option<usize> {
    let base = measured.get(committed.unwrap_or(0))?;
    let relative = |i: usize| relative_cost(&measured[i], base);
    let cheapest = (0..measured.len())
        .filter(|&i| fits(&measured[i], db_connection))
        .min_by(|&a, &b| relative(a).total_cmp(&relative(b)));
    match (committed, cheapest) {
        (Some(kept), Some(best))
            if fits(&measured[kept], db_connection) && relative(best) > 1.0 - SAME_CPU =>
        {
            Some(kept)
        }
        _ => cheapest,
    }
}

/// The candidates' table and the one [`choose`] picks. The profile in Cargo.toml is named
/// as a candidate by `BENCH_COMMITTED_PROFILE`.
fn render(candidates: &[Candidate], measured: &[Measured], db_connection: Duration) -> String {
    let total = |m: &Measured| m.cpu.iter().sum::<Duration>();
    let committed_name = std::env::var("BENCH_COMMITTED_PROFILE").ok();
    let committed = candidates
        .iter()
        .position(|c| Some(&c.name) == committed_name.as_ref());
    let base = &measured[committed.unwrap_or(0)];
    let relative = |i: usize| relative_cost(&measured[i], base);
    let chosen = choose(measured, committed, db_connection);
    let mut out = format!("{BEGIN}\n## Release profile: chosen by CPU per request\n\n");
    out.push_str(&format!(
        "One run ({date}): each candidate's `serve` measured in turns with the others, \
         {ROUNDS} rounds, the median kept; server CPU per request at concurrency 1 (what a \
         Lambda instance bills, one request at a time). Paired by round: a candidate's CPU \
         over the three as a share of the profile in Cargo.toml, the median of that share \
         in each round, which cancels the drift between rounds; it decides, and the profile \
         in Cargo.toml stays unless another costs {same:.0} % less. Cold start: process start to first \
         response through the loopback runtime API, median of {COLD_TURNS} taken in turns \
         across the candidates, beside the same profile's bare `lambda_http` binary; in \
         brackets, the range that holds the median with 97 % confidence. The limit applies \
         to the products function (one anonymous read: the nearest to the bare binary's one \
         answer): twice the bare binary's plus one fresh database connection ({db:.1} ms \
         here), which a function opens for its first request and the bare binary never \
         does; a candidate is over it only when its range is wholly above the limit set by \
         the top of the bare binary's range, since one binary's median moves by about half \
         a millisecond between runs here. The orders function's \
         first request also checks a token and lists orders: shown, not limited. Size: the products binary for this machine (x86_64; `make package` gives the \
         arm64 bootstraps). Every candidate has `panic = \"unwind\"` and \
         `codegen-units = 1`. $ per million: the duration part of Lambda's bill for a \
         million flash-sale orders at {PRICED_MB} MB on arm64, from their CPU and wall time \
         (the bill's model below), before each request's rounding up to the millisecond, \
         which would hide the difference.\n\n",
        date = chrono::Utc::now().format("%Y-%m-%d"),
        db = db_connection.as_secs_f64() * 1e3,
        same = SAME_CPU * 100.0,
    ));
    out.push_str("| profile |");
    for s in SCENARIOS {
        out.push_str(&format!(" {s}: CPU µs |"));
    }
    out.push_str(
        " CPU µs, the three | CPU, paired by round | cold start ms: products | orders | bare | size KiB | flash sale $ per million |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
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
            " {:.0} | {:.3} | {}{} | {:.1} | {} | {} | {:.4} |\n",
            total(m).as_secs_f64() * 1e6,
            relative(i),
            starts(&m.cold),
            if fits(m, db_connection) { "" } else { " over" },
            m.orders_cold.as_secs_f64() * 1e3,
            starts(&m.bare_cold),
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

/// A median with its range, in milliseconds: "4.0 (3.8–4.3)".
fn starts(s: &Starts) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!("{:.1} ({:.1}–{:.1})", ms(s.median), ms(s.low), ms(s.high))
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

#[cfg(test)]
mod tests {
    use super::*;

    const DB: Duration = Duration::from_micros(400);

    fn ms(v: f64) -> Duration {
        Duration::from_secs_f64(v / 1e3)
    }

    /// A candidate whose server CPU over the three scenarios was `rounds` µs, round by
    /// round, and whose products cold start has `cold` ms as its median (the bare binary's:
    /// 2.0 ms, each range ±0.2 ms; so the limit is 2 × 2.2 + 0.4 = 4.8 ms).
    fn candidate(rounds: &[f64], cold: f64) -> Measured {
        let starts = |median: f64| Starts {
            median: ms(median),
            low: ms(median - 0.2),
            high: ms(median + 0.2),
        };
        Measured {
            cpu: Vec::new(),
            wall: Vec::new(),
            round_totals: rounds.iter().map(|&us| ms(us / 1e3)).collect(),
            cold: starts(cold),
            orders_cold: ms(cold),
            bare_cold: starts(2.0),
            size: None,
        }
    }

    #[test]
    fn the_median_is_bounded_by_the_10th_and_22nd_of_31_starts() {
        let samples = (1..=31).rev().map(|i| ms(f64::from(i))).collect();
        let s = Starts::of(samples);
        assert_eq!((s.low, s.median, s.high), (ms(10.0), ms(16.0), ms(22.0)));
    }

    #[test]
    fn candidates_are_compared_within_each_round() {
        // The machine slows by half during the fourth round, after the first candidate's
        // turn and before the second's; within every round but that one, the second costs
        // 3 % less. Whole-run medians would compare 1455 with 1000.
        let base = candidate(&[1000., 1000., 1000., 1000., 1500., 1500., 1500.], 4.0);
        let other = candidate(&[970., 970., 970., 1455., 1455., 1455., 1455.], 4.0);
        assert!((relative_cost(&other, &base) - 0.97).abs() < 1e-9);
    }

    #[test]
    fn the_committed_profile_stays_unless_another_costs_six_percent_less() {
        let within_noise = [candidate(&[1000.; 7], 4.0), candidate(&[950.; 7], 4.0)];
        assert_eq!(choose(&within_noise, Some(0), DB), Some(0));
        let clearly_cheaper = [candidate(&[1000.; 7], 4.0), candidate(&[920.; 7], 4.0)];
        assert_eq!(choose(&clearly_cheaper, Some(0), DB), Some(1));
        // Without a committed profile among them, the cheapest wins.
        assert_eq!(choose(&within_noise, None, DB), Some(1));
    }

    #[test]
    fn a_cold_start_is_over_only_when_its_whole_range_is() {
        // Limit 4.8 ms: a median of 4.9 has its range's low end at 4.7, within it.
        assert!(fits(&candidate(&[1000.; 7], 4.9), DB));
        assert!(!fits(&candidate(&[1000.; 7], 5.1), DB));
    }

    #[test]
    fn a_cheaper_profile_over_its_cold_start_limit_is_not_chosen() {
        let measured = [candidate(&[1000.; 7], 4.0), candidate(&[800.; 7], 6.0)];
        assert_eq!(choose(&measured, Some(0), DB), Some(0));
        // A committed profile over its limit gives way to the cheapest one within it.
        let measured = [
            candidate(&[1000.; 7], 6.0),
            candidate(&[1100.; 7], 4.0),
            candidate(&[1050.; 7], 4.0),
        ];
        assert_eq!(choose(&measured, Some(0), DB), Some(2));
        let none_fit = [candidate(&[1000.; 7], 6.0)];
        assert_eq!(choose(&none_fit, Some(0), DB), None);
    }
}
