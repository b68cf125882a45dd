//! The data-loss faults of issue 11, each through the built binary against the fake server
//! and the loopback file host: two runs saving same-named outputs into one folder, a failed
//! and an interrupted download, a damaged journal line, an expired job.

mod common;

use runcomfy_testenv::{Within as _, DEADLINE};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use runcomfy_fake::{Fault, Lifecycle, Route, Span};
use serde_json::{json, Value};

use common::{i2v_args, text, wait_until, Env, I2V};

/// The names in `dir`, sorted.
fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The events a `--json` run printed.
fn events(out: &Output) -> Vec<Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

fn unfinished(env: &Env) -> Vec<Value> {
    let out = env
        .std_cmd()
        .args(["jobs", "--unfinished", "--json"])
        .within(DEADLINE);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn two_runs_saving_same_named_outputs_into_one_folder_keep_both() {
    let env = Env::new();
    let a = bytes(1, 300_000);
    let b = bytes(2, 300_000);
    let url_a = env.files.add("a/clip.mp4", a.clone());
    let url_b = env.files.add("b/clip.mp4", b.clone());
    for url in [&url_a, &url_b] {
        env.server
            .script_next(Lifecycle::new().then_succeed_with(json!({ "video": url })));
    }
    // Neither transfer starts before both runs asked for their file: they overlap.
    env.files.gate(2);
    let out = env.path("out");
    let spawn = || {
        env.std_cmd()
            .arg("--json")
            .args(i2v_args())
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    let outputs = [first.within(DEADLINE), second.within(DEADLINE)];
    let mut printed = BTreeSet::new();
    for o in &outputs {
        assert!(o.status.success(), "{}", text(&o.stderr));
        let events = events(o);
        let url = events
            .iter()
            .find(|e| e["event"] == "output")
            .and_then(|e| e["output"]["video"].as_str())
            .unwrap()
            .to_owned();
        let saved: Vec<&Value> = events
            .iter()
            .filter(|e| e["event"] == "downloaded")
            .collect();
        assert_eq!(saved.len(), 1, "{events:?}");
        let path = PathBuf::from(saved[0]["path"].as_str().unwrap());
        // What the run says it saved is its own output, whole.
        let expected = if url == url_a { &a } else { &b };
        let got = std::fs::read(&path).unwrap();
        assert!(
            &got == expected,
            "{} holds {} bytes that are not this run's output",
            path.display(),
            got.len()
        );
        printed.insert(path);
    }
    assert_eq!(printed.len(), 2, "each run saved its own file: {printed:?}");
    assert_eq!(
        names_in(&out),
        BTreeSet::from(["clip.mp4".to_owned(), "clip-1.mp4".to_owned()])
    );
    assert_eq!(env.server.submits(), 2);
}

#[test]
fn a_failed_download_leaves_the_job_unfinished_and_resume_saves_it() {
    let env = Env::new();
    let poster = b"poster bytes".to_vec();
    let video = bytes(3, 50_000);
    let poster_url = env.files.add("poster.png", poster.clone());
    // The video is not there yet: the file host answers 404.
    let video_url = format!("{}/files/clip.mp4", env.files.base);
    env.server.script_next(
        Lifecycle::new().then_succeed_with(json!({"images": [poster_url], "video": video_url})),
    );
    let out = env.path("out");
    let o = env
        .std_cmd()
        .args(i2v_args())
        .arg("--out")
        .arg(&out)
        .within(DEADLINE);
    assert_eq!(o.status.code(), Some(1));
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("succeeded but not all of its outputs are saved"),
        "{stderr}"
    );
    assert!(stderr.contains("`runcomfy resume fake-"), "{stderr}");
    assert_eq!(names_in(&out), BTreeSet::from(["poster.png".to_owned()]));
    // The paid job is not hidden: it is unfinished, its outputs unsaved.
    let left = unfinished(&env);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["state"], "saving");

    // The file appears; `resume` (without --out: the folder the run wanted) saves it.
    env.files.add("clip.mp4", video.clone());
    let o = env.std_cmd().arg("resume").within(DEADLINE);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            out.join("poster.png").display().to_string(),
            out.join("clip.mp4").display().to_string()
        ],
        "{stdout}"
    );
    assert!(std::fs::read(out.join("clip.mp4")).unwrap() == video);
    assert_eq!(std::fs::read(out.join("poster.png")).unwrap(), poster);
    // The poster saved by the first run was not fetched again.
    assert_eq!(
        names_in(&out),
        BTreeSet::from(["poster.png".to_owned(), "clip.mp4".to_owned()])
    );
    let poster_fetches = env
        .files
        .requests()
        .iter()
        .filter(|r| r.path == "/files/poster.png")
        .count();
    assert_eq!(poster_fetches, 1);
    assert!(unfinished(&env).is_empty());
    assert_eq!(env.server.submits(), 1);
}

