//! One module per command, each with its arguments (`Args`) and its `exec`; this file holds
//! the `Command` enum clap parses into, the dispatch, and what every command shares (`Ctx`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{ArgMatches, Subcommand};
use serde_json::Value;
use tokio::sync::watch;

use runcomfy::{Client, PollPolicy, PollVia, RetryPolicy};

use crate::cli::{RetryArgs, WaitArgs};
use crate::exit;
use crate::ui::{out, Mode, Ui};

pub mod batch;
pub mod batch_run;
pub mod batch_status;
pub mod cancel;
pub mod jobs;
pub mod models;
pub mod result;
pub mod resume;
pub mod run;
pub mod schema;
pub mod status;
pub mod store;

/// The commands.
#[derive(Subcommand)]
pub enum Command {
    /// Validate an input, submit it, wait, and print or download the outputs.
    #[command(after_help = run::AFTER_HELP)]
    Run(run::Args),
    /// Re-attach to unfinished jobs of the job store (or to REQUEST_ID), wait, and fetch or
    /// download their results. Never submits again.
    Resume(resume::Args),
    /// List the jobs recorded in the job store and their states.
    Jobs(jobs::Args),
    /// Print a job's status.
    Status(status::Args),
    /// Print a job's result (its state while it runs).
    Result(result::Args),
    /// Cancel a queued job (running jobs cannot be cancelled).
    Cancel(cancel::Args),
    /// List the models of the catalog.
    Models(models::Args),
    /// Print a model's input schema (built in when generated, else from the catalog).
    Schema(schema::Args),
    /// Run one job per row of a JSON-lines file, exactly once (`batch status NAME`: its totals).
    Batch(batch::Args),
    /// Check the job store's file (`store check`) or copy it while in use (`store backup`).
    #[command(subcommand)]
    Store(store::Command),
}

impl Command {
    /// How the command polls and retries (the defaults for a command that does neither).
    pub fn network(&self) -> (WaitArgs, RetryArgs) {
        match self {
            Command::Run(a) => (a.wait.clone(), a.retry.clone()),
            Command::Resume(a) => (a.wait.clone(), a.retry.clone()),
            Command::Batch(a) => a.network(),
            Command::Status(a) => (WaitArgs::default(), a.retry.clone()),
            Command::Result(a) => (WaitArgs::default(), a.retry.clone()),
            Command::Cancel(a) => (WaitArgs::default(), a.retry.clone()),
            Command::Models(a) => (WaitArgs::default(), a.retry.clone()),
            Command::Schema(a) => (WaitArgs::default(), a.retry.clone()),
            Command::Jobs(_) | Command::Store(_) => (WaitArgs::default(), RetryArgs::default()),
        }
    }

    /// Runs the command; `matches` are the whole command line's (for `run`'s model flags).
    pub async fn exec(self, ctx: &Ctx, matches: &ArgMatches) -> anyhow::Result<()> {
        match self {
            Command::Run(args) => {
                let run_matches = matches.subcommand_matches("run").cloned();
                run::exec(ctx, args, &run_matches.unwrap_or_default()).await
            }
            Command::Resume(args) => resume::exec(ctx, args).await,
            Command::Jobs(args) => jobs::exec(ctx, args).await,
            Command::Status(args) => status::exec(ctx, args).await,
            Command::Result(args) => result::exec(ctx, args).await,
            Command::Cancel(args) => cancel::exec(ctx, args).await,
            Command::Models(args) => models::exec(ctx, args).await,
            Command::Schema(args) => schema::exec(ctx, args).await,
            Command::Batch(args) => batch::exec(ctx, args).await,
            Command::Store(command) => store::exec(ctx, command).await,
        }
    }
}

/// What every command shares: the global options, the display, and where the command
/// stands (for a true message on Ctrl-C).
pub struct Ctx {
    /// How the command polls jobs.
    pub wait: WaitArgs,
    /// How the command retries requests.
    pub retry: RetryArgs,
    /// The display (shared with the `tracing` notices).
    pub ui: Arc<Ui>,
    phase: watch::Sender<Phase>,
    /// The running batch's stop, once `batch` started one.
    batch_stop: std::sync::Mutex<Option<runcomfy::batch::BatchStop>>,
    /// The stores the command opened, closed when it ends.
    stores: Mutex<Vec<runcomfy_store::SharedStore>>,
}

/// Where a command stands with its job: what an interruption now leaves behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// No job in hand.
    Idle,
    /// `run` prepares its input: nothing was sent.
    Preparing,
    /// The submit is recorded and in flight: the job may exist without a known request id.
    Submitting,
    /// The job was submitted; waiting for its end.
    Waiting {
        /// The request id.
        request_id: String,
    },
    /// The job succeeded; its outputs are being saved.
    Saving {
        /// The request id.
        request_id: String,
    },
    /// A batch runs.
    Batch {
        /// The batch's name.
        name: String,
    },
}

impl Ctx {
    /// A context for one command.
    pub fn new((wait, retry): (WaitArgs, RetryArgs), ui: Arc<Ui>) -> Ctx {
        Ctx {
            wait,
            retry,
            ui,
            phase: watch::Sender::new(Phase::Idle),
            batch_stop: std::sync::Mutex::new(None),
            stores: Mutex::new(Vec::new()),
        }
    }

    /// Hands the running batch's stop to the signal handler.
    pub fn set_batch_stop(&self, stop: runcomfy::batch::BatchStop) {
        *self.batch_stop.lock().unwrap_or_else(|e| e.into_inner()) = Some(stop);
    }

