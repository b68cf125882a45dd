//! `runcomfy store check` (is the store whole, and its jobs by state) and `runcomfy store
//! backup DEST` (a consistent copy while other commands use it), without network.

use std::path::PathBuf;

use serde_json::json;

use crate::exit::Failure;
use crate::ui::{out, Mode};

use super::Ctx;

/// The `store` commands.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Check the job store: a SQLite file's every page and index (`PRAGMA integrity_check`),
    /// a PostgreSQL database's answer; then its jobs by state. Exit code 1 when damaged.
    Check(CheckArgs),
    /// Copy the job store (SQLite) into the new file DEST, consistent while other commands use
    /// it; DEST is a store of its own (`--store DEST`). For PostgreSQL, use pg_dump.
    Backup(BackupArgs),
}

/// `store check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The job store: a postgres:// URL or a SQLite file (default: RUNCOMFY_STORE, else
    /// jobs.db in the data folder).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
}

/// `store backup`.
#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// The new file to write (never replaced).
    dest: PathBuf,
    /// The job store: a SQLite file (default: RUNCOMFY_STORE, else jobs.db in the data
    /// folder).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
}

pub async fn exec(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Check(args) => check(ctx, args).await,
        Command::Backup(args) => backup(ctx, args).await,
    }
}

async fn check(ctx: &Ctx, args: CheckArgs) -> anyhow::Result<()> {
    let location = crate::store::location(args.store.as_deref())?;
    let shown = crate::store::shown(&location);
    let report = runcomfy_store::check(&location).await?;
    let total: u64 = report.jobs.values().sum();
    if ctx.ui.mode() == Mode::Json {
        out(&json!({
            "event": "store_check",
            "store": shown,
            "ok": report.is_ok(),
            "problems": report.problems,
            "jobs": report.jobs,
            "total": total,
        })
        .to_string());
    } else {
        for problem in &report.problems {
            out(&format!("problem: {problem}"));
        }
        let counts: Vec<String> = report
            .jobs
            .iter()
            .map(|(state, n)| format!("{n} {state}"))
            .collect();
        if report.is_ok() {
            out(&format!(
                "store {shown}: ok, {total} jobs{}",
                if counts.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", counts.join(", "))
                }
            ));
        }
    }
    if report.is_ok() {
        return Ok(());
    }
    Err(Failure {
        code: crate::exit::OTHER,
        message: format!(
            "store {shown} is damaged ({} problems): restore it from a backup (`runcomfy store backup` makes one), or move the file away to start an empty store",
            report.problems.len()
        ),
    }
    .into())
}

async fn backup(ctx: &Ctx, args: BackupArgs) -> anyhow::Result<()> {
    let location = crate::store::location(args.store.as_deref())?;
    let store = crate::store::open(ctx, &location).await?;
    store.backup(&args.dest).await?;
    if ctx.ui.mode() == Mode::Json {
        out(&json!({
            "event": "store_backup",
            "store": crate::store::shown(&location),
            "dest": args.dest,
        })
        .to_string());
    } else {
        out(&args.dest.display().to_string());
    }
    Ok(())
}
