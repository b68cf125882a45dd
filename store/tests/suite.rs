//! The store's behaviour, written once and run against both backends: a real SQLite file and
//! a real PostgreSQL server (`RUNCOMFY_TEST_PG_URL`, from `scripts/pg-test-server start`).
//!
//! Without `RUNCOMFY_TEST_PG_URL` the PostgreSQL cases are reported ignored, with the reason
//! (`runcomfy_testenv`); when the run requires PostgreSQL they fail instead.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use runcomfy_store::{
    open_with, ClaimRequest, Clock, Finish, Lease, ManualClock, NewRow, OpenOptions, Outcome,
    RowFilter, SharedStore, State, StoreError,
};
use serde_json::json;

const MODEL: &str = "acme/echo/text-to-image";
const LEASE: Duration = Duration::from_secs(30);

/// One backend under test: a fresh, empty database and a hand-moved clock.
struct Env {
    location: String,
    clock: Arc<ManualClock>,
    raw: Raw,
    _dir: Option<tempfile::TempDir>,
}

enum Raw {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Env {
    /// Opens the store (again): each call is a new connection, as another process would have.
    async fn open(&self) -> SharedStore {
        match self.try_open().await {
            Ok(store) => store,
            Err(e) => panic!("opening {}: {e}", runcomfy_store::redact(&self.location)),
        }
    }

    async fn try_open(&self) -> Result<SharedStore, StoreError> {
        let clock: Arc<dyn Clock> = self.clock.clone();
        open_with(&self.location, OpenOptions::default().clock(clock)).await
    }

    /// Runs SQL statements behind the store's back.
    async fn exec(&self, sql: &str) {
        match &self.raw {
            Raw::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.execute_batch(sql).unwrap();
            }
            Raw::Postgres(url) => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                client.batch_execute(sql).await.unwrap();
            }
        }
    }

    /// Writes a schema version into the database behind the store's back.
    async fn set_schema_version(&self, version: i64) {
        match &self.raw {
            Raw::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.execute(
                    "INSERT INTO runcomfy_schema (version, applied_at) VALUES (?1, 0)",
                    [version],
                )
                .unwrap();
            }
            Raw::Postgres(url) => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                client
                    .execute(
                        "INSERT INTO runcomfy_schema (version, applied_at) VALUES ($1, 0)",
                        &[&version],
                    )
                    .await
                    .unwrap();
            }
        }
    }
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    ))
}

async fn sqlite_env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("jobs.db");
    Env {
        location: format!("sqlite://{}", path.display()),
        clock: clock(),
        raw: Raw::Sqlite(path),
        _dir: Some(dir),
    }
}

/// A fresh PostgreSQL schema per test, selected through the URL's `options`.
async fn pg_env(test: &str) -> Env {
    let pg = runcomfy_testenv::pg_schema(test).await;
    Env {
        raw: Raw::Postgres(pg.location.clone()),
        location: pg.location,
        clock: clock(),
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
    single_job_lifecycle,
    submit_outcomes,
    end_states,
    records_survive_reopening,
    duration_history,
    same_name_different_inputs_refused,
    claim_lifecycle,
    lease_expiry_recovers_rows,
    an_ended_lease_frees_rows_at_once,
    heartbeat_keeps_rows,
    uncertain_rows_resubmitted_only_on_request,
    concurrent_claimers_share_the_cap,
    budget_stops_claims,
    shared_throttle,
    schema_newer_than_known_refused,
    batch_rows_and_status,
    unfinished_lists_single_jobs_only,
    outputs_folder_and_its_migration,
    outputs_of_several_jobs,
);

async fn single_job_lifecycle(env: Env) {
    let store = env.open().await;
    let input = json!({"prompt": "a cat", "seed": 7});
    let key = store.record_intent(MODEL, &input).await.unwrap();
    let job = store.job(key).await.unwrap().unwrap();
    assert_eq!(job.state, State::Submitting);
    assert_eq!(job.input, input);
    assert_eq!(job.model_id, MODEL);
    assert_eq!(job.input_sha256, runcomfy_store::input_sha256(&input));
    assert_eq!(keys(&store.uncertain().await.unwrap()), vec![key]);
    assert!(store.unfinished().await.unwrap().is_empty());

    store.record_submitted(key, "req-1").await.unwrap();
    store.record_submitted(key, "req-1").await.unwrap(); // the same answer twice: no-op
    let err = store.record_submitted(key, "req-2").await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidState {
                state: State::Submitted,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        store.job_by_request_id("req-1").await.unwrap().unwrap().key,
        key
    );
    assert!(store.job_by_request_id("req-404").await.unwrap().is_none());
    assert_eq!(keys(&store.unfinished().await.unwrap()), vec![key]);
    assert!(store.uncertain().await.unwrap().is_empty());

    let output = json!({"images": ["https://cdn/a.png", "https://cdn/b.png"]});
    let finish = Finish::succeeded(output.clone())
        .cost_usd(0.25)
        .wanting([
            "https://cdn/b.png",
            "https://cdn/a.png",
            "https://cdn/a.png",
        ])
        .run_time(Duration::from_secs(42));
    assert_eq!(
        store.record_finished(key, &finish).await.unwrap(),
        State::Saving
    );
    // Wanted outputs not saved: still unfinished, so a resume downloads them.
    assert_eq!(keys(&store.unfinished().await.unwrap()), vec![key]);
    let outputs = store.outputs(key).await.unwrap();
    assert_eq!(outputs.len(), 2);
    assert!(outputs.iter().all(|o| o.path.is_none()));

    let saved = store
        .record_output_saved(key, "https://cdn/a.png", Path::new("out/a.png"))
        .await
        .unwrap();
    assert_eq!(saved, State::Saving);
    let saved = store
        .record_output_saved(key, "https://cdn/b.png", Path::new("out/b.png"))
        .await
        .unwrap();
    assert_eq!(saved, State::Succeeded);
    // Saving again, or recording the end again, changes nothing.
    let again = store
        .record_output_saved(key, "https://cdn/b.png", Path::new("out/b.png"))
        .await
        .unwrap();
    assert_eq!(again, State::Succeeded);
    let refinish = store
        .record_finished(key, &Finish::failed(json!("late")))
        .await
        .unwrap();
    assert_eq!(refinish, State::Succeeded);
    assert!(store.unfinished().await.unwrap().is_empty());

    let job = store.job(key).await.unwrap().unwrap();
    assert_eq!(job.state, State::Succeeded);
    assert_eq!(job.output, Some(output));
    assert_eq!(job.cost_usd, Some(0.25));
    assert_eq!(job.run_time, Some(Duration::from_secs(42)));
    assert_eq!(job.request_id.as_deref(), Some("req-1"));
    assert!(job.submitted_at.is_some() && job.finished_at.is_some());
    let paths: Vec<_> = store
        .outputs(key)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.path)
        .collect();
    assert_eq!(
        paths,
        vec![
            Some(PathBuf::from("out/a.png")),
            Some(PathBuf::from("out/b.png"))
        ]
    );
    assert_eq!(keys(&store.recent_jobs(10).await.unwrap()), vec![key]);
}

