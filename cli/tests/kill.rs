//! Kill tests of `runcomfy batch` against the `runcomfy-fake` binary (issues 11 and 12).
//!
//! - One worker, SIGKILLed at random moments and restarted each time, on a SQLite store.
//! - Four workers on one PostgreSQL database, a random one SIGKILLed every so often and
//!   replaced, until the batch is done.
//!
//! Afterwards: every row submitted at most once (the fake's count per input), every paid
//! request id in the store (or its row `uncertain`: the one window no client can close
//! without an idempotency key), every output file present once and identical to the
//! server's. The CI-sized tests run by default; the full sizes (200 rows and 20 kills; 1,000
//! rows and 4 workers) are `#[ignore]`d and run by `scripts/kill-test`. Sizes, kills and the
//! seed can be set with `RUNCOMFY_KILL_ROWS`, `RUNCOMFY_KILL_TIMES`, `RUNCOMFY_KILL_SEED`.

mod common;

use std::process::Child;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::fleet::{check, env_number, sigkill, Fake, Figures, Rng, Work};

/// One worker, killed `kills` times at random moments and restarted each time, then run to
/// the end.
fn one_worker(rows: u64, kills: u64) -> Figures {
    let fake = Fake::start(&[
        "--queue",
        "100ms",
        "--run",
        "300ms",
        "--serve-outputs",
        "4096",
    ]);
    let work = Work::new(rows);
    let store = work.path("jobs.db").display().to_string();
    let mut rng = Rng::new();
    let started = Instant::now();
    for _ in 0..kills {
        let mut child = work.worker(&fake, &store, "kill", 16).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(50 + rng.below(700)));
        sigkill(&mut child);
    }
    let status = work.worker(&fake, &store, "kill", 16).status().unwrap();
    // 0 when every row succeeded; 7 when some are uncertain (killed during their POST).
    assert!(
        matches!(status.code(), Some(0 | 7)),
        "last run: {status:?}\n{}",
        std::fs::read_to_string(work.path("workers.log")).unwrap_or_default()
    );
    eprintln!(
        "kill test: one worker, {rows} rows, {kills} kills in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    check(&fake, &work, &store, "kill", rows, kills)
}

#[test]
fn one_worker_killed_at_random_moments_ci_size() {
    one_worker(
        env_number("RUNCOMFY_KILL_ROWS", 40),
        env_number("RUNCOMFY_KILL_TIMES", 5),
    );
}

#[test]
#[ignore = "full size: scripts/kill-test"]
fn one_worker_killed_at_random_moments_full_size() {
    one_worker(200, 20);
}

/// `workers` workers on one PostgreSQL database; a random one killed every `every` (up to
/// `kills` times) and replaced, until every worker ended on its own.
fn many_workers(rows: u64, workers: usize, kills: u64, every: Duration) -> Figures {
    let url = runcomfy_testenv::pg_url();
    let fake = Fake::start(&[
        "--queue",
        "50ms",
        "--run",
        "200ms",
        "--serve-outputs",
        "2048",
        "--threads",
        "2",
    ]);
    let work = Work::new(rows);
    let name = format!(
        "kill-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut rng = Rng::new();
    let started = Instant::now();
    let mut live: Vec<Child> = (0..workers)
        .map(|_| work.worker(&fake, &url, &name, 16).spawn().unwrap())
        .collect();
    let mut killed = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        std::thread::sleep(every / 2 + Duration::from_millis(rng.below(every.as_millis() as u64)));
        let mut finished = Vec::new();
        for (i, child) in live.iter_mut().enumerate() {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    matches!(status.code(), Some(0 | 7)),
                    "a worker failed: {status:?}\n{}",
                    std::fs::read_to_string(work.path("workers.log")).unwrap_or_default()
                );
                finished.push(i);
            }
        }
        if finished.len() == live.len() {
            break;
        }
        if killed < kills {
            let alive: Vec<usize> = (0..live.len()).filter(|i| !finished.contains(i)).collect();
            let victim = alive[rng.below(alive.len() as u64) as usize];
            sigkill(&mut live[victim]);
            killed += 1;
            live[victim] = work.worker(&fake, &url, &name, 16).spawn().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the batch did not end within 10 minutes"
        );
    }
    eprintln!(
        "kill test: {workers} workers on PostgreSQL, {rows} rows, {killed} kills in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    check(&fake, &work, &url, &name, rows, killed)
}

#[runcomfy_testenv::needs(postgres)]
#[test]
fn four_workers_on_postgres_killed_and_replaced_ci_size() {
    many_workers(
        env_number("RUNCOMFY_KILL_PG_ROWS", 120),
        4,
        env_number("RUNCOMFY_KILL_PG_TIMES", 4),
        Duration::from_millis(800),
    );
}

#[test]
#[ignore = "full size: scripts/kill-test"]
fn four_workers_on_postgres_killed_and_replaced_full_size() {
    many_workers(1000, 4, 12, Duration::from_secs(2));
}
