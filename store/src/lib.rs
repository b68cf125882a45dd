//! The job store of runcomfy-rs: every paid job recorded before it is sent.
//!
//! A [`JobStore`] records what a client is about to submit, the `request_id` the moment the
//! server returns it, how each job ended, what it cost and where its outputs were saved, so a
//! program that dies at any point loses no paid job and never pays twice for one. Batches of
//! rows are shared by any number of workers through leases and claims, under one concurrency
//! cap, one budget and one throttle kept in the database.
//!
//! Two backends sit behind the one trait, chosen by URL ([`open`]):
//! - SQLite (feature `sqlite`, the default): one file in WAL mode, for one machine;
//! - PostgreSQL (feature `postgres`): one server shared by workers on many machines.
//!
//! The crate knows nothing of the RunComfy API: model ids, request ids and inputs are strings
//! and JSON.
//!
//! ```no_run
//! # async fn demo() -> Result<(), runcomfy_store::StoreError> {
//! use runcomfy_store::{Finish, JobStore};
//! let store = runcomfy_store::open("sqlite:///tmp/jobs.db").await?;
//! let input = serde_json::json!({"prompt": "a cat"});
//! let key = store.record_intent("acme/echo/text-to-image", &input).await?; // durable now
//! // ... POST the submit ...
//! store.record_submitted(key, "req-123").await?; // the moment the answer arrives
//! // ... wait for the result ...
//! store.record_finished(key, &Finish::succeeded(serde_json::json!({"image": "https://cdn/x.png"}))).await?;
//! # Ok(()) }
//! ```
//!
//! # The lifecycle
//!
//! | step | single job | batch row |
//! |---|---|---|
//! | before the POST | [`record_intent`](JobStore::record_intent) → `submitting` | [`claim`](JobStore::claim) → `claimed`, then [`mark_submitting`](JobStore::mark_submitting) → `submitting` |
//! | the answer | [`record_submitted`](JobStore::record_submitted) → `submitted` | same |
//! | refused for sure | [`record_refused`](JobStore::record_refused) → `refused` | [`release`](JobStore::release) → `queued` (retry later) or `record_refused` |
//! | outcome unknown | [`record_uncertain`](JobStore::record_uncertain) → `uncertain` | same; or the worker died in `submitting` |
//! | the end | [`record_finished`](JobStore::record_finished) → an end state, or `saving` while outputs are wanted | same |
//! | each output saved | [`record_output_saved`](JobStore::record_output_saved); the last one → `succeeded` | same |
//! | cannot finish now (an output not saved, a wait failed) | stays `saving` (or `submitted`) for `resume` | [`let_go`](JobStore::let_go): state kept, the worker's claims skip it ([`ClaimRequest::skip`]), the next run re-attaches it |

#![warn(missing_docs)]
// Without a backend only the shared types remain (a build that opens nothing).
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(dead_code, unused_variables)
)]

mod clock;
mod error;
mod hash;
mod location;
mod migrate;
mod record;
mod timed;
mod types;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::Value;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{BoxError, StoreError};
pub use hash::{canonical_json, input_sha256};
pub use location::{redact, Location, Secret};
pub use timed::{OpTiming, StoreTimings, TimedStore};
pub use types::{
    BatchId, BatchInfo, BatchStatus, CheckReport, Claim, ClaimRequest, DurationStats, Finish,
    JobKey, JobRecord, Lease, NewRow, Outcome, RowFilter, SavedOutput, State, DURATION_SAMPLE,
};

/// The environment variable naming the store (a URL or a path), read by [`open_from_env`].
pub const STORE_ENV: &str = "RUNCOMFY_STORE";

/// A shared store, as the client and the batch engine hold it.
pub type SharedStore = Arc<dyn JobStore>;

/// The job store: one trait, two backends.
///
/// Every method is one durable step: when it returns `Ok`, what it recorded survives a crash
/// of this process (and, on SQLite, of the machine). Methods take `&self` and are safe to call
/// from many tasks at once.
#[async_trait]
pub trait JobStore: Send + Sync + std::fmt::Debug {
    /// Where the store lives (prints without a password).
    fn location(&self) -> &Location;

