//! The batch engine (feature `store`): many rows of one model, each submitted exactly once
//! through the client's job store, shared by any number of workers.
//!
//! A [`Batch`] is made by [`Client::batch`] (untyped rows, [`NewRow`]) or
//! [`Endpoint::batch`] (typed inputs, numbered from line 1), configured by its setters, and
//! run by [`Batch::run`] (no events) or [`Batch::run_with`] (a callback gets every
//! [`BatchEvent`] as it happens). Both return a [`BatchSummary`]. A stream of events is one
//! channel away: send them from the callback into a `tokio::sync::mpsc` channel and run the
//! batch in a spawned task.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use runcomfy::batch::BatchEvent;
//! use runcomfy::store::NewRow;
//! use serde_json::json;
//!
//! let store = runcomfy::store::open("jobs.db").await?;
//! let client = runcomfy::Client::builder().store(store).build()?;
//! let rows = vec![
//!     NewRow::new(1, json!({"prompt": "a cat"})),
//!     NewRow::new(2, json!({"prompt": "a dog"})),
//! ];
//! let summary = client
//!     .batch("acme/echo/text-to-image", "pets")
//!     .rows(rows)
//!     .concurrency(8)
//!     .budget_usd(5.0)
//!     .outputs_dir("out")
//!     .run_with(|event| match event {
//!         BatchEvent::Submitted { line, request_id } => println!("{line}: {request_id}"),
//!         BatchEvent::Finished { line, state, .. } => println!("{line}: {state}"),
//!         _ => {}
//!     })
//!     .await?;
//! println!("{} succeeded, {} uncertain", summary.status.succeeded, summary.status.uncertain);
//! # Ok(()) }
//! ```
//!
//! # What the engine guarantees
//!
//! Run the same batch again (same name, same rows) and it continues: ended rows are left
//! alone, rows with a request id are re-attached (polled, fetched, their outputs saved) and
//! never submitted again, queued rows are submitted. Rows of a worker whose lease expired
//! (a dead process) are taken back by the next claim: a row it had only claimed goes back to
//! the queue, a row it was sending becomes `uncertain`, a row with a request id is
//! re-attached. A batch of the same name with other rows is refused.
//!
//! For each row: the claim is the first durable write; `submitting` is committed before the
//! POST; the request id is committed the moment the answer arrives. A submit that provably did
//! not reach the server (the connection was never made, or 429) goes back to the queue; one
//! that may have reached it is `uncertain` and is never sent again unless
//! [`Batch::resubmit_uncertain`] names its line. A 429 (with its `Retry-After`, else
//! [`DEFAULT_THROTTLE`]) sets the store's shared throttle, which every worker reads with its
//! claims. The budget, the job cap ([`Batch::max_jobs`]), a lost lease and a lost store stop
//! new submits; the rows already submitted are still followed to their end. A store lost
//! mid-batch ends the run with [`Error::Store`] once nothing more can be recorded.
//!
//! A row whose outputs cannot be saved (after the downloader's retries: a file host that
//! answers 404 or cannot be reached, a full disk) or whose wait fails without an end stays
//! recorded (`saving` with its output URLs, or `submitted`) and is let go: this run does not
//! wait for it again and ends ([`BatchSummary::unsaved`] names the unsaved rows and why); the
//! next run re-attaches it and tries once more. A full or read-only disk also stops new
//! submits ([`StopReason::FolderFull`]): their outputs could not be saved either.
//!
//! An outputs folder ([`Batch::outputs_dir`]) belongs to one batch: a marker file in it
//! names the batch, its model and its store, and another batch is refused
//! ([`Error::FolderTaken`]) before anything of it is recorded or sent.

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use runcomfy_store::{
    BatchId, BatchStatus, Claim, ClaimRequest, Finish, JobKey, JobRecord, Lease, NewRow, Outcome,
    RowFilter, SharedStore, State, StoreError,
};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use url::Url;

use crate::api::Api;
use crate::download::{self, Downloader, SaveFault};
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::http::retry::RetryPolicy;
use crate::ids::RequestId;
use crate::model::Model;
use crate::record::{self, error_chain, End, Recorder};
use crate::session::Client;
use crate::wait::{Learned, PollPolicy, Waiter};

mod folder;

pub use folder::MARKER as FOLDER_MARKER;

/// The lease a worker takes on its rows unless [`Batch::lease`] says otherwise. A heartbeat
/// renews it every third of it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// How long every worker pauses after a 429 that sent no `Retry-After`.
pub const DEFAULT_THROTTLE: Duration = Duration::from_secs(5);

/// Why a run stopped submitting new rows (it still follows the rows already submitted).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The next queued row would pass the batch's budget ([`Batch::budget_usd`]).
    Budget,
    /// This run submitted [`Batch::max_jobs`] rows.
    MaxJobs,
    /// The worker's lease expired (the process stalled past it) and its rows were taken back
    /// by the store: it dropped every row it held.
    LeaseLost,
    /// The store could not be reached: nothing can be sent whose intent is not recorded.
    StoreLost(String),
    /// [`BatchStop::stop`] was called (the CLI: Ctrl-C or SIGTERM): submits in flight got
    /// their answers recorded, nothing new was sent, and the rows still running at RunComfy
    /// are re-attached by the next run.
    Interrupted,
    /// An output could not be written because the disk (or quota) under the outputs folder
    /// is full, or read-only: the outputs of new rows could not be saved either.
    FolderFull(PathBuf),
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Budget => f.write_str("the next row would pass the budget"),
            StopReason::MaxJobs => f.write_str("the job cap was reached"),
            StopReason::LeaseLost => f.write_str("the worker's lease was lost"),
            StopReason::StoreLost(e) => write!(f, "the store was lost: {e}"),
            StopReason::Interrupted => f.write_str("the run was asked to stop"),
            StopReason::FolderFull(path) => write!(
                f,
                "the disk under the outputs folder is full or read-only ({})",
                path.display()
            ),
        }
    }
}

