//! `runcomfy run MODEL`: merge and check the input, then submit through a client built with
//! the job store (intent recorded before the POST, request id the moment it returns, a
//! failed submit `refused` or `uncertain`), then wait and deliver the outputs
//! (`crate::deliver`).

use std::path::PathBuf;

use clap::ArgMatches;
use serde_json::{json, Map, Value};

use crate::body::{self, UsageError};
use crate::deliver::{self, OutArgs, Target};
use crate::flags;
use crate::known::{self, Known};
use crate::ui::{out, Mode};

use super::{Ctx, Phase};

/// The text after `runcomfy run --help`.
pub const AFTER_HELP: &str = "Generated models take one flag per input field: `runcomfy run MODEL --help` lists them.\nOther models of the catalog take `--input` and `--set` only, and `--unchecked`: they are sent as given.\nLater sources win: --input, then --set, then the model's flags.";

/// Validate an input, submit it, wait, and print or download the outputs.
#[derive(clap::Args, Debug)]
pub struct Args {
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
    /// Send to a model this runcomfy has no schema for, with --input and --set only, as
    /// given (the server checks it). Built-in models are always checked.
    #[arg(long)]
    unchecked: bool,
    /// Cancel the job when --timeout passes (default: leave it running, to `resume` later).
    #[arg(long)]
    cancel_on_timeout: bool,
    /// The job store: a postgres:// URL or a SQLite file (default: RUNCOMFY_STORE, else
    /// jobs.db in the data folder).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    #[command(flatten)]
    out: OutArgs,
    /// How the job is polled.
    #[command(flatten)]
    pub wait: crate::cli::WaitArgs,
    /// How failed requests are retried.
    #[command(flatten)]
    pub retry: crate::cli::RetryArgs,
}

/// `matches` are those of the `run` subcommand, holding the model's flags.
pub async fn exec(ctx: &Ctx, args: Args, matches: &ArgMatches) -> anyhow::Result<()> {
    let ui = &ctx.ui;
    ctx.set_phase(Phase::Preparing);
    runcomfy::check_model_id(&args.model).map_err(|e| UsageError(e.to_string()))?;
    let known = known::resolve(ctx, &args.model, args.unchecked).await?;
    let mut body = match &args.input {
        Some(path) => body::read_input_file(path)?,
        None => Map::new(),
    };
    body::apply_sets(&args.set, &mut body)?;
    let mut as_given = None;
    if let Known::BuiltIn(m) = known {
        flags::apply(m, matches, &mut body);
        as_given = args.dry_run.then(|| Value::Object(body.clone()));
        for warning in body::complete(m, &mut body)? {
            ui.warn(&warning);
        }
    }
    let body = Value::Object(body);
    match body::check_typed(&args.model, &body) {
        Some(result) => result?,
        None => ui.note(&format!(
            "{} has no schema in this runcomfy: the input is sent unchecked (the server checks it)",
            args.model
        )),
    }
    if args.dry_run {
        // Local files are shown by name and size, not as the data: URIs that would be sent.
        let shown = match &as_given {
            Some(given) => body::files_shown(given, &body),
            None => body.clone(),
        };
        if ui.mode() == Mode::Json {
            ui.event(json!({"event": "dry_run", "model_id": args.model, "body": shown}));
        } else {
            ctx.print_value(&shown);
        }
        return Ok(());
    }
    let store = crate::store::open_jobs(ctx, args.store.as_deref()).await?;
    let client = ctx.client_with(Some(store.clone()), args.cancel_on_timeout)?;
    ctx.set_phase(Phase::Submitting);
    let submitted = std::time::Instant::now();
    let handle = client.submit_json(&args.model, &body).await?;
    let key = handle
        .store_key()
        .ok_or_else(|| anyhow::anyhow!("the job store returned no key for the submit"))?;
    ctx.set_phase(Phase::Waiting {
        request_id: handle.request_id().to_owned(),
    });
    ui.submitted(handle.request_id(), &key.0.to_string(), &args.model, false);
    if args.no_wait {
        if let Some(dir) = args.out.out.as_deref() {
            deliver::want_outputs(&store, key, dir).await?;
        }
        ui.finish_wait("submitted");
        if ui.mode() != Mode::Json {
            out(handle.request_id());
        }
        return Ok(());
    }
    let target = Target {
        key,
        handle: &handle,
        submitted: Some(submitted),
        out: args.out.out.as_deref(),
    };
    deliver::finish(ctx, &client, &store, target, args.out.max_download_mb).await
}