    /// Ends a program's use of the store: waits for every step sent before it and, on SQLite,
    /// folds the WAL into the database file, so the file alone holds every job (a copy of it is
    /// a backup). Call it before the program exits (an exit skips destructors). The store stays
    /// usable: a later step is recorded as durably, only perhaps in the WAL until the next
    /// close.
    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Writes a consistent copy of the store to the new file `dest` (never replaced) while
    /// other connections and processes keep using it. SQLite only (`VACUUM INTO`); PostgreSQL
    /// answers [`StoreError::Unsupported`]: use `pg_dump`.
    async fn backup(&self, dest: &Path) -> Result<(), StoreError> {
        let _ = dest;
        Err(StoreError::Unsupported {
            location: self.location().to_string(),
            what: "a backup is made by the database server's tools here: use pg_dump",
        })
    }

    // ----- single jobs -----

    /// Records that `input` is about to be submitted to `model_id` (state `submitting`).
    /// Call it before sending; send only if it returned `Ok`.
    async fn record_intent(&self, model_id: &str, input: &Value) -> Result<JobKey, StoreError>;

    /// Records the request id the server returned (`submitting` or `uncertain` →
    /// `submitted`). Call it the moment the answer arrives. Recording the same id again is a
    /// no-op.
    async fn record_submitted(&self, key: JobKey, request_id: &str) -> Result<(), StoreError>;

    /// Records that the submit failed in a way that does not prove the server refused it
    /// (`submitting` → `uncertain`). An uncertain job is never sent again automatically.
    async fn record_uncertain(&self, key: JobKey, error: &str) -> Result<(), StoreError>;

    /// Records that the server refused the submit: no job exists (`claimed` or `submitting`
    /// → `refused`).
    async fn record_refused(&self, key: JobKey, error: &str) -> Result<(), StoreError>;

    /// Records how a job ended (`submitted` → an end state, or `saving` while
    /// `finish.wanted_outputs` are not all saved). Returns the new state. Recording the end of
    /// a job that already ended changes nothing and returns its state.
    async fn record_finished(&self, key: JobKey, finish: &Finish) -> Result<State, StoreError>;

    /// Records that a single job's outputs are wanted in the folder `dir` (any state; a later
    /// call replaces the folder). Call it before the job's end is recorded: from then on, the
    /// end of a job that succeeded is recorded [`wanting`](Finish::wanting) its output files
    /// (the `runcomfy` client does this), so the job stays `saving`, listed by
    /// [`unfinished`](JobStore::unfinished), until each is saved.
    async fn record_outputs_wanted(&self, key: JobKey, dir: &Path) -> Result<(), StoreError>;

    /// Records that output `url` of a job was saved to `path`; when it was the last wanted
    /// output, the job becomes `succeeded`. Returns the job's state. Idempotent.
    async fn record_output_saved(
        &self,
        key: JobKey,
        url: &str,
        path: &Path,
    ) -> Result<State, StoreError>;

    /// The job with this key.
    async fn job(&self, key: JobKey) -> Result<Option<JobRecord>, StoreError>;

    /// The job with this request id.
    async fn job_by_request_id(&self, request_id: &str) -> Result<Option<JobRecord>, StoreError>;

    /// The outputs of a job: those wanted (path `None`) and those saved.
    async fn outputs(&self, key: JobKey) -> Result<Vec<SavedOutput>, StoreError>;

    /// The outputs of several jobs, each with its job's key, ordered by key then URL: what
    /// [`outputs`](Self::outputs) gives for each (keys named twice count once), in one round
    /// trip where the backend can. The report of a batch reads its rows' outputs this way.
    async fn outputs_of(&self, keys: &[JobKey]) -> Result<Vec<(JobKey, SavedOutput)>, StoreError> {
        let mut keys = keys.to_vec();
        keys.sort_unstable();
        keys.dedup();
        let mut all = Vec::new();
        for key in keys {
            all.extend(self.outputs(key).await?.into_iter().map(|o| (key, o)));
        }
        Ok(all)
    }

