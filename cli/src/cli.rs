//! The top-level command line: the global options, the environment, and the one step clap's
//! derive cannot do alone (the flags of the model named after `run`, added before parsing).

use std::ffi::OsString;
use std::time::Duration;

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser};

use crate::commands::Command;
use crate::{exit, flags, known};

const ENVIRONMENT: &str = "\
Environment:
  RUNCOMFY_TOKEN              the API token (required to send anything; never printed)
  RUNCOMFY_BASE_URL           the API (default https://model-api.runcomfy.net)
  RUNCOMFY_DATA_DIR           the data folder: the default job store jobs.db (default: <data dir>/runcomfy;
                              the old name RUNCOMFY_JOURNAL_DIR is still read)
  RUNCOMFY_STORE              the job store: a SQLite file, postgres:// URL or libpq key=value string (same as --store)
  RUNCOMFY_POLL_INTERVAL_MS   same as --poll-interval
  RUNCOMFY_TIMEOUT            same as --timeout
  RUNCOMFY_RETRIES            same as --retries";

/// Run RunComfy models: flags generated from each model's schema, a crash-safe job store,
/// progress, downloads.
#[derive(Parser)]
#[command(name = "runcomfy", version, about, after_help = help_footer())]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

fn help_footer() -> String {
    format!("{}\n\n{ENVIRONMENT}", exit::TABLE)
}

/// Options every command takes.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Print one JSON object per event (and per result line) on standard output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Show no progress; print only results and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// How a command that waits for jobs polls them (`run`, `resume`, `batch`).
#[derive(Args, Debug, Clone, Default)]
pub struct WaitArgs {
    /// Poll the job every MS milliseconds (default: 1 s growing to 8 s).
    #[arg(long, env = "RUNCOMFY_POLL_INTERVAL_MS", value_name = "MS")]
    pub poll_interval: Option<u64>,
    /// Stop waiting after this long (`90s`, `10m`, `500ms`; `0` waits without limit; default 30m).
    #[arg(long, env = "RUNCOMFY_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
}

/// How a command that calls the API retries a failed request.
#[derive(Args, Debug, Clone, Default)]
pub struct RetryArgs {
    /// Retries of a failed request (never of a submit that may have reached the server).
    #[arg(long, env = "RUNCOMFY_RETRIES", value_name = "N")]
    pub retries: Option<u32>,
}

/// Parses the command line (exiting with clap's message and code on an error); returns the
/// parsed command and the raw matches (`run` reads its model flags from them).
pub fn parse(args: &[OsString]) -> (Cli, ArgMatches) {
    // Only the model named on the command line gets its flags: a quick start with any number
    // of models.
    let mut command = Cli::command();
    let named = model_named(args);
    if let Some(m) = named {
        command = command.mut_subcommand("run", |run| {
            let about = if m.summary.is_empty() {
                format!("Run {}", m.id)
            } else {
                format!("Run {}: {}", m.id, m.summary)
            };
            // The usage line names what the model needs (given as flags, or in --input/--set).
            let required: Vec<String> = m
                .flags
                .iter()
                .filter(|f| f.required && f.fixed.is_none())
                .map(|f| format!("--{} <{}>", f.name, f.wire.to_ascii_uppercase()))
                .collect();
            let usage = format!("runcomfy run {} {} [OPTIONS]", m.id, required.join(" "));
            run.args(flags::args(m)).about(about).override_usage(usage)
        });
    }
    let matches = match command.try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            // Model flags given to an id that is not built in: most often a typo in the id.
            if let (None, clap::error::ErrorKind::UnknownArgument) = (named, e.kind()) {
                if let Some(id) = run_positional(args) {
                    eprintln!(
                        "error: {id} is not built into this runcomfy, so it takes no model flags{}; a model of the catalog without a built-in schema takes --input and --set with --unchecked (`runcomfy models --local` lists the built-in models)",
                        known::did_you_mean(id, known::builtin_ids()),
                    );
                    std::process::exit(exit::USAGE.into());
                }
            }
            if e.kind() == clap::error::ErrorKind::InvalidSubcommand {
                suggest_command(args, &e);
            }
            e.exit()
        }
    };
    match Cli::from_arg_matches(&matches) {
        Ok(c) => (c, matches),
        Err(e) => e.exit(),
    }
}

/// An unknown subcommand with a close one (`rnu`, `jbos`) that clap did not suggest: its
/// error with our tip, and exit 2.
fn suggest_command(args: &[OsString], e: &clap::Error) {
    let rendered = e.render().to_string();
    if rendered.contains("similar") {
        return;
    }
    let Some(word) = args
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find(|a| !a.starts_with('-'))
    else {
        return;
    };
    let names: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    if let Some(close) = known::closest_word(word, &names) {
        let (head, tail) = rendered.split_once('\n').unwrap_or((rendered.as_str(), ""));
        eprintln!("{head}\n\n  tip: did you mean '{close}'?\n{tail}");
        std::process::exit(exit::USAGE.into());
    }
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
    "--store",
];

/// The words after `run`, when the command is `run`.
fn run_words(args: &[OsString]) -> Option<Vec<&str>> {
    let words: Vec<&str> = args.iter().skip(1).filter_map(|a| a.to_str()).collect();
    let run_at = words.iter().position(|w| *w == "run")?;
    Some(words[run_at + 1..].to_vec())
}

/// The first positional argument of `run`: the model id as typed.
fn run_positional(args: &[OsString]) -> Option<&str> {
    let words = run_words(args)?;
    let mut rest = words.into_iter();
    while let Some(w) = rest.next() {
        if VALUE_OPTIONS.contains(&w) {
            rest.next();
        } else if !w.starts_with('-') {
            return Some(w);
        }
    }
    None
}

/// The built-in model `runcomfy run` names: its first positional argument, else any argument
/// that is a built-in model id.
fn model_named(args: &[OsString]) -> Option<&'static flags::ModelFlags> {
    run_positional(args)
        .and_then(flags::model)
        .or_else(|| run_words(args)?.into_iter().find_map(|w| flags::model(w)))
}

/// `90s`, `10m`, `1h 30m`, `500ms` (humantime's grammar), or plain seconds (`0`, `2.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is out of range"));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration such as 90s, 10m or 500ms: {e}"))
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

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
