//! How long opening a SQLite store of 10,000 jobs takes, against a bare SQLite open of the
//! same file (`Connection::open` and one query) and against that open followed by
//! `PRAGMA quick_check` (the check a store's open runs), in one run.
//!
//! ```sh
//! cargo run --release -p runcomfy-store --example open_time
//! ```
//!
//! The store is filled once (10,000 single jobs, each with a request id and an output),
//! closed, then opened `ROUNDS` times each way (a pause after each store, so its threads
//! have closed their connections before the next open); the medians and their ratios to the
//! bare open are printed.

use std::time::{Duration, Instant};

use runcomfy_store::Finish;
use serde_json::json;

const JOBS: u64 = 10_000;
const ROUNDS: usize = 15;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("jobs.db");
    let location = path.display().to_string();
    {
        let store = runcomfy_store::open(&location).await?;
        let mut tasks = Vec::new();
        for i in 0..JOBS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let input = json!({"prompt": format!("job {i} of the store")});
                let key = store.record_intent("acme/echo/x", &input).await?;
                store.record_submitted(key, &format!("req-{i}")).await?;
                let output = json!({"image": format!("https://cdn.example/{i}.png")});
                store.record_finished(key, &Finish::succeeded(output)).await
            }));
        }
        for task in tasks {
            task.await??;
        }
    }
    let size = std::fs::metadata(&path)?.len();
    let bare = median(ROUNDS, || {
        let conn = rusqlite::Connection::open(&path)?;
        let _: i64 = conn.query_row("SELECT COUNT(*) FROM runcomfy_schema", [], |r| r.get(0))?;
        Ok(())
    })?;
    let checked = median(ROUNDS, || {
        let conn = rusqlite::Connection::open(&path)?;
        let _: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        Ok(())
    })?;
    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let store = runcomfy_store::open(&location).await?;
        times.push(started.elapsed());
        drop(store);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    times.sort();
    let store_open = times[ROUNDS / 2];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let ratio = |d: Duration| d.as_secs_f64() / bare.as_secs_f64();
    println!(
        "store of {JOBS} jobs ({} KiB): bare open {:.2} ms; bare open + quick_check {:.2} ms ({:.1}x); store open {:.2} ms ({:.1}x)",
        size / 1024,
        ms(bare),
        ms(checked),
        ratio(checked),
        ms(store_open),
        ratio(store_open)
    );
    Ok(())
}

fn median(
    rounds: usize,
    mut f: impl FnMut() -> Result<(), Box<dyn std::error::Error>>,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let mut times = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        f()?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok(times[rounds / 2])
}