#[test]
fn a_relative_out_folder_is_recorded_whole_so_resume_works_from_anywhere() {
    let env = Env::new();
    let video = bytes(5, 20_000);
    // The file is not there yet: the run's download fails and the job stays unfinished.
    let video_url = format!("{}/files/late.mp4", env.files.base);
    env.server
        .script_next(Lifecycle::new().then_succeed_with(json!({"video": video_url})));
    let here = env.path("here");
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir_all(&here).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let o = env
        .std_cmd()
        .current_dir(&here)
        .args(i2v_args())
        .args(["--out", "videos"])
        .within(DEADLINE);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let left = unfinished(&env);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(
        left[0]["outputs_dir"],
        here.join("videos").display().to_string()
    );

    // `resume` from another folder saves into the folder the run named, not a new `videos`.
    env.files.add("late.mp4", video.clone());
    let o = env
        .std_cmd()
        .current_dir(&elsewhere)
        .arg("resume")
        .within(DEADLINE);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read(here.join("videos").join("late.mp4")).unwrap(),
        video
    );
    assert!(!elsewhere.join("videos").exists());
    assert!(unfinished(&env).is_empty());
    assert_eq!(env.server.submits(), 1);
}

#[test]
fn outputs_of_a_job_the_server_forgot_are_saved_from_the_recorded_urls() {
    let env = Env::new();
    let video = bytes(7, 40_000);
    let video_url = format!("{}/files/late.mp4", env.files.base);
    env.server
        .script_next(Lifecycle::new().then_succeed_with(json!({ "video": video_url })));
    let out = env.path("out");
    let o = env
        .std_cmd()
        .args(i2v_args())
        .arg("--out")
        .arg(&out)
        .within(DEADLINE);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_eq!(unfinished(&env)[0]["state"], "saving");
    // The result expires at RunComfy; the file is still on the CDN.
    env.server.inject(
        Route::Status,
        Fault::api_error(404, 404001, "request not found or expired"),
    );
    env.files.add("late.mp4", video.clone());
    let o = env.std_cmd().arg("resume").within(DEADLINE);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("no longer has its result"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        text(&o.stdout).trim(),
        out.join("late.mp4").display().to_string()
    );
    assert_eq!(std::fs::read(out.join("late.mp4")).unwrap(), video);
    assert!(unfinished(&env).is_empty());
    assert_eq!(env.jobs()[0]["state"], "succeeded");
    assert_eq!(env.server.submits(), 1);
}

fn interrupt(child: &std::process::Child) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
}

