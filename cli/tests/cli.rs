//! The `runcomfy` binary against the in-process fake server: runs with downloads, every exit
//! code, validation before sending, progress on a terminal and off it, the job store, and a
//! run killed with SIGKILL then resumed without a second submit.

mod common;

use std::time::Duration;

use predicates::prelude::*;
use runcomfy_fake::{Fault, Lifecycle, Route, Span};
use serde_json::{json, Value};

use common::{i2v_args, run_in_pty, wait_until, Env, EXTRA, I2V};

fn stdout_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

#[test]
fn run_downloads_every_output_resuming_a_broken_transfer() {
    let env = Env::new();
    let video: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let poster = b"poster bytes".to_vec();
    let video_url = env.files.add("clip.mp4", video.clone());
    let poster_url = env.files.add("poster.png", poster.clone());
    // The first transfer of the video breaks after 70 kB: the retry asks for the rest.
    env.files.cut_next("clip.mp4", 70_000);
    env.server.script_next(
        Lifecycle::new()
            .queue_positions(&[2, 1])
            .running(Span::Polls(2))
            .then_succeed_with(json!({"video": video_url, "images": [poster_url]})),
    );
    let out = env.path("out");
    let a = env
        .cmd()
        .args(i2v_args())
        .args([
            "--duration",
            "5",
            "--resolution",
            "1080P",
            "--seed",
            "7",
            "--watermark=false",
        ])
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let stdout = stdout_of(&a);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            out.join("clip.mp4").display().to_string(),
            out.join("poster.png").display().to_string()
        ],
        "{stdout}"
    );
    assert_eq!(std::fs::read(out.join("clip.mp4")).unwrap(), video);
    assert_eq!(std::fs::read(out.join("poster.png")).unwrap(), poster);
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // One submit, with the typed body.
    assert_eq!(env.server.submits(), 1);
    let sent = env.server.requests()[0].json().unwrap();
    assert_eq!(
        sent,
        json!({"image_url": "https://example.com/cat.png", "prompt": "the cat turns its head",
               "duration": 5, "resolution": "1080P", "seed": 7, "watermark": false})
    );

    // The file host saw a resumed range and never the token.
    let requests = env.files.requests();
    let video_requests: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/files/clip.mp4")
        .collect();
    assert_eq!(video_requests.len(), 2, "{requests:?}");
    assert_eq!(video_requests[0].header("range"), None);
    assert_eq!(video_requests[1].header("range"), Some("bytes=70000-"));
    for r in &requests {
        assert_eq!(r.header("authorization"), None, "{r:?}");
        assert!(!r
            .headers
            .iter()
            .any(|(_, v)| v.contains(runcomfy_fake::FAKE_TOKEN)));
    }

    // The store knows the whole story: model, input, request id, folder, a success recorded
    // only once both files were saved.
    let jobs = env.jobs();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job = &jobs[0];
    assert_eq!(job["model_id"], I2V);
    let sent: Value = serde_json::from_slice(&env.server.requests()[0].body).unwrap();
    assert_eq!(job["input_sha256"], runcomfy_store::input_sha256(&sent));
    assert_eq!(job["state"], "succeeded");
    assert!(job["request_id"].as_str().unwrap().starts_with("fake-"));
    assert_eq!(job["outputs_dir"], json!(out));
}

