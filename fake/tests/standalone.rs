//! The `runcomfy-fake` binary: a process of its own that prints its address, serves timed
//! jobs and answers its counters over HTTP.

use runcomfy_testenv::{Within as _, DEADLINE};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use runcomfy_fake::{fast_poll_policy, fast_retry_policy, Stats};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_runcomfy-fake");

/// The child process, killed when dropped.
struct Fake(Child);

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary and reads its base URL from the first line of its output.
fn start(args: &[&str]) -> (Fake, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn runcomfy-fake");
    let stdout = child.stdout.take().expect("stdout");
    let fake = Fake(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let url = line.trim().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url:?}");
    (fake, url)
}

#[test]
fn a_separate_process_serves_timed_jobs_and_counts_them() {
    let schemas = tempfile::tempdir().expect("tempdir");
    let model = schemas.path().join("acme/clip/text-to-video");
    std::fs::create_dir_all(&model).expect("mkdir");
    std::fs::write(
        model.join("input.json"),
        r#"{"type":"object","required":["prompt"],"properties":{"prompt":{"type":"string","minLength":1}}}"#,
    )
    .expect("write");
    let dir = schemas.path().to_str().expect("utf-8 path");
    let (_fake, url) = start(&[
        "--schemas",
        dir,
        "--token",
        "t0k",
        "--queue",
        "5ms",
        "--run",
        "20ms",
        "--serve-outputs",
        "512",
    ]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = runcomfy::Client::builder()
            .ignore_env()
            .base_url(url.clone())
            .token("t0k")
            .poll_policy(fast_poll_policy())
            .retry_policy(fast_retry_policy())
            .build()
            .expect("client");
        let id = "acme/clip/text-to-video";
        let result = client
            .run_json(id, &json!({"prompt": "a cat"}))
            .await
            .expect("run");
        let output = serde_json::to_value(result.output.expect("output")).expect("value");
        let file = output["video"].as_str().expect("video URL");
        assert!(file.starts_with(&format!("{url}/_fake/files/")), "{file}");
        let http = reqwest::Client::new();
        let bytes = http
            .get(file)
            .send()
            .await
            .expect("file")
            .bytes()
            .await
            .expect("body");
        assert_eq!(bytes.len(), 512);
        assert!(client
            .submit_json(id, &json!({"prompt": ""}))
            .await
            .is_err());

        let stats: Stats = http
            .get(format!("{url}/_fake/stats"))
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("json");
        assert_eq!(stats.jobs, 1);
        assert_eq!(stats.jobs_by_model[id], 1);
        assert_eq!(stats.requests_by_route["submit"], 2);
        assert_eq!(stats.max_jobs_per_input, 1);
    });
}

#[test]
fn bad_arguments_and_bad_schemas_are_refused_with_a_message() {
    let out = Command::new(BIN).arg("--port").within(DEADLINE);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "runcomfy-fake: --port needs a value"
    );
    let schemas = tempfile::tempdir().expect("tempdir");
    let model = schemas.path().join("acme/int");
    std::fs::create_dir_all(&model).expect("mkdir");
    std::fs::write(
        model.join("input.json"),
        r#"{"type":"object","properties":{"n":{"type":"int"}}}"#,
    )
    .expect("write");
    let out = Command::new(BIN)
        .arg("--schemas")
        .arg(schemas.path())
        .within(DEADLINE);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no address is printed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unsupported type \"int\""), "{stderr}");
    let help = Command::new(BIN).arg("--help").within(DEADLINE);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--serve-outputs"));
}
