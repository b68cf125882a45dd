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
    let ctx = Ctx::new(cli.global, ui);
    let result = runtime.block_on(async {
        let command = cli.command.exec(&ctx, &matches);
        tokio::pin!(command);
        tokio::select! {
            r = &mut command => return r,
            _ = tokio::signal::ctrl_c() => {}
        }
        if ctx.phase() == Phase::Submitting {
            // A submit in flight may make a paid job: wait for its answer so the request id
            // is recorded, unless asked again.
            ctx.ui.note("interrupted during the submit: waiting for its answer so its request id is recorded (Ctrl-C again to stop now)");
            ctx.ui.event(serde_json::json!({"event": "interrupted", "waiting_for": "submit"}));
            tokio::select! {
                r = &mut command => return r,
                _ = ctx.left(&Phase::Submitting) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(exit::Failure {
            code: exit::INTERRUPTED,
            message: ctx.interrupted_message(),
        }
        .into())
    });
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
                exit::report(&ctx.ui, &e, code);
            }
            ExitCode::from(code)
        }
    }
}
