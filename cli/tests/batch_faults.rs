//! `runcomfy batch` when outputs cannot be saved, and when two batches share one `--out`:
//! the run always ends (every run here has a deadline and is killed past it), names the rows
//! it could not save with the reason and exit code 8, keeps them `saving` with their URLs for
//! the next run, and a folder belongs to one batch.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use common::{Env, I2V};
use runcomfy_fake::{Fault, Route};
use runcomfy_store::{RowFilter, State};
use serde_json::{json, Value};

/// How long a batch of a few rows may take before the test calls it a hang.
const DEADLINE: Duration = Duration::from_secs(60);

/// What a run of the binary left.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to its end, or kills it at `DEADLINE` and fails with everything it printed.
fn run(mut cmd: StdCommand) -> Ran {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn runcomfy");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (out.join().expect("stdout"), err.join().expect("stderr"));
    let Some(status) = status else {
        panic!("the batch did not end within {DEADLINE:?} (killed)\nstdout:\n{stdout}\nstderr:\n{stderr}");
    };
    Ran {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

impl Ran {
    fn show(&self) -> String {
        format!(
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// The `batch_done` event of a `--json` run.
    fn done(&self) -> Value {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["event"] == "batch_done")
            .unwrap_or_else(|| panic!("no batch_done event\n{}", self.show()))
    }
}

/// An environment whose fake serves every job's output file itself (`size` bytes, distinct
/// per job).
fn served(size: usize) -> Env {
    Env::with(|b| b.serve_outputs(size))
}

fn rows_file(env: &Env, name: &str, n: usize, tag: &str) -> PathBuf {
    let lines: Vec<String> = (1..=n)
        .map(|i| {
            json!({"image_url": "https://example.test/cat.png", "prompt": format!("{tag} {i}")})
                .to_string()
        })
        .collect();
    let path = env.path(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write the rows");
    path
}

fn batch(env: &Env, rows: &Path, out: &str, extra: &[&str]) -> StdCommand {
    let mut c = env.std_cmd();
    c.args(["--json", "batch", I2V, "--input"])
        .arg(rows)
        .args(["--out", out, "--concurrency", "1"])
        .args(extra);
    c
}

/// The same without `--json`: what a person sees.
fn plain_batch(env: &Env, rows: &Path, out: &str) -> StdCommand {
    let mut c = env.std_cmd();
    c.args(["batch", I2V, "--input"])
        .arg(rows)
        .args(["--out", out]);
    c
}

/// The first run of a batch of `n` rows whose first output file asked for (line 1's, one row
/// at a time) answers 404, which the downloader does not retry: it ends with exit code 8.
fn a_run_with_one_404(env: &Env, n: usize) -> (PathBuf, Ran) {
    let rows = rows_file(env, "pics.jsonl", n, "404");
    env.server.inject_times(Route::File, Fault::status(404), 1);
    let ran = run(batch(env, &rows, "out", &[]));
    assert_eq!(ran.code, 8, "{}", ran.show());
    (rows, ran)
}

/// A row of the default store as the test sees it: line, state, output URLs and paths.
#[derive(Debug)]
struct Row {
    line: u64,
    state: State,
    outputs: Vec<(String, Option<PathBuf>)>,
}

fn rows_of(env: &Env, name: &str) -> Vec<Row> {
    let location = env.store_file().display().to_string();
    let name = name.to_owned();
    env.rt.block_on(async move {
        let store = runcomfy_store::open(&location).await.expect("the store");
        let batch = store
            .batch(&name)
            .await
            .expect("read the batch")
            .expect("the batch exists");
        let mut rows = Vec::new();
        for r in store
            .batch_rows(batch.id, &RowFilter::default())
            .await
            .expect("rows")
        {
            let outputs = store
                .outputs(r.key)
                .await
                .expect("outputs")
                .into_iter()
                .map(|o| (o.url, o.path))
                .collect();
            rows.push(Row {
                line: r.batch.map_or(0, |(_, l)| l),
                state: r.state,
                outputs,
            });
        }
        rows
    })
}

/// Every file under `dir` (relative path → bytes), the folder's marker included.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read a folder") {
            let p = e.expect("an entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("under dir").to_path_buf();
                found.push((rel, std::fs::read(&p).expect("read a file")));
            }
        }
    }
    found.sort();
    found
}

/// Every row succeeded, and each saved output holds the bytes the fake served for that row's
/// own job.
fn assert_own_outputs(env: &Env, name: &str) {
    for row in rows_of(env, name) {
        assert_row_outputs(env, &row);
    }
}

/// The row succeeded, and each of its saved outputs holds its own job's bytes, under
/// `out/<line>/`.
fn assert_row_outputs(env: &Env, row: &Row) {
    assert_eq!(row.state, State::Succeeded, "{row:?}");
    assert!(!row.outputs.is_empty(), "{row:?}");
    for (url, path) in &row.outputs {
        let path = path.as_ref().expect("a saved path");
        let u = url::Url::parse(url).expect("a url");
        let mut segments = u.path_segments().expect("segments").rev();
        let file = segments.next().expect("a file name");
        let request_id = segments.next().expect("a request id");
        let want = env
            .server
            .output_bytes(request_id, file)
            .expect("served bytes");
        assert_eq!(
            std::fs::read(path).expect("the saved file"),
            want,
            "line {} holds another job's file: {}",
            row.line,
            path.display()
        );
        assert!(
            path.starts_with(env.path("out").join(row.line.to_string())),
            "{}",
            path.display()
        );
    }
}

#[test]
fn an_output_answering_404_ends_the_batch_and_a_later_run_saves_it() {
    let env = served(2048);
    let (rows, ran) = a_run_with_one_404(&env, 3);
    let done = ran.done();
    assert_eq!(done["exit_code"], 8, "{done}");
    let unsaved = done["unsaved"].as_array().expect("unsaved rows");
    assert_eq!(unsaved.len(), 1, "{done}");
    assert_eq!(unsaved[0]["line"], 1, "{done}");
    assert_eq!(unsaved[0]["reason"], "refused", "{done}");
    assert_eq!(unsaved[0]["status"], 404, "{done}");
    assert_eq!(env.server.submits(), 3);

    // Line 1 stays `saving` with its output URL, nothing saved for it; the others are done.
    let stored = rows_of(&env, "pics");
    let one = stored.iter().find(|r| r.line == 1).expect("line 1");
    assert_eq!(one.state, State::Saving, "{one:?}");
    assert_eq!(one.outputs.len(), 1, "{one:?}");
    assert!(one.outputs[0].0.contains("/_fake/files/"), "{one:?}");
    assert!(one.outputs[0].1.is_none(), "{one:?}");
    assert!(stored
        .iter()
        .filter(|r| r.line != 1)
        .all(|r| r.state == State::Succeeded));

    // The URL answers again: the next run saves line 1, submitting nothing.
    let ran = run(plain_batch(&env, &rows, "out"));
    assert_eq!(ran.code, 0, "{}", ran.show());
    assert_eq!(env.server.submits(), 3);
    assert_own_outputs(&env, "pics");
}

#[test]
fn a_rerun_whose_save_fails_again_ends_too_and_says_why() {
    let env = served(2048);
    let (rows, _) = a_run_with_one_404(&env, 2);
    // The re-run tries line 1 once more, fails again, and ends with the summary a person
    // reads: which row, why, what to do.
    env.server.inject_times(Route::File, Fault::status(404), 1);
    let ran = run(plain_batch(&env, &rows, "out"));
    assert_eq!(ran.code, 8, "{}", ran.show());
    let err = &ran.stderr;
    assert!(
        err.contains("1 row(s) succeeded but their outputs are not saved"),
        "{err}"
    );
    assert!(err.contains("lines 1"), "{err}");
    assert!(err.contains("answered 404"), "{err}");
    assert!(err.contains("run the same command again"), "{err}");
    assert_eq!(env.server.submits(), 2);
    assert_eq!(
        rows_of(&env, "pics")
            .iter()
            .find(|r| r.line == 1)
            .map(|r| r.state),
        Some(State::Saving)
    );
}

#[test]
fn an_unwritable_row_folder_ends_the_batch_and_a_later_run_saves_it() {
    let env = served(2048);
    let rows = rows_file(&env, "pics.jsonl", 3, "folder");
    // A file where line 2's folder should be: no output of line 2 can be written (the stand-in
    // for a disk that refuses writes; root ignores permissions, so no read-only folder).
    let out = env.path("out");
    std::fs::create_dir_all(&out).expect("out");
    std::fs::write(out.join("2"), b"in the way").expect("a blocking file");
    let ran = run(batch(&env, &rows, "out", &[]));
    assert_eq!(ran.code, 8, "{}", ran.show());
    let done = ran.done();
    let unsaved = done["unsaved"].as_array().expect("unsaved rows");
    assert_eq!(unsaved.len(), 1, "{done}");
    assert_eq!(unsaved[0]["line"], 2, "{done}");
    assert_eq!(unsaved[0]["reason"], "unwritable", "{done}");
    let path = unsaved[0]["path"].as_str().expect("the path");
    assert!(
        path.starts_with(&out.join("2").display().to_string()),
        "{done}"
    );
    // Not a full disk: the other rows went on.
    assert_eq!(env.server.submits(), 3);
    let stored = rows_of(&env, "pics");
    let two = stored.iter().find(|r| r.line == 2).expect("line 2");
    assert_eq!(two.state, State::Saving, "{two:?}");
    assert_eq!(two.outputs.len(), 1, "{two:?}");

    std::fs::remove_file(out.join("2")).expect("clear the way");
    let ran = run(batch(&env, &rows, "out", &[]));
    assert_eq!(ran.code, 0, "{}", ran.show());
    assert_eq!(env.server.submits(), 3);
    assert_own_outputs(&env, "pics");
}

/// `cmd` run by `sh` under a file-size limit of `blocks` (512 bytes each) with `SIGXFSZ`
/// ignored (an ignored signal stays ignored across exec), so a write past it fails with
/// "file too large" instead of killing the process.
fn under_file_limit(cmd: StdCommand, blocks: u64) -> StdCommand {
    let mut sh = StdCommand::new("sh");
    sh.arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\""
        ))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        sh.current_dir(dir);
    }
    sh
}