#[test]
fn ctrl_c_says_what_is_true_and_leaves_the_job_to_resume() {
    // Interrupted while waiting: the job goes on.
    let env = Env::with(|b| b.manual_clock());
    env.server.script_next(
        Lifecycle::new()
            .queued(1, Span::Time(Duration::from_secs(60)))
            .then_succeed_with(json!({"video": "https://cdn.example/v.mp4"})),
    );
    let child = env
        .std_cmd()
        .args(i2v_args())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let waiting = wait_until(Duration::from_secs(20), || {
        env.server.count(Route::Status) > 0
    });
    assert!(waiting, "{:?}", env.jobs());
    interrupt(&child);
    let o = child.within(DEADLINE);
    assert_eq!(o.status.code(), Some(130));
    let stderr = text(&o.stderr);
    assert!(stderr.contains("goes on at RunComfy"), "{stderr}");
    assert!(stderr.contains("`runcomfy resume fake-"), "{stderr}");
    assert_eq!(unfinished(&env)[0]["state"], "submitted");
    env.server.advance(Duration::from_secs(61));
    let o = env.std_cmd().arg("resume").within(DEADLINE);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "https://cdn.example/v.mp4\n");

    // Interrupted while saving: the job succeeded, its output is not saved, and says so.
    let video = bytes(4, 400_000);
    let url = env.files.add("slow.mp4", video.clone());
    env.files.hold("slow.mp4");
    env.server
        .script_next(Lifecycle::new().then_succeed_with(json!({ "video": url })));
    let out = env.path("out");
    let child = env
        .std_cmd()
        .args(i2v_args())
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Half the file is on disk, in a hidden `.part`.
    let saving = wait_until(Duration::from_secs(20), || {
        std::fs::read_dir(&out).is_ok_and(|d| {
            d.filter_map(Result::ok).any(|e| {
                e.file_name().to_string_lossy().ends_with(".part")
                    && e.metadata().is_ok_and(|m| m.len() >= 200_000)
            })
        })
    });
    assert!(saving, "{:?}", names_in(&out));
    interrupt(&child);
    let o = child.within(DEADLINE);
    assert_eq!(o.status.code(), Some(130));
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("succeeded but not all of its outputs are saved"),
        "{stderr}"
    );
    assert!(stderr.contains("`runcomfy resume fake-"), "{stderr}");
    assert!(
        names_in(&out).is_empty(),
        "no partial file stays: {:?}",
        names_in(&out)
    );
    let left = unfinished(&env);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["state"], "saving");
    env.files.release("slow.mp4");
    let o = env.std_cmd().arg("resume").within(DEADLINE);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout).trim(),
        out.join("slow.mp4").display().to_string()
    );
    assert!(std::fs::read(out.join("slow.mp4")).unwrap() == video);
    assert!(unfinished(&env).is_empty());
    assert_eq!(env.server.submits(), 2);
}

/// One line of an old journal.
fn journal_line(job: &str, event: Value) -> String {
    let mut record = json!({"v": 1, "at": "2026-01-01T00:00:00Z", "job": job});
    for (k, v) in event.as_object().unwrap() {
        record[k] = v.clone();
    }
    record.to_string()
}

