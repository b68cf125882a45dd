//! `runcomfy batch MODEL --input rows.jsonl --out DIR`: one job per row, exactly once, through
//! the job store; `runcomfy batch status NAME` and `runcomfy batch report NAME --out DIR` read
//! the store without network.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::json;

use runcomfy_store::NewRow;

use crate::body::UsageError;
use crate::known::{self, Known};
use crate::report;
use crate::rows::{self, Price, Rows};
use crate::store;
use crate::ui::{out, Mode};

use super::{batch_status, Ctx, Phase};

/// The text after `runcomfy batch --help`.
pub const AFTER_HELP: &str = "\
Each line of --input is one JSON object: the input of one job, merged with --set and checked \
exactly as `runcomfy run` checks its input. A row's identity is (batch name, line number, \
input hash): running the same command again continues the batch (finished rows are skipped, \
submitted rows re-attached, nothing submitted twice). A row whose submit outcome is unknown \
(uncertain) is never sent again unless --resubmit-uncertain is given.

The store is --store, else RUNCOMFY_STORE (a postgres:// URL or a SQLite file), else \
jobs.db in the data folder.";

/// Run one job per row of a JSON-lines file, exactly once, into a folder with a manifest and
/// a report page.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true, after_help = AFTER_HELP)]
pub struct Args {
    #[command(subcommand)]
    sub: Option<Sub>,
    #[command(flatten)]
    run: RunArgs,
}

impl Args {
    /// How a batch run polls and retries (`batch status` and `batch report` do neither).
    pub fn network(&self) -> (crate::cli::WaitArgs, crate::cli::RetryArgs) {
        match self.sub {
            Some(_) => Default::default(),
            None => (self.run.wait.clone(), self.run.retry.clone()),
        }
    }
}

/// What `batch` does besides running.
#[derive(clap::Subcommand, Debug)]
enum Sub {
    /// Print a batch's totals and its uncertain rows, from the store alone (no network).
    Status(batch_status::Args),
    /// Rewrite a batch's manifest.jsonl and index.html into DIR from the store (no network).
    Report(batch_status::ReportArgs),
}

/// The options of a batch run.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The model id, such as happyhorse/happyhorse-1.0/image-to-video.
    #[arg(required = true)]
    pub model: Option<String>,
    /// The rows: one JSON object per line (`-` for standard input).
    #[arg(long, value_name = "FILE", required = true)]
    pub input: Option<PathBuf>,
    /// Save each row's outputs to DIR/<line>/, with DIR/manifest.jsonl and DIR/index.html.
    #[arg(long, value_name = "DIR", required = true)]
    pub out: Option<PathBuf>,
    /// Set one input field in every row (wins over the row, as in `run`).
    #[arg(long, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// The batch's name in the store (default: the input file's name without extension).
    #[arg(long)]
    pub name: Option<String>,
    /// Jobs in flight at once, from this process.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Jobs in flight at once across every worker of the store (the account's limit).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_in_flight: Option<u64>,
    /// Submit at most N rows in this run.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_jobs: Option<u64>,
    /// Stop submitting when the next row would take the batch's spend (actual costs, and
    /// estimates from the catalog price where none is known yet) past X dollars.
    #[arg(long, value_name = "X", value_parser = parse_budget)]
    pub budget_usd: Option<f64>,
    /// Check every row, print the estimate and send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Go on with the valid rows when some are invalid (they are listed and never sent).
    #[arg(long)]
    pub skip_invalid: bool,
    /// Send again the rows whose submit outcome is unknown (they may be paid twice).
    #[arg(long)]
    pub resubmit_uncertain: bool,
    /// Send to a model this runcomfy has no schema for, rows as given (the server checks them).
    #[arg(long)]
    pub unchecked: bool,
    /// The job store: a postgres:// URL or a SQLite file (default: RUNCOMFY_STORE, else
    /// jobs.db in the data folder).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// How long this worker's rows wait after it dies before another worker (or the next
    /// run) takes them over (`90s`, `2m`; default 60s). Each worker renews it every third.
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::parse_duration)]
    pub lease: Option<std::time::Duration>,
    /// How the job is polled.
    #[command(flatten)]
    pub wait: crate::cli::WaitArgs,
    /// How failed requests are retried.
    #[command(flatten)]
    pub retry: crate::cli::RetryArgs,
}

fn parse_budget(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .trim()
        .trim_start_matches('$')
        .parse()
        .map_err(|_| format!("{s:?} is not an amount of dollars"))?;
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        Err(format!("{s:?} is not an amount of dollars"))
    }
}