    /// Single jobs (not batch rows) to re-attach after a crash: `submitted` (poll them) and
    /// `saving` (save their missing outputs), oldest first.
    async fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError>;

    /// Single jobs whose submit outcome is unknown: `uncertain`, and `submitting` ones (the
    /// process that sent them may still be running, or may have died before the answer).
    async fn uncertain(&self) -> Result<Vec<JobRecord>, StoreError>;

    /// The most recent single jobs, newest first.
    async fn recent_jobs(&self, limit: usize) -> Result<Vec<JobRecord>, StoreError>;

    /// How long `model_id`'s recent successful jobs ran ([`DURATION_SAMPLE`] at most), or
    /// `None` when none was measured.
    async fn duration_stats(&self, model_id: &str) -> Result<Option<DurationStats>, StoreError>;

    // ----- batches -----

    /// Creates the batch `name` with these rows, or opens it when it exists with exactly the
    /// same model and rows (the same lines with the same input hashes; estimates may differ and
    /// are not updated). A batch of that name with other rows or another model is refused
    /// with [`StoreError::BatchMismatch`]. Concurrent calls with the same rows are safe.
    async fn create_or_open_batch(
        &self,
        name: &str,
        model_id: &str,
        rows: Vec<NewRow>,
    ) -> Result<BatchInfo, StoreError>;

    /// The batch named `name`, if it exists.
    async fn batch(&self, name: &str) -> Result<Option<BatchInfo>, StoreError>;

    /// Claims work for a worker, in one transaction: renews the worker's lease, takes back the
    /// rows of workers whose lease expired (`claimed` → `queued`, `submitting` → `uncertain`,
    /// `submitted`/`saving` → free to re-attach), then hands out rows to re-attach and
    /// queued rows to submit, lowest lines first, within the concurrency cap and the budget.
    async fn claim(&self, request: &ClaimRequest) -> Result<Claim, StoreError>;

    /// Renews a worker's lease (call it well within the lease, e.g. every third of it).
    /// A worker's lease starts with its first claim; [`Lease::Lost`] means the lease had
    /// expired and its rows were taken back (or the worker never claimed): drop every row held.
    async fn heartbeat(&self, worker: &str, lease: Duration) -> Result<Lease, StoreError>;

    /// Ends a worker's lease now (a worker that stops gracefully, with no submit in flight):
    /// the next claim of any worker takes its rows back at once (`submitted` and `saving`
    /// rows to re-attach, `claimed` ones to the queue) instead of after the lease. The
    /// default does nothing: the lease then runs out by itself.
    async fn end_lease(&self, worker: &str) -> Result<(), StoreError> {
        let _ = worker;
        Ok(())
    }

    /// Marks a claimed row as being sent (`claimed` → `submitting`): call it before the POST
    /// and send only if it returned `Ok`. Fails with [`StoreError::LeaseLost`] when the
    /// worker no longer holds the row.
    async fn mark_submitting(&self, key: JobKey, worker: &str) -> Result<(), StoreError>;

    /// Puts a row the worker holds back in the queue (`claimed` or `submitting` → `queued`):
    /// for a row that was not sent, or whose submit provably did not reach the server
    /// (connection refused, 429).
    async fn release(&self, key: JobKey, worker: &str) -> Result<(), StoreError>;

    /// Lets go of a row with a request id the worker holds (`submitted` or `saving`), its
    /// state unchanged: the worker cannot finish it now (an output that cannot be saved, a
    /// wait that failed). The next claim that does not skip it ([`ClaimRequest::skip`])
    /// re-attaches it. Fails with [`StoreError::LeaseLost`] when the worker does not hold it.
    async fn let_go(&self, key: JobKey, worker: &str) -> Result<(), StoreError>;

    /// Puts `uncertain` rows of a batch back in the queue, on a person's request: they will
    /// be submitted again (paid again, if the first submit did reach the server). Lines that
    /// are not uncertain are left alone. Returns how many rows were queued.
    async fn resubmit_uncertain(&self, batch: BatchId, lines: &[u64]) -> Result<u64, StoreError>;

    /// Slows every worker: no submit before `until` (a later time already set is kept).
    async fn set_throttle_until(&self, until: SystemTime) -> Result<(), StoreError>;

