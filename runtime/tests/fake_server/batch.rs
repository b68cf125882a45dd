//! The batch engine against the fake server, on both store backends: a real SQLite file and
//! a real PostgreSQL server (`RUNCOMFY_TEST_PG_URL`, from `scripts/pg-test-server start`).
//!
//! Without `RUNCOMFY_TEST_PG_URL` the PostgreSQL cases are reported ignored, with the reason
//! (`runcomfy_testenv`); when the run requires PostgreSQL they fail instead.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use runcomfy::batch::{BatchEvent, BatchSummary, StopReason};
use runcomfy::store::{
    self, ClaimRequest, Clock, ManualClock, NewRow, OpenOptions, RowFilter, SharedStore, State,
};
use runcomfy::Client;
use runcomfy_fake::{FakeServer, Fault, Lifecycle, Route, Span};
use serde_json::{json, Value};

use crate::common::{self, Echo, EchoInput, ECHO_ID};

/// One backend under test: a fresh database and the clock its store runs on.
pub struct Env {
    location: String,
    clock: Arc<ManualClock>,
    /// The server's URL and the test's schema, on PostgreSQL.
    pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Env {
    /// Opens the store (again: each call is a new connection, as another process has).
    pub(crate) async fn open(&self) -> SharedStore {
        let clock: Arc<dyn Clock> = self.clock.clone();
        store::open_with(&self.location, OpenOptions::default().clock(clock))
            .await
            .unwrap_or_else(|e| panic!("opening {}: {e}", store::redact(&self.location)))
    }
}

/// A hand-moved clock that starts now (the engine's throttle compares with the wall clock).
fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(SystemTime::now()))
}

pub async fn sqlite_env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    Env {
        location: dir.path().join("jobs.db").display().to_string(),
        clock: clock(),
        pg: None,
        _dir: Some(dir),
    }
}

/// A fresh PostgreSQL schema per test.
pub async fn pg_env(test: &str) -> Env {
    let pg = runcomfy_testenv::pg_schema(test).await;
    Env {
        location: pg.location,
        clock: clock(),
        pg: Some((pg.server, pg.schema)),
        _dir: None,
    }
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::sqlite_env().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[runcomfy_testenv::needs(postgres)]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::pg_env(stringify!($name)).await).await;
                }
            )*
        }
    };
}

suite!(
    every_row_once_and_again_nothing,
    dead_workers_rows_are_reattached_requeued_or_uncertain,
    a_429_pauses_every_worker,
    the_cap_holds_across_workers,
    the_budget_and_the_job_cap_stop_submits,
    uncertain_rows_are_listed_and_resent_only_on_request,
    refused_rows_and_mismatched_batches,
);

pub(crate) fn client(server: &FakeServer, store: &SharedStore) -> Client {
    server
        .client_builder()
        .poll_policy(runcomfy_fake::fast_poll_policy())
        .retry_policy(runcomfy_fake::fast_retry_policy())
        .store(store.clone())
        .build()
        .unwrap()
}

pub(crate) fn input(line: u64) -> Value {
    json!({"prompt": format!("row {line}")})
}

pub(crate) fn rows(n: u64) -> Vec<NewRow> {
    (1..=n).map(|line| NewRow::new(line, input(line))).collect()
}

/// Runs `batch` to its end, keeping its events.
async fn run(batch: runcomfy::batch::Batch) -> (BatchSummary, Vec<BatchEvent>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let summary = batch
        .run_with(move |e| seen.lock().unwrap().push(e))
        .await
        .unwrap();
    let events = events.lock().unwrap().clone();
    (summary, events)
}

fn submitted_lines(events: &[BatchEvent]) -> Vec<u64> {
    let mut lines: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            BatchEvent::Submitted { line, .. } => Some(*line),
            _ => None,
        })
        .collect();
    lines.sort_unstable();
    lines
}

