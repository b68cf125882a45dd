//! The batch engine (issue 11): 10,000 rows of one model against the fake server on
//! 127.0.0.1 at concurrency 64, in one run of one command:
//!
//! 1. the fake server's own capacity: the same jobs (a submit, then `/result` polls every 2 ms
//!    until the end) through a bare `reqwest` client, 64 at a time;
//! 2. the same jobs through `runcomfy::Client::run_json`, 64 at a time, without a store;
//! 3. the same rows as a `runcomfy::batch` on a SQLite store (WAL, `synchronous = FULL`) in a
//!    temporary folder, concurrency 64; and on PostgreSQL when `RUNCOMFY_TEST_PG_URL` is set.
//!
//! The two baselines run before and after the batch (capacity, no store, batch, no store,
//! capacity), each counted over both of its runs, so a load that drifts weighs on all alike.
//!
//! It prints jobs/s of each, the batch's jobs/s over the fake's capacity (target ≥ 0.8), the
//! store's share of the batch's time (1 - no-store time / batch time; target ≤ 15%), the
//! time the batch took to write its rows into the store (counted in its time), the process's
//! CPU time per job of each (client and server: they share the machine's cores) and the
//! store thread's part of the batch's, what an 8 KiB write and `fsync` cost on the store's
//! disk right after the batch, and the peak heap of the client side (client runtime
//! and store threads) per job in flight, counted by a global allocator that tags each
//! allocation with the runtime that made it.
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

/// What a batch run measured.
struct BatchRun {
    /// From the call to its end, opening (writing the rows into the store) included.
    took: Duration,
    /// Opening: from the call to the `Opened` event.
    opening: Duration,
    /// The most rows submitted and not yet reported ended at once.
    most: usize,
    /// Client-side heap peak over the opened batch.
    heap: isize,
    /// CPU time of the store's thread (SQLite), read before the store closes.
    store_cpu: Option<Duration>,
}

/// CPU time of the process so far (every thread, ended ones included), from `/proc`.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the name and state.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

/// CPU time of the live threads whose name starts with `prefix` (`/proc/self/task/*/schedstat`).
fn threads_cpu(prefix: &str) -> Option<Duration> {
    let mut total = None;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let sched = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        if let Some(ns) = sched
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
        {
            *total.get_or_insert(Duration::ZERO) += Duration::from_nanos(ns);
        }
    }
    total
}

/// What one durable commit costs on the store's disk now: `n` times, 8 KiB written over the
/// start of a file in `dir` and `fsync`ed (what SQLite does with its WAL at a commit with
/// `synchronous = FULL`); the median and the 90th percentile.
fn fsync_latency(dir: &std::path::Path, n: usize) -> Option<(Duration, Duration)> {
    use std::io::{Seek, Write};
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).ok()?;
    let block = [0x5au8; 8192];
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        file.rewind().ok()?;
        file.write_all(&block).ok()?;
        file.sync_all().ok()?;
        times.push(t.elapsed());
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    times.sort();
    Some((times[n / 2], times[n * 9 / 10]))
}