async fn submit_outcomes(env: Env) {
    let store = env.open().await;
    // Outcome unknown: never resent, listed; a late answer still records the request id.
    let unsure = store.record_intent(MODEL, &json!({"n": 1})).await.unwrap();
    store
        .record_uncertain(unsure, "timed out after sending")
        .await
        .unwrap();
    store.record_uncertain(unsure, "again").await.unwrap();
    let job = store.job(unsure).await.unwrap().unwrap();
    assert_eq!(job.state, State::Uncertain);
    assert_eq!(job.error, Some(json!("timed out after sending")));
    assert_eq!(keys(&store.uncertain().await.unwrap()), vec![unsure]);
    assert!(store.unfinished().await.unwrap().is_empty());
    store.record_submitted(unsure, "req-late").await.unwrap();
    assert_eq!(
        store.job(unsure).await.unwrap().unwrap().state,
        State::Submitted
    );

    // Refused: no job exists; nothing else may follow.
    let refused = store.record_intent(MODEL, &json!({"n": 2})).await.unwrap();
    store
        .record_refused(refused, "400: prompt is required")
        .await
        .unwrap();
    assert_eq!(
        store.job(refused).await.unwrap().unwrap().state,
        State::Refused
    );
    for err in [
        store.record_submitted(refused, "req-x").await.unwrap_err(),
        store.record_uncertain(refused, "x").await.unwrap_err(),
        store
            .record_finished(refused, &Finish::succeeded(json!({})))
            .await
            .map(|_| ())
            .unwrap_err(),
    ] {
        assert!(
            matches!(
                err,
                StoreError::InvalidState {
                    state: State::Refused,
                    ..
                }
            ),
            "{err}"
        );
    }

    // The end of a job never submitted cannot be recorded.
    let pending = store.record_intent(MODEL, &json!({"n": 3})).await.unwrap();
    let err = store
        .record_finished(pending, &Finish::succeeded(json!({})))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidState {
                state: State::Submitting,
                ..
            }
        ),
        "{err}"
    );
    let err = store
        .record_output_saved(pending, "https://cdn/x", Path::new("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidState { .. }), "{err}");

    // A request id belongs to one job.
    store
        .record_submitted(pending, "req-late")
        .await
        .unwrap_err();

    let missing = runcomfy_store::JobKey(999_999);
    let err = store.record_submitted(missing, "req-9").await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownJob(_)), "{err}");
    assert!(store.job(missing).await.unwrap().is_none());

    let err = store
        .record_finished(unsure, &Finish::succeeded(json!({})).cost_usd(f64::NAN))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(_)), "{err}");
}