/// A disk that fills: the binary runs under a file-size limit (`ulimit -f`, no root needed)
/// smaller than one output, so writing it fails with "file too large" as a full disk fails
/// with "no space left".
#[test]
fn a_full_disk_stops_submitting_and_a_later_run_saves_everything() {
    // 3 MiB outputs, a 2 MiB limit; the store's few pages stay far below it.
    let env = served(3 * 1024 * 1024);
    let rows = rows_file(&env, "pics.jsonl", 4, "full");
    let sh = under_file_limit(batch(&env, &rows, "out", &[]), 4096);
    let ran = run(sh);
    assert_eq!(ran.code, 8, "{}", ran.show());
    let done = ran.done();
    let unsaved = done["unsaved"].as_array().expect("unsaved rows");
    assert!(!unsaved.is_empty(), "{done}");
    assert!(unsaved.iter().all(|u| u["reason"] == "disk_full"), "{done}");
    assert!(
        done["stopped_submitting"]
            .as_str()
            .is_some_and(|s| s.contains("full")),
        "{done}"
    );
    // Submitting stopped at the first full write: fewer jobs than rows were paid for.
    let paid = env.server.submits();
    assert!(paid < 4, "{paid} submits\n{}", ran.show());
    for row in rows_of(&env, "pics") {
        match row.state {
            State::Saving => assert_eq!(row.outputs.len(), 1, "{row:?}"),
            State::Queued => {}
            other => panic!("line {} is {other}", row.line),
        }
    }

    // Space again: the next run saves the unsaved rows and sends the rest, each once.
    let ran = run(batch(&env, &rows, "out", &[]));
    assert_eq!(ran.code, 0, "{}", ran.show());
    assert_eq!(env.server.submits(), 4);
    assert!(env.server.inputs().iter().all(|i| i.jobs == 1));
    assert_own_outputs(&env, "pics");
}

