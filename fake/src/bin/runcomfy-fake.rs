//! `runcomfy-fake`: the fake RunComfy API as a process of its own (see
//! `runcomfy_fake::standalone`).

use std::io::Write;
use std::process::ExitCode;

use runcomfy_fake::standalone::{Options, USAGE};

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("runcomfy-fake: {e}");
            return ExitCode::from(2);
        }
    };
    if options.help {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runcomfy-fake: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let server = match options.builder().start().await {
            Ok(server) => server,
            Err(e) => {
                eprintln!("runcomfy-fake: {e}");
                return ExitCode::FAILURE;
            }
        };
        // The first line of standard output is the base URL: a test reads it instead of
        // guessing a port or sleeping.
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{}", server.base_url())
            .and_then(|()| out.flush())
            .is_err()
        {
            return ExitCode::FAILURE;
        }
        drop(out);
        // The token is the one this process was given (a test token): said so a client
        // knows what to send.
        eprintln!(
            "runcomfy-fake: {} models; {}",
            server.model_ids().len(),
            server.token().map_or_else(
                || "any token accepted".to_owned(),
                |t| format!("token required: RUNCOMFY_TOKEN={t}")
            )
        );
        std::future::pending::<()>().await;
        ExitCode::SUCCESS
    })
}
