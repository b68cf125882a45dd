//! The chaos scenarios of `scripts/chaos`: real `runcomfy` processes against the
//! `runcomfy-fake` binary and a real store, with faults thrown at them. Each scenario checks,
//! after a final re-run: at most one paid submit per row, every paid request id in the store
//! (or its row uncertain, the one window no client closes without an idempotency key), every
//! paid output saved exactly once and identical to the server's, every command ended by
//! itself within its deadline, and neither the token nor a database password printed.
//!
//! Each prints one `chaos:` line (the table in `docs/chaos.md`). These are the CI sizes; the
//! full sizes come from `RUNCOMFY_CHAOS_ROWS` and `RUNCOMFY_CHAOS_FAULTS` (`scripts/chaos
//! --full`). SIGKILLed workers are the kill tests (`cli/tests/kill.rs`), in the same table.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::fleet::{check, env_number, Fake, Figures, Rng, Work, BIN, I2V, TOKEN};
use runcomfy_testenv::{Within as _, DEADLINE};
use serde_json::json;

/// How long one worker may take before the scenario counts it as never ending (and fails).
const WORKER_DEADLINE: Duration = Duration::from_secs(300);

fn rows() -> u64 {
    env_number("RUNCOMFY_CHAOS_ROWS", 30)
}

fn faults() -> u64 {
    env_number("RUNCOMFY_CHAOS_FAULTS", 4)
}

fn fake() -> Fake {
    Fake::start(&[
        "--queue",
        "100ms",
        "--run",
        "300ms",
        "--serve-outputs",
        "4096",
    ])
}

fn signal(child: &Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a child's pid");
    let _ = rustix::process::kill_process(pid, sig);
}

/// Runs a worker to its end (or fails the scenario at the deadline); its output goes to
/// `workers.log`.
fn finish(work: &Work, child: Child) -> Output {
    let o = child.within(WORKER_DEADLINE);
    assert!(
        o.status.code().is_some(),
        "a worker did not end by itself: {:?}\n{}",
        o.status,
        log(work)
    );
    o
}

fn log(work: &Work) -> String {
    std::fs::read_to_string(work.path("workers.log")).unwrap_or_default()
}

/// How many of `secrets` appear in what the workers printed.
fn secrets_printed(work: &Work, secrets: &[&str]) -> usize {
    let log = log(work);
    secrets.iter().filter(|s| log.contains(*s)).count()
}

/// The last run: no fault, it ends the batch (exit 0, or 7 with uncertain rows).
fn last_run(fake: &Fake, work: &Work, store: &str, name: &str) {
    let child = work
        .worker(fake, store, name, 16)
        .spawn()
        .expect("a worker starts");
    let o = finish(work, child);
    assert!(
        matches!(o.status.code(), Some(0 | 7)),
        "the last run: {:?}\n{}",
        o.status,
        log(work)
    );
}

/// The scenario's line of the table, and the checks every scenario shares.
fn report(scenario: &str, backend: &str, f: &Figures, commands: usize, secrets: usize) {
    println!(
        "chaos: scenario={scenario} backend={backend} rows={} faults={} server_jobs={} max_jobs_per_input={} missing_ids={} uncertain={} outputs_saved={}/{} extra_copies={} commands={commands} not_ended=0 secrets_printed={secrets}",
        f.rows, f.kills, f.server_jobs, f.max_jobs_per_input, f.missing_ids, f.uncertain, f.files_identical, f.succeeded, f.extra_copies
    );
    assert_eq!(secrets, 0, "{scenario}: a secret was printed");
}

/// Ctrl-C and SIGTERM at random moments (submits and waits in flight), each worker started
/// again: a signal never leaves a row uncertain, since every submit in flight gets its
/// answer recorded first.
#[test]
fn signals_with_submits_and_waits_in_flight() {
    let (rows, signals) = (rows(), faults());
    let fake = fake();
    let work = Work::new(rows);
    let store = work.path("jobs.db").display().to_string();
    let mut rng = Rng::new();
    for i in 0..signals {
        let child = work
            .worker(&fake, &store, "chaos", 16)
            .spawn()
            .expect("a worker starts");
        std::thread::sleep(Duration::from_millis(150 + rng.below(600)));
        let sig = if i % 2 == 0 {
            rustix::process::Signal::INT
        } else {
            rustix::process::Signal::TERM
        };
        signal(&child, sig);
        finish(&work, child);
    }
    last_run(&fake, &work, &store, "chaos");
    let f = check(&fake, &work, &store, "chaos", rows, signals);
    assert_eq!(
        f.uncertain,
        0,
        "a signal left a row uncertain\n{}",
        log(&work)
    );
    report(
        "signals",
        "sqlite",
        &f,
        signals as usize + 1,
        secrets_printed(&work, &[TOKEN]),
    );
}