#[test]
fn a_second_batch_is_refused_in_the_first_ones_folder_and_the_first_continues() {
    let env = served(2048);
    let first = rows_file(&env, "first.jsonl", 5, "first");
    // The first batch runs two rows and stops (job cap): its folder holds two rows' files.
    let ran = run(batch(&env, &first, "out", &["--max-jobs", "2"]));
    assert_eq!(ran.code, 7, "{}", ran.show());
    assert_eq!(env.server.submits(), 2);
    let before = files_under(&env.path("out"));

    // Another batch (another name and rows) into the same folder: refused, nothing sent.
    let second = rows_file(&env, "second.jsonl", 5, "second");
    let ran = run(plain_batch(&env, &second, "out"));
    assert_eq!(ran.code, 2, "{}", ran.show());
    let err = &ran.stderr;
    assert!(err.contains("belongs to batch \"first\""), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
    assert!(err.contains("--out"), "{err}");
    assert_eq!(env.server.submits(), 2);
    // Its own folder's files, the manifest and page included, are untouched.
    assert_eq!(files_under(&env.path("out")), before);
    // The folder says whose it is.
    assert!(before
        .iter()
        .any(|(p, _)| p.as_os_str() == ".runcomfy-batch.json"));

    // The same name from another store is another batch too.
    let other_store = env.path("other.db");
    let mut c = batch(&env, &first, "out", &[]);
    c.arg("--store").arg(&other_store);
    let ran = run(c);
    assert_eq!(ran.code, 2, "{}", ran.show());
    assert_eq!(env.server.submits(), 2);
    assert_eq!(files_under(&env.path("out")), before);

    // In a folder of its own, the second batch runs.
    let ran = run(batch(&env, &second, "out2", &[]));
    assert_eq!(ran.code, 0, "{}", ran.show());
    assert_eq!(env.server.submits(), 7);

    // The first batch continues in its folder: each row once, each with its own job's file.
    let ran = run(batch(&env, &first, "out", &[]));
    assert_eq!(ran.code, 0, "{}", ran.show());
    assert_eq!(env.server.submits(), 10);
    assert!(env.server.inputs().iter().all(|i| i.jobs == 1));
    assert_own_outputs(&env, "first");
}

#[test]
fn the_same_batch_continues_in_its_folder_after_a_kill() {
    // Jobs that take a moment, so the kill lands with rows in flight.
    let env = Env::with(|b| {
        b.serve_outputs(2048)
            .lifecycle(runcomfy_fake::Lifecycle::timed(
                Duration::from_millis(100),
                Duration::from_millis(300),
            ))
    });
    let rows = rows_file(&env, "pics.jsonl", 6, "kill");
    let mut child = batch(&env, &rows, "out", &["--lease", "1s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let submitted = common::wait_until(DEADLINE, || env.server.submits() >= 2);
    let _ = child.kill();
    let _ = child.wait();
    assert!(submitted, "no submit before the deadline");
    assert!(env.path("out/.runcomfy-batch.json").is_file());
    let ran = run(batch(&env, &rows, "out", &["--lease", "1s"]));
    // A kill during a submit leaves that row uncertain (never sent again): exit 7 then.
    let uncertain = ran.done()["uncertain_lines"].as_array().map_or(0, Vec::len);
    let want = if uncertain == 0 { 0 } else { 7 };
    assert_eq!(ran.code, want, "{}", ran.show());
    assert!(env.server.inputs().iter().all(|i| i.jobs == 1));
    for row in rows_of(&env, "pics") {
        if row.state != State::Uncertain {
            assert_row_outputs(&env, &row);
        }
    }
}

#[test]
fn an_unreachable_file_host_ends_the_batch_and_names_it() {
    let env = Env::new();
    // A port bound and never listening: every connection to it is refused (it is not freed
    // while the test runs, so nothing else takes it).
    let (_reserved, addr) = {
        let _rt = env.rt.enter();
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        socket
            .bind("127.0.0.1:0".parse().expect("an address"))
            .expect("bind");
        let addr = socket.local_addr().expect("its address");
        (socket, addr)
    };
    let model = "acme/gone/text-to-image";
    env.server
        .set_model(
            runcomfy_fake::ModelSpec::new(model, common::EXTRA_SCHEMA)
                .output(json!({"image": format!("http://{addr}/gone.png")})),
        )
        .expect("the model");
    let rows = env.path("gone.jsonl");
    std::fs::write(&rows, "{\"prompt\": \"far away\"}\n").expect("the rows");
    let mut c = env.std_cmd();
    c.args(["batch", model, "--unchecked", "--input"])
        .arg(&rows)
        .args(["--out", "out"]);
    let ran = run(c);
    assert_eq!(ran.code, 8, "{}", ran.show());
    assert!(
        ran.stderr.contains("the file host could not be reached"),
        "{}",
        ran.show()
    );
    assert!(ran.stderr.contains("lines 1"), "{}", ran.show());
    assert_eq!(env.server.submits(), 1);
    let stored = rows_of(&env, "gone");
    assert_eq!(stored[0].state, State::Saving, "{stored:?}");
    assert_eq!(
        stored[0].outputs,
        vec![(format!("http://{addr}/gone.png"), None)]
    );
}