#[test]
fn bad_input_exits_2_and_sends_nothing() {
    let env = Env::new();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["run", I2V, "--prompt", "p"], "--image-url"),
        (
            [i2v_args(), vec!["--resolution", "4K"]].concat(),
            "possible values",
        ),
        ([i2v_args(), vec!["--seed", "-1"]].concat(), ">= 0"),
        (
            [i2v_args(), vec!["--duration", "abc"]].concat(),
            "invalid value",
        ),
        // Through --set, the typed model does the checking.
        (
            [i2v_args(), vec!["--set", "seed=-5"]].concat(),
            "--seed (seed): -5 is out of range",
        ),
        (
            [i2v_args(), vec!["--set", "duration=\"soon\""]].concat(),
            "--duration (duration): expected an integer",
        ),
        (
            [i2v_args(), vec!["--set", "duration=16"]].concat(),
            "16 is not one of 3, 4",
        ),
        (
            vec!["run", I2V, "--set", "prompt=p"],
            "missing required input",
        ),
        ([i2v_args(), vec!["--set", "novalue"]].concat(), "KEY=VALUE"),
        (
            vec!["run", "not a model id", "--set", "a=1"],
            "invalid model id",
        ),
        (vec!["frobnicate"], "unrecognized subcommand"),
    ];
    let long_prompt = "x".repeat(5001);
    let mut cases = cases;
    let long_case: Vec<&str> = vec![
        "run",
        I2V,
        "--image-url",
        "https://example.com/a.png",
        "--prompt",
        &long_prompt,
    ];
    cases.push((long_case, "at most 5000 characters"));
    let bad_json = env.path("bad.json");
    std::fs::write(&bad_json, "{not json").unwrap();
    let bad_json_arg = bad_json.display().to_string();
    cases.push((vec!["run", I2V, "--input", &bad_json_arg], "not valid JSON"));
    for (args, needle) in cases {
        let a = env.cmd().args(&args).assert().code(2);
        assert!(
            stderr_of(&a).contains(needle),
            "{args:?}: expected {needle:?} in {}",
            stderr_of(&a)
        );
    }
    assert_eq!(env.server.submits(), 0);
    assert_eq!(env.server.count(Route::Any), 0);
}

#[test]
fn local_files_become_data_uris_within_their_size_limits() {
    let env = Env::new();
    let png = env.path("cat.png");
    std::fs::write(&png, b"\x89PNG fake").unwrap();
    // A dry run needs no token and sends nothing.
    let a = env
        .cmd()
        .env_remove("RUNCOMFY_TOKEN")
        .args(["run", I2V, "--prompt", "p", "--dry-run", "--image-url"])
        .arg(&png)
        .assert()
        .success();
    let body: Value = serde_json::from_str(&stdout_of(&a)).unwrap();
    // Shown by name and size; sent as a data: URI.
    assert_eq!(
        body["image_url"],
        format!("{} (9 bytes, sent as a data: URI)", png.display())
    );
    assert_eq!(body["prompt"], "p");

    // The schema's `validations` rule: runway's video must be under 16 MB.
    let big = env.path("big.mp4");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(17 * 1024 * 1024)
        .unwrap();
    env.cmd()
        .args([
            "run",
            "runwayml/runway-aleph-2/video-to-video",
            "--prompt",
            "p",
            "--video-url",
        ])
        .arg(&big)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("file_size_mb < 16").and(predicate::str::contains(
                "File size must be less than 16 MB.",
            )),
        );
    // The documented per-kind limit: images up to 50 MB.
    let huge = env.path("huge.png");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(51 * 1024 * 1024)
        .unwrap();
    env.cmd()
        .args(["run", I2V, "--prompt", "p", "--image-url"])
        .arg(&huge)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("limited to 50 MB"));
    // Neither a URL nor a file.
    env.cmd()
        .args([
            "run",
            I2V,
            "--prompt",
            "p",
            "--image-url",
            "no/such/file.png",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "neither an http(s) URL nor a readable file",
        ));
    // Lists of files: each item is converted.
    let a = env
        .cmd()
        .args([
            "run",
            "wan-ai/wan-2.7/edit",
            "--prompt",
            "p",
            "--dry-run",
            "--image-urls",
        ])
        .arg(&png)
        .arg("https://example.com/b.webp")
        .assert()
        .success();
    let body: Value = serde_json::from_str(&stdout_of(&a)).unwrap();
    assert_eq!(
        body["image_urls"],
        json!([
            format!("{} (9 bytes, sent as a data: URI)", png.display()),
            "https://example.com/b.webp"
        ])
    );
    assert_eq!(env.server.count(Route::Any), 0);

    // Sent for real, the data URI reaches the server.
    env.cmd()
        .args(["run", I2V, "--prompt", "p", "--image-url"])
        .arg(&png)
        .assert()
        .success();
    let sent = env.server.requests()[0].json().unwrap();
    assert_eq!(sent["image_url"], "data:image/png;base64,iVBORyBmYWtl");
}