async fn end_states(env: Env) {
    let store = env.open().await;
    let cases = [
        (
            Finish::failed(json!({"code": 500, "message": "oom"})),
            State::Failed,
        ),
        (Finish::new(Outcome::Cancelled), State::Cancelled),
        (
            Finish::new(Outcome::Expired(json!({"code": 404001}))),
            State::Expired,
        ),
        // Outputs are wanted only from a success.
        (
            Finish::failed(json!("x")).wanting(["https://cdn/x"]),
            State::Failed,
        ),
        (Finish::succeeded(json!({})), State::Succeeded),
    ];
    for (i, (finish, expected)) in cases.into_iter().enumerate() {
        let key = store
            .record_intent(MODEL, &json!({ "i": i }))
            .await
            .unwrap();
        store
            .record_submitted(key, &format!("req-{i}"))
            .await
            .unwrap();
        assert_eq!(store.record_finished(key, &finish).await.unwrap(), expected);
        let job = store.job(key).await.unwrap().unwrap();
        assert_eq!(job.state, expected);
        match &finish.outcome {
            Outcome::Failed(e) | Outcome::Expired(e) => assert_eq!(job.error.as_ref(), Some(e)),
            _ => assert_eq!(job.error, None),
        }
        assert!(store.outputs(key).await.unwrap().is_empty());
    }
    assert!(store.unfinished().await.unwrap().is_empty());
}

async fn records_survive_reopening(env: Env) {
    let key = {
        let store = env.open().await;
        let key = store.record_intent(MODEL, &json!({"p": 1})).await.unwrap();
        store.record_submitted(key, "req-kept").await.unwrap();
        key
    };
    let store = env.open().await;
    let unfinished = store.unfinished().await.unwrap();
    assert_eq!(keys(&unfinished), vec![key]);
    assert_eq!(unfinished[0].request_id.as_deref(), Some("req-kept"));
}

async fn duration_history(env: Env) {
    let store = env.open().await;
    assert_eq!(store.duration_stats(MODEL).await.unwrap(), None);
    let mut n = 0;
    let mut finish = |store: SharedStore, model: &'static str, finish: Finish| {
        n += 1;
        let request_id = format!("req-{n}");
        async move {
            let key = store
                .record_intent(model, &json!({ "r": request_id }))
                .await
                .unwrap();
            store.record_submitted(key, &request_id).await.unwrap();
            store.record_finished(key, &finish).await.unwrap();
        }
    };
    for s in [7, 3, 10, 1, 5, 9, 2, 8, 4, 6] {
        let done = Finish::succeeded(json!({})).run_time(Duration::from_secs(s));
        finish(store.clone(), MODEL, done).await;
    }
    // Failures, unmeasured jobs and other models do not count.
    finish(
        store.clone(),
        MODEL,
        Finish::failed(json!("x")).run_time(Duration::from_secs(500)),
    )
    .await;
    finish(store.clone(), MODEL, Finish::succeeded(json!({}))).await;
    finish(
        store.clone(),
        "other/model/x",
        Finish::succeeded(json!({})).run_time(Duration::from_secs(900)),
    )
    .await;
    let stats = store.duration_stats(MODEL).await.unwrap().unwrap();
    assert_eq!(stats.samples, 10);
    assert_eq!(stats.p50, Duration::from_secs(5));
    assert_eq!(stats.p90, Duration::from_secs(9));
    let other = store
        .duration_stats("other/model/x")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((other.samples, other.p50), (1, Duration::from_secs(900)));
}

fn rows(n: u64) -> Vec<NewRow> {
    (1..=n)
        .map(|line| NewRow::new(line, json!({"prompt": format!("row {line}"), "seed": line})))
        .collect()
}

async fn same_name_different_inputs_refused(env: Env) {
    let store = env.open().await;
    let created = store
        .create_or_open_batch("nightly", MODEL, rows(3))
        .await
        .unwrap();
    assert!(created.created);
    assert_eq!(created.rows, 3);

    // The same rows, in another order and with keys reordered: the same batch.
    let mut same: Vec<NewRow> = (1..=3u64)
        .rev()
        .map(|line| NewRow::new(line, json!({"seed": line, "prompt": format!("row {line}")})))
        .collect();
    same[0] = same[0].clone().estimated_cost_usd(9.0);
    let opened = store
        .create_or_open_batch("nightly", MODEL, same)
        .await
        .unwrap();
    assert!(!opened.created);
    assert_eq!(opened.id, created.id);

    let mut changed = rows(3);
    changed[1] = NewRow::new(2, json!({"prompt": "something else", "seed": 2}));
    let err = store
        .create_or_open_batch("nightly", MODEL, changed)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::BatchMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("line 2 has a different input"),
        "{err}"
    );

    let err = store
        .create_or_open_batch("nightly", MODEL, rows(4))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("3 rows, these are 4"), "{err}");

    let mut shifted = rows(3);
    shifted[2].line = 5;
    let err = store
        .create_or_open_batch("nightly", MODEL, shifted)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("line 3 is in only one of them"),
        "{err}"
    );

    let err = store
        .create_or_open_batch("nightly", "other/model", rows(3))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("its model is acme/echo/text-to-image"),
        "{err}"
    );

    let mut twice = rows(3);
    twice[2].line = 2;
    let err = store
        .create_or_open_batch("other", MODEL, twice)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(_)), "{err}");
    assert!(store.batch("other").await.unwrap().is_none());

    // Nothing of the refused calls was stored.
    assert_eq!(store.batch_status("nightly").await.unwrap().total, 3);
}

