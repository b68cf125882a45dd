//! How many jobs per second the store records, with no network in the way.
//!
//! ```sh
//! cargo run --release -p runcomfy-store --example throughput            # SQLite in a temp folder
//! eval "$(scripts/pg-test-server start)"
//! cargo run --release -p runcomfy-store --example throughput -- "$RUNCOMFY_TEST_PG_URL"
//! ```
//!
//! Two runs of `JOBS` jobs at concurrency `TASKS`: single jobs (intent, submitted, finished,
//! one output saved) and one batch shared by `TASKS` workers under a cap of `TASKS` (claim,
//! submitting, submitted, finished, one output saved).

use std::time::{Duration, Instant};

use runcomfy_store::{ClaimRequest, Finish, NewRow, SharedStore};
use serde_json::json;

const JOBS: u64 = 10_000;
const TASKS: u64 = 64;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let location = match std::env::args().nth(1) {
        Some(url) => url,
        None => dir.path().join("jobs.db").display().to_string(),
    };
    let store = runcomfy_store::open(&location).await?;
    println!("store: {}", store.location());
    // Request ids and the batch name are unique per run, so runs can share a database.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());

    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = t;
            while i < JOBS {
                single_job(&store, run, i).await?;
                i += TASKS;
            }
            Ok::<_, runcomfy_store::StoreError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    report("single jobs", started.elapsed(), 4);

    let rows = (1..=JOBS)
        .map(|line| NewRow::new(line, json!({"prompt": format!("row {line}")})))
        .collect();
    let created = Instant::now();
    let batch = store
        .create_or_open_batch(&format!("throughput-{run}"), "acme/echo/x", rows)
        .await?;
    println!(
        "batch of {JOBS} rows created in {:.2} s",
        created.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let worker = format!("worker-{t}");
            loop {
                let request =
                    ClaimRequest::new(batch.id, worker.clone(), Duration::from_secs(60), 1);
                let claim = store.claim(&request).await?;
                let Some(row) = claim.submit.first() else {
                    break;
                };
                store.mark_submitting(row.key, &worker).await?;
                let line = row.batch.map_or(0, |(_, line)| line);
                finish(&store, row.key, &format!("b-{run}-{line}")).await?;
            }
            Ok::<_, runcomfy_store::StoreError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    report("batch rows", started.elapsed(), 6);
    let status = store.batch_status(&format!("throughput-{run}")).await?;
    assert_eq!(status.succeeded, JOBS);
    Ok(())
}

async fn single_job(
    store: &SharedStore,
    run: u128,
    i: u64,
) -> Result<(), runcomfy_store::StoreError> {
    let key = store
        .record_intent("acme/echo/x", &json!({ "i": i }))
        .await?;
    finish(store, key, &format!("s-{run}-{i}")).await
}

async fn finish(
    store: &SharedStore,
    key: runcomfy_store::JobKey,
    request_id: &str,
) -> Result<(), runcomfy_store::StoreError> {
    store.record_submitted(key, request_id).await?;
    let url = format!("https://cdn/{request_id}.png");
    let done = Finish::succeeded(json!({ "image": url }))
        .wanting([url.clone()])
        .run_time(Duration::from_secs(3));
    store.record_finished(key, &done).await?;
    store
        .record_output_saved(key, &url, std::path::Path::new("out.png"))
        .await?;
    Ok(())
}

fn report(what: &str, took: Duration, calls: u64) {
    let secs = took.as_secs_f64();
    println!(
        "{what}: {JOBS} jobs in {secs:.2} s: {:.0} jobs/s, {:.0} store calls/s, {:.0} µs of store time per job at concurrency {TASKS}",
        JOBS as f64 / secs,
        (JOBS * calls) as f64 / secs,
        secs * 1e6 / JOBS as f64,
    );
}