#[test]
fn authentication_failures_exit_3() {
    let env = Env::new();
    let a = env
        .cmd()
        .env_remove("RUNCOMFY_TOKEN")
        .args(i2v_args())
        .assert()
        .code(3);
    let stderr = stderr_of(&a);
    assert!(stderr.contains("set RUNCOMFY_TOKEN"), "{stderr}");
    assert!(stderr.contains("runcomfy models --local"), "{stderr}");
    assert!(!stderr.contains("ClientBuilder"), "{stderr}");
    assert_eq!(env.server.count(Route::Any), 0);
    let a = env
        .cmd()
        .env("RUNCOMFY_TOKEN", "wrong-secret-token")
        .args(i2v_args())
        .assert()
        .code(3);
    assert!(!stderr_of(&a).contains("wrong-secret-token"));
    assert!(!stdout_of(&a).contains("wrong-secret-token"));
    assert_eq!(env.server.job_count(), 0);
    // The store shows the refused submit.
    let last = env.jobs().pop().unwrap();
    assert_eq!(last["state"], "refused");
    assert_eq!(last["request_id"], Value::Null);
}

#[test]
fn api_errors_exit_4() {
    let env = Env::new();
    env.server.inject(
        Route::Submit,
        Fault::api_error(400, 400002, "no balance left"),
    );
    env.cmd()
        .args(i2v_args())
        .assert()
        .code(4)
        .stderr(predicate::str::contains("no balance left"));
    assert_eq!(env.server.job_count(), 0);
}

#[test]
fn mistyped_model_ids_exit_2_with_the_closest_ids() {
    let env = Env::new();
    let typo = "happyhorse/happyhorse-1.0/image-to-vide";
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        // Checked against the built-in models and the live catalog.
        (
            vec!["run", typo, "--set", "prompt=p"],
            vec!["unknown model id", "did you mean happyhorse/happyhorse-1.0/image-to-video"],
        ),
        // --unchecked does not make an unknown id known.
        (
            vec!["run", typo, "--unchecked", "--set", "prompt=p"],
            vec!["did you mean happyhorse/happyhorse-1.0/image-to-video"],
        ),
        // The model's flags given to a mistyped id.
        (
            vec!["run", typo, "--prompt", "p"],
            vec!["takes no model flags", "did you mean happyhorse/happyhorse-1.0/image-to-video"],
        ),
        // A model known only to the live catalog is suggested too.
        (
            vec!["run", "acme/extra/text-to-imag", "--set", "prompt=p"],
            vec!["did you mean acme/extra/text-to-image"],
        ),
        // Nothing close: no suggestion.
        (
            vec!["run", "acme/nothing/here", "--set", "prompt=p"],
            vec!["unknown model id acme/nothing/here: neither built in nor in the catalog (`runcomfy models"],
        ),
        // In the catalog, but no schema here: sending takes --unchecked.
        (
            vec!["run", EXTRA, "--set", "prompt=p"],
            vec!["pass --unchecked"],
        ),
    ];
    for (args, needles) in cases {
        let a = env.cmd().args(&args).assert().code(2);
        for needle in needles {
            assert!(
                stderr_of(&a).contains(needle),
                "{args:?}: expected {needle:?} in {}",
                stderr_of(&a)
            );
        }
    }
    // Without a token the catalog cannot be asked: the built-in ids are suggested, nothing
    // is sent, and --unchecked is the way to send anyway.
    let a = env
        .cmd()
        .env_remove("RUNCOMFY_TOKEN")
        .args(["run", typo, "--set", "prompt=p", "--dry-run"])
        .assert()
        .code(2);
    let stderr = stderr_of(&a);
    assert!(
        stderr.contains("did you mean happyhorse/happyhorse-1.0/image-to-video"),
        "{stderr}"
    );
    assert!(
        stderr.contains("RUNCOMFY_TOKEN") && stderr.contains("--unchecked"),
        "{stderr}"
    );
    let a = env
        .cmd()
        .env_remove("RUNCOMFY_TOKEN")
        .args([
            "run",
            EXTRA,
            "--set",
            "prompt=p",
            "--dry-run",
            "--unchecked",
        ])
        .assert()
        .success();
    assert_eq!(stdout_of(&a).trim(), "{\n  \"prompt\": \"p\"\n}");
    // Only catalog reads reached the server: no submit.
    assert_eq!(env.server.submits(), 0);
    assert_eq!(env.server.job_count(), 0);
    assert!(env.server.count(Route::GetModel) > 0);
}

