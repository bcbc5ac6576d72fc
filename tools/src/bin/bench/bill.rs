//! What a million requests cost on AWS, from this run's warm durations, CPU and cold starts.
//!
//! Lambda bills each request's duration, rounded up to the millisecond, times the memory
//! configured; the memory also sets the CPU share (one full vCPU at 1,769 MB), so a
//! request's CPU time stretches at smaller sizes while its waiting on the database does
//! not. A cold start bills its init phase too (custom runtimes always have).

use std::time::Duration;

/// AWS's published prices for us-east-1, read on 2026-12-03 (aws.amazon.com/lambda/pricing
/// and /api-gateway/pricing): Lambda on arm64 per GB-second (first 7.5 billion GB-s a
/// month) and per request, and an HTTP API's requests (first 300 million a month).
pub const READ_ON: &str = "2026-12-03";
const LAMBDA_ARM64_PER_GB_SECOND: f64 = 0.000_013_333_4;
const LAMBDA_PER_MILLION_REQUESTS: f64 = 0.20;
const HTTP_API_PER_MILLION_REQUESTS: f64 = 1.00;
/// SQS standard queues, per million requests beyond the free million a month (us-east-1,
/// the published rate through 2026).
const SQS_PER_MILLION_REQUESTS: f64 = 0.40;
/// The memory at which a function has one full vCPU.
const FULL_VCPU_MB: f64 = 1769.0;
/// An assumption, not a measurement: the share of requests that meet a cold instance. One
/// in a hundred is typical of steady traffic; a spiky shop sees more.
pub const COLD_SHARE: f64 = 0.01;
pub const MEMORY_MB: [u32; 3] = [128, 256, 512];

/// One route's measured figures on this machine (one full core).
pub struct Route {
    pub name: String,
    /// Wall time of one request at concurrency 1, server side and client side.
    pub warm: Duration,
    /// CPU the server spent per request.
    pub cpu: Duration,
    /// The function's cold start: process start to first response.
    pub cold: Duration,
}

/// Lambda compute (duration and requests) per million requests at `memory_mb`.
pub fn lambda_per_million(route: &Route, memory_mb: u32) -> f64 {
    let share = (f64::from(memory_mb) / FULL_VCPU_MB).min(1.0);
    let cpu = route.cpu.as_secs_f64() * 1e3;
    let waiting = (route.warm.as_secs_f64() * 1e3 - cpu).max(0.0);
    let warm_ms = (waiting + cpu / share).ceil().max(1.0);
    let cold_ms = (route.cold.as_secs_f64() * 1e3).ceil() + warm_ms;
    let billed_ms = warm_ms * (1.0 - COLD_SHARE) + cold_ms * COLD_SHARE;
    let gb_seconds = billed_ms / 1e3 * f64::from(memory_mb) / 1024.0;
    1e6 * gb_seconds * LAMBDA_ARM64_PER_GB_SECOND + LAMBDA_PER_MILLION_REQUESTS
}

/// The duration part of [`lambda_per_million`] before the per-request rounding to the
/// millisecond, warm requests only: where profiles differ by tens of microseconds per
/// request, the rounded bill hides what they change on average.
pub fn duration_per_million_unrounded(route: &Route, memory_mb: u32) -> f64 {
    let share = (f64::from(memory_mb) / FULL_VCPU_MB).min(1.0);
    let cpu = route.cpu.as_secs_f64();
    let waiting = (route.warm.as_secs_f64() - cpu).max(0.0);
    let gb_seconds = (waiting + cpu / share) * f64::from(memory_mb) / 1024.0;
    1e6 * gb_seconds * LAMBDA_ARM64_PER_GB_SECOND
}

pub fn render(routes: &[Route]) -> String {
    let mut out = String::from("## The bill: per million requests, arm64, us-east-1\n\n");
    out.push_str(&format!(
        "Lambda duration and requests at each memory size, from the warm wall time and the \
         server's CPU per request measured above (concurrency 1, one full core here; the CPU \
         part stretched by the smaller sizes' CPU share), with {:.0} % of requests paying \
         their function's cold start; the bare `lambda_http` function's figures are its warm \
         invocations through the runtime API (see Cold start). API Gateway (HTTP API) adds \
         ${HTTP_API_PER_MILLION_REQUESTS:.2} per million whatever the function. Prices read on \
         {READ_ON}.\n\n",
        COLD_SHARE * 100.0
    ));
    out.push_str(&format!(
        "Not in the table: a write that records events (an order) wakes the webhook relay. \
         A wake-up costs ${:.2} per million in requests alone (SQS's send and the event \
         source's delete at ${SQS_PER_MILLION_REQUESTS:.2} each, the relay's invocation at \
         ${LAMBDA_PER_MILLION_REQUESTS:.2}), plus the relay run's duration. Each instance \
         paces them (`shared/web/src/wake.rs`): a lone write sends one, a busy instance at \
         most two a second whatever its rate.\n\n",
        2.0 * SQS_PER_MILLION_REQUESTS + LAMBDA_PER_MILLION_REQUESTS
    ));
    out.push_str("| route | warm ms | server CPU ms | cold start ms |");
    for mb in MEMORY_MB {
        out.push_str(&format!(" {mb} MB $ |"));
    }
    out.push_str(" with API Gateway (256 MB) $ |\n|---|---:|---:|---:|");
    for _ in MEMORY_MB {
        out.push_str("---:|");
    }
    out.push_str("---:|\n");
    for route in routes {
        out.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.1} |",
            route.name,
            route.warm.as_secs_f64() * 1e3,
            route.cpu.as_secs_f64() * 1e3,
            route.cold.as_secs_f64() * 1e3
        ));
        for mb in MEMORY_MB {
            out.push_str(&format!(" {:.2} |", lambda_per_million(route, mb)));
        }
        out.push_str(&format!(
            " {:.2} |\n",
            lambda_per_million(route, 256) + HTTP_API_PER_MILLION_REQUESTS
        ));
    }
    out.push('\n');
    out
}