async fn claim_lifecycle(env: Env) {
    let store = env.open().await;
    let batch = store
        .create_or_open_batch("b", MODEL, rows(5))
        .await
        .unwrap();
    let claim = store
        .claim(&ClaimRequest::new(batch.id, "w1", LEASE, 2))
        .await
        .unwrap();
    assert_eq!(lines(&claim.submit), vec![1, 2]);
    assert!(claim.reattach.is_empty());
    assert!(claim.more_queued);
    assert!(claim
        .submit
        .iter()
        .all(|r| r.state == State::Claimed && r.worker.as_deref() == Some("w1")));
    let (first, second) = (claim.submit[0].key, claim.submit[1].key);

    // Only the holder may send a row, and only after marking it.
    let err = store.mark_submitting(first, "w2").await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost { .. }), "{err}");
    let err = store.record_submitted(first, "req-1").await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidState {
                state: State::Claimed,
                ..
            }
        ),
        "{err}"
    );

    store.mark_submitting(first, "w1").await.unwrap();
    let err = store.mark_submitting(first, "w1").await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::InvalidState {
                state: State::Submitting,
                ..
            }
        ),
        "{err}"
    );
    store.record_submitted(first, "req-1").await.unwrap();
    let status = store.batch_status("b").await.unwrap();
    assert_eq!((status.queued, status.claimed, status.running), (3, 1, 1));

    // A row that was not sent goes back to the queue and comes out first again.
    store.release(second, "w1").await.unwrap();
    let err = store.release(second, "w1").await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost { .. }), "{err}");
    let claim = store
        .claim(&ClaimRequest::new(batch.id, "w1", LEASE, 1))
        .await
        .unwrap();
    assert_eq!(lines(&claim.submit), vec![2]);

    // A refused row ends there.
    let row2 = claim.submit[0].key;
    store.mark_submitting(row2, "w1").await.unwrap();
    store.record_refused(row2, "400: bad input").await.unwrap();

    store
        .record_finished(first, &Finish::succeeded(json!({"ok": true})).cost_usd(0.1))
        .await
        .unwrap();
    let status = store.batch_status("b").await.unwrap();
    assert_eq!(status.total, 5);
    assert_eq!(
        (
            status.queued,
            status.succeeded,
            status.failed,
            status.running
        ),
        (3, 1, 1, 0)
    );
    assert!((status.spent_usd - 0.1).abs() < 1e-9);
    assert!(!status.is_done());

    let err = store
        .claim(&ClaimRequest::new(
            runcomfy_store::BatchId(424_242),
            "w1",
            LEASE,
            1,
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownBatch(_)), "{err}");
}

/// A worker dies holding rows in every state; another one comes after its lease.
/// A worker that stops gracefully ends its lease: its rows go to the next claim at once,
/// with no wait for the lease to run out (the clock does not move here).
async fn an_ended_lease_frees_rows_at_once(env: Env) {
    let store = env.open().await;
    let batch = store
        .create_or_open_batch("b", MODEL, rows(3))
        .await
        .unwrap();
    let claim = store
        .claim(&ClaimRequest::new(batch.id, "stopping", LEASE, 2))
        .await
        .unwrap();
    let [claimed, sent] = [0, 1].map(|i| claim.submit[i].key);
    store.mark_submitting(sent, "stopping").await.unwrap();
    store.record_submitted(sent, "req-sent").await.unwrap();
    let held = store
        .claim(&ClaimRequest::new(batch.id, "next", LEASE, 10))
        .await
        .unwrap();
    assert_eq!(
        lines(&held.submit),
        vec![3],
        "the lease holds before it ends"
    );
    assert!(held.reattach.is_empty());
    store.release(held.submit[0].key, "next").await.unwrap();

    store.end_lease("stopping").await.unwrap();
    let freed = store
        .claim(&ClaimRequest::new(batch.id, "next", LEASE, 10))
        .await
        .unwrap();
    assert_eq!(keys(&freed.reattach), vec![sent]);
    assert_eq!(lines(&freed.submit), vec![1, 3]);
    assert!(freed.submit.iter().any(|r| r.key == claimed));
    assert_eq!(freed.newly_uncertain, 0);
    // Ending a lease that is gone already, or never was, is not an error.
    store.end_lease("stopping").await.unwrap();
    store.end_lease("nobody").await.unwrap();
}