/// 429 storms on the submits, at the start and mid-batch: every worker pauses, nothing is
/// paid twice, the batch ends.
#[test]
fn a_rate_limit_storm() {
    let (rows, storms) = (rows(), faults());
    let fake = fake();
    let work = Work::new(rows);
    let store = work.path("jobs.db").display().to_string();
    fake.inject("submit", 8, json!({"status": 429, "retry_after": "1"}));
    let child = work
        .worker(&fake, &store, "storm", 16)
        .spawn()
        .expect("a worker starts");
    for _ in 1..storms {
        std::thread::sleep(Duration::from_millis(400));
        fake.inject("submit", 8, json!({"status": 429, "retry_after": "1"}));
    }
    finish(&work, child);
    last_run(&fake, &work, &store, "storm");
    let f = check(&fake, &work, &store, "storm", rows, storms);
    assert_eq!(
        f.uncertain,
        0,
        "a 429 is provably not a job\n{}",
        log(&work)
    );
    report(
        "429-storm",
        "sqlite",
        &f,
        2,
        secrets_printed(&work, &[TOKEN]),
    );
}

/// The server stops answering mid-batch (its process frozen with SIGSTOP, every connection
/// open and silent), then answers again: the worker waits, then goes on.
#[test]
fn a_server_that_stops_answering_mid_batch() {
    let (rows, freezes) = (rows(), faults().min(3));
    let fake = fake();
    let work = Work::new(rows);
    let store = work.path("jobs.db").display().to_string();
    let child = work
        .worker(&fake, &store, "frozen", 16)
        .spawn()
        .expect("a worker starts");
    for _ in 0..freezes {
        std::thread::sleep(Duration::from_millis(300));
        signal(&fake.child, rustix::process::Signal::STOP);
        std::thread::sleep(Duration::from_secs(2));
        signal(&fake.child, rustix::process::Signal::CONT);
    }
    finish(&work, child);
    last_run(&fake, &work, &store, "frozen");
    let f = check(&fake, &work, &store, "frozen", rows, freezes);
    report(
        "server-silent",
        "sqlite",
        &f,
        2,
        secrets_printed(&work, &[TOKEN]),
    );
}