/// Dispatches `batch`.
pub async fn exec(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    match args.sub {
        Some(Sub::Status(a)) => batch_status::status(ctx, a).await,
        Some(Sub::Report(a)) => batch_status::report(ctx, a).await,
        None => run(ctx, args.run).await,
    }
}

/// A batch ready to run: its checked rows, estimates and where it goes.
pub struct Plan {
    /// The model id.
    pub model: String,
    /// The batch's name.
    pub name: String,
    /// The output folder.
    pub out: PathBuf,
    /// The rows to send, with their estimates.
    pub rows: Vec<NewRow>,
    /// Rows refused before sending: line and why.
    pub refused: Vec<(u64, String)>,
    /// What the report shows of the rows beyond the store (refused rows' lines, local files).
    pub sources: std::sync::Arc<report::Sources>,
    /// The options.
    pub args: RunArgs,
}

/// The batch's default name: the input file's name without its extension.
fn default_name(input: &Path) -> Option<String> {
    input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty() && s != "-")
}

async fn run(ctx: &Ctx, args: RunArgs) -> anyhow::Result<()> {
    let ui = &ctx.ui;
    ctx.set_phase(Phase::Preparing);
    let (Some(model), Some(input), Some(out_dir)) =
        (args.model.clone(), args.input.clone(), args.out.clone())
    else {
        return Err(UsageError("batch takes MODEL, --input FILE and --out DIR".into()).into());
    };
    runcomfy::check_model_id(&model).map_err(|e| UsageError(e.to_string()))?;
    let name = match args.name.clone().or_else(|| default_name(&input)) {
        Some(n) if !n.trim().is_empty() => n,
        _ => {
            return Err(UsageError(
                "name the batch with --name (rows read from standard input have no file name)"
                    .into(),
            )
            .into())
        }
    };
    let known = known::resolve(ctx, &model, args.unchecked).await?;
    let flags = match known {
        Known::BuiltIn(m) => Some(m),
        Known::Unchecked => None,
    };
    if flags.is_none() {
        ui.note(&format!(
            "{model} has no schema in this runcomfy: rows are sent unchecked (the server checks them)"
        ));
    }
    let rows = rows::read(&input, &model, flags, &args.set)?;
    for w in &rows.warnings {
        ui.warn(w);
    }
    for (line, why) in rows.invalid() {
        report_invalid(ctx, line, why);
    }
    let price = price(ctx, &model, args.dry_run || args.budget_usd.is_none()).await?;
    let estimates: Vec<(u64, Option<f64>)> = rows
        .valid()
        .map(|(line, body)| (line, price.as_ref().and_then(|p| p.estimate(body, flags))))
        .collect();
    let unpriced: Vec<u64> = estimates
        .iter()
        .filter(|(_, e)| e.is_none())
        .map(|(line, _)| *line)
        .collect();
    let estimate_total: Option<f64> = if unpriced.is_empty() {
        Some(estimates.iter().filter_map(|(_, e)| *e).sum())
    } else {
        None
    };
    let invalid = rows.invalid().count();
    if args.dry_run {
        return dry_run_summary(ctx, &rows, price.as_ref(), estimate_total, &unpriced);
    }
    if invalid > 0 && !args.skip_invalid {
        return Err(UsageError(format!(
            "{invalid} of {} rows are invalid (listed above); nothing was sent: fix them, or pass --skip-invalid to send the valid rows only",
            rows.rows.len()
        ))
        .into());
    }
    if args.budget_usd.is_some() && !unpriced.is_empty() {
        return Err(UsageError(format!(
            "--budget-usd needs a price estimate for every row; {} row(s) have none (first: line {}): the catalog entry of {model} {}",
            unpriced.len(),
            unpriced[0],
            match &price {
                Some(_) => "is priced per second and these rows give no duration",
                None => "states no price in a unit runcomfy can count (second or output)",
            }
        ))
        .into());
    }
    let new_rows: Vec<NewRow> = rows
        .valid()
        .zip(&estimates)
        .map(|((line, body), (_, estimate))| {
            let row = NewRow::new(line, body.clone());
            match estimate {
                Some(e) => row.estimated_cost_usd(*e),
                None => row,
            }
        })
        .collect();
    if new_rows.is_empty() {
        return Err(UsageError("no valid rows: nothing was sent".into()).into());
    }
    let refused: Vec<(u64, String)> = rows
        .invalid()
        .map(|(line, why)| (line, why.to_owned()))
        .collect();
    let sources: report::Sources = rows
        .rows
        .iter()
        .filter(|r| r.written.is_some() || !r.local_files.is_empty())
        .map(|r| {
            let source = report::RowSource {
                written: r.written.clone(),
                local_files: r.local_files.clone(),
            };
            (r.line, source)
        })
        .collect();
    let plan = Plan {
        model,
        name,
        out: out_dir,
        rows: new_rows,
        refused,
        sources: std::sync::Arc::new(sources),
        args,
    };
    super::batch_run::exec(ctx, plan).await
}