#[test]
fn an_old_journal_is_imported_once_with_damaged_lines_hiding_nothing() {
    let env = Env::new();
    // Three paid jobs the old journal followed: two not seen ending, one succeeded with its
    // video not saved yet. And one submit never answered.
    let running: Vec<String> = (0..2)
        .map(|n| {
            env.server.create_job(
                I2V,
                json!({"prompt": n}),
                Lifecycle::new()
                    .then_succeed_with(json!({"video": format!("https://cdn.example/{n}.mp4")})),
            )
        })
        .collect();
    let video = bytes(5, 30_000);
    let video_url = env.files.add("old.mp4", video.clone());
    let done = env.server.create_job(
        I2V,
        json!({"prompt": "done"}),
        Lifecycle::new().then_succeed_with(json!({ "video": video_url })),
    );
    let out = env.path("old-out");
    let mut lines = vec![
        journal_line(
            "j1",
            json!({"event": "submitting", "model_id": I2V, "input_sha256": "aa"}),
        ),
        journal_line(
            "j1",
            json!({"event": "submitted", "request_id": running[0]}),
        ),
        journal_line(
            "j2",
            json!({"event": "submitting", "model_id": I2V, "input_sha256": "bb"}),
        ),
        journal_line(
            "j2",
            json!({"event": "submitted", "request_id": running[1]}),
        ),
        journal_line(
            "j3",
            json!({"event": "submitting", "model_id": I2V, "input_sha256": "cc"}),
        ),
        journal_line("j3", json!({"event": "submitted", "request_id": done})),
        journal_line("j3", json!({"event": "outputs_wanted", "dir": out})),
        journal_line(
            "j3",
            json!({"event": "ended", "state": "succeeded", "output": {"video": video_url}}),
        ),
        journal_line(
            "j4",
            json!({"event": "submitting", "model_id": I2V, "input_sha256": "dd"}),
        ),
        journal_line(
            "j4",
            json!({"event": "submit_failed", "may_exist": true, "error": "timed out"}),
        ),
        journal_line(
            "j5",
            json!({"event": "submitting", "model_id": I2V, "input_sha256": "ee"}),
        ),
        journal_line(
            "j5",
            json!({"event": "submit_failed", "may_exist": false, "error": "422"}),
        ),
    ];
    // The first job's submit record is damaged in the middle of the file, and the second
    // job's request id is glued behind a torn write.
    lines[0] = lines[0].replacen("model_id", "mo\u{0}del_id\"", 1);
    lines[3] = format!("{{\"v\":1,\"at\":\"2025-01-0{}", lines[3]);
    let journal = env.data.path().join("journal.jsonl");
    std::fs::write(&journal, lines.join("\n") + "\n").unwrap();

    // The first command imports, says so in one line, and renames the journal aside.
    let o = env.std_cmd().arg("jobs").within(DEADLINE);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stderr = text(&o.stderr);
    let said: Vec<&str> = stderr.lines().filter(|l| l.contains("imported")).collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].contains("imported 4 unfinished job(s) (1 uncertain)"),
        "{stderr}"
    );
    assert!(!journal.exists());
    assert!(env.data.path().join("journal.jsonl.imported").exists());
    let jobs = env.jobs();
    let states: Vec<(&str, &str)> = jobs
        .iter()
        .map(|j| {
            (
                j["request_id"].as_str().unwrap_or("-"),
                j["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (running[0].as_str(), "submitted"),
            (running[1].as_str(), "submitted"),
            (done.as_str(), "saving"),
            ("-", "uncertain"),
        ],
        "every request id is recovered, the refused submit is left out: {jobs:?}"
    );
    // The first job's model was on its damaged line: its request id is what counts.
    let models: Vec<&Value> = jobs.iter().map(|j| &j["model_id"]).collect();
    assert_eq!(
        models,
        [&json!("unknown"), &json!(I2V), &json!(I2V), &json!(I2V)]
    );
    assert_eq!(jobs[2]["outputs_dir"], json!(out));
    assert!(
        jobs[3]["error"].as_str().unwrap().contains("timed out"),
        "{jobs:?}"
    );

    // `resume` finishes the three paid jobs, never sends anything, and leaves the uncertain
    // one listed; nothing is imported twice.
    let o = env.std_cmd().arg("resume").within(DEADLINE);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stderr = text(&o.stderr);
    assert!(!stderr.contains("imported"), "{stderr}");
    assert!(
        stderr.contains("1 job(s) may have been submitted"),
        "{stderr}"
    );
    assert_eq!(
        text(&o.stdout),
        format!(
            "https://cdn.example/0.mp4\nhttps://cdn.example/1.mp4\n{}\n",
            out.join("old.mp4").display()
        )
    );
    assert_eq!(std::fs::read(out.join("old.mp4")).unwrap(), video);
    assert!(unfinished(&env).is_empty());
    assert_eq!(env.server.submits(), 0, "nothing is ever submitted again");
    let states: Vec<Value> = env.jobs().iter().map(|j| j["state"].clone()).collect();
    assert_eq!(states, ["succeeded", "succeeded", "succeeded", "uncertain"]);
}

#[test]
fn a_kill_between_publishing_and_recording_leaves_one_copy() {
    let env = Env::new();
    let video = bytes(6, 300_000);
    let url = env.files.add("final.mp4", video.clone());
    env.files.hold("final.mp4");
    env.server
        .script_next(Lifecycle::new().then_succeed_with(json!({ "video": url })));
    let out = env.path("out");
    let mut child = env
        .std_cmd()
        .args(i2v_args())
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let saving = wait_until(Duration::from_secs(20), || {
        std::fs::read_dir(&out).is_ok_and(|d| {
            d.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().ends_with(".part"))
        })
    });
    assert!(saving, "{:?}", names_in(&out));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The moment a kill can come after the file is published and before the store records
    // it: the complete file is under its name, the job is still saving.
    for e in std::fs::read_dir(&out).unwrap().filter_map(Result::ok) {
        std::fs::remove_file(e.path()).unwrap();
    }
    std::fs::write(out.join("final.mp4"), &video).unwrap();
    let left = unfinished(&env);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["state"], "saving");

    env.files.release("final.mp4");
    let o = env.std_cmd().arg("resume").within(DEADLINE);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout).trim(),
        out.join("final.mp4").display().to_string()
    );
    assert_eq!(
        names_in(&out),
        BTreeSet::from(["final.mp4".to_owned()]),
        "no second copy"
    );
    assert_eq!(std::fs::read(out.join("final.mp4")).unwrap(), video);
    assert!(unfinished(&env).is_empty());
    assert_eq!(env.jobs()[0]["state"], "succeeded");
    assert_eq!(env.server.submits(), 1);
}