    /// The shared throttle, if it is in the future.
    async fn throttle_until(&self) -> Result<Option<SystemTime>, StoreError>;

    /// The totals of a batch, from the store alone.
    async fn batch_status(&self, name: &str) -> Result<BatchStatus, StoreError>;

    /// Rows of a batch in line order.
    async fn batch_rows(
        &self,
        batch: BatchId,
        filter: &RowFilter,
    ) -> Result<Vec<JobRecord>, StoreError>;
}

/// Options for [`open_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OpenOptions {
    /// The clock for timestamps, leases and the throttle.
    pub clock: Arc<dyn Clock>,
    /// Connections kept to a PostgreSQL server.
    pub pool_size: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            clock: Arc::new(SystemClock),
            pool_size: 8,
        }
    }
}

impl OpenOptions {
    /// Sets the clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the PostgreSQL pool size (at least 1).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }
}

/// Opens (creating or migrating it as needed) the store at `location`: a `postgres://` URL, a
/// libpq `key=value` string, a `sqlite://` URL or a file path. A SQLite file that is damaged or
/// missing is refused ([`StoreError::Damaged`]) and left as it is, never made again.
///
/// ```no_run
/// # async fn demo() -> Result<(), runcomfy_store::StoreError> {
/// let store = runcomfy_store::open("/var/lib/runcomfy/jobs.db").await?;
/// println!("{} unfinished", store.unfinished().await?.len());
/// # Ok(()) }
/// ```
pub async fn open(location: &str) -> Result<SharedStore, StoreError> {
    open_with(location, OpenOptions::default()).await
}

/// [`open`] with options.
pub async fn open_with(location: &str, options: OpenOptions) -> Result<SharedStore, StoreError> {
    match Location::parse(location)? {
        #[cfg(feature = "sqlite")]
        Location::Sqlite(path) => Ok(Arc::new(sqlite::SqliteStore::open(&path, options).await?)),
        #[cfg(not(feature = "sqlite"))]
        location @ Location::Sqlite(_) => Err(StoreError::BackendDisabled {
            location: location.to_string(),
            backend: "sqlite",
        }),
        #[cfg(feature = "postgres")]
        Location::Postgres(url) => Ok(Arc::new(postgres::PgStore::open(url, options).await?)),
        #[cfg(not(feature = "postgres"))]
        location @ Location::Postgres(_) => Err(StoreError::BackendDisabled {
            location: location.to_string(),
            backend: "postgres",
        }),
    }
}

/// Checks the store at `location` without changing it: a SQLite file whether it exists and is
/// whole (a damaged file is examined, not refused: [`sqlite::SqliteStore::check_file`]); a
/// PostgreSQL database whether it answers. Both count the jobs by state.
///
/// ```no_run
/// # async fn demo() -> Result<(), runcomfy_store::StoreError> {
/// let report = runcomfy_store::check("/var/lib/runcomfy/jobs.db").await?;
/// for problem in &report.problems {
///     eprintln!("{problem}");
/// }
/// # Ok(()) }
/// ```
pub async fn check(location: &str) -> Result<CheckReport, StoreError> {
    match Location::parse(location)? {
        #[cfg(feature = "sqlite")]
        Location::Sqlite(path) => sqlite::SqliteStore::check_file(&path).await,
        #[cfg(feature = "postgres")]
        Location::Postgres(url) => {
            postgres::PgStore::open(url, OpenOptions::default().pool_size(1))
                .await?
                .count_jobs()
                .await
        }
        #[allow(unreachable_patterns)]
        location => Err(StoreError::BackendDisabled {
            backend: match location {
                Location::Sqlite(_) => "sqlite",
                Location::Postgres(_) => "postgres",
            },
            location: location.to_string(),
        }),
    }
}

/// Opens the store named by `RUNCOMFY_STORE`, or `default` when it is unset or empty.
pub async fn open_from_env(default: &str) -> Result<SharedStore, StoreError> {
    let named = std::env::var(STORE_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty());
    open(named.as_deref().unwrap_or(default)).await
}
