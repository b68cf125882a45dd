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

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::model::Model;
use crate::session::Client;
use runcomfy_store::{BatchId, BatchStatus, NewRow, State};

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
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Budget => f.write_str("the next row would pass the budget"),
            StopReason::MaxJobs => f.write_str("the job cap was reached"),
            StopReason::LeaseLost => f.write_str("the worker's lease was lost"),
            StopReason::StoreLost(e) => write!(f, "the store was lost: {e}"),
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
}

/// A batch of rows of one model, run through the client's job store; see the
/// [module docs](self).
#[derive(Debug, Clone)]
#[must_use = "a batch does nothing until it is run"]
#[allow(dead_code)] // the skeleton: the loop that reads these comes next
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
    /// [`download::Downloader`](crate::download::Downloader)), recording each in the store;
    /// a row is `succeeded` only once all are saved. Default: outputs are not saved.
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

    /// The batch's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The model every row runs.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Runs the batch until no row of it is left to this run (every row ended or uncertain,
    /// or submitting stopped and the rows in flight ended); returns what it did.
    pub async fn run(self) -> Result<BatchSummary, Error> {
        self.run_with(|_| {}).await
    }

    /// [`run`](Self::run), handing every [`BatchEvent`] to `on_event` as it happens.
    pub async fn run_with(
        self,
        on_event: impl FnMut(BatchEvent) + Send,
    ) -> Result<BatchSummary, Error> {
        let _ = on_event;
        Err(Error::InvalidArgument {
            name: "batch",
            reason: "the batch engine is not implemented yet".to_owned(),
        })
    }
}
