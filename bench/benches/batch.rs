//! The batch engine (issue 11): 10,000 rows of one model against the fake server on
//! 127.0.0.1 at concurrency 64, in one run of one command:
//!
//! 1. the fake server's own capacity: the same jobs (a submit, then `/result` polls every 2 ms
//!    until the end) through a bare `reqwest` client, 64 at a time;
//! 2. the same jobs through `runcomfy::Client::run_json`, 64 at a time, without a store;
//! 3. the same rows as a `runcomfy::batch` on a SQLite store (WAL, `synchronous = FULL`) in a
//!    temporary folder, concurrency 64; and on PostgreSQL when `RUNCOMFY_TEST_PG_URL` is set.
//!
//! It prints jobs/s of each, the batch's jobs/s over the fake's capacity (target ≥ 0.8), the
//! store's share of the batch's time (1 - no-store time / batch time; target ≤ 15%), and the
//! peak heap of the client side (client runtime and store threads) per job in flight, counted
//! by a global allocator that tags each allocation with the runtime that made it.
//!
//! `cargo bench -p runcomfy-bench --bench batch` (`ROWS=N` to change the row count).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runcomfy::store::NewRow;
use runcomfy::PollPolicy;
use runcomfy_fake::{FakeServer, Lifecycle};
use serde_json::{json, Value};

const MODEL: &str = "acme/echo-1/text-to-image";
const SCHEMA: &str =
    r#"{"type": "object", "required": ["prompt"], "properties": {"prompt": {"type": "string"}}}"#;
const CONCURRENCY: usize = 64;
const POLL: Duration = Duration::from_millis(2);

use runcomfy_bench::tagged_alloc::{live, peak, reset_peak, tag_thread, Tagged, CLIENT, SERVER};

#[global_allocator]
static ALLOC: Tagged = Tagged;

// ---- the workloads ----

fn input(i: usize) -> Value {
    json!({"prompt": format!("row {i}")})
}