async fn every_row_once_and_again_nothing(env: Env) {
    let server = common::builder().serve_outputs(100).start().await.unwrap();
    let store = env.open().await;
    let out = tempfile::tempdir().unwrap();
    let c = client(&server, &store);
    let (summary, events) = run(c
        .batch(ECHO_ID, "once")
        .rows(rows(12))
        .concurrency(4)
        .outputs_dir(out.path()))
    .await;
    assert_eq!(summary.submitted, 12);
    assert_eq!(summary.status.succeeded, 12);
    assert!(summary.status.is_done());
    assert_eq!(submitted_lines(&events), (1..=12).collect::<Vec<_>>());
    for line in 1..=12 {
        assert_eq!(
            server.jobs_for_input(ECHO_ID, &input(line)),
            1,
            "line {line}"
        );
    }
    // Every output saved under its line, identical to the server's, recorded in the store.
    let mut files = 0;
    for event in &events {
        if let BatchEvent::Finished {
            line,
            state,
            files: saved,
            cost_usd,
            ..
        } = event
        {
            assert_eq!(*state, State::Succeeded);
            assert!(cost_usd.is_some());
            assert!(!saved.is_empty());
            for path in saved {
                assert!(
                    path.starts_with(out.path().join(line.to_string())),
                    "{path:?}"
                );
                let name = path.file_name().unwrap().to_str().unwrap();
                let rows = store
                    .batch_rows(summary.batch, &RowFilter::all())
                    .await
                    .unwrap();
                let row = rows.iter().find(|r| r.batch.unwrap().1 == *line).unwrap();
                let id = row.request_id.as_deref().unwrap();
                assert_eq!(
                    std::fs::read(path).unwrap(),
                    server.output_bytes(id, name).unwrap()
                );
                files += 1;
            }
        }
    }
    assert!(files >= 12);

    // The same batch again, by another worker (another process): nothing is sent.
    let again = env.open().await;
    let c = client(&server, &again);
    let (summary, events) = run(c
        .batch(ECHO_ID, "once")
        .rows(rows(12))
        .outputs_dir(out.path()))
    .await;
    assert_eq!(summary.submitted, 0);
    assert_eq!(summary.reattached, 0);
    assert!(submitted_lines(&events).is_empty());
    assert_eq!(summary.status.succeeded, 12);
    assert_eq!(server.submits(), 12);
}

async fn dead_workers_rows_are_reattached_requeued_or_uncertain(env: Env) {
    let server = common::builder().serve_outputs(10).start().await.unwrap();
    let store = env.open().await;
    let info = store
        .create_or_open_batch("dead", ECHO_ID, rows(5))
        .await
        .unwrap();
    // A worker claims 3 rows and dies: row 1 submitted (its request id recorded), row 2 in
    // the middle of its POST, row 3 only claimed.
    let claim = store
        .claim(&ClaimRequest::new(
            info.id,
            "dead-worker",
            Duration::from_secs(30),
            3,
        ))
        .await
        .unwrap();
    assert_eq!(claim.submit.len(), 3);
    let (r1, r2) = (&claim.submit[0], &claim.submit[1]);
    store.mark_submitting(r1.key, "dead-worker").await.unwrap();
    let paid = server.create_job(ECHO_ID, input(1), Lifecycle::default());
    store.record_submitted(r1.key, &paid).await.unwrap();
    store.mark_submitting(r2.key, "dead-worker").await.unwrap();
    // Its lease runs out.
    env.clock.advance(Duration::from_secs(60));

    let c = client(&server, &store);
    let (summary, events) = run(c.batch(ECHO_ID, "dead").rows(rows(5))).await;
    assert_eq!(summary.reattached, 1);
    assert!(events.contains(&BatchEvent::Reattached {
        line: 1,
        request_id: paid.clone()
    }));
    assert_eq!(submitted_lines(&events), vec![3, 4, 5]);
    assert_eq!(summary.uncertain_lines, vec![2]);
    assert_eq!(summary.status.succeeded, 4);
    assert_eq!(summary.status.uncertain, 1);
    // Row 1 was paid once (by the dead worker), row 2 never reached this fake at all and was
    // not sent again.
    assert_eq!(server.jobs_for_input(ECHO_ID, &input(1)), 1);
    assert_eq!(server.jobs_for_input(ECHO_ID, &input(2)), 0);
    assert_eq!(server.submits(), 3);
}

async fn a_429_pauses_every_worker(env: Env) {
    let server = common::server().await;
    let store = env.open().await;
    let c = client(&server, &store);
    // Another worker saw a 429: this one waits too.
    let until = SystemTime::now() + Duration::from_millis(300);
    store.set_throttle_until(until).await.unwrap();
    // And this one meets a 429 of its own on its first submit.
    server.inject_times(Route::Submit, Fault::rate_limited(Some("1")), 1);
    let (summary, events) = run(c.batch(ECHO_ID, "throttled").rows(rows(3)).concurrency(1)).await;
    let throttled: Vec<SystemTime> = events
        .iter()
        .filter_map(|e| match e {
            BatchEvent::Throttled { until } => Some(*until),
            _ => None,
        })
        .collect();
    assert_eq!(throttled.len(), 1, "{events:?}");
    assert!(throttled[0] >= until);
    // The refused row went back to the queue and was sent again: 4 POSTs, 3 jobs, no doubt.
    assert_eq!(server.submits(), 4);
    assert_eq!(server.stats().jobs, 3);
    assert_eq!(summary.status.succeeded, 3);
    assert!(summary.uncertain_lines.is_empty());
    // Nothing was sent before the shared pause ended, nor before this worker's own.
    assert!(SystemTime::now() >= throttled[0]);
}