async fn lease_expiry_recovers_rows(env: Env) {
    let store = env.open().await;
    let batch = store
        .create_or_open_batch("b", MODEL, rows(6))
        .await
        .unwrap();
    let claim = store
        .claim(&ClaimRequest::new(batch.id, "dead", LEASE, 4))
        .await
        .unwrap();
    let [claimed, sending, sent, saving] = [0, 1, 2, 3].map(|i| claim.submit[i].key);
    store.mark_submitting(sending, "dead").await.unwrap();
    for (key, rid) in [(sent, "req-sent"), (saving, "req-saving")] {
        store.mark_submitting(key, "dead").await.unwrap();
        store.record_submitted(key, rid).await.unwrap();
    }
    store
        .record_finished(
            saving,
            &Finish::succeeded(json!({"image": "https://cdn/s.png"}))
                .wanting(["https://cdn/s.png"]),
        )
        .await
        .unwrap();

    // Within the lease nothing moves.
    env.clock.advance(LEASE - Duration::from_secs(1));
    let early = store
        .claim(&ClaimRequest::new(batch.id, "next", LEASE, 10))
        .await
        .unwrap();
    assert_eq!(lines(&early.submit), vec![5, 6]);
    assert!(early.reattach.is_empty());
    assert_eq!(early.newly_uncertain, 0);
    for key in early.submit.iter().map(|r| r.key) {
        store.release(key, "next").await.unwrap();
    }

    env.clock.advance(Duration::from_secs(2));
    let late = store
        .claim(&ClaimRequest::new(batch.id, "next", LEASE, 10))
        .await
        .unwrap();
    // Claimed, never sent: back in the pool. Sent with a request id: re-attached, not resent.
    assert_eq!(lines(&late.submit), vec![1, 5, 6]);
    assert_eq!(keys(&late.reattach), vec![sent, saving]);
    assert_eq!(late.reattach[0].request_id.as_deref(), Some("req-sent"));
    assert_eq!(late.reattach[1].state, State::Saving);
    assert!(late
        .reattach
        .iter()
        .all(|r| r.worker.as_deref() == Some("next")));
    // Sending without an answer: uncertain, reported, never handed out.
    assert_eq!(late.newly_uncertain, 1);
    let job = store.job(sending).await.unwrap().unwrap();
    assert_eq!(job.state, State::Uncertain);
    assert!(job.error.is_some());
    assert!(!keys(&late.submit).contains(&sending));
    assert_eq!(store.batch_status("b").await.unwrap().uncertain, 1);

    // The old worker comes back: it lost its lease and its rows.
    assert_eq!(store.heartbeat("dead", LEASE).await.unwrap(), Lease::Lost);
    let err = store.mark_submitting(claimed, "dead").await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost { .. }), "{err}");
    // ...but the answer to the submit it had sent is still recorded.
    store.record_submitted(sending, "req-late").await.unwrap();
    assert_eq!(
        store.job(sending).await.unwrap().unwrap().state,
        State::Submitted
    );

    // The row re-attached finishes under its new worker.
    assert_eq!(
        store
            .record_output_saved(saving, "https://cdn/s.png", Path::new("b/4/s.png"))
            .await
            .unwrap(),
        State::Succeeded
    );
}

async fn heartbeat_keeps_rows(env: Env) {
    let store = env.open().await;
    let batch = store
        .create_or_open_batch("b", MODEL, rows(3))
        .await
        .unwrap();
    let claim = store
        .claim(&ClaimRequest::new(batch.id, "alive", LEASE, 1))
        .await
        .unwrap();
    let row = claim.submit[0].key;
    for _ in 0..4 {
        env.clock.advance(LEASE / 2);
        assert_eq!(
            store.heartbeat("alive", LEASE).await.unwrap(),
            Lease::Renewed
        );
    }
    let other = store
        .claim(&ClaimRequest::new(batch.id, "other", LEASE, 5))
        .await
        .unwrap();
    assert_eq!(lines(&other.submit), vec![2, 3]);
    store.mark_submitting(row, "alive").await.unwrap();
}

async fn uncertain_rows_resubmitted_only_on_request(env: Env) {
    let store = env.open().await;
    let batch = store
        .create_or_open_batch("b", MODEL, rows(2))
        .await
        .unwrap();
    let claim = store
        .claim(&ClaimRequest::new(batch.id, "w", LEASE, 2))
        .await
        .unwrap();
    for row in &claim.submit {
        store.mark_submitting(row.key, "w").await.unwrap();
        store
            .record_uncertain(row.key, "connection reset after sending")
            .await
            .unwrap();
    }
    // Claims never hand out uncertain rows, however long one waits.
    env.clock.advance(LEASE * 10);
    let none = store
        .claim(&ClaimRequest::new(batch.id, "w2", LEASE, 5))
        .await
        .unwrap();
    assert!(none.submit.is_empty() && none.reattach.is_empty() && !none.more_queued);
    let status = store.batch_status("b").await.unwrap();
    assert_eq!(status.uncertain, 2);
    assert!(status.is_done());
    let listed = store
        .batch_rows(batch.id, &RowFilter::in_state(State::Uncertain))
        .await
        .unwrap();
    assert_eq!(lines(&listed), vec![1, 2]);

    // A person decides: line 2 again (and line 7, which does not exist, is ignored).
    assert_eq!(
        store.resubmit_uncertain(batch.id, &[2, 7]).await.unwrap(),
        1
    );
    let again = store
        .claim(&ClaimRequest::new(batch.id, "w2", LEASE, 5))
        .await
        .unwrap();
    assert_eq!(lines(&again.submit), vec![2]);
    assert_eq!(again.submit[0].error, None);
    assert_eq!(store.batch_status("b").await.unwrap().uncertain, 1);
}

