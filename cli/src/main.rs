//! `runcomfy`: run RunComfy models from the command line.
//!
//! `runcomfy run MODEL --flag value ...` validates the input through the generated model,
//! records the submit in the job store before sending it, records the request id the moment
//! it returns, waits with a progress display, and prints or downloads the outputs. See
//! `cli/README.md` and `runcomfy --help`.
//!
//! The layout is cargo's and rustup's: `cli` parses, `commands/<command>.rs` runs one command
//! each, and the modules beside them are shared (`body`, `flags`, `deliver`, `download`,
//! `ui`, `exit`).

mod body;
mod cli;
mod commands;
mod deliver;
mod download;
mod exit;
mod flags;
mod journal;
mod known;
mod notices;
mod report;
#[cfg(test)]
mod reserved;
mod rows;
mod store;
mod ui;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use crate::commands::{Ctx, Phase};
use crate::exit::Reported;
use crate::ui::{err, Ui};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let (cli, matches) = cli::parse(&args);
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
    let ui = Arc::new(Ui::new(cli.global.json, cli.global.quiet));
    notices::install(ui.clone());
    let ctx = Ctx::new(cli.command.network(), ui);
    let result = runtime.block_on(run(cli.command, &ctx, &matches));
    // Every way the command ended comes here (only a usage error exits earlier, before any
    // store is open): the stores it opened are closed.
    let closed = runtime.block_on(ctx.close_stores());
    let result = match (result, closed) {
        (Ok(()), closed) => closed,
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(close)) => {
            ctx.ui.warn(&exit::message(&close));
            Err(e)
        }
    };
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            let code = exit::code_of(&e);
            if !e.is::<Reported>() {
                exit::report(
                    &ctx.ui,
                    &e,
                    code,
                    matches!(ctx.phase(), Phase::Batch { .. }),
                );
            }
            ExitCode::from(code)
        }
    }
}

/// Runs the command; Ctrl-C (SIGINT) and SIGTERM stop it the way the money rules want. The
/// first signal: a submit in flight is awaited so its request id is recorded, and a batch
/// stops submitting, lets its submits in flight record their ids and ends with its summary;
/// anything else stops now with a message that says what goes on at RunComfy. A second
/// signal stops at once.
async fn run(
    command: commands::Command,
    ctx: &Ctx,
    matches: &clap::ArgMatches,
) -> anyhow::Result<()> {
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            return Err(exit::Failure {
                code: exit::OTHER,
                message: format!("cannot listen for signals: {e}"),
            }
            .into())
        }
    };
    let command = command.exec(ctx, matches);
    tokio::pin!(command);
    let first = tokio::select! {
        r = &mut command => return r,
        name = signals.next() => name,
    };
    match ctx.phase() {
        Phase::Submitting => {
            // A submit in flight may make a paid job: wait for its answer so the request id
            // is recorded, unless asked again.
            ctx.ui.note(&format!("{first}: the submit is in flight: waiting for its answer so its request id is recorded ({first} again to stop now)"));
            ctx.ui.event(serde_json::json!({"event": "interrupted", "signal": first, "waiting_for": "submit"}));
            tokio::select! {
                r = &mut command => return r,
                _ = ctx.left(&Phase::Submitting) => {}
                _ = signals.next() => {}
            }
        }
        Phase::Batch { .. } if ctx.stop_batch() => {
            ctx.ui.note(&format!("{first}: the batch stops: nothing new is sent, submits in flight wait for their answers so every request id is recorded ({first} again to stop now)"));
            ctx.ui.event(serde_json::json!({"event": "interrupted", "signal": first, "waiting_for": "batch submits"}));
            tokio::select! {
                r = &mut command => {
                    ctx.ui.note(&ctx.interrupted_message());
                    return r;
                }
                _ = signals.next() => {}
            }
        }
        _ => {}
    }
    Err(exit::Failure {
        code: exit::INTERRUPTED,
        message: format!("{first}: {}", ctx.interrupted_message()),
    }
    .into())
}

/// SIGINT and SIGTERM, as one stream of their names.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// The next signal's name.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "interrupted (SIGINT)",
            _ = self.terminate.recv() => "terminated (SIGTERM)",
        }
    }
}