async fn the_cap_holds_across_workers(env: Env) {
    let server = common::builder()
        .lifecycle(Lifecycle::new().running(Span::Polls(3)).then_succeed())
        .start()
        .await
        .unwrap();
    let a = env.open().await;
    let b = env.open().await;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let batch = |store: &SharedStore, name: &str| {
        let (in_flight, peak) = (in_flight.clone(), peak.clone());
        let batch = client(&server, store)
            .batch(ECHO_ID, name)
            .rows(rows(6))
            .concurrency(8)
            .max_in_flight(3);
        async move {
            batch
                .run_with(move |e| match e {
                    BatchEvent::Submitted { .. } => {
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                    }
                    BatchEvent::Finished { .. } => {
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                    }
                    _ => {}
                })
                .await
                .unwrap()
        }
    };
    let (x, y) = tokio::join!(batch(&a, "cap-a"), batch(&b, "cap-b"));
    assert_eq!(x.status.succeeded + y.status.succeeded, 12);
    let peak = peak.load(Ordering::SeqCst);
    assert!((1..=3).contains(&peak), "peak {peak}");
    assert_eq!(server.stats().jobs, 12);
}

async fn the_budget_and_the_job_cap_stop_submits(env: Env) {
    let server = common::server().await;
    let store = env.open().await;
    let c = client(&server, &store);
    let priced: Vec<NewRow> = rows(10)
        .into_iter()
        .map(|r| r.estimated_cost_usd(1.0))
        .collect();
    let (summary, events) = run(c.batch(ECHO_ID, "budget").rows(priced).budget_usd(3.5)).await;
    assert_eq!(summary.stopped, Some(StopReason::Budget));
    assert!(events.contains(&BatchEvent::StoppedSubmitting {
        reason: StopReason::Budget
    }));
    assert_eq!(submitted_lines(&events), vec![1, 2, 3]);
    assert_eq!(summary.status.queued, 7);
    assert_eq!(server.stats().jobs, 3);

    let (summary, events) = run(c.batch(ECHO_ID, "capped").rows(rows(10)).max_jobs(4)).await;
    assert_eq!(summary.stopped, Some(StopReason::MaxJobs));
    assert_eq!(submitted_lines(&events), vec![1, 2, 3, 4]);
    assert_eq!(summary.status.succeeded, 4);
    assert_eq!(summary.status.queued, 6);
    assert_eq!(server.stats().jobs, 7);
}

async fn uncertain_rows_are_listed_and_resent_only_on_request(env: Env) {
    let server = common::server().await;
    let store = env.open().await;
    let c = client(&server, &store);
    // The first POST reaches the server, which creates the job and drops the connection.
    server.inject_times(Route::Submit, Fault::CloseAfterRead, 1);
    let (summary, events) = run(c.batch(ECHO_ID, "doubt").rows(rows(3)).concurrency(1)).await;
    assert_eq!(summary.uncertain_lines, vec![1]);
    assert!(events
        .iter()
        .any(|e| matches!(e, BatchEvent::Uncertain { line: 1, .. })));
    assert_eq!(server.jobs_for_input(ECHO_ID, &input(1)), 1);
    assert_eq!(summary.status.succeeded, 2);
    assert!(summary.status.is_done());

    // Run again: still listed, not sent.
    let (summary, _) = run(c.batch(ECHO_ID, "doubt").rows(rows(3))).await;
    assert_eq!(summary.uncertain_lines, vec![1]);
    assert_eq!(server.submits(), 3);

    // A person decides to pay again for it.
    let (summary, events) = run(c
        .batch(ECHO_ID, "doubt")
        .rows(rows(3))
        .resubmit_uncertain([1]))
    .await;
    assert_eq!(submitted_lines(&events), vec![1]);
    assert!(summary.uncertain_lines.is_empty());
    assert_eq!(summary.status.succeeded, 3);
    assert_eq!(server.jobs_for_input(ECHO_ID, &input(1)), 2);
}

