//! `runcomfy`: run RunComfy models from the command line.
//!
//! `runcomfy run MODEL --flag value ...` validates the input through the generated model,
//! records the submit in the job journal before sending it, records the request id the moment
//! it returns, waits with a progress display, and prints or downloads the outputs. See
//! `cli/README.md` and `runcomfy --help`.

mod body;
mod download;
mod exit;
mod flags;
#[cfg(test)]
mod reserved;
mod ui;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use serde_json::{json, Map, Value};

use runcomfy::journal::{EntryState, Journal};
use runcomfy::{Client, ListModels, PollPolicy, PollVia, RetryPolicy};

use crate::body::UsageError;
use crate::exit::Reported;
use crate::ui::{err, out, Mode, Ui};

const ENVIRONMENT: &str = "\
Environment:
  RUNCOMFY_TOKEN              the API token (required to send anything; never printed)
  RUNCOMFY_BASE_URL           the API (default https://model-api.runcomfy.net)
  RUNCOMFY_JOURNAL_DIR        the job journal's folder (default: <data dir>/runcomfy)
  RUNCOMFY_POLL_INTERVAL_MS   same as --poll-interval
  RUNCOMFY_TIMEOUT            same as --timeout
  RUNCOMFY_RETRIES            same as --retries";

/// Run RunComfy models: flags generated from each model's schema, a crash-safe job journal,
/// progress, downloads.
#[derive(Parser)]
#[command(name = "runcomfy", version, about, after_help = help_footer())]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

fn help_footer() -> String {
    format!("{}\n\n{ENVIRONMENT}", exit::TABLE)
}

#[derive(Args, Debug, Clone)]
struct Global {
    /// Print one JSON object per event (and per result line) on standard output.
    #[arg(long, global = true)]
    json: bool,
    /// Show no progress; print only results and errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Poll the job every MS milliseconds (default: 1 s growing to 8 s).
    #[arg(
        long,
        global = true,
        env = "RUNCOMFY_POLL_INTERVAL_MS",
        value_name = "MS"
    )]
    poll_interval: Option<u64>,
    /// Stop waiting after this long (`90s`, `10m`, `500ms`; `0` waits without limit; default 30m).
    #[arg(long, global = true, env = "RUNCOMFY_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Retries of a failed request (never of a submit that may have reached the server).
    #[arg(long, global = true, env = "RUNCOMFY_RETRIES", value_name = "N")]
    retries: Option<u32>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate an input, submit it, wait, and print or download the outputs.
    #[command(
        after_help = "Generated models take one flag per input field: `runcomfy run MODEL --help` lists them.\nOther models take `--input` and `--set` only and are sent unchecked.\nLater sources win: --input, then --set, then the model's flags."
    )]
    Run(RunArgs),
    /// Re-attach to unfinished jobs of the journal (or to REQUEST_ID), wait, and fetch or
    /// download their results. Never submits again.
    Resume {
        /// A request id or local job id; without it, every unfinished job of the journal.
        request_id: Option<String>,
        #[command(flatten)]
        out: OutArgs,
    },
    /// List the jobs recorded in the journal and their states.
    Jobs {
        /// Only jobs that have a request id and were not seen ending.
        #[arg(long)]
        unfinished: bool,
    },
    /// Print a job's status.
    Status {
        /// The request id.
        request_id: String,
    },
    /// Print a job's result (its state while it runs).
    Result {
        /// The request id.
        request_id: String,
        /// Ask for the cost too.
        #[arg(long)]
        cost: bool,
    },
    /// Cancel a queued job (running jobs cannot be cancelled).
    Cancel {
        /// The request id.
        request_id: String,
    },
    /// List the models of the catalog.
    Models {
        /// Free-text search.
        #[arg(long)]
        search: Option<String>,
        /// Only this category (`video`, `image`, `audio`, ...).
        #[arg(long)]
        category: Option<String>,
        /// How many models (1 to 100).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// How many models to skip.
        #[arg(long, default_value_t = 0)]
        offset: u32,
        /// List the models built into this binary instead (no network, no token).
        #[arg(long)]
        local: bool,
    },
    /// Print a model's input schema (built in when generated, else from the catalog).
    Schema {
        /// The model id.
        model: String,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The model id, such as happyhorse/happyhorse-1.0/image-to-video.
    model: String,
    /// Read the input object from this JSON file (`-` for standard input).
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Set one input field: the value is JSON when it parses as JSON, else a string.
    #[arg(long, value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Validate and print the request body; send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Submit, print the request id and exit without waiting.
    #[arg(long)]
    no_wait: bool,
    /// Cancel the job when --timeout passes (default: leave it running, to `resume` later).
    #[arg(long)]
    cancel_on_timeout: bool,
    #[command(flatten)]
    out: OutArgs,
}

