//! The workspace's one rule for tests that need something a machine may lack: a PostgreSQL
//! server, a headless Chromium, the `shared/` folder beside the checkout.
//!
//! ```ignore
//! #[runcomfy_testenv::needs(postgres)]
//! #[tokio::test]
//! async fn claims_on_postgres() {
//!     let url = runcomfy_testenv::pg_url();
//!     // ...
//! }
//! ```
//!
//! On a machine without the service the test is compiled with `#[ignore = "<why>"]`, so
//! `cargo test` reports it as `ignored, needs PostgreSQL: ...` and never passes it silently.
//! When the run requires the service (`RUNCOMFY_TEST_REQUIRE=all`, as `.ci/run` sets after
//! starting both), the test runs and fails with the reason instead. No test installs
//! anything.
//!
//! Beside that rule: [`output_within`], the one way the tests wait for a child process (a
//! deadline, then a kill and a failure that shows what the child printed), and [`browser`],
//! a headless Chromium driven over its DevTools protocol.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod browser;

#[allow(dead_code)]
mod detect {
    include!("../macros/src/detect.rs");
}

pub use detect::{Service, CHROMIUM_ENV, PG_ENV, REQUIRE_ENV};
pub use runcomfy_testenv_macros::needs;

/// The checkout's root folder.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What a test marked `#[needs(service)]` uses of it; panics with the reason when it is
/// absent (reached only when the run requires it, or the environment changed since the build).
pub fn find(service: Service) -> String {
    match service.find(&workspace()) {
        Ok(found) => found,
        Err(why) if service.required() => panic!("{why} (required by {REQUIRE_ENV})"),
        Err(why) => panic!("{why} (it was there when the tests were built: build them again)"),
    }
}

/// The PostgreSQL server's URL, for a test marked `#[needs(postgres)]`.
pub fn pg_url() -> String {
    find(Service::Postgres)
}

/// The Chromium binary, for a test marked `#[needs(chromium)]`.
pub fn chromium() -> PathBuf {
    PathBuf::from(find(Service::Chromium))
}

/// The `shared/` folder, for a test marked `#[needs(shared)]`.
pub fn shared() -> PathBuf {
    PathBuf::from(find(Service::Shared))
}

/// How long a test waits for a child process by default.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// Deadlines on `std::process`: `cmd.output_within(DEADLINE)`,
/// `child.wait_within(DEADLINE)`.
pub trait Within {
    /// What this ends with: a command's or a child's [`Output`].
    fn within(self, limit: Duration) -> Output;
}

impl Within for &mut Command {
    fn within(self, limit: Duration) -> Output {
        output_within(self, limit)
    }
}

impl Within for Child {
    fn within(self, limit: Duration) -> Output {
        wait_within(self, limit)
    }
}

/// Runs `cmd` to its end with its output captured (its standard input empty), for at most
/// `limit`; on the deadline it kills the process and panics with what it printed so far.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program()));
    wait_within(child, limit)
}

/// Waits for a spawned `child` (its stdout and stderr piped, or not captured) for at most
/// `limit`; on the deadline it kills the process and panics with what it printed so far.
pub fn wait_within(mut child: Child, limit: Duration) -> Output {
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() < limit => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) | Err(_) => break None,
        }
    };
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        panic!(
            "process {} did not end within {limit:?}; killed.\n--- stdout\n{}\n--- stderr\n{}",
            child.id(),
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// A fresh, empty PostgreSQL schema on the test server (for a test marked
/// `#[needs(postgres)]`): tests that run at once never see each other's tables.
pub struct PgSchema {
    /// The server's URL, as `RUNCOMFY_TEST_PG_URL` gives it.
    pub server: String,
    /// The schema's name.
    pub schema: String,
    /// A store location that works in this schema (the server's URL with `search_path` set).
    pub location: String,
}

/// Creates a schema named after `test`, this process and a counter (dropped first if a
/// crashed run left it).
pub async fn pg_schema(test: &str) -> PgSchema {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let server = pg_url();
    let schema = format!(
        "t_{}_{}_{}",
        test,
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let (client, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to {PG_ENV}: {e}"));
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .await
        .unwrap_or_else(|e| panic!("creating the schema {schema}: {e}"));
    let separator = if server.contains('?') { '&' } else { '?' };
    let location = format!("{server}{separator}options=-c%20search_path%3D{schema}");
    PgSchema {
        server,
        schema,
        location,
    }
}
