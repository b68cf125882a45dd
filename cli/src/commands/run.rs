//! `runcomfy run MODEL`: merge and check the input, record it, submit, record the request
//! id, then wait and deliver the outputs (`crate::deliver`).

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
    #[command(flatten)]
    out: OutArgs,
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
    if let Known::BuiltIn(m) = known {
        flags::apply(m, matches, &mut body);
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
        if ui.mode() == Mode::Json {
            ui.event(json!({"event": "dry_run", "model_id": args.model, "body": body}));
        } else {
            ctx.print_value(&body);
        }
        return Ok(());
    }
    let client = ctx.client(args.cancel_on_timeout)?;
    let journal = ctx.journal()?;
    ctx.set_phase(Phase::Submitting);
    let (job, handle) = journal.submit_json(&client, &args.model, &body).await?;
    ctx.set_phase(Phase::Waiting {
        request_id: handle.request_id().to_owned(),
    });
    ui.submitted(handle.request_id(), &job, &args.model, false);
    if args.no_wait {
        ui.finish_wait("submitted");
        if ui.mode() != Mode::Json {
            out(handle.request_id());
        }
        return Ok(());
    }
    let target = Target {
        job: &job,
        request_id: handle.request_id(),
        out: args.out.out.as_deref(),
        saved: &[],
    };
    deliver::finish(ctx, &client, &journal, target, args.out.max_download_mb).await
}
