//! The batch engine always ends: rows it cannot finish now (outputs the file host refuses)
//! are let go, kept `saving` with their URLs and named, and two workers that both let rows
//! go do not wait for each other's; the next run saves them without a submit.

use std::time::Duration;

use runcomfy::download::SaveFault;
use runcomfy::store::{RowFilter, State};
use runcomfy_fake::{Fault, Route};

use crate::batch::{client, input, pg_env, rows, sqlite_env, Env};
use crate::common::{self, ECHO_ID};

/// Longer than a batch of a few rows takes; past it the run is taken for hung.
const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_with_unsaved_rows_ends_on_every_worker_sqlite() {
    unsaved_rows_end_every_worker(sqlite_env().await).await;
}

#[runcomfy_testenv::needs(postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_with_unsaved_rows_ends_on_every_worker_postgres() {
    unsaved_rows_end_every_worker(pg_env("unsaved_rows_end_every_worker").await).await;
}

async fn unsaved_rows_end_every_worker(env: Env) {
    let server = common::builder().serve_outputs(100).start().await.unwrap();
    // Every output file answers 404 (not retried by the downloader).
    server.inject_times(Route::File, Fault::status(404), 10_000);
    let out = tempfile::tempdir().unwrap();
    let batch = |store, worker: &str| {
        client(&server, &store)
            .batch(ECHO_ID, "ends")
            .rows(rows(6))
            .concurrency(2)
            .worker(worker)
            .outputs_dir(out.path())
    };
    let (a, b) = (batch(env.open().await, "a"), batch(env.open().await, "b"));
    let (a, b) = tokio::time::timeout(DEADLINE, async { tokio::join!(a.run(), b.run()) })
        .await
        .expect("two workers whose saves all fail end within the deadline");
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut lines: Vec<u64> = a.unsaved.iter().chain(&b.unsaved).map(|u| u.line).collect();
    // Each worker tries each row at most once.
    assert!(lines.len() <= 12, "{lines:?}");
    assert!(server.count(Route::File) <= 12);
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines, (1..=6).collect::<Vec<_>>());
    for u in a.unsaved.iter().chain(&b.unsaved) {
        assert_eq!(u.fault, SaveFault::Refused { status: 404 }, "{u:?}");
        assert!(u.error.contains("404"), "{u:?}");
    }
    for line in 1..=6 {
        assert_eq!(server.jobs_for_input(ECHO_ID, &input(line)), 1);
    }
    // Every row stays `saving` with its output URLs and no file.
    let store = env.open().await;
    let rows_now = store.batch_rows(a.batch, &RowFilter::all()).await.unwrap();
    assert_eq!(rows_now.len(), 6);
    for row in &rows_now {
        assert_eq!(row.state, State::Saving, "{row:?}");
        let outputs = store.outputs(row.key).await.unwrap();
        assert!(!outputs.is_empty());
        assert!(outputs.iter().all(|o| o.path.is_none()), "{outputs:?}");
    }

    // The host answers again: the next run saves every output and submits nothing.
    server.clear_faults();
    let again = tokio::time::timeout(DEADLINE, batch(env.open().await, "c").run())
        .await
        .expect("the next run ends")
        .unwrap();
    assert!(again.unsaved.is_empty(), "{:?}", again.unsaved);
    assert_eq!(again.submitted, 0);
    assert_eq!(again.status.succeeded, 6);
    assert_eq!(server.submits(), 6);
}