/// Several workers (each with its own connection, as separate processes would) claim one
/// batch at once: no row goes to two of them, and the cap holds throughout.
async fn concurrent_claimers_share_the_cap(env: Env) {
    const ROWS: u64 = 240;
    const WORKERS: usize = 8;
    const CAP: u64 = 5;
    let store = env.open().await;
    let batch = store
        .create_or_open_batch("shared", MODEL, rows(ROWS))
        .await
        .unwrap();
    let in_flight = Arc::new(AtomicI64::new(0));
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let store = env.open().await;
        let in_flight = in_flight.clone();
        tasks.push(tokio::spawn(async move {
            let worker = format!("worker-{w}");
            let mut mine = Vec::new();
            loop {
                let request =
                    ClaimRequest::new(batch.id, worker.clone(), LEASE, 2).max_in_flight(CAP);
                let claim = store.claim(&request).await.unwrap();
                assert!(claim.in_flight <= CAP, "{} in flight", claim.in_flight);
                if claim.submit.is_empty() {
                    if !claim.more_queued {
                        break;
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
                for row in &claim.submit {
                    // Counted up after the claim committed, down before the end is recorded:
                    // this count never exceeds the store's.
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!(now <= CAP as i64, "{now} rows in flight, cap {CAP}");
                    let line = row.batch.unwrap().1;
                    store.mark_submitting(row.key, &worker).await.unwrap();
                    store
                        .record_submitted(row.key, &format!("req-{line}"))
                        .await
                        .unwrap();
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    store
                        .record_finished(row.key, &Finish::succeeded(json!({ "line": line })))
                        .await
                        .unwrap();
                    mine.push(line);
                }
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let unique: BTreeSet<u64> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "a row was claimed twice");
    assert_eq!(unique, (1..=ROWS).collect::<BTreeSet<_>>());
    let status = store.batch_status("shared").await.unwrap();
    assert_eq!(status.succeeded, ROWS);
    assert!(status.is_done());
}

async fn budget_stops_claims(env: Env) {
    let store = env.open().await;
    let priced: Vec<NewRow> = rows(6)
        .into_iter()
        .map(|r| r.estimated_cost_usd(1.0))
        .collect();
    let batch = store
        .create_or_open_batch("b", MODEL, priced)
        .await
        .unwrap();
    let request = ClaimRequest::new(batch.id, "w", LEASE, 10).budget_usd(3.5);
    let claim = store.claim(&request).await.unwrap();
    assert_eq!(lines(&claim.submit), vec![1, 2, 3]);
    assert!(claim.over_budget);
    assert_eq!(claim.submit[0].estimated_cost_usd, Some(1.0));

    // The actual cost replaces the estimate: row 1 cost 0.25, so one more row fits.
    let first = claim.submit[0].key;
    store.mark_submitting(first, "w").await.unwrap();
    store.record_submitted(first, "req-1").await.unwrap();
    store
        .record_finished(first, &Finish::succeeded(json!({})).cost_usd(0.25))
        .await
        .unwrap();
    let status = store.batch_status("b").await.unwrap();
    assert!(
        (status.committed_usd - 2.25).abs() < 1e-9,
        "{}",
        status.committed_usd
    );
    assert!((status.spent_usd - 0.25).abs() < 1e-9);
    let claim = store.claim(&request).await.unwrap();
    assert_eq!(lines(&claim.submit), vec![4]);
    assert!(claim.over_budget);

    // A released row gives its estimate back.
    store.release(claim.submit[0].key, "w").await.unwrap();
    let status = store.batch_status("b").await.unwrap();
    assert!(
        (status.committed_usd - 2.25).abs() < 1e-9,
        "{}",
        status.committed_usd
    );

    // The cap counts too: with 2 in flight and a cap of 3, one more.
    let claim = store
        .claim(&ClaimRequest::new(batch.id, "w", LEASE, 10).max_in_flight(3))
        .await
        .unwrap();
    assert_eq!(lines(&claim.submit), vec![4]);
    assert!(claim.capped);
    assert_eq!(claim.in_flight, 3);
}

async fn shared_throttle(env: Env) {
    let store = env.open().await;
    let other = env.open().await;
    assert_eq!(store.throttle_until().await.unwrap(), None);
    let now = env.clock.now();
    store
        .set_throttle_until(now + Duration::from_secs(30))
        .await
        .unwrap();
    other
        .set_throttle_until(now + Duration::from_secs(10))
        .await
        .unwrap(); // earlier: kept later
    assert_eq!(
        other.throttle_until().await.unwrap(),
        Some(now + Duration::from_secs(30))
    );
    let batch = other
        .create_or_open_batch("b", MODEL, rows(1))
        .await
        .unwrap();
    let claim = other
        .claim(&ClaimRequest::new(batch.id, "w", LEASE, 1))
        .await
        .unwrap();
    assert_eq!(claim.throttle_until, Some(now + Duration::from_secs(30)));
    env.clock.advance(Duration::from_secs(31));
    assert_eq!(store.throttle_until().await.unwrap(), None);
}

async fn schema_newer_than_known_refused(env: Env) {
    drop(env.open().await);
    env.set_schema_version(99).await;
    let err = env.try_open().await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 99,
                known: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("newer"), "{err}");
}

async fn batch_rows_and_status(env: Env) {
    let store = env.open().await;
    let batch = store
        .create_or_open_batch("pages", MODEL, rows(25))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .batch_rows(batch.id, &RowFilter::page(after, 10))
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().unwrap().batch.unwrap().1;
        seen.extend(lines(&page));
    }
    assert_eq!(seen, (1..=25).collect::<Vec<_>>());
    let all = store.batch_rows(batch.id, &RowFilter::all()).await.unwrap();
    assert_eq!(all.len(), 25);
    assert_eq!(all[4].input, json!({"prompt": "row 5", "seed": 5}));
    let status = store.batch_status("pages").await.unwrap();
    assert_eq!((status.total, status.queued), (25, 25));
    assert_eq!(status.model_id, MODEL);
    let err = store.batch_status("nope").await.unwrap_err();
    assert!(matches!(err, StoreError::UnknownBatch(_)), "{err}");
}

async fn unfinished_lists_single_jobs_only(env: Env) {
    let store = env.open().await;
    let batch = store
        .create_or_open_batch("b", MODEL, rows(1))
        .await
        .unwrap();
    let claim = store
        .claim(&ClaimRequest::new(batch.id, "w", LEASE, 1))
        .await
        .unwrap();
    let row = claim.submit[0].key;
    store.mark_submitting(row, "w").await.unwrap();
    store.record_submitted(row, "req-row").await.unwrap();
    let single = store.record_intent(MODEL, &json!({})).await.unwrap();
    store.record_submitted(single, "req-single").await.unwrap();
    assert_eq!(keys(&store.unfinished().await.unwrap()), vec![single]);
    assert_eq!(keys(&store.recent_jobs(5).await.unwrap()), vec![single]);
    assert_eq!(
        store
            .job_by_request_id("req-row")
            .await
            .unwrap()
            .unwrap()
            .key,
        row
    );
}

fn keys(jobs: &[runcomfy_store::JobRecord]) -> Vec<runcomfy_store::JobKey> {
    jobs.iter().map(|j| j.key).collect()
}

fn lines(jobs: &[runcomfy_store::JobRecord]) -> Vec<u64> {
    jobs.iter()
        .map(|j| j.batch.map_or(0, |(_, line)| line))
        .collect()
}

// ----- PostgreSQL only: connection strings and passwords -----

#[tokio::test]
async fn unreachable_server_is_a_clear_error_without_the_password() {
    // Port 1 on loopback: nothing listens there.
    let err = runcomfy_store::open("postgres://batch:pw-never-shown@127.0.0.1:1/jobs")
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    let text = format!("{err} {err:?} {}", chain(&err));
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(!text.contains("pw-never-shown"), "{text}");
}

#[runcomfy_testenv::needs(postgres)]
#[tokio::test]
async fn wrong_password_is_refused_without_showing_it() {
    let url = runcomfy_testenv::pg_url();
    let (head, tail) = url
        .split_once('@')
        .expect("the test URL has a user and password");
    let user = head.rsplit_once(':').map_or(head, |(user, _)| user);
    let wrong = format!("{user}:wrong-secret-4711@{tail}");
    let err = runcomfy_store::open(&wrong).await.unwrap_err();
    let text = format!("{err} {err:?} {}", chain(&err));
    assert!(!text.contains("wrong-secret-4711"), "{text}");
    assert!(text.contains("***"), "{text}");

    let env = pg_env("wrong_password").await;
    let store = env.open().await;
    let password = head.rsplit_once(':').map(|(_, p)| p).unwrap_or_default();
    assert!(!password.is_empty());
    for shown in [
        format!("{store:?}"),
        store.location().to_string(),
        format!("{:?}", store.location()),
    ] {
        assert!(!shown.contains(password), "{shown}");
    }
}

fn chain(err: &dyn std::error::Error) -> String {
    let mut out = String::new();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(&format!("{e} / {e:?} / "));
        source = e.source();
    }
    out
}

#[tokio::test]
async fn unusable_sqlite_path_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    // The store's folder would have to be created inside a regular file.
    let err = runcomfy_store::open(&file.join("jobs.db").display().to_string())
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("a-file"), "{err}");
}