/// Many commands started together on a data folder that has no store yet: every one opens
/// (or creates) the store, none fails with `database is locked`, every job is recorded.
#[test]
fn many_processes_starting_together_on_a_new_folder() {
    let runs = faults().max(2) as usize;
    let lists = 4 * runs;
    let fake = fake();
    let work = Work::new(1);
    let started = Instant::now();
    let command = |args: &[&str]| {
        let mut c = Command::new(BIN);
        for var in ["RUNCOMFY_STORE", "RUNCOMFY_TIMEOUT", "RUNCOMFY_RETRIES"] {
            c.env_remove(var);
        }
        c.env("RUNCOMFY_BASE_URL", &fake.url)
            .env("RUNCOMFY_TOKEN", TOKEN)
            .env("RUNCOMFY_DATA_DIR", work.path("data"))
            .env("RUNCOMFY_POLL_INTERVAL_MS", "50")
            .current_dir(work.dir.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn().expect("runcomfy starts")
    };
    let mut children = Vec::new();
    for i in 0..runs.max(lists) {
        if i < lists {
            children.push(command(&["jobs"]));
        }
        if i < runs {
            let prompt = format!("together {i}");
            children.push(command(&[
                "run",
                I2V,
                "--image-url",
                "https://example.test/cat.png",
                "--prompt",
                &prompt,
            ]));
        }
    }
    let commands = children.len();
    let mut failed = Vec::new();
    for child in children {
        let o = child.within(WORKER_DEADLINE);
        if !o.status.success() {
            failed.push(String::from_utf8_lossy(&o.stderr).into_owned());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {commands} failed: {failed:#?}",
        failed.len()
    );
    let jobs = fake.json("/_fake/jobs");
    let jobs = jobs.as_array().expect("the fake's jobs");
    assert_eq!(jobs.len(), runs);
    let listed = command(&["--json", "jobs", "--all"]).within(DEADLINE);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    for job in jobs {
        let id = job["request_id"].as_str().expect("a request id");
        assert!(listed.contains(id), "{id} is not in the store:\n{listed}");
    }
    println!(
        "chaos: scenario=many-starting-together backend=sqlite rows={runs} faults={lists} server_jobs={} max_jobs_per_input=1 missing_ids=0 uncertain=0 outputs_saved=-/- extra_copies=0 commands={commands} not_ended=0 secrets_printed=0 seconds={:.1}",
        jobs.len(),
        started.elapsed().as_secs_f64()
    );
}

/// A PostgreSQL database of its own for one scenario (dropped first if a crashed run left
/// it), and the URL that reaches it.
fn pg_database(name: &str) -> (String, String) {
    let server = runcomfy_testenv::pg_url();
    let database = format!("chaos_{name}_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let (admin, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .expect("the test server answers");
        tokio::spawn(conn);
        for sql in [
            format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
            format!("CREATE DATABASE {database}"),
        ] {
            admin
                .batch_execute(&sql)
                .await
                .expect("the database is made");
        }
    });
    let (head, _) = server
        .rsplit_once('/')
        .expect("the test server's URL names a database");
    (format!("{head}/{database}"), database)
}

/// The password of a postgres:// URL.
fn password_of(url: &str) -> String {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(user, _)| user.split_once(':'))
        .map(|(_, pw)| pw.to_owned())
        .unwrap_or_default()
}

/// Terminates every connection to `database` but the caller's.
fn terminate_backends(server: &str, database: &str) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let (admin, conn) = tokio_postgres::connect(server, tokio_postgres::NoTls)
            .await
            .expect("the test server answers");
        tokio::spawn(conn);
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&database],
            )
            .await
            .expect("backends terminated")
    })
}

/// Two workers on one PostgreSQL database whose connections are all terminated again and
/// again mid-batch: a worker whose store goes away stops submitting and ends with the
/// store's error (printing every id it could not record); workers are started again until
/// the batch is done.
#[runcomfy_testenv::needs(postgres)]
#[test]
fn postgres_backends_terminated_mid_batch() {
    let (rows, cuts) = (rows(), faults());
    let (url, database) = pg_database("cut");
    let server = runcomfy_testenv::pg_url();
    let fake = fake();
    let work = Work::new(rows);
    let mut workers: Vec<Child> = (0..2)
        .map(|_| {
            work.worker(&fake, &url, "cut", 8)
                .spawn()
                .expect("a worker starts")
        })
        .collect();
    let mut commands = 2;
    for _ in 0..cuts {
        std::thread::sleep(Duration::from_millis(400));
        terminate_backends(&server, &database);
        // A worker that ended (its store went away) is replaced.
        for w in workers.iter_mut() {
            if let Ok(Some(_)) = w.try_wait() {
                *w = work
                    .worker(&fake, &url, "cut", 8)
                    .spawn()
                    .expect("a worker starts");
                commands += 1;
            }
        }
    }
    for w in workers {
        finish(&work, w);
    }
    last_run(&fake, &work, &url, "cut");
    let f = check(&fake, &work, &url, "cut", rows, cuts);
    report(
        "pg-backends-terminated",
        "postgres",
        &f,
        commands + 1,
        secrets_printed(&work, &[TOKEN, &password_of(&server)]),
    );
}

/// PostgreSQL down when the batch starts (nothing listens on the port): the worker ends at
/// once with a clear error that names the server without its password, and sends nothing.
#[test]
fn postgres_down_at_start() {
    let fake = fake();
    let work = Work::new(3);
    let url = "postgres://batch:chaos-secret-pw@127.0.0.1:1/jobs";
    let child = work
        .worker(&fake, url, "down", 4)
        .spawn()
        .expect("a worker starts");
    let o = finish(&work, child);
    assert!(!o.status.success());
    let log = log(&work);
    assert!(log.contains("127.0.0.1:1"), "{log}");
    let jobs = fake.json("/_fake/jobs");
    assert_eq!(jobs.as_array().map(Vec::len), Some(0), "a job was sent");
    let secrets = secrets_printed(&work, &["chaos-secret-pw", TOKEN]);
    println!(
        "chaos: scenario=pg-down-at-start backend=postgres rows=3 faults=1 server_jobs=0 max_jobs_per_input=0 missing_ids=0 uncertain=0 outputs_saved=0/0 extra_copies=0 commands=1 not_ended=0 secrets_printed={secrets} exit={:?}",
        o.status.code()
    );
    assert_eq!(secrets, 0, "{log}");
}