/// Something that happened in a batch run, as [`Batch::run_with`] reports it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BatchEvent {
    /// The batch was created or opened; `status` is its state before this run did anything.
    Opened {
        /// The store's id of the batch.
        batch: BatchId,
        /// True when this run created it.
        created: bool,
        /// Its totals.
        status: BatchStatus,
    },
    /// A row was submitted and its request id recorded.
    Submitted {
        /// The row's line.
        line: u64,
        /// The job's request id.
        request_id: String,
    },
    /// A row with a request id (from a dead worker or an earlier run) is followed again,
    /// without a new submit.
    Reattached {
        /// The row's line.
        line: u64,
        /// The job's request id.
        request_id: String,
    },
    /// A row ended (its end is recorded in the store).
    Finished {
        /// The row's line.
        line: u64,
        /// How it ended: `succeeded`, `failed`, `cancelled`, `expired`, `refused`, or
        /// `saving` when some outputs could not be saved (a later run saves them).
        state: State,
        /// The job's output, when it succeeded.
        output: Option<Value>,
        /// The files saved for it (with [`Batch::outputs_dir`]).
        files: Vec<PathBuf>,
        /// What it cost, when the result said.
        cost_usd: Option<f64>,
        /// What went wrong, for a row that did not succeed.
        error: Option<String>,
    },
    /// A row's submit may or may not have reached the server: it is `uncertain` and will not
    /// be sent again unless a person asks ([`Batch::resubmit_uncertain`]).
    Uncertain {
        /// The row's line.
        line: u64,
        /// What went wrong.
        error: String,
    },
    /// The server answered 429: every worker holds its submits until `until`.
    Throttled {
        /// The end of the pause.
        until: SystemTime,
    },
    /// This run stopped submitting new rows.
    StoppedSubmitting {
        /// Why.
        reason: StopReason,
    },
    /// The batch's totals, read from the store after a row moved.
    Progress(BatchStatus),
    /// The store failed while recording something about a submitted job: its request id is
    /// known here and maybe not in the store. Keep it (the run then ends with the store's
    /// error; every such id is reported, not only the first).
    NotRecorded {
        /// The job's request id.
        request_id: String,
        /// What failed.
        error: String,
    },
}

/// What a batch run did, and where the batch stands.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BatchSummary {
    /// The store's id of the batch.
    pub batch: BatchId,
    /// The batch's totals at the end of the run, from the store.
    pub status: BatchStatus,
    /// Rows this run submitted.
    pub submitted: u64,
    /// Rows this run re-attached (submitted earlier, followed again).
    pub reattached: u64,
    /// Rows this run saw end.
    pub finished: u64,
    /// Why the run stopped submitting before the queue was empty, if it did.
    pub stopped: Option<StopReason>,
    /// The lines of the batch that are `uncertain` at the end.
    pub uncertain_lines: Vec<u64>,
    /// The rows this run could not save every output of, in the order they were let go:
    /// they stay `saving` with their output URLs, and the next run tries them again.
    pub unsaved: Vec<UnsavedRow>,
}

/// A row whose outputs this run could not all save (see [`BatchSummary::unsaved`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnsavedRow {
    /// The row's line.
    pub line: u64,
    /// The job's request id.
    pub request_id: String,
    /// Why its first unsaved output failed.
    pub fault: SaveFault,
    /// The error, as text (URLs without their query).
    pub error: String,
}

/// A batch of rows of one model, run through the client's job store; see the
/// [module docs](self).
#[derive(Debug, Clone)]
#[must_use = "a batch does nothing until it is run"]
pub struct Batch {
    client: Client,
    model_id: String,
    name: String,
    rows: Vec<NewRow>,
    concurrency: usize,
    max_in_flight: Option<u64>,
    max_jobs: Option<u64>,
    budget_usd: Option<f64>,
    worker: Option<String>,
    lease: Duration,
    outputs_dir: Option<PathBuf>,
    resubmit_uncertain: Vec<u64>,
    stop: BatchStop,
}

/// Asks a running batch to stop, the way a person pressing Ctrl-C wants: no new submit,
/// every submit in flight waits for its answer and records its request id, rows waiting at
/// RunComfy are left to the next run (never sent again), then [`Batch::run`] returns with
/// [`StopReason::Interrupted`]. Get one with [`Batch::stopper`] before running the batch.
#[derive(Debug, Clone, Default)]
pub struct BatchStop(Arc<watch::Sender<bool>>);

impl BatchStop {
    /// Asks the batch to stop (again: no effect).
    pub fn stop(&self) {
        self.0.send_replace(true);
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    fn watch(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }
}

/// Resolves once `stop` turns true (never, if its sender is gone first).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl Client {
    /// A batch named `name` of model `model_id`'s rows, run through this client's job store
    /// (the client must have one: [`ClientBuilder::store`](crate::ClientBuilder::store)).
    /// Untyped: rows are JSON inputs ([`Batch::rows`]); the server checks them.
    pub fn batch(&self, model_id: &str, name: &str) -> Batch {
        Batch {
            client: self.clone(),
            model_id: model_id.to_owned(),
            name: name.to_owned(),
            rows: Vec::new(),
            concurrency: 8,
            max_in_flight: None,
            max_jobs: None,
            budget_usd: None,
            worker: None,
            lease: DEFAULT_LEASE,
            outputs_dir: None,
            resubmit_uncertain: Vec::new(),
            stop: BatchStop::default(),
        }
    }
}

impl<M: Model> Endpoint<M> {
    /// A batch named `name` of typed inputs, numbered from line 1 in order. Each input is
    /// validated here: the first invalid one is [`Error::InvalidRow`] with its line (nothing
    /// is recorded or sent).
    pub fn batch<I>(&self, name: &str, inputs: I) -> Result<Batch, Error>
    where
        I: IntoIterator<Item = M::Input>,
    {
        let mut rows = Vec::new();
        for (i, input) in inputs.into_iter().enumerate() {
            let line = i as u64 + 1;
            let invalid = |source: Error| Error::InvalidRow {
                line,
                source: Box::new(source),
            };
            let body = crate::endpoint::encode::<M>(&input).map_err(invalid)?;
            let value: Value = serde_json::from_slice(&body).map_err(|source| {
                invalid(Error::Encode {
                    model_id: M::ID.to_owned(),
                    source,
                })
            })?;
            rows.push(NewRow::new(line, value));
        }
        Ok(self.client().batch(M::ID, name).rows(rows))
    }
}

