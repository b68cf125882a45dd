//! One module per command, each with its arguments (`Args`) and its `exec`; this file holds
//! the `Command` enum clap parses into, the dispatch, and what every command shares (`Ctx`).

use std::time::Duration;

use anyhow::Context as _;
use clap::{ArgMatches, Subcommand};
use serde_json::Value;

use runcomfy::journal::Journal;
use runcomfy::{Client, PollPolicy, PollVia, RetryPolicy};

use crate::cli::Global;
use crate::exit;
use crate::ui::{out, Mode, Ui};

pub mod cancel;
pub mod jobs;
pub mod models;
pub mod result;
pub mod resume;
pub mod run;
pub mod schema;
pub mod status;

/// The commands.
#[derive(Subcommand)]
pub enum Command {
    /// Validate an input, submit it, wait, and print or download the outputs.
    #[command(after_help = run::AFTER_HELP)]
    Run(run::Args),
    /// Re-attach to unfinished jobs of the journal (or to REQUEST_ID), wait, and fetch or
    /// download their results. Never submits again.
    Resume(resume::Args),
    /// List the jobs recorded in the journal and their states.
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
}

impl Command {
    /// Runs the command; `matches` are the whole command line's (for `run`'s model flags).
    pub async fn exec(self, ctx: &Ctx, matches: &ArgMatches) -> anyhow::Result<()> {
        match self {
            Command::Run(args) => {
                let run_matches = matches.subcommand_matches("run").cloned();
                run::exec(ctx, args, &run_matches.unwrap_or_default()).await
            }
            Command::Resume(args) => resume::exec(ctx, args).await,
            Command::Jobs(args) => jobs::exec(ctx, args),
            Command::Status(args) => status::exec(ctx, args).await,
            Command::Result(args) => result::exec(ctx, args).await,
            Command::Cancel(args) => cancel::exec(ctx, args).await,
            Command::Models(args) => models::exec(ctx, args).await,
            Command::Schema(args) => schema::exec(ctx, args).await,
        }
    }
}

/// What every command shares: the global options and the display.
pub struct Ctx {
    /// The global options.
    pub global: Global,
    /// The display.
    pub ui: Ui,
}

impl Ctx {
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
        let g = &self.global;
        // `/status` reports the queue position; `/result` is read once at the end.
        let mut poll = PollPolicy::default()
            .cancel_on_deadline(cancel_on_timeout)
            .via(PollVia::Status);
        if let Some(ms) = g.poll_interval {
            let d = Duration::from_millis(ms.max(1));
            poll = poll.delays(d, 1.0, d).jitter(0.0);
        }
        if let Some(t) = g.timeout {
            poll = poll.deadline(if t.is_zero() { None } else { Some(t) });
        }
        let mut builder = Client::builder()
            .poll_policy(poll)
            .user_agent(concat!("runcomfy-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(r) = g.retries {
            builder =
                builder.retry_policy(RetryPolicy::default().max_attempts(r.saturating_add(1)));
        }
        builder.build()
    }

    /// The job journal.
    pub fn journal(&self) -> anyhow::Result<Journal> {
        Journal::open_default().context("cannot open the job journal (set RUNCOMFY_JOURNAL_DIR)")
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
