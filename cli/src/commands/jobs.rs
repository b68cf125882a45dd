//! `runcomfy jobs [--unfinished]`: the journal's jobs and their states, without network.

use serde_json::json;

use runcomfy::journal::EntryState;

use crate::ui::{out, Mode};

use super::Ctx;

/// List the jobs recorded in the journal.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only jobs that have a request id and were not seen ending.
    #[arg(long)]
    unfinished: bool,
}

pub fn exec(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let ui = &ctx.ui;
    let journal = ctx.journal()?;
    let entries = if args.unfinished {
        journal.unfinished()?
    } else {
        journal.entries()?
    };
    if ui.mode() == Mode::Json {
        for e in &entries {
            out(&json!({
                "job": e.job_id,
                "created_at": e.created_at,
                "updated_at": e.updated_at,
                "state": e.state.as_str(),
                "request_id": e.request_id,
                "model_id": e.model_id,
                "input_sha256": e.input_sha256,
                "paths": e.paths,
                "error": e.error,
            })
            .to_string());
        }
        return Ok(());
    }
    if entries.is_empty() {
        ui.note(&format!("no jobs in {}", journal.path().display()));
        return Ok(());
    }
    out(&format!(
        "{:<22} {:<20} {:<10} {:<36} MODEL",
        "JOB", "CREATED", "STATE", "REQUEST ID"
    ));
    for e in &entries {
        out(&format!(
            "{:<22} {:<20} {:<10} {:<36} {}",
            e.job_id,
            e.created_at,
            e.state.as_str(),
            e.request_id.as_deref().unwrap_or("-"),
            e.model_id
        ));
    }
    let lost: Vec<&str> = entries
        .iter()
        .filter(|e| {
            matches!(e.state, EntryState::Submitting | EntryState::Uncertain)
                && e.request_id.is_none()
        })
        .map(|e| e.job_id.as_str())
        .collect();
    if !lost.is_empty() {
        ui.note(&format!(
            "{} job(s) may have been submitted without an answer ({}): check your RunComfy account before submitting again",
            lost.len(),
            lost.join(", ")
        ));
    }
    Ok(())
}