impl Batch {
    /// The rows (line numbers are part of each row's identity: keep them stable between
    /// runs). Replaces rows set before.
    pub fn rows(mut self, rows: Vec<NewRow>) -> Self {
        self.rows = rows;
        self
    }

    /// How many rows this run works on at once (submitting, waiting or saving); at least 1.
    /// Default 8.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// The cap on rows in flight (claimed, submitting or submitted) across every worker and
    /// batch of the store: the account's concurrency limit. Default: none.
    pub fn max_in_flight(mut self, n: u64) -> Self {
        self.max_in_flight = Some(n);
        self
    }

    /// The most rows this run submits (re-attached rows do not count). Default: none.
    pub fn max_jobs(mut self, n: u64) -> Self {
        self.max_jobs = Some(n);
        self
    }

    /// The batch's budget in USD: no row is submitted that would take the batch's committed
    /// spend (actual costs, and estimates where none is known yet) past it. Rows' estimates
    /// come from [`NewRow::estimated_cost_usd`]. Default: none.
    pub fn budget_usd(mut self, usd: f64) -> Self {
        self.budget_usd = Some(usd);
        self
    }

    /// The worker's id, unique per running worker (default: `hostname-pid-random`).
    pub fn worker(mut self, id: impl Into<String>) -> Self {
        self.worker = Some(id.into());
        self
    }

    /// The worker's lease (default [`DEFAULT_LEASE`]): a worker silent for longer loses its
    /// rows to the others. At least 3 ms.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(3));
        self
    }

    /// Saves each succeeded row's output files into `dir/<line>/` (with
    /// [`download::Downloader`]), recording each in the store;
    /// a row is `succeeded` only once all are saved. Default: outputs are not saved.
    ///
    /// `dir` belongs to this batch: the run refuses a folder whose marker
    /// ([`FOLDER_MARKER`]) names another batch (or this batch of another store), and marks a
    /// free one before the first submit ([`Error::FolderTaken`]). So when a row's outputs are
    /// saved, a complete file already under an output's name in `dir/<line>/` that no other
    /// output of the row claims is taken as that output (a worker killed between saving and
    /// recording it left it there), and no output is downloaded twice.
    pub fn outputs_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.outputs_dir = Some(dir.into());
        self
    }

    /// Puts these `uncertain` lines back in the queue before the run: they are submitted
    /// again (and paid again if their first submit did reach the server). A person's call.
    pub fn resubmit_uncertain(mut self, lines: impl IntoIterator<Item = u64>) -> Self {
        self.resubmit_uncertain = lines.into_iter().collect();
        self
    }

    /// A handle that stops this batch's run gracefully from elsewhere (a signal handler).
    pub fn stopper(&self) -> BatchStop {
        self.stop.clone()
    }

    /// The batch's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The model every row runs.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Runs the batch until no row of it is left to this run: every row ended or uncertain
    /// (rows held by other live workers are waited for, and rows of dead workers are taken
    /// over when their lease expires), or submitting stopped and the rows this run holds
    /// ended. Returns what it did.
    ///
    /// A row whose wait fails without an end (the poll policy's deadline, a server that
    /// keeps failing) stays `submitted` in the store and is reported as
    /// [`BatchEvent::Finished`] with state `submitted` and the error; a row whose outputs
    /// cannot all be saved stays `saving` and is reported with state `saving` and in
    /// [`BatchSummary::unsaved`]. This run lets go of both (it does not wait for them) and
    /// a later run re-attaches them.
    pub async fn run(self) -> Result<BatchSummary, Error> {
        self.run_with(|_| {}).await
    }

    /// [`run`](Self::run), handing every [`BatchEvent`] to `on_event` as it happens (from
    /// the task that runs the batch).
    pub async fn run_with(
        self,
        on_event: impl FnMut(BatchEvent) + Send,
    ) -> Result<BatchSummary, Error> {
        run_batch(self, on_event).await
    }
}

// ----- the engine -----

/// What a row's task came to.
enum RowEnd {
    /// The row ended, its end recorded (or it was refused).
    Ended,
    /// The row is recorded `uncertain`.
    Uncertain,
    /// The row went back to the queue: its submit provably did not reach the server.
    Released,
    /// The row is still running on the server; this run stopped following it (it was asked
    /// to stop: its lease ends with it, and the next run re-attaches the row).
    Left,
    /// The row is still running on the server, or its outputs are not all saved: this run
    /// let go of it (the store no longer has it held) and does not take it again.
    LetGo(Option<UnsavedRow>),
    /// The worker no longer holds the row (its lease was lost).
    LeaseLost,
    /// The store failed: stop submitting, end with this error.
    StoreLost(Error),
    /// The row's wait ended with nothing to save: its slot is free, and this records its end
    /// (the engine runs it beside the rows and awaits it before the run ends).
    Recording(Pin<Box<dyn Future<Output = RowEnd> + Send>>),
}

/// What the heartbeat task reports.
enum Beat {
    Lost,
    Failed(StoreError),
}

/// What every row task of one run shares.
struct Shared {
    store: SharedStore,
    /// Submits: one attempt each (a 429 or a refused connection is the engine's to handle).
    submit_api: Api,
    /// Polls: the client's retry policy.
    api: Api,
    model_id: String,
    worker: String,
    policy: PollPolicy,
    history: Option<Learned>,
    outputs: Option<(PathBuf, Downloader)>,
    /// The shared throttle as this worker last saw it.
    throttle: Mutex<Option<SystemTime>>,
    events: mpsc::UnboundedSender<BatchEvent>,
    /// Turns true when the lease is lost: every held row is dropped.
    lost: watch::Receiver<bool>,
    /// Turns true when the run is asked to stop: no new submit, waits are left.
    interrupted: watch::Receiver<bool>,
    submitted: AtomicU64,
    /// Rows this run let go of: never re-attached to it again, and not waited for. A row is
    /// added before the store lets it go, so a claim answered meanwhile cannot hand it back
    /// unnoticed.
    let_gone: Mutex<HashSet<JobKey>>,
}

impl Shared {
    fn send(&self, event: BatchEvent) {
        // The receiver lives as long as the run.
        let _ = self.events.send(event);
    }

