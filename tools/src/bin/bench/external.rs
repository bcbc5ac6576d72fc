//! Load from `wrk`, a standard external generator, so the figures compare with any other
//! server's. With two cores or more the server runs on core 0 and wrk on core 1 (taskset),
//! so the generator does not take the server's CPU; the database runs where it likes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

pub const CONNECTIONS: usize = 16;
const SECONDS: u64 = 8;

pub struct Wrk {
    pub requests: u64,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// Whether wrk and taskset can be used; `make bench` installs wrk when it can.
pub fn available() -> bool {
    ["wrk", "taskset"].iter().all(|tool| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success() || !o.stdout.is_empty())
    })
}

fn pinned() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
}

/// Pins every thread of the server to core 0 (or lets it run anywhere again).
pub fn pin_server(pid: u32, to_core_zero: bool) {
    if !pinned() {
        return;
    }
    let cores = if to_core_zero {
        "0".to_string()
    } else {
        format!("0-{}", num_cores() - 1)
    };
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", &cores, &pid.to_string()])
        .output()
        .expect("run taskset");
    assert!(
        status.status.success(),
        "taskset: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `wrk -t1 -c16 -d8s --latency` against `url`, with a JSON body when given, and a bearer
/// token when given (taken in turn from `tokens`, request by request). Every answer must be
/// 2xx.
pub fn run(
    work_dir: &Path,
    url: &str,
    method: &str,
    body: Option<&Value>,
    tokens: &[String],
) -> Wrk {
    let mut script = format!("wrk.method = \"{method}\"\n");
    if let Some(body) = body {
        script.push_str("wrk.headers[\"Content-Type\"] = \"application/json\"\n");
        script.push_str(&format!("wrk.body = [[{body}]]\n"));
    }
    if !tokens.is_empty() {
        let list: Vec<String> = tokens.iter().map(|t| format!("\"{t}\"")).collect();
        script.push_str(&format!(
            "local tokens = {{{}}}\nlocal n = 0\nrequest = function()\n  n = n % #tokens + 1\n  \
             wrk.headers[\"Authorization\"] = \"Bearer \" .. tokens[n]\n  return wrk.format()\nend\n",
            list.join(", ")
        ));
    }
    let script_path = work_dir.join("wrk.lua");
    std::fs::write(&script_path, script).expect("write the wrk script");
    let mut command = if pinned() {
        let mut c = Command::new("taskset");
        c.args(["-c", "1", "wrk"]);
        c
    } else {
        Command::new("wrk")
    };
    let output = command
        .args([
            "-t1",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{SECONDS}s"),
            "--latency",
            "-s",
        ])
        .arg(&script_path)
        .arg(url)
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "wrk failed: {text}");
    assert!(
        !text.contains("Non-2xx"),
        "wrk saw failed requests on {method} {url}:\n{text}"
    );
    let per_second = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"));
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in"))
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{text}"));
    let percentile = |p: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(p))
            .and_then(|v| duration(v.trim()))
            .unwrap_or_else(|| panic!("no {p} latency in wrk's output:\n{text}"))
    };
    Wrk {
        requests,
        per_second,
        p50: percentile("50%"),
        p99: percentile("99%"),
    }
}

/// wrk's "1.23ms", "456.78us", "1.01s".
fn duration(text: &str) -> Option<Duration> {
    let (number, scale) = if let Some(v) = text.strip_suffix("us") {
        (v, 1e-6)
    } else if let Some(v) = text.strip_suffix("ms") {
        (v, 1e-3)
    } else if let Some(v) = text.strip_suffix('s') {
        (v, 1.0)
    } else {
        return None;
    };
    number
        .parse::<f64>()
        .ok()
        .map(|n| Duration::from_secs_f64(n * scale))
}