/// A PostgreSQL server of the scenario's own (`scripts/pg-test-server` in a folder of its
/// own, with few connections), stopped when dropped: restarting the shared test server
/// would break the other tests running beside this one.
struct PrivatePg {
    dir: std::path::PathBuf,
    url: String,
}

impl PrivatePg {
    fn script(dir: &std::path::Path, command: &str) -> Output {
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-test-server");
        Command::new(script)
            .arg(command)
            .env("RUNCOMFY_PG_DIR", dir)
            .env("RUNCOMFY_PG_NO_INSTALL", "1")
            .env("RUNCOMFY_PG_MAX_CONNECTIONS", "20")
            .within(DEADLINE)
    }

    fn start() -> PrivatePg {
        let dir = std::env::temp_dir().join(format!("runcomfy-pg-chaos-{}", std::process::id()));
        let o = PrivatePg::script(&dir, "start");
        let said = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "a private PostgreSQL server (needs the server binaries here): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let url = said
            .trim()
            .strip_prefix("export RUNCOMFY_TEST_PG_URL='")
            .and_then(|u| u.strip_suffix('\''))
            .unwrap_or_else(|| panic!("pg-test-server said {said:?}"))
            .to_owned();
        PrivatePg { dir, url }
    }

    fn restart(&self) {
        let o = PrivatePg::script(&self.dir, "restart");
        assert!(
            o.status.success(),
            "restart: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = PrivatePg::script(&self.dir, "stop");
    }
}

/// Two workers on a PostgreSQL server that restarts again and again mid-batch, then every
/// connection slot taken by others while a worker starts: a worker whose store goes away
/// ends with the store's error, one that cannot connect ends at once sending nothing, and
/// the batch is finished by the next runs.
#[runcomfy_testenv::needs(postgres)]
#[test]
fn postgres_restarted_mid_batch_and_out_of_connections() {
    let (rows, restarts) = (rows(), faults());
    let pg = PrivatePg::start();
    let fake = fake();
    let work = Work::new(rows);
    let spawn = || {
        work.worker(&fake, &pg.url, "restart", 8)
            .spawn()
            .expect("a worker starts")
    };
    let mut workers: Vec<Child> = (0..2).map(|_| spawn()).collect();
    let mut commands = 2;
    for _ in 0..restarts {
        std::thread::sleep(Duration::from_millis(500));
        pg.restart();
        for w in workers.iter_mut() {
            if let Ok(Some(_)) = w.try_wait() {
                *w = spawn();
                commands += 1;
            }
        }
    }
    for w in workers {
        finish(&work, w);
    }

    // Every connection slot taken: a worker cannot open the store, ends, sends nothing.
    let jobs_before = fake.json("/_fake/jobs").as_array().map_or(0, Vec::len);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut held = Vec::new();
    let full = rt.block_on(async {
        for _ in 0..40 {
            match tokio_postgres::connect(&pg.url, tokio_postgres::NoTls).await {
                Ok((client, conn)) => {
                    tokio::spawn(conn);
                    held.push(client);
                }
                Err(_) => return true,
            }
        }
        false
    });
    assert!(full, "the server never ran out of connections");
    let blocked = finish(&work, spawn());
    commands += 1;
    assert!(!blocked.status.success(), "{}", log(&work));
    drop(held);
    drop(rt);
    let jobs_after = fake.json("/_fake/jobs").as_array().map_or(0, Vec::len);
    assert_eq!(
        jobs_before, jobs_after,
        "a worker without its store sent a job"
    );

    // The slots are free again (the server notices the closed connections at once).
    std::thread::sleep(Duration::from_millis(200));
    last_run(&fake, &work, &pg.url, "restart");
    let f = check(&fake, &work, &pg.url, "restart", rows, restarts + 1);
    report(
        "pg-restarted-and-out-of-connections",
        "postgres",
        &f,
        commands + 1,
        secrets_printed(&work, &[TOKEN, &password_of(&pg.url)]),
    );
}