#[test]
fn failed_and_cancelled_jobs_exit_5() {
    let env = Env::new();
    env.server.script_next(
        Lifecycle::new()
            .queued(1, Span::Polls(1))
            .then_fail(json!({"message": "the provider rejected the image"})),
    );
    env.cmd()
        .args(i2v_args())
        .assert()
        .code(5)
        .stderr(predicate::str::contains("the provider rejected the image"));
    env.server
        .script_next(Lifecycle::new().queued(1, Span::Polls(1)).then_cancel());
    env.cmd()
        .args(i2v_args())
        .assert()
        .code(5)
        .stderr(predicate::str::contains("cancelled"));
    let states: Vec<Value> = env.jobs().into_iter().map(|j| j["state"].clone()).collect();
    assert_eq!(states, ["failed", "cancelled"]);
}

#[test]
fn deadline_exits_6_and_leaves_the_job_resumable() {
    let env = Env::new();
    env.server
        .script_next(Lifecycle::new().queued(3, Span::Forever).then_succeed());
    let a = env
        .cmd()
        .args(i2v_args())
        .args(["--timeout", "300ms"])
        .assert()
        .code(6);
    let stderr = stderr_of(&a);
    assert!(stderr.contains("deadline passed"), "{stderr}");
    assert!(stderr.contains("runcomfy resume fake-"), "{stderr}");
    // Not cancelled (no --cancel-on-timeout): the job stays in the store as unfinished.
    assert_eq!(env.server.count(Route::Cancel), 0);
    let a = env
        .cmd()
        .args(["jobs", "--unfinished", "--json"])
        .assert()
        .success();
    let entries: Vec<Value> = stdout_of(&a)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["state"], "submitted");
}

#[test]
fn other_failures_exit_1() {
    let env = Env::new();
    // The output's file host answers 404: the job is done, the download fails.
    env.server.script_next(
        Lifecycle::new()
            .then_succeed_with(json!({"video": format!("{}/files/gone.mp4", env.files.base)})),
    );
    env.cmd()
        .args(i2v_args())
        .arg("--out")
        .arg(env.path("out"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("404"));
    // An output over the size cap.
    let url = env.files.add("big.bin", vec![0u8; 2 * 1024 * 1024]);
    env.server
        .script_next(Lifecycle::new().then_succeed_with(json!({"video": url})));
    env.cmd()
        .args(i2v_args())
        .args(["--max-download-mb", "1", "--out"])
        .arg(env.path("out"))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cap"));
    assert!(!env.path("out").join("big.bin").exists());
}

#[test]
fn json_mode_prints_one_object_per_event() {
    let env = Env::new();
    env.server.script_next(
        Lifecycle::new()
            .queue_positions(&[2, 1])
            .running(Span::Polls(1))
            .then_succeed_with(json!({"video": "https://cdn.example/v.mp4"})),
    );
    let a = env.cmd().arg("--json").args(i2v_args()).assert().success();
    let stdout = stdout_of(&a);
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["submitted", "queued", "queued", "running", "done", "output"],
        "{stdout}"
    );
    assert_eq!(events[1]["queue_position"], 2);
    assert_eq!(events[2]["queue_position"], 1);
    assert_eq!(events[4]["state"], "succeeded");
    assert_eq!(events[5]["output"]["video"], "https://cdn.example/v.mp4");
    assert!(events[0]["request_id"]
        .as_str()
        .unwrap()
        .starts_with("fake-"));
    assert!(!stdout.contains('\x1b'));
    assert!(!stderr_of(&a).contains('\x1b'));
    // Errors are events too.
    let a = env
        .cmd()
        .env_remove("RUNCOMFY_TOKEN")
        .arg("--json")
        .args(i2v_args())
        .assert()
        .code(3);
    let last: Value = serde_json::from_str(stdout_of(&a).lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "error");
    assert_eq!(last["exit_code"], 3);
}

