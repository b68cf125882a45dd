//! `runcomfy jobs [--all] [--unfinished]`: the store's single jobs and their states, without
//! network.

use std::collections::HashSet;
use std::time::SystemTime;

use serde_json::json;

use runcomfy_store::{JobKey, JobRecord, State};

use crate::ui::{out, Mode};

use super::Ctx;

/// How long a submit can be in flight: the request's own time limit is well within it.
const SUBMIT_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);

/// How many jobs `runcomfy jobs` lists without `--all`.
const RECENT: usize = 50;

/// List the jobs recorded in the job store.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Every single job of the store (default: the 50 most recent, and every unfinished or
    /// uncertain one).
    #[arg(long, conflicts_with = "unfinished")]
    all: bool,
    /// Only jobs to resume: a request id and not seen ending, or outputs not all saved.
    #[arg(long)]
    unfinished: bool,
    /// The job store: a postgres:// URL or a SQLite file (default: RUNCOMFY_STORE, else
    /// jobs.db in the data folder).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
}

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

pub async fn exec(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let ui = &ctx.ui;
    let store = crate::store::open_jobs(ctx, args.store.as_deref()).await?;
    let mut jobs: Vec<JobRecord> = if args.unfinished {
        store.unfinished().await?
    } else if args.all {
        store.recent_jobs(usize::MAX).await?
    } else {
        // The most recent, and every unfinished or uncertain one however old.
        let mut jobs = store.recent_jobs(RECENT).await?;
        let mut listed: HashSet<JobKey> = jobs.iter().map(|j| j.key).collect();
        let older = store.unfinished().await?.into_iter();
        for r in older.chain(store.uncertain().await?) {
            if listed.insert(r.key) {
                jobs.push(r);
            }
        }
        jobs
    };
    // Oldest first, as a log reads.
    jobs.sort_by_key(|j| j.key);
    if ui.mode() == Mode::Json {
        for j in &jobs {
            out(&json!({
                "job": j.key.0,
                "created_at": time(j.created_at),
                "finished_at": j.finished_at.map(time),
                "state": j.state.as_str(),
                "request_id": j.request_id,
                "model_id": j.model_id,
                "input_sha256": j.input_sha256,
                "outputs_dir": j.outputs_dir,
                "output": j.output,
                "error": j.error,
                "cost_usd": j.cost_usd,
            })
            .to_string());
        }
        return Ok(());
    }
    if jobs.is_empty() {
        ui.note(&format!("no jobs in {}", store.location()));
        return Ok(());
    }
    out(&format!(
        "{:<8} {:<20} {:<10} {:<36} MODEL",
        "JOB", "CREATED", "STATE", "REQUEST ID"
    ));
    for j in &jobs {
        out(&format!(
            "{:<8} {:<20} {:<10} {:<36} {}",
            j.key.0,
            time(j.created_at),
            j.state.as_str(),
            j.request_id.as_deref().unwrap_or("-"),
            j.model_id
        ));
    }
    // A submit in flight right now (another command's) is not a lost one: a submit cannot
    // take longer than SUBMIT_WINDOW, so only older ones may have lost their answer.
    let now = std::time::SystemTime::now();
    let in_flight = |j: &&JobRecord| {
        j.state == State::Submitting
            && now
                .duration_since(j.created_at)
                .is_ok_and(|age| age < SUBMIT_WINDOW)
    };
    let sending: Vec<String> = jobs
        .iter()
        .filter(in_flight)
        .map(|j| j.key.0.to_string())
        .collect();
    let lost: Vec<String> = jobs
        .iter()
        .filter(|j| matches!(j.state, State::Submitting | State::Uncertain) && !in_flight(j))
        .map(|j| j.key.0.to_string())
        .collect();
    if !sending.is_empty() {
        ui.note(&format!(
            "{} job(s) are being submitted now ({}), by a running command or one stopped during its submit less than {} ago: list the jobs again in a moment",
            sending.len(),
            sending.join(", "),
            humantime::format_duration(SUBMIT_WINDOW)
        ));
    }
    if !lost.is_empty() {
        ui.note(&format!(
            "{} job(s) may have been submitted without an answer ({}): check your RunComfy account before submitting again",
            lost.len(),
            lost.join(", ")
        ));
    }
    Ok(())
}