#[test]
fn an_expired_job_is_recorded_as_ended() {
    let env = Env::new();
    env.server
        .script_next(Lifecycle::new().queued(1, Span::Forever).then_succeed());
    let o = env
        .std_cmd()
        .args(i2v_args())
        .arg("--no-wait")
        .within(DEADLINE);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // The server forgets the job.
    env.server.inject(
        Route::Status,
        Fault::api_error(404, 404001, "request not found or expired"),
    );
    let o = env.std_cmd().arg("resume").within(DEADLINE);
    assert_eq!(o.status.code(), Some(4));
    assert!(text(&o.stderr).contains("404001"), "{}", text(&o.stderr));
    assert!(unfinished(&env).is_empty());
    let all = env.std_cmd().args(["jobs", "--json"]).within(DEADLINE);
    let job: Value = serde_json::from_str(text(&all.stdout).trim()).unwrap();
    assert_eq!(job["state"], "expired");
    assert!(
        job["error"].as_str().unwrap_or("").contains("404001"),
        "{job}"
    );
    // A later resume has nothing left to do, and succeeds.
    let o = env.std_cmd().arg("resume").within(DEADLINE);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("no unfinished jobs"));
}

#[test]
fn a_long_retry_after_wait_is_shown() {
    let env = Env::new();
    for json_mode in [false, true] {
        env.server.script_next(
            Lifecycle::new()
                .queued(1, Span::Polls(1))
                .then_succeed_with(json!({"video": "https://cdn.example/v.mp4"})),
        );
        // One poll is answered 429 with `Retry-After: 1`: the client waits a second.
        env.server
            .inject_times(Route::Status, Fault::rate_limited(Some("1")), 1);
        let mut cmd = env.std_cmd();
        if json_mode {
            cmd.arg("--json");
        }
        let o = cmd.args(i2v_args()).within(DEADLINE);
        assert!(o.status.success(), "{}", text(&o.stderr));
        if json_mode {
            let waits: Vec<Value> = events(&o)
                .into_iter()
                .filter(|e| e["event"] == "waiting")
                .collect();
            assert_eq!(waits.len(), 1, "{}", text(&o.stdout));
            assert_eq!(waits[0]["reason"], "retry_after");
            assert_eq!(waits[0]["wait"], "1.000s");
            assert!(waits[0]["until"].as_str().unwrap().ends_with(" GMT"));
        } else {
            let stderr = text(&o.stderr);
            assert!(
                stderr.contains("the server asked to wait 1.000s (Retry-After): waiting until "),
                "{stderr}"
            );
            assert!(text(&o.stdout).contains("https://cdn.example/v.mp4"));
        }
    }
    assert_eq!(env.server.submits(), 2);
}

#[test]
fn ctrl_c_during_the_submit_waits_for_the_request_id() {
    let env = Env::new();
    env.server.script_next(
        Lifecycle::new()
            .queued(1, Span::Polls(1))
            .then_succeed_with(json!({"video": "https://cdn.example/v.mp4"})),
    );
    // The server makes the paid job at once but answers the submit a second later.
    let child = env.run_with_submit_in_flight(Duration::from_millis(1500));
    interrupt(&child);
    let o = child.within(DEADLINE);
    assert_eq!(o.status.code(), Some(130));
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("waiting for its answer so its request id is recorded"),
        "{stderr}"
    );
    assert!(stderr.contains("goes on at RunComfy"), "{stderr}");
    // The request id reached the store: the job is resumable, not uncertain.
    let left = unfinished(&env);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["state"], "submitted");
    let request_id = left[0]["request_id"].as_str().unwrap().to_owned();
    assert!(
        stderr.contains(&format!("`runcomfy resume {request_id}`")),
        "{stderr}"
    );
    let o = env.std_cmd().arg("resume").within(DEADLINE);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "https://cdn.example/v.mp4\n");
    assert_eq!(env.server.submits(), 1);
}