    /// Asks the running batch to stop gracefully; `false` when no batch runs.
    pub fn stop_batch(&self) -> bool {
        match &*self.batch_stop.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(stop) => {
                stop.stop();
                true
            }
            None => false,
        }
    }

    /// Keeps a store the command opened, to close it when the command ends.
    pub fn keep_store(&self, store: runcomfy_store::SharedStore) {
        self.stores
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(store);
    }

    /// Closes every store the command opened (on SQLite, the WAL folded into the file, so
    /// the file alone holds every job): called once the command ended, however it ended.
    pub async fn close_stores(&self) -> anyhow::Result<()> {
        let stores = std::mem::take(
            &mut *self
                .stores
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        let mut failed = None;
        for store in stores {
            if let Err(e) = store.close().await {
                failed.get_or_insert(anyhow::Error::new(e).context("cannot close the job store"));
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Records where the command stands.
    pub fn set_phase(&self, phase: Phase) {
        self.phase.send_replace(phase);
    }

    /// Where the command stands now.
    pub fn phase(&self) -> Phase {
        self.phase.borrow().clone()
    }

    /// Resolves once the command no longer stands at `phase`.
    pub async fn left(&self, phase: &Phase) {
        let mut changes = self.phase.subscribe();
        let _ = changes.wait_for(|p| p != phase).await;
    }

    /// What is true after an interruption now, for the person who pressed Ctrl-C.
    pub fn interrupted_message(&self) -> String {
        match self.phase() {
            Phase::Idle => "interrupted".to_owned(),
            Phase::Preparing => "interrupted before anything was submitted".to_owned(),
            Phase::Submitting => "interrupted during the submit: the job may exist at RunComfy (and be paid) without a recorded request id; `runcomfy jobs` lists it as uncertain: check your RunComfy account before submitting again".to_owned(),
            Phase::Waiting { request_id } => format!(
                "interrupted: job {request_id} goes on at RunComfy; `runcomfy resume {request_id}` waits for it and fetches its outputs"
            ),
            Phase::Saving { request_id } => format!(
                "interrupted: job {request_id} succeeded but not all of its outputs are saved; `runcomfy resume {request_id}` saves them"
            ),
            Phase::Batch { name } => format!(
                "interrupted: batch {name} continues where it stopped when the same command runs again (submitted rows are re-attached, never sent twice; a row whose submit was in flight becomes uncertain once this worker's lease expires); `runcomfy batch status {name}` shows it"
            ),
        }
    }

    /// A client from the environment with the command's poll and retry settings; without a
    /// token, an error that says how to set one.
    pub fn client(&self, cancel_on_timeout: bool) -> anyhow::Result<Client> {
        self.client_if_token(cancel_on_timeout)?
            .ok_or_else(|| exit::missing_token().into())
    }

    /// Like [`Ctx::client`], but `None` when no token is set.
    pub fn client_if_token(&self, cancel_on_timeout: bool) -> anyhow::Result<Option<Client>> {
        match self.build_client(cancel_on_timeout) {
            Ok(c) => Ok(Some(c)),
            Err(runcomfy::Error::MissingToken { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn build_client(&self, cancel_on_timeout: bool) -> Result<Client, runcomfy::Error> {
        self.client_builder(cancel_on_timeout).build()
    }

    /// A client that records every submit in `store`; without a token, an error that says
    /// how to set one.
    pub fn client_with_store(&self, store: runcomfy_store::SharedStore) -> anyhow::Result<Client> {
        self.client_with(Some(store), false)
    }

    /// A client with the command's settings, writing through `store` when given; without a
    /// token, an error that says how to set one.
    pub fn client_with(
        &self,
        store: Option<runcomfy_store::SharedStore>,
        cancel_on_timeout: bool,
    ) -> anyhow::Result<Client> {
        let mut builder = self.client_builder(cancel_on_timeout);
        if let Some(store) = store {
            builder = builder.store(store);
        }
        match builder.build() {
            Ok(c) => Ok(c),
            Err(runcomfy::Error::MissingToken { .. }) => Err(exit::missing_token().into()),
            Err(e) => Err(e.into()),
        }
    }

    fn client_builder(&self, cancel_on_timeout: bool) -> runcomfy::ClientBuilder {
        let (w, r) = (&self.wait, &self.retry);
        // `/status` reports the queue position; `/result` is read once at the end.
        let mut poll = PollPolicy::default()
            .cancel_on_deadline(cancel_on_timeout)
            .via(PollVia::Status);
        if let Some(ms) = w.poll_interval {
            let d = Duration::from_millis(ms.max(1));
            // A fixed interval asked for: the store's history of the model does not move it.
            poll = poll.delays(d, 1.0, d).jitter(0.0).use_history(false);
        }
        if let Some(t) = w.timeout {
            poll = poll.deadline(if t.is_zero() { None } else { Some(t) });
        }
        let mut builder = Client::builder()
            .poll_policy(poll)
            .user_agent(concat!("runcomfy-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(r) = r.retries {
            builder =
                builder.retry_policy(RetryPolicy::default().max_attempts(r.saturating_add(1)));
        }
        builder
    }

    /// Prints a JSON value: one line in JSON mode, pretty otherwise.
    pub fn print_value(&self, v: &Value) {
        if self.ui.mode() == Mode::Json {
            out(&v.to_string());
        } else {
            out(&serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
        }
    }
}
