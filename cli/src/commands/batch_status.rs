//! `runcomfy batch status NAME` and `runcomfy batch report NAME --out DIR`: a batch read from
//! the job store alone, without network.

use std::path::PathBuf;

use serde_json::json;

use runcomfy_store::{BatchStatus, RowFilter, State};

use crate::body::UsageError;
use crate::ui::{out, Mode};

use super::batch::{open_store, write_report};
use super::Ctx;

/// `batch status`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The batch's name.
    name: String,
    /// The job store (default: RUNCOMFY_STORE, else jobs.db in the data folder).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
}

/// `batch report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The batch's name.
    name: String,
    /// The folder to write manifest.jsonl and index.html into (the batch's --out).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The job store (default: RUNCOMFY_STORE, else jobs.db in the data folder).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
}

/// The totals as JSON.
pub fn totals_json(s: &BatchStatus) -> serde_json::Value {
    json!({
        "name": s.name,
        "model_id": s.model_id,
        "total": s.total,
        "queued": s.queued,
        "claimed": s.claimed,
        "submitting": s.submitting,
        "running": s.running,
        "saving": s.saving,
        "succeeded": s.succeeded,
        "failed": s.failed,
        "cancelled": s.cancelled,
        "uncertain": s.uncertain,
        "spent_usd": s.spent_usd,
        "committed_usd": s.committed_usd,
        "done": s.is_done(),
    })
}

/// The totals on one line, for people.
pub fn totals_line(s: &BatchStatus) -> String {
    format!(
        "{} rows: {} succeeded, {} failed, {} cancelled, {} uncertain, {} running, {} saving, {} submitting, {} claimed, {} queued; spent ${:.3}",
        s.total,
        s.succeeded,
        s.failed,
        s.cancelled,
        s.uncertain,
        s.running,
        s.saving,
        s.submitting,
        s.claimed,
        s.queued,
        s.spent_usd
    )
}

pub async fn status(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let store = open_store(ctx, args.store.as_deref()).await?;
    let Some(batch) = store.batch(&args.name).await? else {
        return Err(UsageError(format!("no batch named {:?} in the store", args.name)).into());
    };
    let totals = store.batch_status(&args.name).await?;
    let uncertain = store
        .batch_rows(batch.id, &RowFilter::in_state(State::Uncertain))
        .await?;
    if ctx.ui.mode() == Mode::Json {
        let mut v = totals_json(&totals);
        v["uncertain_rows"] = uncertain
            .iter()
            .map(|r| {
                json!({
                    "line": r.batch.map(|(_, l)| l),
                    "input_sha256": r.input_sha256,
                    "error": r.error,
                })
            })
            .collect();
        out(&v.to_string());
        return Ok(());
    }
    out(&format!("batch {} ({})", totals.name, totals.model_id));
    out(&totals_line(&totals));
    if !uncertain.is_empty() {
        out("uncertain rows (submitted, outcome unknown: look in your RunComfy account; `runcomfy batch ... --resubmit-uncertain` sends them again):");
        out(&format!("{:>8}  {:<64}  ERROR", "LINE", "INPUT SHA-256"));
        for r in &uncertain {
            let error = match &r.error {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            };
            out(&format!(
                "{:>8}  {:<64}  {error}",
                r.batch.map_or(0, |(_, l)| l),
                r.input_sha256
            ));
        }
    }
    Ok(())
}

pub async fn report(ctx: &Ctx, args: ReportArgs) -> anyhow::Result<()> {
    let store = open_store(ctx, args.store.as_deref()).await?;
    let totals = write_report(&*store, &args.name, &args.out, &[], &Default::default()).await?;
    if ctx.ui.mode() == Mode::Json {
        ctx.ui.event(json!({
            "event": "report",
            "manifest": args.out.join(crate::report::MANIFEST),
            "index": args.out.join(crate::report::INDEX),
            "totals": totals_json(&totals),
        }));
    } else {
        out(&args.out.join(crate::report::INDEX).display().to_string());
    }
    Ok(())
}