#[derive(Args, Debug, Clone)]
struct OutArgs {
    /// Download every output into DIR and print the files' paths.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The largest output file accepted, in MB.
    #[arg(long, value_name = "MB", default_value_t = 4096)]
    max_download_mb: u64,
}

/// Options of `run` (and global ones) that take a value: skipped when looking for the model.
const VALUE_OPTIONS: &[&str] = &[
    "--input",
    "--set",
    "--out",
    "--max-download-mb",
    "--poll-interval",
    "--timeout",
    "--retries",
];

/// The built-in model `runcomfy run` names: its first positional argument, else any argument
/// that is a built-in model id.
fn model_named(args: &[OsString]) -> Option<&'static flags::ModelFlags> {
    let words: Vec<&str> = args.iter().skip(1).filter_map(|a| a.to_str()).collect();
    let run_at = words.iter().position(|w| *w == "run")?;
    let mut rest = words[run_at + 1..].iter();
    let mut positional = None;
    while let Some(w) = rest.next() {
        if VALUE_OPTIONS.contains(w) {
            rest.next();
        } else if !w.starts_with('-') {
            positional = Some(*w);
            break;
        }
    }
    positional
        .and_then(flags::model)
        .or_else(|| words[run_at + 1..].iter().find_map(|w| flags::model(w)))
}

/// `90s`, `10m`, `1h`, `500ms`, or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 90s, 10m or 500ms"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown unit {other:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is out of range"))
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // Only the model named on the command line gets its flags: a quick start with any number
    // of models.
    let model = model_named(&args);
    let mut command = Cli::command();
    if let Some(m) = model {
        command = command.mut_subcommand("run", |run| {
            let about = if m.summary.is_empty() {
                format!("Run {}", m.id)
            } else {
                format!("Run {}: {}", m.id, m.summary)
            };
            run.args(flags::args(m)).about(about)
        });
    }
    let matches = match command.try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => e.exit(),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            err(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(exit::OTHER);
        }
    };
    let ui = Ui::new(cli.global.json, cli.global.quiet);
    let run_matches = matches.subcommand_matches("run").cloned();
    let result = runtime.block_on(async {
        tokio::select! {
            r = dispatch(cli, run_matches, &ui) => r,
            _ = tokio::signal::ctrl_c() => {
                ui.finish_wait("interrupted");
                err("interrupted: a submitted job goes on; `runcomfy resume` picks it up");
                Err(Reported(130).into())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            let code = exit::code_of(&e);
            if !e.is::<Reported>() {
                report(&ui, &e, code);
            }
            ExitCode::from(code)
        }
    }
}

/// Shows an error: on standard error, and as an event in JSON mode.
fn report(ui: &Ui, e: &anyhow::Error, code: u8) {
    ui.finish_wait("failed");
    let request_id = request_id_of(e);
    ui.event(json!({"event": "error", "exit_code": code, "message": format!("{e:#}"), "request_id": request_id}));
    err(&format!("error: {e:#}"));
    if let Some(id) = request_id {
        if matches!(code, exit::TIMEOUT | exit::OTHER) {
            err(&format!(
                "the job may still run; `runcomfy resume {id}` re-attaches to it"
            ));
        }
    }
}

fn request_id_of(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|c| {
        c.downcast_ref::<runcomfy::Error>()
            .and_then(|x| x.request_id())
            .or_else(|| {
                c.downcast_ref::<runcomfy::journal::JournalError>()
                    .and_then(|j| j.request_id())
            })
            .map(str::to_owned)
    })
}