async fn refused_rows_and_mismatched_batches(env: Env) {
    let server = common::server().await;
    let store = env.open().await;
    let c = client(&server, &store);
    let mut bad = rows(3);
    bad[1] = NewRow::new(2, json!({"prompt": "x", "steps": 99}));
    let (summary, events) = run(c.batch(ECHO_ID, "mixed").rows(bad.clone())).await;
    assert_eq!(summary.status.succeeded, 2);
    assert_eq!(summary.status.failed, 1);
    assert!(events.iter().any(|e| matches!(
        e,
        BatchEvent::Finished {
            line: 2,
            state: State::Refused,
            error: Some(_),
            ..
        }
    )));
    // A refused row is ended: not sent again.
    let (summary, _) = run(c.batch(ECHO_ID, "mixed").rows(bad)).await;
    assert_eq!(summary.submitted, 0);
    assert_eq!(server.submits(), 3);

    // The same name with other rows is refused before anything is sent.
    let err = c
        .batch(ECHO_ID, "mixed")
        .rows(rows(4))
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, runcomfy::Error::Store { .. }), "{err}");
    assert_eq!(server.submits(), 3);

    // Typed rows are checked before anything is recorded.
    let err = c
        .endpoint::<Echo>()
        .batch("typed", [EchoInput::new("ok"), EchoInput::new("")])
        .unwrap_err();
    assert!(
        matches!(err, runcomfy::Error::InvalidRow { line: 2, .. }),
        "{err}"
    );
    let batch = c
        .endpoint::<Echo>()
        .batch("typed", [EchoInput::new("ok"), EchoInput::new("fine")])
        .unwrap();
    let (summary, _) = run(batch).await;
    assert_eq!(summary.status.succeeded, 2);
    assert!(store.batch("typed").await.unwrap().is_some());
}

/// Drops the test's PostgreSQL schema behind the store's back: every later statement fails.
async fn drop_schema(env: &Env) {
    let (url, schema) = env.pg.clone().expect("a PostgreSQL env");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

/// A store that fails before a submit: nothing is sent.
#[runcomfy_testenv::needs(postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_store_error_before_the_submit_sends_nothing() {
    let env = pg_env("intent_fails").await;
    let server = common::server().await;
    let store = env.open().await;
    let c = client(&server, &store);
    drop_schema(&env).await;
    let err = c
        .submit_json(ECHO_ID, &json!({"prompt": "a cat"}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            runcomfy::Error::Store {
                step: "the intent",
                request_id: None,
                ..
            }
        ),
        "{err}"
    );
    let err = c
        .endpoint::<Echo>()
        .run(&EchoInput::new("a dog"))
        .await
        .unwrap_err();
    assert!(matches!(err, runcomfy::Error::Store { .. }), "{err}");
    assert_eq!(server.submits(), 0);
}

/// The store lost in the middle of a batch: the worker stops submitting, finishes what it
/// can and ends with the store's error; nothing is sent whose row was not marked first.
#[runcomfy_testenv::needs(postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_store_lost_mid_batch_stops_submits() {
    let env = pg_env("store_lost").await;
    let server = common::builder()
        .lifecycle(Lifecycle::new().running(Span::Polls(4)).then_succeed())
        .start()
        .await
        .unwrap();
    let store = env.open().await;
    let c = client(&server, &store);
    let (first, submitted) = tokio::sync::oneshot::channel();
    let mut first = Some(first);
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = seen.clone();
    let batch = c
        .batch(ECHO_ID, "lost")
        .rows(rows(40))
        .concurrency(2)
        .run_with(move |e| {
            if let BatchEvent::Submitted { .. } = e {
                counted.fetch_add(1, Ordering::SeqCst);
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
            }
        });
    let lose = async {
        submitted.await.unwrap();
        drop_schema(&env).await;
    };
    let (outcome, ()) = tokio::join!(batch, lose);
    let err = outcome.unwrap_err();
    assert!(matches!(err, runcomfy::Error::Store { .. }), "{err}");
    let seen = seen.load(Ordering::SeqCst);
    assert!(seen >= 1);
    // At most the rows in flight at the moment of the loss were sent unrecorded.
    assert!(
        server.submits() <= seen + 2,
        "{} > {seen} + 2",
        server.submits()
    );
    assert!(server.submits() < 40);
}