fn report_invalid(ctx: &Ctx, line: u64, why: &str) {
    let ui = &ctx.ui;
    if ui.mode() == Mode::Json {
        ui.event(json!({"event": "invalid_row", "line": line, "error": why}));
    } else {
        crate::ui::err(&format!("line {line}: {why}"));
    }
}

/// The catalog price of `model`, when a token is set and the catalog states one. `lenient`:
/// a failed lookup is a warning, not an error.
async fn price(ctx: &Ctx, model: &str, lenient: bool) -> anyhow::Result<Option<Price>> {
    let client = match ctx.client_if_token(false)? {
        Some(c) => c,
        None if lenient => {
            ctx.ui.note(
                "no RUNCOMFY_TOKEN: the catalog price cannot be read, so no cost is estimated",
            );
            return Ok(None);
        }
        None => return Err(crate::exit::missing_token().into()),
    };
    match client.get_model(model).await {
        Ok(entry) => Ok(Price::of(&entry)),
        Err(e) if lenient => {
            ctx.ui.warn(&format!(
                "cannot read the catalog entry of {model} for its price: {}",
                crate::exit::message(&anyhow::Error::from(e))
            ));
            Ok(None)
        }
        Err(e) => Err(anyhow::Error::from(e).context(format!(
            "cannot read the catalog entry of {model} for its price (--budget-usd needs it)"
        ))),
    }
}

fn dry_run_summary(
    ctx: &Ctx,
    rows: &Rows,
    price: Option<&Price>,
    estimate_total: Option<f64>,
    unpriced: &[u64],
) -> anyhow::Result<()> {
    let ui = &ctx.ui;
    let total = rows.rows.len();
    let invalid = rows.invalid().count();
    let valid = total - invalid;
    if ui.mode() == Mode::Json {
        ui.event(json!({
            "event": "dry_run",
            "rows": total,
            "valid": valid,
            "invalid": invalid,
            "estimated_cost_usd": estimate_total,
            "unpriced_rows": unpriced.len(),
            "price_usd": price.map(|p| p.usd),
        }));
    } else {
        let cost = match (estimate_total, price) {
            (Some(t), Some(_)) => format!("; estimated cost ${t:.3}"),
            (None, Some(_)) => format!(
                "; no estimate for {} row(s) (no duration; first: line {})",
                unpriced.len(),
                unpriced.first().copied().unwrap_or(0)
            ),
            _ => "; no price known".to_owned(),
        };
        out(&format!(
            "dry run: {total} rows, {valid} valid, {invalid} invalid{cost}; nothing was sent"
        ));
    }
    if invalid > 0 {
        return Err(crate::exit::Reported(crate::exit::USAGE).into());
    }
    Ok(())
}

/// Opens the store of a batch command, printing where it is (without a password).
pub async fn open_store(
    ctx: &Ctx,
    flag: Option<&str>,
) -> anyhow::Result<runcomfy_store::SharedStore> {
    let location = store::location(flag)?;
    let s = store::open(ctx, &location).await?;
    ctx.ui
        .note(&format!("job store: {}", store::shown(&location)));
    Ok(s)
}

/// Rewrites the manifest and the page of batch `name` in `dir` from the store.
pub async fn write_report(
    store: &dyn runcomfy_store::JobStore,
    name: &str,
    dir: &Path,
    refused: &[(u64, String)],
    sources: &report::Sources,
) -> anyhow::Result<runcomfy_store::BatchStatus> {
    let batch = store
        .batch(name)
        .await?
        .ok_or_else(|| UsageError(format!("no batch named {name:?} in the store")))?;
    let status = store.batch_status(name).await?;
    let rows = report::collect(store, &batch, dir, refused, sources).await?;
    let totals = report::Totals {
        status: status.clone(),
        invalid: refused.len() as u64,
    };
    report::write(dir, &batch.name, &batch.model_id, &totals, &rows)
        .with_context(|| format!("cannot write the report into {}", dir.display()))?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_dollars() {
        assert_eq!(parse_budget("12.5"), Ok(12.5));
        assert_eq!(parse_budget("$3"), Ok(3.0));
        assert!(parse_budget("-1").is_err());
        assert!(parse_budget("NaN").is_err());
        assert!(parse_budget("lots").is_err());
    }

    #[test]
    fn names_come_from_the_input_file() {
        assert_eq!(
            default_name(Path::new("dir/renders.jsonl")).as_deref(),
            Some("renders")
        );
        assert_eq!(default_name(Path::new("-")), None);
    }
}