/// The database goes away mid-batch (its connections dropped, new ones refused): the next
/// step fails as unavailable (the caller stops submitting) and records nothing; once the
/// database is back, the store carries on.
#[runcomfy_testenv::needs(postgres)]
#[tokio::test]
async fn connection_lost_mid_batch_surfaces_and_records_nothing() {
    let url = runcomfy_testenv::pg_url();
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let database = format!("runcomfy_lost_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
        format!("CREATE DATABASE {database}"),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }
    let (base, _) = url.rsplit_once('/').expect("the test URL names a database");
    let store = runcomfy_store::open(&format!("{base}/{database}"))
        .await
        .unwrap();
    let batch = store
        .create_or_open_batch("b", MODEL, rows(2))
        .await
        .unwrap();
    let claim = store
        .claim(&ClaimRequest::new(batch.id, "w", LEASE, 1))
        .await
        .unwrap();
    let row = claim.submit[0].key;

    // Refuse new connections, then end the store's (the call returns once they are gone).
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {database} WITH ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = '{database}'"
        ))
        .await
        .unwrap();
    let err = store.mark_submitting(row, "w").await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(!err.to_string().contains(&url), "{err}");

    admin
        .batch_execute(&format!(
            "ALTER DATABASE {database} WITH ALLOW_CONNECTIONS true"
        ))
        .await
        .unwrap();
    // Nothing was recorded: the row is still only claimed, so it was not to be sent.
    assert_eq!(store.job(row).await.unwrap().unwrap().state, State::Claimed);
    store.mark_submitting(row, "w").await.unwrap();
    drop(store);
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .await
        .unwrap();
}