#[test]
fn progress_off_a_terminal_is_plain_lines() {
    let env = Env::new();
    env.server.script_next(
        Lifecycle::new()
            .queue_positions(&[2, 1])
            .running(Span::Polls(1))
            .then_succeed_with(json!({"video": "https://cdn.example/v.mp4"})),
    );
    let a = env.cmd().args(i2v_args()).assert().success();
    let stderr = stderr_of(&a);
    assert!(stderr.contains("submitted fake-"), "{stderr}");
    assert!(stderr.contains("in_queue (position 2)"), "{stderr}");
    assert!(stderr.contains("in_queue (position 1)"), "{stderr}");
    assert!(stderr.contains("in_progress"), "{stderr}");
    assert!(stderr.contains("succeeded after"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
    assert_eq!(stdout_of(&a), "https://cdn.example/v.mp4\n");
    // --quiet: the result only.
    let a = env.cmd().arg("-q").args(i2v_args()).assert().success();
    assert_eq!(stderr_of(&a), "");
    assert!(stdout_of(&a).starts_with("https://"));
}

#[test]
fn progress_on_a_pseudo_terminal() {
    let env = Env::new();
    let ms = Duration::from_millis;
    env.server.script_next(
        Lifecycle::new()
            .queued(2, Span::Time(ms(500)))
            .queued(1, Span::Time(ms(400)))
            .running(Span::Time(ms(400)))
            .then_succeed_with(json!({"video": "https://cdn.example/v.mp4"})),
    );
    let mut cmd = env.std_cmd();
    cmd.env("RUNCOMFY_POLL_INTERVAL_MS", "40").args(i2v_args());
    let (status, out) = run_in_pty(cmd);
    let text = String::from_utf8_lossy(&out);
    if std::env::var_os("SHOW_PTY").is_some() {
        eprintln!("{text:?}");
    }
    assert!(status.success(), "{text}");
    assert!(
        text.contains('\x1b'),
        "a terminal gets a live display: {text:?}"
    );
    assert!(text.contains("in_queue (position 2)"), "{text:?}");
    assert!(text.contains("in_queue (position 1)"), "{text:?}");
    assert!(text.contains("in_progress"), "{text:?}");
    assert!(text.contains("fake-"), "the request id is shown: {text:?}");
    assert!(text.contains("https://cdn.example/v.mp4"), "{text:?}");
}

#[test]
fn killed_run_is_resumed_without_a_second_submit() {
    // The server's clock only moves when the test says: the job stays queued until then.
    let env = Env::with(|b| b.manual_clock());
    let video = b"the finished video".to_vec();
    let url = env.files.add("final.mp4", video.clone());
    env.server.script_next(
        Lifecycle::new()
            .queued(4, Span::Time(Duration::from_secs(60)))
            .running(Span::Polls(1))
            .then_succeed_with(json!({"video": url})),
    );
    let mut child = env
        .std_cmd()
        .args(i2v_args())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let recorded = wait_until(Duration::from_secs(20), || {
        env.jobs().iter().any(|j| j["state"] == "submitted")
    });
    assert!(recorded, "no request id in the store: {:?}", env.jobs());
    // It is still waiting: kill it where it stands.
    assert!(child.try_wait().unwrap().is_none());
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert_eq!(env.server.submits(), 1);
    let request_id = env
        .jobs()
        .iter()
        .find(|j| j["state"] == "submitted")
        .and_then(|j| j["request_id"].as_str().map(str::to_owned))
        .unwrap();

    // The store lists it as unfinished.
    env.cmd()
        .arg("jobs")
        .assert()
        .success()
        .stdout(predicate::str::contains(&request_id).and(predicate::str::contains("submitted")));

    env.server.advance(Duration::from_secs(61));
    let out = env.path("out");
    let a = env
        .cmd()
        .arg("resume")
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    assert_eq!(
        stdout_of(&a).trim(),
        out.join("final.mp4").display().to_string()
    );
    assert!(stderr_of(&a).contains(&format!("resumed {request_id}")));
    assert_eq!(std::fs::read(out.join("final.mp4")).unwrap(), video);
    assert_eq!(env.server.submits(), 1, "resume never submits");
    assert_eq!(env.server.job_count(), 1);
    // Nothing is left to resume.
    env.cmd()
        .arg("resume")
        .assert()
        .success()
        .stderr(predicate::str::contains("no unfinished jobs"));
    assert_eq!(env.server.submits(), 1);
}

#[test]
fn jobs_status_result_and_cancel() {
    let env = Env::new();
    env.server
        .script_next(Lifecycle::new().queued(5, Span::Forever).then_succeed());
    let a = env
        .cmd()
        .args(i2v_args())
        .arg("--no-wait")
        .assert()
        .success();
    let request_id = stdout_of(&a).trim().to_owned();
    assert!(request_id.starts_with("fake-"), "{request_id}");

    let a = env.cmd().args(["status", &request_id]).assert().success();
    let status: Value = serde_json::from_str(&stdout_of(&a)).unwrap();
    assert_eq!(status["status"], "in_queue");
    assert_eq!(status["queue_position"], 5);
    let a = env.cmd().args(["result", &request_id]).assert().success();
    let result: Value = serde_json::from_str(&stdout_of(&a)).unwrap();
    assert_eq!(result["status"], "in_queue");

    let a = env.cmd().args(["cancel", &request_id]).assert().success();
    let c: Value = serde_json::from_str(&stdout_of(&a)).unwrap();
    assert_eq!(c["outcome"], "cancelled");
    let a = env.cmd().args(["jobs"]).assert().success();
    let listing = stdout_of(&a);
    assert!(listing.contains(&request_id), "{listing}");
    assert!(listing.contains("cancelled"), "{listing}");
    assert!(env
        .cmd()
        .args(["jobs", "--unfinished", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .is_empty());

    env.cmd()
        .args(["status", "no-such-job"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("404001"));
    env.cmd().args(["status", "../etc"]).assert().code(2);
}

#[test]
fn untyped_models_take_input_files_and_sets() {
    let env = Env::new();
    let input = env.path("input.json");
    std::fs::write(&input, r#"{"prompt": "from the file", "steps": 10}"#).unwrap();
    let a = env
        .cmd()
        .args(["run", EXTRA, "--unchecked", "--input"])
        .arg(&input)
        .args(["--set", "steps=20"])
        .assert()
        .success();
    assert!(
        stderr_of(&a).contains("sent unchecked"),
        "{}",
        stderr_of(&a)
    );
    let requests = env.server.requests();
    let submits: Vec<_> = requests
        .iter()
        .filter(|r| r.route == Route::Submit)
        .collect();
    assert_eq!(submits.len(), 1);
    let sent = submits[0].json().unwrap();
    assert_eq!(sent, json!({"prompt": "from the file", "steps": 20}));
}

#[test]
fn models_and_schemas() {
    let env = Env::new();
    let a = env
        .cmd()
        .args(["models", "--search", "happyhorse"])
        .assert()
        .success();
    let listing = stdout_of(&a);
    assert!(listing.contains(I2V), "{listing}");
    assert!(
        listing.contains("* happyhorse/"),
        "built-in models are marked: {listing}"
    );
    assert!(!listing.contains("wan-ai"), "{listing}");
    let a = env
        .cmd()
        .args(["--json", "models", "--category", "audio"])
        .assert()
        .success();
    for line in stdout_of(&a).lines() {
        let m: Value = serde_json::from_str(line).unwrap();
        assert!(m["categories"]
            .as_array()
            .unwrap()
            .contains(&json!("audio")));
    }
    // A built-in schema needs no server.
    let a = env
        .cmd()
        .env_remove("RUNCOMFY_TOKEN")
        .args(["schema", I2V])
        .assert()
        .success();
    let schema: Value = serde_json::from_str(&stdout_of(&a)).unwrap();
    assert_eq!(schema["required"], json!(["image_url", "prompt"]));
    // Any other comes from the catalog.
    let a = env.cmd().args(["schema", EXTRA]).assert().success();
    let schema: Value = serde_json::from_str(&stdout_of(&a)).unwrap();
    assert_eq!(schema["required"], json!(["prompt"]));
    let a = env
        .cmd()
        .args(["models", "--local"])
        .env_remove("RUNCOMFY_TOKEN")
        .assert()
        .success();
    assert_eq!(stdout_of(&a).lines().count(), runcomfy::models::ALL.len());
}

#[test]
fn help_shows_exit_codes_and_model_flags() {
    let env = Env::new();
    env.cmd().arg("--help").assert().success().stdout(
        predicate::str::contains("Exit codes:")
            .and(predicate::str::contains("6  timeout or deadline")),
    );
    let a = env.cmd().args(["run", I2V, "--help"]).assert().success();
    let help = stdout_of(&a);
    for needle in [
        "--image-url <IMAGE_URL>",
        "(required)",
        "[possible values: 720P, 1080P]",
        "[default: 1080P]",
        "[>= 0, <= 2147483647]",
        "--watermark",
    ] {
        assert!(help.contains(needle), "{needle:?} missing from:\n{help}");
    }
    // A required flag whose schema has a default is shown as required, with no default.
    let mut lines = help
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("--prompt "));
    let first = lines.next().unwrap_or_default();
    let wrapped = lines.take_while(|l| !l.trim_start().starts_with('-') && !l.trim().is_empty());
    let prompt = std::iter::once(first)
        .chain(wrapped)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(prompt.contains("(required)"), "{prompt}");
    assert!(!prompt.contains("[default:"), "{prompt}");
    assert_eq!(env.server.count(Route::Any), 0);
}

#[runcomfy_testenv::needs(postgres)]
#[test]
fn run_and_resume_on_a_postgres_store() {
    let url = runcomfy_testenv::pg_url();
    let env = Env::with(|b| b.manual_clock());
    let video = b"the video from postgres".to_vec();
    let file = env.files.add("pg.mp4", video.clone());
    env.server.script_next(
        Lifecycle::new()
            .queued(1, Span::Time(Duration::from_secs(60)))
            .then_succeed_with(json!({ "video": file })),
    );
    let out = env.path("out");
    // Submitted and left: the store (by --store) holds its request id and folder.
    let a = env
        .cmd()
        .args(i2v_args())
        .args(["--no-wait", "--store", &url, "--out"])
        .arg(&out)
        .assert()
        .success();
    let request_id = stdout_of(&a).trim().to_owned();
    assert!(!env.store_file().exists(), "nothing in the default store");
    let listed = |args: &[&str]| -> Vec<Value> {
        let a = env
            .cmd()
            .env("RUNCOMFY_STORE", &url)
            .args(["jobs", "--json"])
            .args(args)
            .assert()
            .success();
        stdout_of(&a)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|j| j["request_id"] == json!(request_id))
            .collect()
    };
    let left = listed(&["--unfinished"]);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["outputs_dir"], json!(out));

    // `resume` (the store by RUNCOMFY_STORE) waits, saves into the recorded folder, and the
    // job is done; nothing was sent twice.
    env.server.advance(Duration::from_secs(61));
    let a = env
        .cmd()
        .env("RUNCOMFY_STORE", &url)
        .args(["resume", &request_id])
        .assert()
        .success();
    assert_eq!(
        stdout_of(&a).trim(),
        out.join("pg.mp4").display().to_string()
    );
    assert_eq!(std::fs::read(out.join("pg.mp4")).unwrap(), video);
    assert!(listed(&["--unfinished"]).is_empty());
    assert_eq!(listed(&["--all"])[0]["state"], "succeeded");
    assert_eq!(env.server.submits(), 1);
}
