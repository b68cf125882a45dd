//! Polling that learns (issue 11): jobs of about 60 s and 600 s whose model has a known
//! history, on the fake server with tokio's clock paused (the server's clock follows it):
//! real HTTP on 127.0.0.1, virtual time.
//!
//! Each row runs 40 jobs whose lengths spread evenly over ±10% of the nominal length; the
//! history is what the job store's `duration_stats` would say of those jobs (nearest-rank p50
//! and p90), given to the client as `PollPolicy::learned` (the schedule a store-backed client
//! follows; the store itself is left out because its thread would let the paused clock jump).
//! Fixed 2-second polling (RunComfy's CLI) runs the same jobs in the same run.
//! Requests count the submit and every poll; the delay is when `run` returns minus when the
//! job ended.
//!
//! `cargo bench -p runcomfy-bench --bench learned` prints the table and the two ratios.

use std::time::Duration;

use runcomfy::{Learned, PollPolicy};
use runcomfy_fake::{FakeServer, Lifecycle, Route};
use serde_json::json;
use tokio::time::Instant;

const MODEL: &str = "acme/echo-1/text-to-image";
const SCHEMA: &str =
    r#"{"type": "object", "required": ["prompt"], "properties": {"prompt": {"type": "string"}}}"#;
const TRIALS: usize = 40;

fn lengths(nominal: f64) -> Vec<Duration> {
    (0..TRIALS)
        .map(|i| {
            let spread = 0.9 + 0.2 * i as f64 / (TRIALS - 1) as f64;
            Duration::from_secs_f64(nominal * spread)
        })
        .collect()
}

/// The nearest-rank percentile, as the store computes it.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Row {
    requests_mean: f64,
    delay_mean: f64,
    delay_max: f64,
    worst_budget_use: f64,
}

async fn measure(server: &FakeServer, policy: PollPolicy, lengths: &[Duration]) -> Row {
    let client = server
        .client_builder()
        .poll_policy(policy)
        .request_timeout(Duration::from_secs(24 * 3600))
        .build()
        .expect("client");
    let (mut requests, mut delays, mut worst) = (0usize, Vec::new(), 0f64);
    for length in lengths {
        server.set_lifecycle(Lifecycle::timed(Duration::ZERO, *length));
        server.clear_requests();
        let started = Instant::now();
        client
            .run_json(MODEL, &json!({"prompt": "x"}))
            .await
            .expect("run");
        let late = started.elapsed().saturating_sub(*length).as_secs_f64();
        requests += server.count(Route::Any);
        delays.push(late);
        worst = worst.max(late / (length.as_secs_f64() * 0.1 + 1.0));
    }
    Row {
        requests_mean: requests as f64 / lengths.len() as f64,
        delay_mean: delays.iter().sum::<f64>() / delays.len() as f64,
        delay_max: delays.iter().copied().fold(0.0, f64::max),
        worst_budget_use: worst,
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(async {
        let server = FakeServer::builder()
            .model(MODEL, SCHEMA)
            .start()
            .await
            .expect("fake server");
        let fixed = PollPolicy::default()
            .delays(Duration::from_secs(2), 1.0, Duration::from_secs(2))
            .jitter(0.0);
        println!("{TRIALS} jobs per row, lengths spread over ±10% of the nominal length");
        println!(
            "{:>6}  {:<28} {:>15} {:>14} {:>10}",
            "job", "policy", "requests mean", "delay s mean", "max"
        );
        let mut verdicts = Vec::new();
        for nominal in [60.0, 600.0] {
            let lengths = lengths(nominal);
            let mut sorted = lengths.clone();
            sorted.sort();
            let learned = Learned::new(percentile(&sorted, 0.5), percentile(&sorted, 0.9));
            let ours = measure(
                &server,
                PollPolicy::default().learned(Some(learned)),
                &lengths,
            )
            .await;
            let plain = measure(&server, PollPolicy::default(), &lengths).await;
            let base = measure(&server, fixed.clone(), &lengths).await;
            let name = format!(
                "learned (p50 {:.0} s, p90 {:.0} s)",
                learned.p50.as_secs_f64(),
                learned.p90.as_secs_f64()
            );
            for (policy, r) in [(name.as_str(), &ours), ("default, no history", &plain), ("fixed 2 s", &base)] {
                println!(
                    "{:>5}s  {:<28} {:>15.1} {:>14.2} {:>10.2}",
                    nominal, policy, r.requests_mean, r.delay_mean, r.delay_max
                );
            }
            let ratio = ours.requests_mean / base.requests_mean;
            verdicts.push(format!(
                "{nominal} s: requests learned/fixed 2 s {ratio:.2} (target <= 0.35: {}); max delay {:.2} s = {:.0}% of the allowed 10% + 1 s (target <= 100%: {})",
                if ratio <= 0.35 { "met" } else { "MISSED" },
                ours.delay_max,
                100.0 * ours.worst_budget_use,
                if ours.worst_budget_use <= 1.0 { "met" } else { "MISSED" },
            ));
        }
        for v in verdicts {
            println!("learned polling {v}");
        }
    });
}
