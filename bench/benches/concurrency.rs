//! Concurrency (issue 5): 1,000 concurrent `run`s of one `runcomfy::Client` against the fake
//! server in one process (real HTTP on 127.0.0.1; the server on its own runtime thread).
//!
//! 1. Memory: 1,000 jobs of 3 s each (all in flight at once), after a few warm-up jobs and a
//!    pause: the peak of the client's live heap above its level before, per job in flight,
//!    counted by a global allocator that tags each allocation with the runtime that made it
//!    (client or server); and the process's peak RSS (`VmHWM`, reset through
//!    `/proc/self/clear_refs`) above its level before.
//! 2. Throughput: 1,000 jobs that end at their second poll, fast polling: jobs/s (the median
//!    of 3 rounds after a warm-up round).
//!
//! `cargo bench -p runcomfy-bench --bench concurrency` prints the figures; no criterion.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runcomfy::models::happyhorse::happyhorse_1_0::image_to_video as model;
use runcomfy::PollPolicy;
use runcomfy_fake::{FakeServer, Lifecycle, Route};

const JOBS: usize = 1000;

use runcomfy_bench::tagged_alloc::{live, peak, reset_peak, tag_thread, Tagged, CLIENT, SERVER};

#[global_allocator]
static ALLOC: Tagged = Tagged;

// ---- process figures ----

fn status_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets `VmHWM` to the current RSS (Linux: `5` into `/proc/self/clear_refs`).
fn reset_hwm() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

// ---- the workload ----

struct Outcome {
    elapsed: Duration,
    max_in_flight: usize,
    requests: usize,
}

fn run_jobs(
    client_rt: &tokio::runtime::Runtime,
    server: &FakeServer,
    policy: PollPolicy,
    jobs: usize,
) -> Outcome {
    let client = {
        let _guard = client_rt.enter();
        server
            .client_builder()
            .poll_policy(policy)
            .request_timeout(Duration::from_secs(60))
            .build()
            .expect("client")
    };
    server.clear_requests();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let (inf, max) = (in_flight.clone(), max_in_flight.clone());
    // Spawned, so that every client allocation happens on the client runtime's threads.
    client_rt
        .block_on(client_rt.spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..jobs {
                let (client, inf, max) = (client.clone(), inf.clone(), max.clone());
                tasks.spawn(async move {
                    let n = inf.fetch_add(1, Ordering::Relaxed) + 1;
                    max.fetch_max(n, Ordering::Relaxed);
                    let input =
                        model::Input::new("https://example.com/cat.png", "the cat turns its head");
                    let out = client.run::<model::Model>(&input).await;
                    inf.fetch_sub(1, Ordering::Relaxed);
                    out.expect("run")
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.expect("job task");
            }
        }))
        .expect("client task");
    Outcome {
        elapsed: started.elapsed(),
        max_in_flight: max_in_flight.load(Ordering::Relaxed),
        requests: server.count(Route::Any),
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --benches` runs bench targets too: this one is too heavy for that.
        return;
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average: {}", load.trim());
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_start(|| tag_thread(SERVER))
        .enable_all()
        .build()
        .expect("server runtime");
    let server = server_rt
        .block_on(
            FakeServer::builder()
                .model(
                    model::INFO.id,
                    runcomfy::SchemaText::find(runcomfy::models::SCHEMAS, model::INFO.id)
                        .expect("shipped")
                        .input,
                )
                .start(),
        )
        .expect("fake server");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .on_thread_start(|| tag_thread(CLIENT))
        .enable_all()
        .build()
        .expect("client runtime");

    // 1. Memory: 3 s jobs, polled after 100 ms growing to 1 s, so all are in flight at once.
    server.set_lifecycle(Lifecycle::default());
    let fast = runcomfy_fake::fast_poll_policy();
    let _ = run_jobs(&client_rt, &server, fast.clone(), 20); // lazy statics, allocator
                                                             // Let the warm-up's connections close before taking the baseline.
    client_rt.block_on(async { tokio::time::sleep(Duration::from_secs(1)).await });
    server.set_lifecycle(Lifecycle::timed(Duration::ZERO, Duration::from_secs(3)));
    let slow = PollPolicy::default()
        .delays(Duration::from_millis(100), 1.5, Duration::from_secs(1))
        .deadline(Some(Duration::from_secs(60)));
    let client_before = live(CLIENT);
    let server_before = live(SERVER);
    reset_peak(CLIENT);
    reset_peak(SERVER);
    let rss_before = status_kib("VmRSS:");
    let hwm_reset = reset_hwm();
    let m = run_jobs(&client_rt, &server, slow, JOBS);
    let hwm_after = status_kib("VmHWM:");
    let client_peak = (peak(CLIENT) - client_before).max(0) as f64;
    let server_peak = (peak(SERVER) - server_before).max(0) as f64;
    let per = |bytes: f64| bytes / m.max_in_flight.max(1) as f64 / 1024.0;
    println!(
        "memory: {JOBS} concurrent 3 s runs in {:.2} s, {} requests, at most {} in flight",
        m.elapsed.as_secs_f64(),
        m.requests,
        m.max_in_flight
    );
    println!(
        "memory: client heap peak +{:.0} bytes = {:.1} KiB per job in flight (fake server's heap: +{:.0} bytes, {:.1} KiB per job)",
        client_peak,
        per(client_peak),
        server_peak,
        per(server_peak)
    );
    match (hwm_reset, rss_before, hwm_after) {
        (true, Some(before), Some(after)) => println!(
            "memory: process peak RSS +{:.1} MiB over {:.1} MiB = {:.1} KiB per job in flight (client and fake server)",
            after.saturating_sub(before) as f64 / 1024.0,
            before as f64 / 1024.0,
            after.saturating_sub(before) as f64 / m.max_in_flight.max(1) as f64
        ),
        _ => println!("memory: peak RSS not available on this system"),
    }

    // 2. Throughput: jobs that end at their second poll, polled after 2, 3, 4.5 ms...
    server.set_lifecycle(Lifecycle::default());
    let _ = run_jobs(&client_rt, &server, fast.clone(), JOBS);
    let mut rounds: Vec<Outcome> = (0..3)
        .map(|_| run_jobs(&client_rt, &server, fast.clone(), JOBS))
        .collect();
    rounds.sort_by_key(|o| o.elapsed);
    let t = &rounds[1];
    println!(
        "throughput: {JOBS} concurrent runs (each: submit + 2 polls) in {:.3} s (median of 3): {:.0} jobs/s, {:.0} requests/s, at most {} in flight",
        t.elapsed.as_secs_f64(),
        JOBS as f64 / t.elapsed.as_secs_f64(),
        t.requests as f64 / t.elapsed.as_secs_f64(),
        t.max_in_flight
    );
}
