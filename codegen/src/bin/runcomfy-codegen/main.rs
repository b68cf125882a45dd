//! `runcomfy-codegen`: check schema folders and generate Rust from them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod fetch;

// Generation builds and drops millions of small token trees; mimalloc makes it about a
// quarter faster than the system allocator (see README, Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "runcomfy-codegen",
    version,
    about = "Typed Rust clients from RunComfy model schemas"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check every model under DIR; print every problem as `file#/pointer: message`, and
    /// every shape typed loosely or left unchecked as `warning: file#/pointer: message`.
    Check {
        /// The schema folder (`<model_id>/input.json`, optional `output.json`).
        dir: PathBuf,
        /// Refuse a schema with a shape the generator cannot type (instead of typing it as
        /// `serde_json::Value` with a warning).
        #[arg(long)]
        strict: bool,
    },
    /// Generate Rust for every model under DIR.
    Generate {
        /// The schema folder.
        dir: PathBuf,
        /// Write here (only when the content changed) instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Attach endpoint methods through an extension trait with this name (for your own crate).
        #[arg(long, value_name = "NAME")]
        endpoint_trait: Option<String>,
        /// Gate each vendor's models behind a cargo feature named after it.
        #[arg(long)]
        vendor_features: bool,
        /// Refuse a schema with a shape the generator cannot type (instead of typing it as
        /// `serde_json::Value` with a warning).
        #[arg(long)]
        strict: bool,
    },
    /// Import a RunComfy model API page (saved as text or HTML, any language): writes
    /// DIR/<model_id>/input.json and output.json, and prints the model id.
    Import {
        /// The saved page.
        page: PathBuf,
        /// The schema folder to write into.
        #[arg(short, long, value_name = "DIR", default_value = "schemas")]
        output: PathBuf,
    },
    /// Bring a schema folder up to date with RunComfy's catalog: every model's
    /// `<model_id>/input.json` (and `output.json` when the catalog gives one), written
    /// byte-stable, with a report of what changed for users of the generated API.
    /// Exit codes: 0 done, 1 a failure (nothing or only the good schemas written), 3 with
    /// `--check` when the folder differs from the catalog.
    Sync {
        /// The environment variable holding the RunComfy API token.
        #[arg(long, value_name = "NAME", default_value = "RUNCOMFY_TOKEN")]
        token_env: String,
        /// The API's base URL.
        #[arg(
            long,
            value_name = "URL",
            default_value = "https://model-api.runcomfy.net"
        )]
        base_url: String,
        /// Only these models: model ids, or vendors (the first segment of an id); repeatable.
        /// Models outside are neither written nor removed.
        #[arg(long, value_name = "VENDOR|MODEL_ID", num_args = 1..)]
        only: Vec<String>,
        /// The schema folder.
        #[arg(short, long, value_name = "DIR", default_value = "schemas")]
        output: PathBuf,
        /// Write nothing; exit 3 when the folder differs from the catalog (a CI drift check).
        #[arg(long)]
        check: bool,
    },
    /// Compare two schema folders: what changed for users of the generated API (breaking,
    /// compatible, docs only, removed models), judged on the normalized schemas.
    Diff {
        /// The schema folder before.
        old: PathBuf,
        /// The schema folder after.
        new: PathBuf,
        /// `text` (one line per change and a summary line) or `json` (for tools).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Write COUNT synthetic models shaped like the real catalog under DIR (for benchmarks).
    #[command(hide = true)]
    Synth {
        /// Where to write.
        dir: PathBuf,
        /// How many models.
        #[arg(long, default_value_t = 500)]
        count: usize,
    },
}