async fn dispatch(cli: Cli, run_matches: Option<ArgMatches>, ui: &Ui) -> anyhow::Result<()> {
    let g = cli.global;
    match cli.command {
        Command::Run(args) => {
            let matches = run_matches.unwrap_or_default();
            run(&g, args, &matches, ui).await
        }
        Command::Resume { request_id, out } => resume(&g, request_id, &out, ui).await,
        Command::Jobs { unfinished } => jobs(unfinished, ui),
        Command::Status { request_id } => {
            let status = client(&g, false)?.status(&request_id).await?;
            print_value(ui, &serde_json::to_value(status)?);
            Ok(())
        }
        Command::Result { request_id, cost } => {
            let result = client(&g, false)?.result(&request_id, cost).await?;
            print_value(ui, &serde_json::to_value(result)?);
            Ok(())
        }
        Command::Cancel { request_id } => cancel(&g, &request_id, ui).await,
        Command::Models {
            search,
            category,
            limit,
            offset,
            local,
        } => {
            if local {
                models_local(ui);
                Ok(())
            } else {
                models(&g, search, category, limit, offset, ui).await
            }
        }
        Command::Schema { model } => schema(&g, &model, ui).await,
    }
}

/// A client from the environment with the command's poll and retry settings.
fn client(g: &Global, cancel_on_timeout: bool) -> Result<Client, runcomfy::Error> {
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
        builder = builder.retry_policy(RetryPolicy::default().max_attempts(r.saturating_add(1)));
    }
    builder.build()
}

fn open_journal() -> anyhow::Result<Journal> {
    Journal::open_default().context("cannot open the job journal (set RUNCOMFY_JOURNAL_DIR)")
}