async fn outputs_folder_and_its_migration(env: Env) {
    let store = env.open().await;
    let key = store.record_intent(MODEL, &json!({"p": 1})).await.unwrap();
    assert_eq!(store.job(key).await.unwrap().unwrap().outputs_dir, None);
    store
        .record_outputs_wanted(key, Path::new("renders/cats"))
        .await
        .unwrap();
    store.record_submitted(key, "req-dir").await.unwrap();
    let job = store.job(key).await.unwrap().unwrap();
    assert_eq!(job.outputs_dir, Some(PathBuf::from("renders/cats")));
    // Listings carry it too, and a later call replaces it.
    assert_eq!(
        store.unfinished().await.unwrap()[0].outputs_dir,
        Some(PathBuf::from("renders/cats"))
    );
    store
        .record_outputs_wanted(key, Path::new("elsewhere"))
        .await
        .unwrap();
    assert_eq!(
        store.job(key).await.unwrap().unwrap().outputs_dir,
        Some(PathBuf::from("elsewhere"))
    );
    let err = store
        .record_outputs_wanted(runcomfy_store::JobKey(key.0 + 1000), Path::new("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownJob(_)), "{err}");
    drop(store);

    // A database of the first layout (no folder column) is migrated at open, its jobs kept.
    env.exec(
        "ALTER TABLE runcomfy_jobs DROP COLUMN outputs_dir; \
         DELETE FROM runcomfy_schema WHERE version = 2",
    )
    .await;
    let store = env.open().await;
    let job = store.job(key).await.unwrap().unwrap();
    assert_eq!(job.request_id.as_deref(), Some("req-dir"));
    assert_eq!(job.outputs_dir, None);
    store
        .record_outputs_wanted(key, Path::new("again"))
        .await
        .unwrap();
    assert_eq!(
        store.job(key).await.unwrap().unwrap().outputs_dir,
        Some(PathBuf::from("again"))
    );
}

async fn outputs_of_several_jobs(env: Env) {
    let store = env.open().await;
    let mut keys = Vec::new();
    for (i, urls) in [
        &["https://cdn/1/b.png", "https://cdn/1/a.png"][..],
        &[][..],
        &["https://cdn/3/v.mp4"][..],
    ]
    .into_iter()
    .enumerate()
    {
        let key = store
            .record_intent(MODEL, &json!({"prompt": format!("job {i}")}))
            .await
            .unwrap();
        store
            .record_submitted(key, &format!("req-{i}"))
            .await
            .unwrap();
        store
            .record_finished(
                key,
                &Finish::succeeded(json!({"images": urls})).wanting(urls.iter().copied()),
            )
            .await
            .unwrap();
        keys.push(key);
    }
    store
        .record_output_saved(keys[0], "https://cdn/1/a.png", Path::new("out/1/a.png"))
        .await
        .unwrap();
    // Keys in any order, one twice: each job once, by key then URL, as `outputs` gives them.
    let got = store
        .outputs_of(&[keys[2], keys[0], keys[1], keys[0]])
        .await
        .unwrap();
    let mut want = Vec::new();
    for key in &keys {
        for out in store.outputs(*key).await.unwrap() {
            want.push((*key, out));
        }
    }
    assert_eq!(got, want);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].1.path, Some(PathBuf::from("out/1/a.png")));
    assert_eq!(got[2].0, keys[2]);
    assert!(store.outputs_of(&[]).await.unwrap().is_empty());
}