/// How a report is printed.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// Lines for people.
    Text,
    /// One JSON document.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { dir, strict } => {
            // Runs the whole pipeline, so "ok" means every model generates.
            let options = runcomfy_codegen::Options {
                mode: mode(strict),
                ..runcomfy_codegen::Options::default()
            };
            match runcomfy_codegen::generate(&dir, &options) {
                Ok(generated) => {
                    print_warnings(&generated.warnings);
                    match generated.warnings.len() {
                        0 => println!("{} models ok", generated.models.len()),
                        n => println!("{} models ok, {n} warnings", generated.models.len()),
                    }
                    ExitCode::SUCCESS
                }
                Err(runcomfy_codegen::Error::Schema(diags)) => {
                    eprint!("{diags}");
                    eprintln!("{} problems", diags.items().len());
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Import { page, output } => match import(&page, &output) {
            Ok(model_id) => {
                println!("{model_id}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Sync {
            token_env,
            base_url,
            only,
            output,
            check,
        } => match sync(&token_env, &base_url, &only, &output, check) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Diff { old, new, format } => {
            match runcomfy_codegen::diff::compare_dirs(&old, &new) {
                Ok(report) => {
                    match format {
                        Format::Text => print!("{}", report.to_text()),
                        Format::Json => println!("{:#}", report.to_json()),
                    }
                    ExitCode::SUCCESS
                }
                Err(diags) => {
                    eprint!("{diags}");
                    eprintln!("{} problems: nothing compared", diags.items().len());
                    ExitCode::FAILURE
                }
            }
        }
        Command::Synth { dir, count } => match runcomfy_codegen::synth::write(&dir, count) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
        Command::Generate {
            dir,
            output,
            endpoint_trait,
            vendor_features,
            strict,
        } => {
            let mut options = match endpoint_trait {
                Some(name) => runcomfy_codegen::Options::for_crate(&name),
                None => runcomfy_codegen::Options::for_runtime(false),
            };
            options.vendor_features = vendor_features;
            options.mode = mode(strict);
            let result = match &output {
                Some(out) => runcomfy_codegen::build(&dir, out, &options).map(|r| {
                    print_warnings(&r.warnings);
                    eprintln!(
                        "{} models -> {}{}",
                        r.models.len(),
                        out.display(),
                        if r.written { "" } else { " (unchanged)" }
                    );
                }),
                None => runcomfy_codegen::generate(&dir, &options).map(|g| {
                    print_warnings(&g.warnings);
                    print!("{}", g.code)
                }),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn mode(strict: bool) -> runcomfy_codegen::Mode {
    if strict {
        runcomfy_codegen::Mode::Strict
    } else {
        runcomfy_codegen::Mode::Graceful
    }
}

/// Each warning on standard error, as `warning: file#/pointer: message`.
fn print_warnings(warnings: &[runcomfy_codegen::Diagnostic]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

/// Reads `page`, writes its schemas under `dir`, returns the model id.
fn import(page: &std::path::Path, dir: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context;
    let bytes = std::fs::read(page).with_context(|| format!("{}: cannot read", page.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let imported = runcomfy_codegen::import::import_page(&text)
        .with_context(|| format!("{}: cannot import", page.display()))?;
    let folder = dir.join(&imported.model_id);
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("{}: cannot create", folder.display()))?;
    let mut files = vec![("input.json", imported.input_text())];
    if let Some(output) = imported.output_text() {
        files.push(("output.json", output));
    }
    for (name, text) in files {
        let path = folder.join(name);
        std::fs::write(&path, text).with_context(|| format!("{}: cannot write", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(imported.model_id)
}

/// `sync`: fetches every page, then decides, reports and writes.
fn sync(
    token_env: &str,
    base_url: &str,
    only: &[String],
    dir: &std::path::Path,
    check: bool,
) -> anyhow::Result<ExitCode> {
    let token = match std::env::var(token_env) {
        Ok(t) if !t.trim().is_empty() => t,
        _ => anyhow::bail!(
            "{token_env} is not set: the catalog needs a RunComfy API token in {token_env} \
             (or name another variable with --token-env)"
        ),
    };
    let source = fetch::Source {
        base_url,
        token: token.trim(),
        token_env,
    };
    // Every page is read before anything is written: a failure halfway writes nothing.
    let entries = fetch::catalog(&source)?;
    let plan = runcomfy_codegen::sync::plan(dir, &entries, only);
    let shown = dir.display();

    for problem in plan.old_problems.items() {
        eprintln!("warning: the schema in the folder does not generate: {problem}");
    }
    for s in &plan.skipped {
        eprintln!("skipped {}: {}", s.id, s.reason);
    }
    print!("{}", plan.report.to_text());
    let failed = !plan.failures.is_empty();
    if failed {
        eprint!("{}", plan.failures);
        eprintln!(
            "{} problems: those models were not written (their files are left as they were)",
            plan.failures.items().len()
        );
    }
    let code = if check {
        for (path, _) in &plan.writes {
            println!("would write {}", path.display());
        }
        for id in &plan.removed {
            println!("would remove {}", dir.join(id).display());
        }
        if plan.is_up_to_date() {
            println!(
                "{shown}: up to date with the catalog ({} models)",
                plan.models
            );
            ExitCode::SUCCESS
        } else {
            println!(
                "{shown}: differs from the catalog ({} files to write, {} models to remove; --check writes nothing)",
                plan.writes.len(),
                plan.removed.len()
            );
            ExitCode::from(3)
        }
    } else if plan.is_up_to_date() {
        println!(
            "{shown}: up to date with the catalog ({} models), nothing written",
            plan.models
        );
        ExitCode::SUCCESS
    } else {
        let applied = plan
            .apply()
            .map_err(|(path, e)| anyhow::anyhow!("{}: cannot write: {e}", path.display()))?;
        println!(
            "{shown}: {} files written, {} files removed",
            applied.written.len(),
            applied.removed.len()
        );
        ExitCode::SUCCESS
    };
    Ok(if failed { ExitCode::FAILURE } else { code })
}