/// Prints a JSON value: one line in JSON mode, pretty otherwise.
fn print_value(ui: &Ui, v: &Value) {
    if ui.mode() == Mode::Json {
        out(&v.to_string());
    } else {
        out(&serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
    }
}

async fn run(g: &Global, args: RunArgs, matches: &ArgMatches, ui: &Ui) -> anyhow::Result<()> {
    runcomfy::check_model_id(&args.model).map_err(|e| UsageError(e.to_string()))?;
    let model = flags::model(&args.model);
    let mut body = match &args.input {
        Some(path) => body::read_input_file(path)?,
        None => Map::new(),
    };
    body::apply_sets(&args.set, &mut body)?;
    if let Some(m) = model {
        flags::apply(m, matches, &mut body);
        for warning in body::complete(m, &mut body)? {
            ui.warn(&warning);
        }
    }
    let body = Value::Object(body);
    match body::check_typed(&args.model, &body) {
        Some(result) => result?,
        None => ui.note(&format!(
            "{} is not built in: the input is sent unchecked (the server checks it)",
            args.model
        )),
    }
    if args.dry_run {
        if ui.mode() == Mode::Json {
            ui.event(json!({"event": "dry_run", "model_id": args.model, "body": body}));
        } else {
            print_value(ui, &body);
        }
        return Ok(());
    }
    let client = client(g, args.cancel_on_timeout)?;
    let journal = open_journal()?;
    let (job, handle) = journal.submit_json(&client, &args.model, &body).await?;
    ui.submitted(handle.request_id(), &job, &args.model, false);
    if args.no_wait {
        ui.finish_wait("submitted");
        if ui.mode() != Mode::Json {
            out(handle.request_id());
        }
        return Ok(());
    }
    finish(&client, &journal, &job, handle.request_id(), &args.out, ui).await
}

/// Waits for a recorded job, records its end, then prints or downloads its outputs.
async fn finish(
    client: &Client,
    journal: &Journal,
    job: &str,
    request_id: &str,
    out_args: &OutArgs,
    ui: &Ui,
) -> anyhow::Result<()> {
    let waited = journal
        .wait(client, job, request_id, |p| ui.progress(p))
        .await;
    let result = match waited {
        Ok(r) => {
            ui.finish_wait(r.state.as_str());
            r
        }
        Err(e) => {
            ui.finish_wait("failed");
            return Err(e.into());
        }
    };
    let output = result.output.unwrap_or_else(|| json!({}));
    ui.event(json!({"event": "output", "request_id": request_id, "output": output}));
    let urls = download::output_urls(&output);
    match &out_args.out {
        Some(dir) => {
            let mut downloader = download::Downloader::new(download::Options {
                max_bytes: out_args.max_download_mb.saturating_mul(1024 * 1024),
                retries: 4,
                stall: Duration::from_secs(60),
            })?;
            if urls.is_empty() && ui.mode() != Mode::Json {
                ui.note("the output holds no file URL; nothing to download");
                print_value(ui, &output);
            }
            let paths = downloader.download_all(&urls, dir, ui).await?;
            journal.record_downloaded(job, &paths)?;
            if ui.mode() != Mode::Json {
                for p in &paths {
                    out(&p.display().to_string());
                }
            }
        }
        None if ui.mode() != Mode::Json => {
            if urls.is_empty() {
                print_value(ui, &output);
            } else {
                for u in &urls {
                    out(u.as_str());
                }
            }
        }
        None => {}
    }
    Ok(())
}

async fn resume(
    g: &Global,
    key: Option<String>,
    out_args: &OutArgs,
    ui: &Ui,
) -> anyhow::Result<()> {
    let journal = open_journal()?;
    let targets: Vec<(String, String, String)> = match key {
        Some(key) => match journal.find(&key)? {
            Some(entry) => match entry.request_id {
                Some(r) => vec![(entry.job_id, r, entry.model_id)],
                None => {
                    return Err(UsageError(format!(
                        "job {} ({}) has no request id: its submit was never answered ({}); look for it in your RunComfy account before submitting again",
                        entry.job_id, entry.model_id, entry.state
                    ))
                    .into())
                }
            },
            None => {
                runcomfy::check_request_id(&key).map_err(|e| UsageError(e.to_string()))?;
                let job = journal.adopt("unknown", &key)?;
                vec![(job, key, "unknown".to_owned())]
            }
        },
        None => journal
            .unfinished()?
            .into_iter()
            .filter_map(|e| e.request_id.map(|r| (e.job_id, r, e.model_id)))
            .collect(),
    };
    if targets.is_empty() {
        ui.note("no unfinished jobs in the journal");
        ui.event(json!({"event": "nothing_to_resume"}));
        return Ok(());
    }
    let client = client(g, false)?;
    let mut first_failure = None;
    let count = targets.len();
    for (job, request_id, model_id) in targets {
        ui.submitted(&request_id, &job, &model_id, true);
        if let Err(e) = finish(&client, &journal, &job, &request_id, out_args, ui).await {
            let code = exit::code_of(&e);
            if count == 1 {
                return Err(e);
            }
            report(ui, &e, code);
            first_failure.get_or_insert(code);
        }
    }
    match first_failure {
        Some(code) => Err(Reported(code).into()),
        None => Ok(()),
    }
}

fn jobs(unfinished: bool, ui: &Ui) -> anyhow::Result<()> {
    let journal = open_journal()?;
    let entries = if unfinished {
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

async fn cancel(g: &Global, request_id: &str, ui: &Ui) -> anyhow::Result<()> {
    let cancellation = client(g, false)?.cancel(request_id).await?;
    if cancellation.outcome == runcomfy::CancelOutcome::Cancelled {
        // Best effort: the journal learns the job ended, so `resume` skips it.
        if let Ok(journal) = Journal::open_default() {
            if let Ok(Some(entry)) = journal.find(request_id) {
                let _ = journal.record_outcome(
                    &entry.job_id,
                    &Err(runcomfy::Error::Cancelled {
                        request_id: request_id.to_owned(),
                    }),
                );
            }
        }
    }
    print_value(
        ui,
        &json!({
            "request_id": cancellation.request_id,
            "status": cancellation.state.as_ref().map(|s| s.as_str().to_owned()),
            "outcome": cancellation.outcome.as_str(),
        }),
    );
    Ok(())
}

async fn models(
    g: &Global,
    search: Option<String>,
    category: Option<String>,
    limit: u32,
    offset: u32,
    ui: &Ui,
) -> anyhow::Result<()> {
    let mut query = ListModels::new().limit(limit).offset(offset);
    if let Some(s) = search {
        query = query.search(s);
    }
    if let Some(c) = category {
        query = query.category(c);
    }
    let list = client(g, false)?.list_models(&query).await?;
    if ui.mode() == Mode::Json {
        for m in &list.models {
            out(&serde_json::to_string(m)?);
        }
        return Ok(());
    }
    for m in &list.models {
        let price = match (m.base_price_usd, &m.price_unit) {
            (Some(p), Some(unit)) => format!(
                "${p}/{}",
                serde_json::to_value(unit)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
            (Some(p), None) => format!("${p}"),
            _ => "-".to_owned(),
        };
        let built_in = if flags::model(&m.model_id).is_some() {
            "*"
        } else {
            " "
        };
        out(&format!(
            "{built_in} {:<48} {:<14} {:<12} {}",
            m.model_id,
            m.categories.join(","),
            price,
            m.display_name.as_deref().unwrap_or("")
        ));
    }
    let total = list.total.map_or_else(|| "?".to_owned(), |t| t.to_string());
    ui.note(&format!(
        "{} of {total} models (* built in: typed flags with `runcomfy run MODEL --help`)",
        list.models.len()
    ));
    Ok(())
}

fn models_local(ui: &Ui) {
    for m in flags::MODELS {
        if ui.mode() == Mode::Json {
            out(&json!({"model_id": m.id, "summary": m.summary}).to_string());
        } else {
            out(&format!("{:<48} {}", m.id, m.summary));
        }
    }
}

async fn schema(g: &Global, model: &str, ui: &Ui) -> anyhow::Result<()> {
    runcomfy::check_model_id(model).map_err(|e| UsageError(e.to_string()))?;
    if let Some(info) = runcomfy::models::ALL.iter().find(|m| m.id == model) {
        let v: Value =
            serde_json::from_str(info.input_schema).context("the built-in schema is not JSON")?;
        print_value(ui, &v);
        return Ok(());
    }
    let entry = client(g, false)?.get_model(model).await?;
    match entry.input_schema {
        Some(s) => {
            print_value(ui, &s);
            Ok(())
        }
        None => bail!("the catalog has no input schema for {model}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(args: &[&str]) -> Option<&'static str> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        model_named(&args).map(|m| m.id)
    }

    #[test]
    fn the_model_is_the_first_positional_of_run() {
        let i2v = "happyhorse/happyhorse-1.0/image-to-video";
        let t2i = "wan-ai/wan-2.7/text-to-image";
        assert_eq!(named(&["runcomfy", "run", i2v, "--prompt", t2i]), Some(i2v));
        assert_eq!(
            named(&["runcomfy", "--json", "run", "--input", "x.json", t2i]),
            Some(t2i)
        );
        assert_eq!(named(&["runcomfy", "run", "--set", i2v, t2i]), Some(t2i));
        assert_eq!(named(&["runcomfy", "schema", i2v]), None);
        assert_eq!(named(&["runcomfy", "run", "acme/other/model"]), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}
