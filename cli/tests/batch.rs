//! `runcomfy batch`: rows checked like `run`, `--dry-run`, the store chosen by `--store`, `batch
//! status` and `batch report` offline, and the report page in a real headless browser.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::time::Duration;

use common::{media, Env, I2V};
use runcomfy_store::{ClaimRequest, Finish, NewRow, State};
use serde_json::{json, Value};

fn stdout_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

fn row(prompt: &str) -> Value {
    json!({"image_url": "https://example.test/cat.png", "prompt": prompt})
}

fn write_rows(env: &Env, name: &str, lines: &[String]) -> PathBuf {
    let path = env.path(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn dry_run_checks_every_row_and_sends_nothing() {
    let env = Env::new();
    let rows = write_rows(
        &env,
        "rows.jsonl",
        &[
            row("one").to_string(),
            String::new(),
            json!({"image_url": "https://example.test/cat.png", "prompt": "two", "duration": 99})
                .to_string(),
            "not json".to_owned(),
            json!({"image_url": "https://example.test/cat.png", "prompt": "three", "duration": 10})
                .to_string(),
        ],
    );
    let a = env
        .cmd()
        .args(["batch", I2V, "--input"])
        .arg(&rows)
        .args(["--out", "out", "--dry-run"])
        .assert()
        .code(2);
    let (out, err) = (stdout_of(&a), stderr_of(&a));
    assert!(err.contains("line 3: "), "{err}");
    assert!(err.contains("--duration"), "{err}");
    assert!(err.contains("line 4: not valid JSON"), "{err}");
    assert!(
        !err.contains("line 1:") && !err.contains("line 5:"),
        "{err}"
    );
    assert!(out.contains("dry run: 4 rows, 2 valid, 2 invalid"), "{out}");
    // The fake prices I2V at $0.10 per second: 5 s (the schema's default) + 10 s.
    assert!(out.contains("estimated cost $1.500"), "{out}");
    assert!(!env.path("out").exists());

    // Valid rows only: exit 0, one JSON summary.
    let rows = write_rows(
        &env,
        "good.jsonl",
        &[row("a").to_string(), row("b").to_string()],
    );
    let a = env
        .cmd()
        .args(["--json", "batch", I2V, "--input"])
        .arg(&rows)
        .args(["--out", "out", "--dry-run", "--set", "duration=3"])
        .assert()
        .success();
    let events: Vec<Value> = stdout_of(&a)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = events.iter().find(|e| e["event"] == "dry_run").unwrap();
    assert_eq!(summary["valid"], 2);
    assert_eq!(summary["invalid"], 0);
    let estimate = summary["estimated_cost_usd"].as_f64().unwrap();
    assert!((estimate - 0.6).abs() < 1e-9, "{summary}");
    assert_eq!(env.server.submits(), 0);
}

#[test]
fn invalid_rows_refuse_the_batch_and_nothing_is_sent() {
    let clip = "acme/clip/text-to-video";
    let env = Env::with(|b| {
        b.add_model(runcomfy_fake::ModelSpec::new(clip, common::EXTRA_SCHEMA).price(0.2, "second"))
    });
    let rows = write_rows(
        &env,
        "rows.jsonl",
        &[
            row("one").to_string(),
            json!({"prompt": "no image"}).to_string(),
        ],
    );
    let a = env
        .cmd()
        .args(["batch", I2V, "--input"])
        .arg(&rows)
        .args(["--out", "out"])
        .assert()
        .code(2);
    let err = stderr_of(&a);
    assert!(err.contains("line 2: "), "{err}");
    assert!(err.contains("--skip-invalid"), "{err}");
    assert_eq!(env.server.submits(), 0);

    // A budget needs an estimate for every row: a model priced per second whose rows give
    // no duration has none.
    let rows = write_rows(&env, "clips.jsonl", &[json!({"prompt": "p"}).to_string()]);
    let a = env
        .cmd()
        .args(["batch", clip, "--unchecked", "--input"])
        .arg(&rows)
        .args(["--out", "out", "--budget-usd", "5"])
        .assert()
        .code(2);
    assert!(
        stderr_of(&a).contains("--budget-usd needs a price estimate"),
        "{}",
        stderr_of(&a)
    );
    assert_eq!(env.server.submits(), 0);
}

/// A store file with one batch in every interesting state, its outputs real media files in
/// `out/<line>/`.
fn seeded_store(env: &Env, out: &Path) -> PathBuf {
    let db = env.path("jobs.db");
    let out = out.to_path_buf();
    let location = db.display().to_string();
    env.rt.block_on(async move {
        let store = runcomfy_store::open(&location).await.unwrap();
        let rows = vec![
            NewRow::new(1, row("a cat <script>alert(1)</script>")).estimated_cost_usd(0.5),
            NewRow::new(2, row("a dog")).estimated_cost_usd(0.5),
            NewRow::new(4, row("a bird")).estimated_cost_usd(0.5),
            NewRow::new(5, row("a fish")).estimated_cost_usd(0.5),
        ];
        let batch = store
            .create_or_open_batch("seeded", I2V, rows)
            .await
            .unwrap();
        let claim = store
            .claim(&ClaimRequest::new(
                batch.id,
                "test-worker",
                Duration::from_secs(600),
                3,
            ))
            .await
            .unwrap();
        assert_eq!(claim.submit.len(), 3);
        let keys: Vec<_> = claim.submit.iter().map(|r| r.key).collect();
        for (i, key) in keys.iter().enumerate() {
            store.mark_submitting(*key, "test-worker").await.unwrap();
            if i < 2 {
                store
                    .record_submitted(*key, &format!("req-{}", i + 1))
                    .await
                    .unwrap();
            }
        }
        // Line 1 succeeded with an image and a sound, saved.
        let dir = out.join("1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("frame \"one\".png"), media::png(48, 32)).unwrap();
        std::fs::write(dir.join("voice.wav"), media::wav()).unwrap();
        let urls = [
            "https://cdn.test/1/frame.png",
            "https://cdn.test/1/voice.wav",
        ];
        let state = store
            .record_finished(
                keys[0],
                &Finish::succeeded(json!({"images": [urls[0]], "audio": urls[1]}))
                    .cost_usd(0.35)
                    .wanting(urls),
            )
            .await
            .unwrap();
        assert_eq!(state, State::Saving);
        store
            .record_output_saved(keys[0], urls[0], &dir.join("frame \"one\".png"))
            .await
            .unwrap();
        let state = store
            .record_output_saved(keys[0], urls[1], &dir.join("voice.wav"))
            .await
            .unwrap();
        assert_eq!(state, State::Succeeded);
        // Line 2 failed; line 4 is uncertain; line 5 is still queued.
        store
            .record_finished(
                keys[1],
                &Finish::failed(json!({"message": "<b>nsfw</b> & refused"})),
            )
            .await
            .unwrap();
        store
            .record_uncertain(keys[2], "timed out after sending")
            .await
            .unwrap();
    });
    db
}

#[test]
fn status_reads_the_store_without_network() {
    let env = Env::new();
    let out = env.path("out");
    let db = seeded_store(&env, &out);
    let a = env
        .cmd()
        .env_remove("RUNCOMFY_TOKEN")
        .env("RUNCOMFY_BASE_URL", "http://127.0.0.1:9")
        .args(["batch", "status", "seeded", "--store"])
        .arg(&db)
        .assert()
        .success();
    let text = stdout_of(&a);
    assert!(
        text.contains("4 rows: 1 succeeded, 1 failed, 0 cancelled, 1 uncertain"),
        "{text}"
    );
    assert!(text.contains("1 queued; spent $0.350"), "{text}");
    let hash = runcomfy_store::input_sha256(&row("a bird"));
    let line = text
        .lines()
        .find(|l| l.contains(&hash))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.trim_start().starts_with("4 "), "{line}");
    assert!(line.contains("timed out after sending"), "{line}");

    // The same through RUNCOMFY_STORE, as JSON.
    let a = env
        .cmd()
        .env("RUNCOMFY_STORE", &db)
        .args(["--json", "batch", "status", "seeded"])
        .assert()
        .success();
    let v: Value = serde_json::from_str(stdout_of(&a).trim()).unwrap();
    assert_eq!(v["total"], 4);
    assert_eq!(v["uncertain_rows"][0]["line"], 4);
    assert_eq!(v["uncertain_rows"][0]["input_sha256"], hash);
    assert_eq!(v["done"], false);

    // An unknown batch is a usage error; an unreachable database names no password.
    env.cmd()
        .args(["batch", "status", "nope", "--store"])
        .arg(&db)
        .assert()
        .code(2);
    let a = env
        .cmd()
        .args([
            "batch",
            "status",
            "seeded",
            "--store",
            "postgres://batch:s3cret-pw@127.0.0.1:9/jobs",
        ])
        .assert()
        .failure();
    let err = stderr_of(&a);
    assert!(err.contains("127.0.0.1:9"), "{err}");
    assert!(!err.contains("s3cret-pw"), "{err}");
}

