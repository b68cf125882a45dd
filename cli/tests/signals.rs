//! Ctrl-C (SIGINT) and SIGTERM with submits in flight, through the real binary and the fake
//! server: every submit that reached the server has its request id recorded before the
//! process ends, nothing new is sent after the signal, the process says what is true, and a
//! re-run pays for nothing twice.

mod common;

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{text, wait_until, Env};
use runcomfy_fake::{Fault, Lifecycle, Route};
use runcomfy_testenv::{Within as _, DEADLINE};
use serde_json::{json, Value};

fn signal(child: &Child, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a child's pid");
    rustix::process::kill_process(pid, signal).expect("the child takes the signal");
}

const SIGNALS: [(rustix::process::Signal, &str); 2] = [
    (rustix::process::Signal::INT, "SIGINT"),
    (rustix::process::Signal::TERM, "SIGTERM"),
];

/// The submit answers after 2 s (its job is made at once): a signal in that window must wait
/// for the answer and record the id.
#[test]
fn a_signal_during_a_runs_submit_waits_for_its_answer_and_records_the_id() {
    for (sig, name) in SIGNALS {
        let env = Env::with(|b| b.manual_clock());
        env.server
            .script_next(Lifecycle::new().queued(1, runcomfy_fake::Span::Polls(1000)));
        let child = env.run_with_submit_in_flight(Duration::from_secs(2));
        signal(&child, sig);
        let o = child.within(DEADLINE);
        let stderr = text(&o.stderr);
        assert_eq!(o.status.code(), Some(130), "{name}: {stderr}");
        assert!(
            stderr.contains(name),
            "{name}: the signal is named: {stderr}"
        );
        assert!(
            stderr.contains("waiting for its answer"),
            "{name}: {stderr}"
        );
        let jobs = env.jobs();
        assert_eq!(jobs.len(), 1, "{name}: {jobs:?}");
        let id = env.server.jobs()[0].request_id.clone();
        assert_eq!(jobs[0]["request_id"], id.as_str(), "{name}: {jobs:?}");
        assert_eq!(jobs[0]["state"], "submitted", "{name}: {jobs:?}");
        assert!(
            stderr.contains(&format!("runcomfy resume {id}")),
            "{name}: {stderr}"
        );
        assert_eq!(env.server.submits(), 1);
    }
}

fn rows(env: &Env, n: usize) -> PathBuf {
    let lines: Vec<String> = (1..=n)
        .map(|i| json!({"prompt": format!("row {i}")}).to_string())
        .collect();
    let path = env.path("rows.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").expect("the rows file is written");
    path
}

/// A model whose every job outputs one small file from the loopback file host.
const PICS: &str = "acme/pics/text-to-image";

fn pics(env: &Env) {
    let url = env.files.add("pic.png", b"a picture".to_vec());
    env.server
        .set_model(
            runcomfy_fake::ModelSpec::new(PICS, common::EXTRA_SCHEMA)
                .output(json!({ "image": url }))
                .price(0.25, "output"),
        )
        .expect("the model is added");
}

fn batch(env: &Env, rows: &PathBuf, db: &str) -> std::process::Command {
    let mut c = env.std_cmd();
    c.args(["batch", PICS, "--unchecked", "--input"])
        .arg(rows)
        .args(["--concurrency", "3", "--store", db, "--out"])
        .arg(env.path("out"));
    c
}

fn status(env: &Env, db: &str) -> Value {
    let o = env
        .std_cmd()
        .args(["--json", "batch", "status", "rows", "--store", db])
        .within(DEADLINE);
    assert!(o.status.success(), "{}", text(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("batch status --json prints one object")
}

/// Three submits in flight (each answered after 1.5 s) when the signal comes: all three ids
/// are recorded, no row is uncertain, nothing more is sent; the same command then finishes
/// the batch with one paid job per row.
#[test]
fn a_signal_during_batch_submits_records_every_paid_id_and_sends_nothing_new() {
    for (sig, name) in SIGNALS {
        let env = Env::new();
        pics(&env);
        env.server
            .inject_times(Route::Submit, Fault::Delay(Duration::from_millis(1500)), 3);
        let rows = rows(&env, 8);
        let db = env.path("jobs.db").display().to_string();
        let child = batch(&env, &rows, &db)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runcomfy starts");
        let in_flight = wait_until(Duration::from_secs(20), || env.server.job_count() == 3);
        assert!(in_flight, "{name}: three submits never reached the server");
        signal(&child, sig);
        let o = child.within(DEADLINE);
        let stderr = text(&o.stderr);
        assert_ne!(o.status.code(), Some(0), "{name}: {stderr}");
        assert!(stderr.contains(name), "{name}: {stderr}");
        assert_eq!(
            env.server.job_count(),
            3,
            "{name}: nothing is sent after the signal: {stderr}"
        );
        let totals = status(&env, &db);
        assert_eq!(totals["uncertain"], 0, "{name}: {totals}\n{stderr}");
        // Every paid job's id is in the store: the three rows are running (or done).
        let recorded = totals["running"].as_u64().unwrap_or(0)
            + totals["saving"].as_u64().unwrap_or(0)
            + totals["succeeded"].as_u64().unwrap_or(0);
        assert_eq!(recorded, 3, "{name}: {totals}\n{stderr}");

        let o = batch(&env, &rows, &db).within(DEADLINE);
        assert!(o.status.success(), "{name}: {}", text(&o.stderr));
        assert_eq!(env.server.submits(), 8, "{name}");
        assert!(
            env.server.inputs().iter().all(|i| i.jobs == 1),
            "{name}: a row was paid twice"
        );
    }
}
