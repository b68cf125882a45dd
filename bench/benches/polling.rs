//! Polling (issue 5): for jobs of 5 s, 60 s and 600 s on the fake server, the requests a job
//! costs and the delay between its end and the client noticing it, with the default
//! `PollPolicy` and with fixed 2-second polling (what RunComfy's CLI does), on tokio's paused
//! clock (the fake server's clock follows it): real HTTP on 127.0.0.1, virtual time.
//!
//! `cargo bench -p runcomfy-bench --bench polling` prints a table; no criterion.

use std::time::Duration;

use runcomfy::models::happyhorse::happyhorse_1_0::image_to_video as model;
use runcomfy::PollPolicy;
use runcomfy_fake::{FakeServer, Lifecycle, Route};
use tokio::time::Instant;

/// Jobs per (length, policy): the default policy's jitter is random.
const TRIALS: usize = 40;
const LENGTHS: [u64; 3] = [5, 60, 600];

struct Row {
    requests_mean: f64,
    requests_max: usize,
    delay_mean: f64,
    delay_max: f64,
    over_budget: usize,
}

async fn measure(server: &FakeServer, policy: PollPolicy, length: Duration) -> Row {
    let client = server
        .client_builder()
        .poll_policy(policy)
        .request_timeout(Duration::from_secs(3600))
        .build()
        .expect("client");
    let input = model::Input::new("https://example.com/cat.png", "the cat turns its head");
    server.set_lifecycle(Lifecycle::timed(Duration::ZERO, length));
    let budget = length.as_secs_f64() * 0.1 + 1.0;
    let (mut requests, mut delays) = (Vec::new(), Vec::new());
    for _ in 0..TRIALS {
        server.clear_requests();
        let started = Instant::now();
        client.run::<model::Model>(&input).await.expect("run");
        let took = started.elapsed();
        requests.push(server.count(Route::Any));
        delays.push(took.saturating_sub(length).as_secs_f64());
    }
    Row {
        requests_mean: requests.iter().sum::<usize>() as f64 / TRIALS as f64,
        requests_max: requests.iter().copied().max().unwrap_or(0),
        delay_mean: delays.iter().sum::<f64>() / TRIALS as f64,
        delay_max: delays.iter().copied().fold(0.0, f64::max),
        over_budget: delays.iter().filter(|d| **d > budget).count(),
    }
}

fn main() {
    // `cargo test --benches` runs bench targets too: nothing to check there.
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
            .model(model::INFO.id, runcomfy::SchemaText::find(runcomfy::models::SCHEMAS, model::INFO.id).expect("shipped").input)
            .start()
            .await
            .expect("fake server");
        let default = PollPolicy::default();
        let fixed = PollPolicy::default()
            .delays(Duration::from_secs(2), 1.0, Duration::from_secs(2))
            .jitter(0.0);
        println!("default policy: {default:?}; {TRIALS} jobs per row");
        println!(
            "{:>6}  {:<10} {:>15} {:>12} {:>16} {:>14} {:>12}",
            "job", "policy", "requests mean", "max", "delay s mean", "max", "over target"
        );
        let mut verdicts = Vec::new();
        for secs in LENGTHS {
            let length = Duration::from_secs(secs);
            let ours = measure(&server, default.clone(), length).await;
            let base = measure(&server, fixed.clone(), length).await;
            for (name, r) in [("default", &ours), ("fixed 2 s", &base)] {
                println!(
                    "{:>5}s  {:<10} {:>15.1} {:>12} {:>16.2} {:>14.2} {:>9}/{TRIALS}",
                    secs,
                    name,
                    r.requests_mean,
                    r.requests_max,
                    r.delay_mean,
                    r.delay_max,
                    r.over_budget
                );
            }
            let budget = secs as f64 * 0.1 + 1.0;
            let ratio = ours.requests_mean / base.requests_mean;
            let requests_ok = secs < 60 || ratio <= 0.5;
            verdicts.push(format!(
                "{secs} s: requests default/fixed {ratio:.2}{}; delay mean {:.2} s, max {:.2} s vs target {budget:.1} s: {}",
                if secs >= 60 { " (target <= 0.50)" } else { "" },
                ours.delay_mean,
                ours.delay_max,
                match (requests_ok, ours.delay_mean <= budget, ours.delay_max <= budget) {
                    (true, true, true) => "met".to_owned(),
                    (true, true, false) => format!(
                        "met on average, missed by {} of {TRIALS} jobs",
                        ours.over_budget
                    ),
                    _ => "MISSED".to_owned(),
                }
            ));
        }
        println!("(requests: the submit and every poll of the job; delay: client noticing minus job end)");
        for v in verdicts {
            println!("polling {v}");
        }
    });
}