/// Runs `scripts/check-report` on a page; `None` when Chromium cannot be had here (never
/// under `CI`, where that fails the test).
fn check_in_browser(page: &Path, shot: &Path) -> Option<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/check-report");
    let output = StdCommand::new(&script)
        .arg(page)
        .arg(shot)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    match output.status.code() {
        Some(0) => Some(stdout),
        Some(2) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: no headless Chromium here ({stderr}); run scripts/check-report as root to install it");
            None
        }
        _ => panic!("check-report failed:\n{stdout}\n{stderr}"),
    }
}

#[test]
fn report_is_a_self_contained_page_that_renders_in_a_browser() {
    let env = Env::new();
    let out = env.path("out");
    let db = seeded_store(&env, &out);
    let a = env
        .cmd()
        .env_remove("RUNCOMFY_TOKEN")
        .args(["batch", "report", "seeded", "--out"])
        .arg(&out)
        .arg("--store")
        .arg(&db)
        .assert()
        .success();
    assert!(stdout_of(&a).contains("index.html"));

    let manifest = std::fs::read_to_string(out.join("manifest.jsonl")).unwrap();
    let lines: Vec<Value> = manifest
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rows: Vec<u64> = lines.iter().map(|l| l["row"].as_u64().unwrap()).collect();
    assert_eq!(rows, [1, 2, 4, 5]);
    assert_eq!(lines[0]["request_id"], "req-1");
    assert_eq!(lines[0]["state"], "succeeded");
    assert_eq!(
        lines[0]["outputs"],
        json!(["1/frame \"one\".png", "1/voice.wav"])
    );
    assert_eq!(lines[0]["cost_usd"], 0.35);
    assert_eq!(lines[1]["state"], "failed");
    assert_eq!(lines[1]["error"]["message"], "<b>nsfw</b> & refused");
    assert_eq!(lines[2]["state"], "uncertain");
    assert_eq!(lines[2]["request_id"], Value::Null);
    assert_eq!(lines[3]["state"], "queued");

    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    // Everything is escaped and local: no script but the inline one, no network.
    assert!(!page.contains("<script>alert"), "unescaped input");
    assert!(page.contains("a cat &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;b&gt;nsfw&lt;/b&gt; &amp; refused"));
    assert_eq!(page.matches("<script").count(), 1);
    assert!(
        !page.contains("src=\"http") && !page.contains("<link"),
        "network reference"
    );
    assert!(
        page.contains("<img src=\"1/frame%20%22one%22.png\""),
        "{page}"
    );
    assert!(
        page.contains("<audio controls preload=\"metadata\" src=\"1/voice.wav\""),
        "{page}"
    );

    let shot = env.path("report.png");
    let Some(seen) = check_in_browser(&out.join("index.html"), &shot) else {
        return;
    };
    assert!(
        seen.contains("rendered=1 media=2 loaded=2 failed=0"),
        "{seen}"
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 1000,
        "no screenshot"
    );
}
