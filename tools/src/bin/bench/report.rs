//! BENCHMARKS.md, from one run's figures.

use std::collections::HashMap;
use std::time::Duration;

use crate::cold::{COLD_SAMPLES, Cold, INVOCATIONS_FOR_RSS};
use crate::cpu::PerOp;
use crate::external::{CONNECTIONS, Wrk};
use crate::flash;
use crate::warm::{FLASH_SALE, Row};

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[allow(clippy::too_many_arguments)]
pub fn render(
    rows: &[Row],
    sale: &flash::Sale,
    statements: &flash::Statements,
    flash_cpu: &flash::Cpu,
    external: &[(&str, Wrk)],
    cold: &[Cold],
    db: Duration,
    sizes: &[(String, Option<u64>)],
    rss_kib: Option<u64>,
    requests: usize,
    bill: &str,
    after_profiles: bool,
) -> String {
    let mut out = String::new();
    let machine = machine_description();
    out.push_str("# Benchmarks\n\n");
    out.push_str(&if after_profiles {
        format!(
            "Measured by `make bench-profiles` in one run on {machine}: the release profile table (the last section), then everything above it with the profile it chose.\n\n"
        )
    } else {
        format!(
            "Measured by `make bench` in one run on {machine}; the release profile table (the last section) is kept from the last `make bench-profiles`, which measures everything in one run.\n\n"
        )
    });
    out.push_str("## Warm requests: HTTP beside the floor (same SQL through sqlx, no HTTP)\n\n");
    out.push_str("| scenario | conc. | HTTP p50 ms | HTTP p99 ms | HTTP req/s | floor p50 ms | floor p99 ms | floor req/s | HTTP/floor throughput |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let ratio = |row: &Row| row.http.per_second / row.floor.per_second;
    // A scenario run several times shows its median run, by ratio, and every run's ratio.
    let mut by_name: HashMap<(&str, usize), &Row> = HashMap::new();
    let mut runs: HashMap<(&str, usize), Vec<&Row>> = HashMap::new();
    let mut order: Vec<(&str, usize)> = Vec::new();
    for row in rows {
        let key = (row.name, row.concurrency);
        if !runs.contains_key(&key) {
            order.push(key);
        }
        runs.entry(key).or_default().push(row);
    }
    for key in order {
        let mut these = runs[&key].clone();
        these.sort_by(|a, b| ratio(a).total_cmp(&ratio(b)));
        let row = these[these.len() / 2];
        by_name.insert(key, row);
        let all = if these.len() > 1 {
            let each: Vec<String> = runs[&key]
                .iter()
                .map(|r| format!("{:.2}", ratio(r)))
                .collect();
            format!(" (median of {})", each.join(", "))
        } else {
            String::new()
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.0} | {} | {} | {:.0} | {:.2}{all} |\n",
            row.name,
            row.concurrency,
            ms(row.http.p50),
            ms(row.http.p99),
            row.http.per_second,
            ms(row.floor.p50),
            ms(row.floor.p99),
            row.floor.per_second,
            ratio(row)
        ));
    }
    out.push_str("\nReads and the flash sale run three times each; the ratio shown is the median run's. Target: HTTP/floor throughput ≥ 0.8 at concurrency 16.\n\n");
    if let (Some(first), Some(deep)) = (
        by_name.get(&("GET /products?limit=20", 16)),
        by_name.get(&("GET /products (page 100k deep)", 16)),
    ) {
        out.push_str(&format!(
            "Deep page vs first page (p50, concurrency 16): {:.2}× (target ≤ 1.5×).\n\n",
            deep.http.p50.as_secs_f64() / first.http.p50.as_secs_f64()
        ));
    }
    {
        let flash::Sale {
            lock_floor,
            order_floor,
            checked_floor,
            ..
        } = sale;
        out.push_str("## Flash sale: 16 buyers, every order for the same 3 products\n\n");
        out.push_str("Every order queues on the same three row locks. The lock floor takes only those locks (one guarded stock update of the three rows) and commits. The order floor writes the rows an order writes (the order, its history, its three lines in one insert, its event) and takes the same update, in the fewest statements SQL allows: the fair floor for a whole order. The checked order floor first makes the two statements an order cannot skip (the owner admitted: their row locked, the token checked and the bound on their running holds raised, in one update; then the lines' names, prices and stock read): what is left between it and the domain code is the code and a savepoint (in the stock update's round trip), not the SQL an order needs. Between them, one floor adds only the owner's admission as an order makes it; another locks the row with the running holds counted in the same statement, as orders did before the row kept a bound, so that what the bound saves shows in the same run.\n\nThe floors, the domain code and `POST /orders` (in-process client, by product and by variant) run in turns, 1,200 orders each, three rounds; each row is its median run. Run minutes apart, as they were before, the same floor's rate moved by half on these shared cores, more than the distances between the rows.\n\n");
        out.push_str("| | p50 ms | p99 ms | req/s | vs lock floor | vs order floor | vs checked order floor |\n|---|---:|---:|---:|---:|---:|---:|\n");
        let (floor, fair, checked) = (
            lock_floor.per_second,
            order_floor.per_second,
            checked_floor.per_second,
        );
        let mut line = |what: &str, p50: Duration, p99: Duration, per_second: f64| {
            out.push_str(&format!(
                "| {what} | {} | {} | {per_second:.0} | {:.2} | {:.2} | {:.2} |\n",
                ms(p50),
                ms(p99),
                per_second / floor,
                per_second / fair,
                per_second / checked
            ));
        };
        line(
            "lock floor (guarded UPDATE + COMMIT)",
            lock_floor.p50,
            lock_floor.p99,
            floor,
        );
        line(
            "order floor (the rows an order writes)",
            order_floor.p50,
            order_floor.p99,
            fair,
        );
        line(
            "order floor + the owner admitted as an order admits them",
            sale.locked_floor.p50,
            sale.locked_floor.p99,
            sale.locked_floor.per_second,
        );
        line(
            "order floor + the owner's row locked, their holds counted (as before the bound)",
            sale.counted_floor.p50,
            sale.counted_floor.p99,
            sale.counted_floor.per_second,
        );
        line(
            "checked order floor (+ the owner's admission, the price read)",
            checked_floor.p50,
            checked_floor.p99,
            checked,
        );
        line(
            "the whole order without HTTP (domain code)",
            sale.domain.p50,
            sale.domain.p99,
            sale.domain.per_second,
        );
        line(
            "POST /orders over HTTP (in-process client)",
            sale.http.p50,
            sale.http.p99,
            sale.http.per_second,
        );
        line(
            "POST /orders by variant: 3 sizes of one product (in-process client)",
            sale.by_variant.p50,
            sale.by_variant.p99,
            sale.by_variant.per_second,
        );
        if let Some((_, wrk)) = external.iter().find(|(name, _)| *name == FLASH_SALE) {
            line(
                "POST /orders over HTTP (wrk, the median of three runs)",
                wrk.p50,
                wrk.p99,
                wrk.per_second,
            );
        }
        out.push_str("\nTarget: POST /orders ≥ 0.8× the order floor; by variant, no slower than by product.\n\n");
        out.push_str(&format!(
            "Statements per order, counted by the server (`Questions`) at concurrency 1: order floor {:.1}, checked order floor {:.1}, POST /orders {:.1} (the checked floor's statements, and a savepoint before the stock update, in its round trip; an order that empties a shelf undoes to the savepoint before it takes the last unit and reads the levels back); before this release's changes, 12 (a token check and a pending-order count of their own, and the stock's levels read in a round trip of their own after the update).\n\n",
            statements.order_floor, statements.checked_floor, statements.http
        ));
        out.push_str("CPU per order: the database server's, and the client's (the bench process for the floors and the domain code; the `serve` process over HTTP with wrk); each from its median run (of three; the wrk row's runs follow the others, with `serve` pinned to one core).\n\n");
        out.push_str("| | database CPU µs | client CPU µs | total µs |\n|---|---:|---:|---:|\n");
        let us = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.0}"));
        for (what, cpu) in [
            ("lock floor", flash_cpu.lock_floor),
            ("order floor", flash_cpu.order_floor),
            (
                "order floor + the owner admitted as an order admits them",
                flash_cpu.locked_floor,
            ),
            (
                "order floor + the owner's row locked, holds counted (as before)",
                flash_cpu.counted_floor,
            ),
            ("checked order floor", flash_cpu.checked_floor),
            ("the whole order without HTTP", flash_cpu.domain),
            ("POST /orders over HTTP (wrk)", flash_cpu.http),
        ] {
            let PerOp { database, worker } = cpu;
            let total = database.zip(worker).map(|(d, w)| d + w);
            out.push_str(&format!(
                "| {what} | {} | {} | {} |\n",
                us(database),
                us(worker),
                us(total)
            ));
        }
        let parts = [
            flash_cpu.order_floor.database,
            flash_cpu.locked_floor.database,
            flash_cpu.counted_floor.database,
            flash_cpu.checked_floor.database,
        ];
        if let [Some(order), Some(locked), Some(counted), Some(checked)] = parts {
            out.push_str(&format!(
                "\nWhat each statement an order cannot skip adds to the database's CPU per order: the owner admitted as an order admits them (one update: their row locked, the token checked, the bound raised) {:+.0} µs over the order floor, the lines' names, prices and stock {:+.0} µs over that; locking the owner's row with their running holds counted in the same statement, as orders did before the row kept a bound, {:+.0} µs over the admission; the order floor's {:.0} statements cost {order:.0} µs between them. Each is the difference of two median runs, and the floors' runs move by tens of µs between rounds: a difference of that size is noise.\n",
                locked - order,
                checked - locked,
                counted - locked,
                statements.order_floor
            ));
        }
        out.push('\n');
    }
    if !external.is_empty() {
        out.push_str(&format!(
            "## External load: wrk, {CONNECTIONS} connections, server pinned to core 0 and wrk to core 1\n\n"
        ));
        out.push_str("| scenario | p50 ms | p99 ms | req/s | floor req/s (conc. 16) | wrk/floor |\n|---|---:|---:|---:|---:|---:|\n");
        for (name, wrk) in external {
            let floor = if *name == FLASH_SALE {
                sale.order_floor.per_second
            } else {
                by_name
                    .get(&(*name, 16))
                    .map_or(f64::NAN, |r| r.floor.per_second)
            };
            out.push_str(&format!(
                "| {name} | {} | {} | {:.0} | {floor:.0} | {:.2} |\n",
                ms(wrk.p50),
                ms(wrk.p99),
                wrk.per_second,
                wrk.per_second / floor
            ));
        }
        out.push_str("\nThe floor is the in-process one above (the same SQL through sqlx; for the flash sale, the order floor). Target: ≥ 0.8.\n\n");
    }
    out.push_str(bill);
    out.push_str(&format!("## Cold start: process start to first response through a loopback runtime API (median of {COLD_SAMPLES}, taken in turns across the binaries)\n\n"));
    out.push_str(&format!(
        "One fresh database connection + query: {} ms.\n\n",
        ms(db)
    ));
    out.push_str(&format!(
        "| binary | cold start ms | vs bare lambda_http | target (2× bare + 1 DB round trip) ms | peak RSS after {INVOCATIONS_FOR_RSS} invocations | warm invocation µs | function CPU µs | database CPU µs |\n|---|---:|---:|---:|---:|---:|---:|---:|\n"
    ));
    let bare = cold
        .iter()
        .find(|c| c.name == "bare-lambda")
        .map(|c| c.median);
    for c in cold {
        let (ratio, target) = match bare {
            Some(b) => (
                format!("{:.2}×", c.median.as_secs_f64() / b.as_secs_f64()),
                ms(b * 2 + db),
            ),
            None => ("-".into(), "-".into()),
        };
        let rss = c.peak_rss_kib.map_or("-".to_string(), |kib| {
            format!("{:.1} MB", kib as f64 / 1024.0)
        });
        let micros = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.0} | {} | {} |\n",
            c.name,
            ms(c.median),
            ratio,
            target,
            rss,
            c.warm.wall.as_secs_f64() * 1e6,
            micros(c.warm.cpu.worker),
            micros(c.warm.cpu.database),
        ));
    }
    out.push_str(
        "\nCold starts and memory are of x86_64 release builds on this machine (arm64 cannot run here). \
         Target: peak RSS ≤ 32 MB per function. The warm columns are the same binaries' \
         invocations after the first, one after another as a Lambda instance serves them \
         (its request through the runtime API: wall time from one event to the next, and \
         CPU of the function's process and of the database server per invocation).\n\n",
    );
    out.push_str("## Size and memory\n\n| function | release arm64 bootstrap |\n|---|---:|\n");
    for (name, size) in sizes {
        let size = size.map_or("not built (run `make package`)".to_string(), |s| {
            format!("{:.2} MB", s as f64 / 1_000_000.0)
        });
        out.push_str(&format!("| {name} | {size} |\n"));
    }
    out.push_str(
        "\nNo size target: the release profile is chosen by CPU per request, with the cold \
         start it brings (see Release profile below); a larger bootstrap costs its milliseconds \
         once per cold start.\n\n",
    );
    match rss_kib {
        Some(kib) => out.push_str(&format!(
            "Peak RSS of the `serve` process (every route, 16 connections, 16 concurrent requests) after {requests} requests: {:.1} MB.\n",
            kib as f64 / 1024.0
        )),
        None => out.push_str("Peak RSS: not available on this platform.\n"),
    }
    // Figures of earlier runs, kept with the reasons behind them; edited by hand.
    out.push('\n');
    out.push_str(include_str!("changes.md"));
    out
}

fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map_or("?".into(), |kib| {
            format!("{:.0} GiB", kib as f64 / 1024.0 / 1024.0)
        });
    format!("{cores} cores ({cpu}), {mem} RAM, MariaDB on loopback")
}