/// The fake's capacity: submit, then poll `/result` every 2 ms until the job ends, through a
/// bare HTTP client, `CONCURRENCY` jobs at a time.
async fn bare(server: &FakeServer, jobs: usize) -> Duration {
    let http = reqwest::Client::new();
    let auth = format!("Bearer {}", server.token().unwrap_or_default());
    let base = server.base_url().trim_end_matches('/').to_owned();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (http, auth, base, next) = (http.clone(), auth.clone(), base.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= jobs {
                    return;
                }
                let answer: Value = http
                    .post(format!("{base}/v1/models/{MODEL}"))
                    .header("Authorization", &auth)
                    .json(&input(i))
                    .send()
                    .await
                    .expect("submit")
                    .json()
                    .await
                    .expect("submit answer");
                let id = answer["request_id"]
                    .as_str()
                    .expect("request id")
                    .to_owned();
                loop {
                    tokio::time::sleep(POLL).await;
                    let result: Value = http
                        .get(format!("{base}/v1/requests/{id}/result?include_cost=true"))
                        .header("Authorization", &auth)
                        .send()
                        .await
                        .expect("result")
                        .json()
                        .await
                        .expect("result answer");
                    if matches!(result["status"].as_str(), Some("succeeded" | "completed")) {
                        break;
                    }
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("bare task");
    }
    started.elapsed()
}

fn policy() -> PollPolicy {
    PollPolicy::default()
        .delays(POLL, 1.0, POLL)
        .jitter(0.0)
        .include_cost(true)
}

/// The same jobs through the client, without a store.
async fn no_store(server: &FakeServer, jobs: usize) -> Duration {
    let client = server
        .client_builder()
        .poll_policy(policy())
        .build()
        .expect("client");
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (client, next) = (client.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= jobs {
                    return;
                }
                client.run_json(MODEL, &input(i)).await.expect("run");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("run task");
    }
    started.elapsed()
}

/// The same rows as a batch on the store at `location`.
async fn batch(
    server: &FakeServer,
    location: &str,
    name: &str,
    jobs: usize,
) -> (Duration, usize, isize) {
    let store = runcomfy::store::open(location).await.expect("store");
    let client = server
        .client_builder()
        .poll_policy(policy())
        .store(store)
        .build()
        .expect("client");
    let rows: Vec<NewRow> = (0..jobs)
        .map(|i| NewRow::new(i as u64 + 1, input(i)))
        .collect();
    let started = Instant::now();
    let mut in_flight = 0usize;
    let mut most = 0usize;
    let mut opened = 0isize;
    let summary = client
        .batch(MODEL, name)
        .rows(rows)
        .concurrency(CONCURRENCY)
        .run_with(|e| match e {
            // The heap is measured from here: the rows are in the store, none is in flight.
            runcomfy::batch::BatchEvent::Opened { .. } => {
                opened = live(CLIENT) + live(0);
                reset_peak(CLIENT);
                reset_peak(0);
            }
            runcomfy::batch::BatchEvent::Submitted { .. } => {
                in_flight += 1;
                most = most.max(in_flight);
            }
            runcomfy::batch::BatchEvent::Finished { .. } => in_flight = in_flight.saturating_sub(1),
            _ => {}
        })
        .await
        .expect("batch");
    let took = started.elapsed();
    assert_eq!(summary.status.succeeded, jobs as u64, "{summary:?}");
    let heap = (peak(CLIENT) + peak(0) - opened).max(0);
    (took, most, heap)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test --benches` runs bench targets too: this one is too heavy for that.
        return;
    }
    let jobs: usize = std::env::var("ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10_000);
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
                .model(MODEL, SCHEMA)
                .lifecycle(Lifecycle::default())
                .record_limit(100)
                .start(),
        )
        .expect("fake server");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .on_thread_start(|| tag_thread(CLIENT))
        .enable_all()
        .build()
        .expect("client runtime");
    // `STORE_DIR` puts the SQLite file elsewhere (a tmpfs shows what the fsyncs cost).
    let dir = match std::env::var_os("STORE_DIR") {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .expect("temporary folder");
    let server = Arc::new(server);
    let on_client = |f: std::pin::Pin<Box<dyn std::future::Future<Output = Duration> + Send>>| {
        client_rt.block_on(client_rt.spawn(f)).expect("client task")
    };
    // Warm-up: connections, lazy statics.
    {
        let s = server.clone();
        on_client(Box::pin(async move { bare(&s, 500).await }));
        let s = server.clone();
        on_client(Box::pin(async move { no_store(&s, 500).await }));
    }
    let s = server.clone();
    let capacity = on_client(Box::pin(async move { bare(&s, jobs).await }));
    let s = server.clone();
    let plain = on_client(Box::pin(async move { no_store(&s, jobs).await }));

    let sqlite = dir.path().join("jobs.db").display().to_string();
    let s = server.clone();
    let location = sqlite.clone();
    let (stored, peak_in_flight, heap) = client_rt
        .block_on(client_rt.spawn(async move { batch(&s, &location, "bench", jobs).await }))
        .expect("batch task");
    let heap = heap as f64;

    let rate = |d: Duration| jobs as f64 / d.as_secs_f64();
    println!("{jobs} jobs, {CONCURRENCY} at a time, each a submit and /result polls every 2 ms until its end (3 polls):");
    println!(
        "  fake's capacity (bare reqwest): {:>8.3} s  {:>7.0} jobs/s",
        capacity.as_secs_f64(),
        rate(capacity)
    );
    println!(
        "  client, no store:              {:>8.3} s  {:>7.0} jobs/s",
        plain.as_secs_f64(),
        rate(plain)
    );
    println!("  batch on SQLite:               {:>8.3} s  {:>7.0} jobs/s  (at most {peak_in_flight} in flight)", stored.as_secs_f64(), rate(stored));
    println!(
        "  batch memory: client-side heap peak +{:.0} bytes over the opened batch = {:.1} KiB per job in flight ({CONCURRENCY})",
        heap,
        heap / CONCURRENCY as f64 / 1024.0
    );
    println!(
        "ratio batch/capacity (SQLite): {:.2} (target >= 0.8)",
        rate(stored) / rate(capacity)
    );
    println!(
        "store share of the batch's time (SQLite): {:.1}% (target <= 15%)",
        100.0 * (1.0 - plain.as_secs_f64() / stored.as_secs_f64())
    );
    if let Ok(url) = std::env::var("RUNCOMFY_TEST_PG_URL") {
        let s = server.clone();
        let (pg, _, _) = client_rt
            .block_on(client_rt.spawn(async move {
                let name = format!("bench-{}", std::process::id());
                batch(&s, &url, &name, jobs).await
            }))
            .expect("batch task");
        println!(
            "  batch on PostgreSQL:           {:>8.3} s  {:>7.0} jobs/s",
            pg.as_secs_f64(),
            rate(pg)
        );
        println!(
            "ratio batch/capacity (PostgreSQL): {:.2}; store share {:.1}%",
            rate(pg) / rate(capacity),
            100.0 * (1.0 - plain.as_secs_f64() / pg.as_secs_f64())
        );
    }
}