/// The same rows as a batch on the store at `location`.
async fn batch(server: &FakeServer, location: &str, name: &str, jobs: usize) -> BatchRun {
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
    let mut opening = Duration::ZERO;
    let summary = client
        .batch(MODEL, name)
        .rows(rows)
        .concurrency(CONCURRENCY)
        .run_with(|e| match e {
            // The heap is measured from here: the rows are in the store, none is in flight.
            runcomfy::batch::BatchEvent::Opened { .. } => {
                opening = started.elapsed();
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
    let store_cpu = threads_cpu("runcomfy-store");
    assert_eq!(summary.status.succeeded, jobs as u64, "{summary:?}");
    let heap = (peak(CLIENT) + peak(0) - opened).max(0);
    BatchRun {
        took,
        opening,
        most,
        heap,
        store_cpu,
    }
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
    // The baselines are measured before and after the batch (capacity, no store, batch, no
    // store, capacity) and each is the total of its two runs: a load that drifts during the
    // run weighs on the baselines and the batch alike.
    let timed = |f: &dyn Fn() -> Duration| {
        let cpu = process_cpu();
        let took = f();
        (took, process_cpu().saturating_sub(cpu))
    };
    let run_bare = || {
        let s = server.clone();
        on_client(Box::pin(async move { bare(&s, jobs).await }))
    };
    let run_plain = || {
        let s = server.clone();
        on_client(Box::pin(async move { no_store(&s, jobs).await }))
    };
    let capacity_1 = timed(&run_bare);
    let plain_1 = timed(&run_plain);

    let sqlite = dir.path().join("jobs.db").display().to_string();
    let cpu_before = process_cpu();
    let s = server.clone();
    let location = sqlite.clone();
    let run = client_rt
        .block_on(client_rt.spawn(async move { batch(&s, &location, "bench", jobs).await }))
        .expect("batch task");
    let batch_cpu = process_cpu().saturating_sub(cpu_before);
    let stored = run.took;
    let heap = run.heap as f64;

    let fsync = fsync_latency(dir.path(), 200);
    let plain_2 = timed(&run_plain);
    let capacity_2 = timed(&run_bare);
    let capacity = capacity_1.0 + capacity_2.0;
    let plain = plain_1.0 + plain_2.0;

    let rate = |d: Duration, n: usize| n as f64 / d.as_secs_f64();
    let per_job = |cpu: Duration, n: usize| 1e6 * cpu.as_secs_f64() / n as f64;
    println!("{jobs} jobs, {CONCURRENCY} at a time, each a submit and /result polls every 2 ms until its end (3 polls):");
    println!(
        "  fake's capacity (bare reqwest): {:>7.0} jobs/s  (before {:.0}, after {:.0}); process CPU {:.0} us per job",
        rate(capacity, 2 * jobs),
        rate(capacity_1.0, jobs),
        rate(capacity_2.0, jobs),
        per_job(capacity_1.1 + capacity_2.1, 2 * jobs)
    );
    println!(
        "  client, no store:              {:>7.0} jobs/s  (before {:.0}, after {:.0}); process CPU {:.0} us per job",
        rate(plain, 2 * jobs),
        rate(plain_1.0, jobs),
        rate(plain_2.0, jobs),
        per_job(plain_1.1 + plain_2.1, 2 * jobs)
    );
    println!(
        "  batch on SQLite:               {:>7.0} jobs/s  ({:.3} s, of which {:.3} s writing the rows into the store; at most {} reported in flight); process CPU {:.0} us per job, of which the store's thread {}",
        rate(stored, jobs),
        stored.as_secs_f64(),
        run.opening.as_secs_f64(),
        run.most,
        per_job(batch_cpu, jobs),
        run.store_cpu
            .map_or("unknown".to_owned(), |c| format!("{:.0} us", per_job(c, jobs)))
    );
    println!(
        "  batch memory: client-side heap peak +{:.0} bytes over the opened batch = {:.1} KiB per job in flight ({CONCURRENCY})",
        heap,
        heap / CONCURRENCY as f64 / 1024.0
    );
    if let Some((median, p90)) = fsync {
        println!(
            "  the store's disk right after the batch: 8 KiB written and fsynced in {:.2} ms (median of 200), {:.2} ms (90th percentile)",
            1e3 * median.as_secs_f64(),
            1e3 * p90.as_secs_f64()
        );
    }
    println!(
        "ratio batch/capacity (SQLite): {:.2} (target >= 0.8)",
        rate(stored, jobs) / rate(capacity, 2 * jobs)
    );
    println!(
        "store share of the batch's time (SQLite): {:.1}% (target <= 15%)",
        100.0 * (1.0 - (plain.as_secs_f64() / 2.0) / stored.as_secs_f64())
    );
    if let Ok(url) = std::env::var("RUNCOMFY_TEST_PG_URL") {
        let s = server.clone();
        let pg = client_rt
            .block_on(client_rt.spawn(async move {
                let name = format!("bench-{}", std::process::id());
                batch(&s, &url, &name, jobs).await
            }))
            .expect("batch task")
            .took;
        println!(
            "  batch on PostgreSQL:           {:>7.0} jobs/s  ({:.3} s)",
            rate(pg, jobs),
            pg.as_secs_f64()
        );
        println!(
            "ratio batch/capacity (PostgreSQL): {:.2}; store share {:.1}%",
            rate(pg, jobs) / rate(capacity, 2 * jobs),
            100.0 * (1.0 - (plain.as_secs_f64() / 2.0) / pg.as_secs_f64())
        );
    }
}