    fn throttled_for(&self) -> Option<Duration> {
        let until = (*lock(&self.throttle))?;
        until
            .duration_since(SystemTime::now())
            .ok()
            .filter(|d| !d.is_zero())
    }

    fn throttle_until(&self, until: SystemTime) {
        let mut t = lock(&self.throttle);
        if t.is_none_or(|t| t < until) {
            *t = Some(until);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn store_error(step: &'static str, request_id: Option<&str>, source: StoreError) -> Error {
    Error::Store {
        step,
        request_id: request_id.map(str::to_owned),
        source,
    }
}

fn line_of(row: &JobRecord) -> u64 {
    row.batch.map_or(0, |(_, line)| line)
}

/// `hostname-pid-random`: unique per running worker.
fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Resolves when the lease is lost.
async fn lease_lost(lost: &mut watch::Receiver<bool>) {
    // An error means the run is over: the row is dropped too.
    let _ = lost.wait_for(|lost| *lost).await;
}

/// A claimed row: wait for the throttle, mark it `submitting`, POST once, record the answer,
/// then follow the job.
async fn submit_row(sh: Arc<Shared>, row: JobRecord) -> RowEnd {
    let line = line_of(&row);
    while let Some(pause) = sh.throttled_for() {
        let mut lost = sh.lost.clone();
        let mut interrupted = sh.interrupted.clone();
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = lease_lost(&mut lost) => return RowEnd::LeaseLost,
            _ = stopped(&mut interrupted) => break,
        }
    }
    if *sh.lost.borrow() {
        return RowEnd::LeaseLost;
    }
    if *sh.interrupted.borrow() {
        // Not sent: back in the queue for the next run.
        return release(&sh, &row).await;
    }
    if let Err(e) = sh.store.mark_submitting(row.key, &sh.worker).await {
        return match e {
            StoreError::LeaseLost { .. } => RowEnd::LeaseLost,
            e => RowEnd::StoreLost(store_error("a row as submitting", None, e)),
        };
    }
    let body = match serde_json::to_vec(&row.input) {
        Ok(body) => body,
        Err(source) => {
            let error = Error::Encode {
                model_id: sh.model_id.clone(),
                source,
            };
            return refuse(&sh, &row, line, error).await;
        }
    };
    let started = Instant::now();
    match sh.submit_api.submit(&sh.model_id, &body).await {
        Ok(id) => follow(&sh, row.key, line, id, Some(started)).await,
        Err(error) if error.may_have_submitted() => {
            let text = error_chain(&error);
            if let Err(e) = sh.store.record_uncertain(row.key, &text).await {
                return RowEnd::StoreLost(store_error("an uncertain submit", None, e));
            }
            sh.send(BatchEvent::Uncertain { line, error: text });
            RowEnd::Uncertain
        }
        // Provably not received: a 429, or a connection that was never made.
        Err(error @ (Error::RateLimited { .. } | Error::Transport { .. })) => {
            let pause = match &error {
                Error::RateLimited {
                    retry_after: Some(ra),
                    ..
                } => *ra,
                _ => DEFAULT_THROTTLE,
            };
            let until = SystemTime::now() + pause;
            sh.throttle_until(until);
            if let end @ (RowEnd::LeaseLost | RowEnd::StoreLost(_)) = release(&sh, &row).await {
                return end;
            }
            if let Err(e) = sh.store.set_throttle_until(until).await {
                return RowEnd::StoreLost(store_error("the throttle", None, e));
            }
            tracing::info!(line, error = %error, "submit not received; every worker pauses");
            sh.send(BatchEvent::Throttled { until });
            RowEnd::Released
        }
        Err(error) => refuse(&sh, &row, line, error).await,
    }
}

/// Puts a claimed row that was not sent back in the queue.
async fn release(sh: &Shared, row: &JobRecord) -> RowEnd {
    match sh.store.release(row.key, &sh.worker).await {
        Ok(()) => RowEnd::Released,
        Err(StoreError::LeaseLost { .. }) => RowEnd::LeaseLost,
        Err(e) => RowEnd::StoreLost(store_error("a row back in the queue", None, e)),
    }
}

/// Records a row the server refused (or that could not be sent at all).
async fn refuse(sh: &Shared, row: &JobRecord, line: u64, error: Error) -> RowEnd {
    let text = error_chain(&error);
    if let Err(e) = sh.store.record_refused(row.key, &text).await {
        return RowEnd::StoreLost(store_error("a refused submit", None, e));
    }
    sh.send(BatchEvent::Finished {
        line,
        state: State::Refused,
        output: None,
        files: Vec::new(),
        cost_usd: None,
        error: Some(text),
    });
    RowEnd::Ended
}

/// A row with a request id from an earlier worker: follow it (`submitted`) or save its
/// missing outputs (`saving`). Never submits.
async fn reattach_row(sh: Arc<Shared>, row: JobRecord) -> RowEnd {
    let line = line_of(&row);
    let Some(request_id) = row.request_id.clone() else {
        return let_go(&sh, row.key, "", None).await;
    };
    sh.send(BatchEvent::Reattached {
        line,
        request_id: request_id.clone(),
    });
    if row.state == State::Saving {
        let outputs = match sh.store.outputs(row.key).await {
            Ok(outputs) => outputs,
            Err(e) => return RowEnd::StoreLost(store_error("the outputs", Some(&request_id), e)),
        };
        let mut files = Vec::new();
        let mut missing = Vec::new();
        for out in outputs {
            match out.path {
                Some(path) => files.push(path),
                None => match Url::parse(&out.url) {
                    Ok(url) => missing.push(url),
                    Err(_) => tracing::warn!(line, "a wanted output is not a url"),
                },
            }
        }
        return save_and_report(
            &sh,
            row.key,
            line,
            &request_id,
            State::Saving,
            row.output.clone(),
            row.cost_usd,
            missing,
            files,
        )
        .await;
    }
    match RequestId::new(&request_id) {
        Ok(id) => follow(&sh, row.key, line, id, None).await,
        Err(e) => {
            sh.send(BatchEvent::Finished {
                line,
                state: row.state,
                output: None,
                files: Vec::new(),
                cost_usd: None,
                error: Some(e.to_string()),
            });
            let_go(&sh, row.key, &request_id, None).await
        }
    }
}

/// Gives the store back a row this run cannot finish now (it stays `submitted` or `saving`),
/// so the run does not wait for it and the next run re-attaches it.
async fn let_go(sh: &Shared, key: JobKey, request_id: &str, unsaved: Option<UnsavedRow>) -> RowEnd {
    lock(&sh.let_gone).insert(key);
    match sh.store.let_go(key, &sh.worker).await {
        Ok(()) => RowEnd::LetGo(unsaved),
        Err(StoreError::LeaseLost { .. }) => RowEnd::LeaseLost,
        Err(e) => RowEnd::StoreLost(store_error(
            "a row let go",
            Some(request_id).filter(|id| !id.is_empty()),
            e,
        )),
    }
}

/// Waits for a submitted row's job, records its end and saves its outputs. `started`: when
/// it was submitted by this run (its run time then feeds the model's history).
async fn follow(
    sh: &Arc<Shared>,
    key: JobKey,
    line: u64,
    id: RequestId,
    started: Option<Instant>,
) -> RowEnd {
    let waiter = Waiter::new(
        sh.api.clone(),
        Recorder::default(),
        None,
        sh.policy.clone(),
        id.clone(),
        Some(&sh.model_id),
        started.is_none(),
        started.unwrap_or_else(Instant::now),
    )
    .with_history(sh.history);
    let mut lost = sh.lost.clone();
    let mut interrupted = sh.interrupted.clone();
    let mut quiet = |_: &crate::wait::Progress| {};
    let waiting = async {
        tokio::select! {
            outcome = waiter.run(&mut quiet) => Ok(outcome),
            _ = lease_lost(&mut lost) => Err(RowEnd::LeaseLost),
            // The job goes on at RunComfy; its id is recorded below, the next run follows it.
            _ = stopped(&mut interrupted) => Err(RowEnd::Left),
        }
    };
    // A fresh submit's request id is recorded while the first wait runs (it is committed
    // before the end is recorded, and a failure stops the wait at once).
    let recording = async {
        if started.is_some() {
            record::record_request_id(sh.store.as_ref(), key, id.as_str()).await?;
            sh.submitted.fetch_add(1, Ordering::Relaxed);
            sh.send(BatchEvent::Submitted {
                line,
                request_id: id.to_string(),
            });
        }
        Ok::<(), StoreError>(())
    };
    tokio::pin!(waiting, recording);
    let mut recorded = false;
    let outcome = loop {
        tokio::select! {
            r = &mut recording, if !recorded => match r {
                Ok(()) => recorded = true,
                Err(e) => {
                    return RowEnd::StoreLost(store_error("the request id", Some(id.as_str()), e))
                }
            },
            outcome = &mut waiting => break outcome,
        }
    };
    if !recorded {
        if let Err(e) = recording.await {
            return RowEnd::StoreLost(store_error("the request id", Some(id.as_str()), e));
        }
    }
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(end) => return end,
    };
    let run_time = started.map(|s| s.elapsed());
    let request_id = id.as_str();
    let finish = match &outcome {
        Ok(result) => record::finish_of(&End::Result(result), run_time),
        Err(Error::JobFailed { error, .. }) => Some(Finish::failed(error.clone())),
        Err(Error::Cancelled { .. }) => Some(Finish::new(Outcome::Cancelled)),
        Err(e) => End::of_error(e).and_then(|end| record::finish_of(&end, None)),
    };
    let Some(mut finish) = finish else {
        let error = outcome.err().map(|e| error_chain(&e));
        sh.send(BatchEvent::Finished {
            line,
            state: State::Submitted,
            output: None,
            files: Vec::new(),
            cost_usd: None,
            error,
        });
        return let_go(sh, key, request_id, None).await;
    };
    let output = match &finish.outcome {
        Outcome::Succeeded(output) => Some(output.clone()),
        _ => None,
    };
    let urls = match (&output, &sh.outputs) {
        (Some(output), Some(_)) => download::output_urls(output),
        _ => Vec::new(),
    };
    if urls.is_empty() {
        // Nothing to save: the slot frees now and the end is recorded beside the next rows
        // (one group commit with their `submitting`). Until it is committed the store still
        // counts the row in flight, and a kill leaves it `submitted`: re-attached next run.
        let recording = record_end(sh.clone(), key, line, id.to_string(), finish, output);
        return RowEnd::Recording(Box::pin(recording));
    }
    finish.wanted_outputs = urls.iter().map(|u| u.as_str().to_owned()).collect();
    let state = match sh.store.record_finished(key, &finish).await {
        Ok(state) => state,
        Err(e) => return RowEnd::StoreLost(store_error("the outcome", Some(request_id), e)),
    };
    if state != State::Saving {
        report_end(sh, line, state, output, &finish);
        return RowEnd::Ended;
    }
    save_and_report(
        sh,
        key,
        line,
        request_id,
        state,
        output,
        finish.cost_usd,
        urls,
        Vec::new(),
    )
    .await
}

/// Records the end of a row with nothing to save, and reports it.
async fn record_end(
    sh: Arc<Shared>,
    key: JobKey,
    line: u64,
    request_id: String,
    finish: Finish,
    output: Option<Value>,
) -> RowEnd {
    match sh.store.record_finished(key, &finish).await {
        Ok(state) => {
            report_end(&sh, line, state, output, &finish);
            RowEnd::Ended
        }
        Err(e) => RowEnd::StoreLost(store_error("the outcome", Some(&request_id), e)),
    }
}

/// Reports a row whose end is recorded and that has nothing (more) to save.
fn report_end(sh: &Shared, line: u64, state: State, output: Option<Value>, finish: &Finish) {
    let error = match &finish.outcome {
        Outcome::Succeeded(_) => None,
        Outcome::Failed(e) => Some(e.to_string()),
        Outcome::Cancelled => Some("cancelled".to_owned()),
        Outcome::Expired(e) => Some(e.to_string()),
        _ => None,
    };
    sh.send(BatchEvent::Finished {
        line,
        state,
        output,
        files: Vec::new(),
        cost_usd: finish.cost_usd,
        error,
    });
}

/// Saves `urls` into `dir/<line>/`, records each, and reports the row's end.
#[allow(clippy::too_many_arguments)]
async fn save_and_report(
    sh: &Shared,
    key: JobKey,
    line: u64,
    request_id: &str,
    mut state: State,
    output: Option<Value>,
    cost_usd: Option<f64>,
    urls: Vec<Url>,
    mut files: Vec<PathBuf>,
) -> RowEnd {
    let mut failed: Option<(SaveFault, String)> = None;
    match &sh.outputs {
        Some((dir, downloader)) => {
            let dir = dir.join(line.to_string());
            for url in urls {
                // A worker killed between publishing a file and recording it left the
                // complete file under the name a save would take: it is recorded, never
                // fetched twice (the folder is this batch's: its marker says so).
                let saved = downloader
                    .save_once(&url, &dir, &files, download::Folder::Own)
                    .await
                    .map(|saved| saved.path);
                match saved {
                    Ok(path) => {
                        match sh.store.record_output_saved(key, url.as_str(), &path).await {
                            Ok(s) => state = s,
                            Err(e) => {
                                return RowEnd::StoreLost(store_error(
                                    "a saved output",
                                    Some(request_id),
                                    e,
                                ))
                            }
                        }
                        files.push(path);
                    }
                    Err(e) => {
                        tracing::warn!(line, request_id, error = %e, "an output was not saved");
                        failed.get_or_insert_with(|| (e.fault(), error_chain(&e)));
                    }
                }
            }
        }
        None if !urls.is_empty() => {
            failed = Some((
                SaveFault::Other,
                "the run has no outputs folder to save them in".to_owned(),
            ));
        }
        None => {}
    }
    sh.send(BatchEvent::Finished {
        line,
        state,
        output,
        files,
        cost_usd,
        error: failed.as_ref().map(|(_, e)| e.clone()),
    });
    match failed {
        // The row stays `saving` with its output URLs; the next run tries them again.
        Some((fault, error)) if state == State::Saving => {
            let unsaved = UnsavedRow {
                line,
                request_id: request_id.to_owned(),
                fault,
                error,
            };
            let_go(sh, key, request_id, Some(unsaved)).await
        }
        _ => RowEnd::Ended,
    }
}

/// The run: see [`Batch::run`].
async fn run_batch(
    batch: Batch,
    mut on_event: impl FnMut(BatchEvent) + Send,
) -> Result<BatchSummary, Error> {
    let Some(store) = batch.client.store().cloned() else {
        return Err(Error::InvalidArgument {
            name: "batch",
            reason: "the client has no job store (set one with ClientBuilder::store)".to_owned(),
        });
    };
    crate::ids::check_model_id(&batch.model_id)?;
    // The outputs folder must be this batch's before anything of it is recorded or sent.
    let owner = match &batch.outputs_dir {
        Some(dir) => {
            let existed = store
                .batch(&batch.name)
                .await
                .map_err(|e| store_error("the batch", None, e))?
                .is_some();
            let owner = folder::Owner::new(&batch.name, &batch.model_id, store.location());
            let (dir, checked) = (dir.clone(), owner.clone());
            let unmarked = blocking(move || folder::check(&dir, &checked, existed)).await?;
            unmarked.then_some(owner)
        }
        None => None,
    };
    let info = store
        .create_or_open_batch(&batch.name, &batch.model_id, batch.rows)
        .await
        .map_err(|e| store_error("the batch", None, e))?;
    if let (Some(owner), Some(dir)) = (owner, batch.outputs_dir.clone()) {
        blocking(move || folder::mark(&dir, &owner)).await?;
    }
    if !batch.resubmit_uncertain.is_empty() {
        store
            .resubmit_uncertain(info.id, &batch.resubmit_uncertain)
            .await
            .map_err(|e| store_error("the rows to resubmit", None, e))?;
    }
    let status = store
        .batch_status(&batch.name)
        .await
        .map_err(|e| store_error("the batch", None, e))?;
    on_event(BatchEvent::Opened {
        batch: info.id,
        created: info.created,
        status,
    });
    let history = match store.duration_stats(&batch.model_id).await {
        Ok(stats) => stats.map(|s| Learned::new(s.p50, s.p90)),
        Err(e) => {
            tracing::debug!(error = %e, "no run-time history from the store");
            None
        }
    };
    let outputs = match batch.outputs_dir {
        Some(dir) => Some((
            dir,
            Downloader::new().map_err(|e| Error::InvalidArgument {
                name: "outputs_dir",
                reason: error_chain(&e),
            })?,
        )),
        None => None,
    };
    let worker = batch.worker.unwrap_or_else(default_worker_id);
    let (events, mut event_rx) = mpsc::unbounded_channel();
    let (lost_tx, lost) = watch::channel(false);
    let api = batch.client.api().clone();
    let sh = Arc::new(Shared {
        store: store.clone(),
        submit_api: api.with_retry(RetryPolicy::never()),
        api,
        model_id: batch.model_id.clone(),
        worker: worker.clone(),
        policy: batch.client.poll().clone().include_cost(true),
        history,
        outputs,
        throttle: Mutex::new(None),
        events,
        lost,
        interrupted: batch.stop.watch(),
        submitted: AtomicU64::new(0),
        let_gone: Mutex::new(HashSet::new()),
    });
    let mut interrupt = batch.stop.watch();

    let lease = batch.lease;
    // How often a worker with free slots and nothing to do asks again.
    let idle = (lease / 3).min(Duration::from_millis(250));
    let (beat_tx, mut beat_rx) = mpsc::unbounded_channel();
    let mut heartbeat: Option<tokio::task::JoinHandle<()>> = None;
    let mut tasks: JoinSet<RowEnd> = JoinSet::new();
    // Ends of rows being recorded after their slot freed (`RowEnd::Recording`).
    let mut recordings: JoinSet<RowEnd> = JoinSet::new();
    let mut stop: Option<StopReason> = None;
    let mut failure: Option<Error> = None;
    let mut claimed_submits = 0u64;
    let mut reattached = 0u64;
    let mut finished = 0u64;
    let mut last_progress: Option<Instant> = None;
    // The rows this run let go of whose outputs are not all saved.
    let mut unsaved: Vec<UnsavedRow> = Vec::new();
    let min_claim = (batch.concurrency / 4).max(1);
    // Claimed rows waiting for a slot (`true`: to re-attach).
    let mut pending: std::collections::VecDeque<(JobRecord, bool)> =
        std::collections::VecDeque::new();
    // The claim and the totals being read: the loop goes on starting rows meanwhile.
    let mut claiming: Option<StoreCall<Claim>> = None;
    let mut progress: Option<StoreCall<BatchStatus>> = None;
    // After a claim that found nothing: no new claim before this (or before a row ends).
    let mut claim_after: Option<Instant> = None;

    loop {
        while let Ok(event) = event_rx.try_recv() {
            on_event(event);
        }
        // Rows of a lost lease or store are dropped unsent; an interrupted run's go back to
        // the queue, and so do a full disk's (their outputs could not be saved either); rows
        // to re-attach are already submitted: an interrupted run leaves them to the next run,
        // a full disk's still go (their jobs are paid). After a budget or job-cap stop the
        // rows already claimed (within the limit) still go.
        match stop {
            Some(StopReason::LeaseLost | StopReason::StoreLost(_)) => pending.clear(),
            Some(StopReason::Interrupted | StopReason::FolderFull(_)) => {
                let keep = matches!(stop, Some(StopReason::FolderFull(_)));
                pending.retain(|(row, again)| {
                    if !again {
                        let (sh, row) = (sh.clone(), row.clone());
                        tasks.spawn(async move { release(&sh, &row).await });
                    }
                    *again && keep
                });
            }
            _ => {}
        }
        // A slot is a row submitting, waiting or saving; ends being recorded hold none (up
        // to `concurrency` of them, so a slow store still slows the rows).
        let busy = |tasks: &JoinSet<RowEnd>, recordings: &JoinSet<RowEnd>| {
            tasks.len() + recordings.len().saturating_sub(batch.concurrency)
        };
        while busy(&tasks, &recordings) < batch.concurrency {
            let Some((row, again)) = pending.pop_front() else {
                break;
            };
            if again {
                tasks.spawn(reattach_row(sh.clone(), row));
            } else {
                tasks.spawn(submit_row(sh.clone(), row));
            }
        }
        // Claims come in groups and run ahead by a quarter of the slots: a claim is a
        // transaction of its own, so one per ended row would cost a commit per row, and a
        // slot waiting for the next claim would stand idle. A claim runs beside the rows
        // (the loop keeps starting rows while it commits).
        // A claim asks for a group at least: once running and buffered rows fit the slots.
        let wants_rows = |stop: &Option<StopReason>, busy: usize, buffered: usize| {
            stop.is_none() && busy + buffered <= batch.concurrency
        };
        let mut throttled = None;
        let may_claim = claiming.is_none() && claim_after.is_none_or(|t| Instant::now() >= t);
        if may_claim && wants_rows(&stop, busy(&tasks, &recordings), pending.len()) {
            throttled = sh.throttled_for();
            let left = batch.max_jobs.map(|m| m.saturating_sub(claimed_submits));
            if left == Some(0) {
                stop_submitting(&mut stop, StopReason::MaxJobs, &mut on_event);
            } else if throttled.is_none() {
                let room =
                    batch.concurrency + min_claim - busy(&tasks, &recordings) - pending.len();
                let want = match left {
                    Some(left) => room.min(usize::try_from(left).unwrap_or(usize::MAX)),
                    None => room,
                };
                let mut request = ClaimRequest::new(info.id, worker.clone(), lease, want);
                request.max_in_flight = batch.max_in_flight;
                request.budget_usd = batch.budget_usd;
                request.skip = lock(&sh.let_gone).iter().copied().collect();
                let store = store.clone();
                claiming = Some(Box::pin(async move { store.claim(&request).await }));
            }
        }
        let idle_now =
            tasks.is_empty() && recordings.is_empty() && pending.is_empty() && claiming.is_none();
        if idle_now {
            if stop.is_some() {
                break;
            }
            // Nothing of ours: done, or rows are held by other workers (live, or dead with a
            // lease still running) or capped: wait for them. Rows this run let go of are
            // not waited for (they are the next run's).
            match store.batch_status(&batch.name).await {
                Ok(status) if status.unended() <= lock(&sh.let_gone).len() as u64 => break,
                Ok(_) => {}
                Err(e) => {
                    failure.get_or_insert(store_error("the batch's totals", None, e));
                    break;
                }
            }
        }
        let nap = match (throttled, claim_after) {
            (Some(t), _) => t.min(idle.max(Duration::from_millis(1))),
            (None, Some(after)) => after.saturating_duration_since(Instant::now()),
            (None, None) => idle,
        };
        let may_nap = idle_now
            || (claiming.is_none() && wants_rows(&stop, busy(&tasks, &recordings), pending.len()));
        let mut ended = None;
        tokio::select! {
            claimed = async { Some(claiming.as_mut()?.await) }, if claiming.is_some() => {
                claiming = None;
                let Some(claimed) = claimed else { continue };
                match claimed {
                    Err(e) => {
                        stop_submitting(
                            &mut stop,
                            StopReason::StoreLost(e.to_string()),
                            &mut on_event,
                        );
                        failure.get_or_insert(store_error("a claim", None, e));
                    }
                    Ok(claim) => {
                        if heartbeat.is_none() {
                            heartbeat = Some(tokio::spawn(beat(
                                store.clone(),
                                worker.clone(),
                                lease,
                                beat_tx.clone(),
                            )));
                        }
                        if let Some(until) = claim.throttle_until {
                            sh.throttle_until(until);
                        }
                        let found = claim.reattach.len() + claim.submit.len();
                        claim_after = (found == 0).then(|| Instant::now() + idle);
                        for row in claim.reattach {
                            if lock(&sh.let_gone).contains(&row.key) {
                                // Let go while this claim ran (its skip list predates it):
                                // given back again, not tried twice.
                                let sh = sh.clone();
                                let id = row.request_id.clone().unwrap_or_default();
                                tasks.spawn(async move { let_go(&sh, row.key, &id, None).await });
                                continue;
                            }
                            reattached += 1;
                            pending.push_back((row, true));
                        }
                        for row in claim.submit {
                            claimed_submits += 1;
                            pending.push_back((row, false));
                        }
                        if claim.over_budget {
                            stop_submitting(&mut stop, StopReason::Budget, &mut on_event);
                        } else if claim.more_queued
                            && batch.max_jobs.is_some_and(|m| claimed_submits >= m)
                        {
                            stop_submitting(&mut stop, StopReason::MaxJobs, &mut on_event);
                        }
                    }
                }
            }
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => ended = Some(joined),
            Some(joined) = recordings.join_next(), if !recordings.is_empty() => ended = Some(joined),
            status = async { Some(progress.as_mut()?.await) }, if progress.is_some() => {
                progress = None;
                if let Some(Ok(status)) = status {
                    on_event(BatchEvent::Progress(status));
                }
            }
            Some(event) = event_rx.recv() => on_event(event),
            Some(beat) = beat_rx.recv() => match beat {
                Beat::Lost => {
                    let _ = lost_tx.send(true);
                    stop_submitting(&mut stop, StopReason::LeaseLost, &mut on_event);
                }
                Beat::Failed(e) => {
                    stop_submitting(&mut stop, StopReason::StoreLost(e.to_string()), &mut on_event);
                    failure.get_or_insert(store_error("the lease", None, e));
                }
            },
            _ = tokio::time::sleep(nap), if may_nap => claim_after = None,
            _ = stopped(&mut interrupt), if !matches!(
                stop,
                Some(StopReason::Interrupted | StopReason::LeaseLost | StopReason::StoreLost(_))
            ) => {
                // Overrides a budget or cap stop: the claimed rows are not sent either.
                stop = None;
                stop_submitting(&mut stop, StopReason::Interrupted, &mut on_event);
            }
        }
        let Some(joined) = ended else { continue };
        let end = match joined {
            Ok(end) => end,
            Err(e) => {
                tracing::warn!(error = %e, "a row's task ended abnormally");
                continue;
            }
        };
        // A row ended: the next claim may find rows again.
        claim_after = None;
        while let Ok(event) = event_rx.try_recv() {
            on_event(event);
        }
        match end {
            RowEnd::Recording(recording) => {
                recordings.spawn(recording);
                continue;
            }
            RowEnd::Ended => finished += 1,
            RowEnd::Uncertain | RowEnd::Released | RowEnd::Left => {}
            RowEnd::LetGo(row) => {
                if let Some(row) = row {
                    if let SaveFault::Folder {
                        path, full: true, ..
                    } = &row.fault
                    {
                        stop_submitting(
                            &mut stop,
                            StopReason::FolderFull(path.clone()),
                            &mut on_event,
                        );
                    }
                    unsaved.push(row);
                }
            }
            RowEnd::LeaseLost => {
                let _ = lost_tx.send(true);
                stop_submitting(&mut stop, StopReason::LeaseLost, &mut on_event);
            }
            RowEnd::StoreLost(e) => {
                if let Some(request_id) = e.request_id() {
                    on_event(BatchEvent::NotRecorded {
                        request_id: request_id.to_owned(),
                        error: error_chain(&e),
                    });
                }
                stop_submitting(
                    &mut stop,
                    StopReason::StoreLost(e.to_string()),
                    &mut on_event,
                );
                failure.get_or_insert(e);
            }
        }
        let due = last_progress.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
        if progress.is_none() && (due || (tasks.is_empty() && recordings.is_empty())) {
            last_progress = Some(Instant::now());
            let (store, name) = (store.clone(), batch.name.clone());
            progress = Some(Box::pin(async move { store.batch_status(&name).await }));
        }
    }
    if let Some(heartbeat) = heartbeat {
        heartbeat.abort();
        // Nothing of this run is in flight any more: the rows it leaves (an interrupted
        // run's jobs still running at RunComfy) are free for the next run at once.
        if failure.is_none() {
            if let Err(e) = store.end_lease(&worker).await {
                tracing::debug!(error = %e, "the lease was left to expire");
            }
        }
    }
    while let Ok(event) = event_rx.try_recv() {
        on_event(event);
    }
    if let Some(failure) = failure {
        return Err(failure);
    }
    let status = store
        .batch_status(&batch.name)
        .await
        .map_err(|e| store_error("the batch's totals", None, e))?;
    on_event(BatchEvent::Progress(status.clone()));
    let uncertain_lines = store
        .batch_rows(info.id, &RowFilter::in_state(State::Uncertain))
        .await
        .map_err(|e| store_error("the uncertain rows", None, e))?
        .iter()
        .map(line_of)
        .collect();
    Ok(BatchSummary {
        batch: info.id,
        status,
        submitted: sh.submitted.load(Ordering::Relaxed),
        reattached,
        finished,
        stopped: stop,
        uncertain_lines,
        unsaved,
    })
}

/// Stops new submits for `reason` (the first reason stays), and says so.
fn stop_submitting(
    stop: &mut Option<StopReason>,
    reason: StopReason,
    on_event: &mut dyn FnMut(BatchEvent),
) {
    if stop.is_none() {
        tracing::info!(reason = %reason, "the batch stops submitting");
        *stop = Some(reason.clone());
        on_event(BatchEvent::StoppedSubmitting { reason });
    }
}

/// Runs blocking file work (the outputs folder's marker) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::InvalidArgument {
            name: "outputs_dir",
            reason: format!("the folder check stopped: {e}"),
        })?
}

/// A store call the engine's loop polls beside its rows.
type StoreCall<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

/// The least time between two [`BatchEvent::Progress`] events while rows end.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Renews the worker's lease every third of it until the run ends.
async fn beat(
    store: SharedStore,
    worker: String,
    lease: Duration,
    report: mpsc::UnboundedSender<Beat>,
) {
    let every = (lease / 3).max(Duration::from_millis(1));
    loop {
        tokio::time::sleep(every).await;
        match store.heartbeat(&worker, lease).await {
            Ok(Lease::Renewed) => {}
            Ok(_) => {
                let _ = report.send(Beat::Lost);
                return;
            }
            Err(e) => {
                if report.send(Beat::Failed(e)).is_err() {
                    return;
                }
            }
        }
    }
}
