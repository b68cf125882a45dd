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

/// Runs `scripts/check-report` on a page in this machine's Chromium (for tests marked
/// `#[needs(chromium)]`); returns its summary line. At most two minutes.
fn check_in_browser(page: &Path, shot: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/check-report");
    let output = runcomfy_testenv::output_within(
        StdCommand::new(&script)
            .arg(page)
            .arg(shot)
            .env(runcomfy_testenv::CHROMIUM_ENV, runcomfy_testenv::chromium()),
        Duration::from_secs(240),
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "check-report failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}

/// `batch report` on a seeded store: the page `report_page` checks, and its path.
fn seeded_report(env: &Env) -> PathBuf {
    let out = env.path("out");
    let db = seeded_store(env, &out);
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
    out
}

#[test]
fn report_is_a_self_contained_page() {
    let env = Env::new();
    let out = seeded_report(&env);
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
    // Everything is escaped and local: the rows are one JSON blob with `<` escaped, read by
    // the one inline script; no network.
    assert!(!page.contains("<script>alert"), "unescaped input");
    assert!(page.contains("a cat \\u003cscript\\u003ealert(1)\\u003c/script\\u003e"));
    assert!(page.contains("\\u003cb\\u003ensfw\\u003c/b\\u003e \\u0026 refused"));
    assert_eq!(page.matches("<script").count(), 2);
    assert!(page.contains("<script type=\"application/json\" id=\"data\">"));
    assert!(
        !page.contains("src=\"http") && !page.contains("<link"),
        "network reference"
    );
    assert!(
        page.contains(r#"{"n":"1/frame \"one\".png","h":"1/frame%20%22one%22.png","k":"img"}"#),
        "{page}"
    );
    assert!(
        page.contains(r#"{"n":"1/voice.wav","k":"audio"}"#),
        "{page}"
    );
    // The input image is a thumbnail from its URL.
    assert!(
        page.contains(
            r#"{"k":"image_url","t":"img","v":"https://example.test/cat.png","n":"cat.png"}"#
        ),
        "{page}"
    );
}

#[runcomfy_testenv::needs(chromium)]
#[test]
fn report_renders_in_a_browser() {
    let env = Env::new();
    let out = seeded_report(&env);
    let shot = env.path("report.png");
    let seen = check_in_browser(&out.join("index.html"), &shot);
    assert!(
        seen.contains("rendered=1 media=2 loaded=2 failed=0 img=1/1 video=0/0 audio=1/1"),
        "{seen}"
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 1000,
        "no screenshot"
    );
}

/// A model whose every job outputs one real PNG from the loopback file host, priced $0.25 per
/// output.
const PICS: &str = "acme/pics/text-to-image";

fn pics_env() -> (Env, Vec<u8>) {
    let png = media::png(40, 30);
    // The file host starts with the env; the model's output names a file on it, so the model
    // is added once both exist.
    let env = Env::new();
    let url = env.files.add("pic.png", png.clone());
    env.server
        .set_model(
            runcomfy_fake::ModelSpec::new(PICS, common::EXTRA_SCHEMA)
                .output(json!({"image": url}))
                .price(0.25, "output"),
        )
        .unwrap();
    (env, png)
}

fn pic_rows(env: &Env, n: usize) -> PathBuf {
    let lines: Vec<String> = (1..=n)
        .map(|i| json!({"prompt": format!("picture {i}")}).to_string())
        .collect();
    write_rows(env, "pics.jsonl", &lines)
}

fn batch_cmd(env: &Env, rows: &Path, store: &str) -> assert_cmd::Command {
    let mut c = env.cmd();
    c.args(["batch", PICS, "--unchecked", "--input"])
        .arg(rows)
        .args(["--out", "out", "--store", store]);
    c
}

fn manifest(env: &Env) -> Vec<Value> {
    std::fs::read_to_string(env.path("out/manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn jobs_per_input(env: &Env) -> Vec<usize> {
    env.server.inputs().iter().map(|i| i.jobs).collect()
}

/// Every row runs once, its output saved in DIR/<line>/, the manifest and the page written;
/// the same command again sends nothing.
fn runs_every_row_once(store: &str) {
    let (env, png) = pics_env();
    let rows = pic_rows(&env, 5);
    let a = batch_cmd(&env, &rows, store)
        .args(["--concurrency", "3"])
        .assert()
        .success();
    let text = stdout_of(&a);
    assert!(text.contains("5 rows: 5 succeeded, 0 failed"), "{text}");
    assert!(text.contains("spent $1.250"), "{text}");
    assert_eq!(env.server.submits(), 5);
    let lines = manifest(&env);
    assert_eq!(lines.len(), 5);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["row"], i as u64 + 1);
        assert_eq!(line["state"], "succeeded");
        assert_eq!(line["cost_usd"], 0.25);
        let file = line["outputs"][0].as_str().unwrap();
        assert_eq!(file, format!("{}/pic.png", i + 1));
        assert_eq!(std::fs::read(env.path("out").join(file)).unwrap(), png);
    }
    // Again: finished rows are skipped.
    batch_cmd(&env, &rows, store).assert().success();
    assert_eq!(env.server.submits(), 5);
    assert!(jobs_per_input(&env).iter().all(|n| *n == 1));
}

#[test]
fn batch_runs_every_row_once_on_sqlite() {
    let env_db = tempfile::tempdir().unwrap();
    runs_every_row_once(&env_db.path().join("jobs.db").display().to_string());
}

#[runcomfy_testenv::needs(postgres)]
#[test]
fn batch_runs_every_row_once_on_postgres() {
    let url = runcomfy_testenv::pg_url();
    // Batch names are unique per store: a name of its own per run of this test.
    let (env, png) = pics_env();
    let name = format!(
        "pg-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let rows = pic_rows(&env, 4);
    let a = batch_cmd(&env, &rows, &url)
        .args(["--name", &name])
        .assert()
        .success();
    // The store is shown without its password.
    if let Some(password) = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(user, _)| user.split_once(':'))
        .map(|(_, p)| p)
    {
        assert!(!stderr_of(&a).contains(password), "{}", stderr_of(&a));
    }
    assert_eq!(env.server.submits(), 4);
    batch_cmd(&env, &rows, &url)
        .args(["--name", &name])
        .assert()
        .success();
    assert_eq!(env.server.submits(), 4);
    assert_eq!(std::fs::read(env.path("out/4/pic.png")).unwrap(), png);
    let a = env
        .cmd()
        .args(["--json", "batch", "status", &name, "--store", &url])
        .assert()
        .success();
    let v: Value = serde_json::from_str(stdout_of(&a).trim()).unwrap();
    assert_eq!(v["succeeded"], 4);
    assert_eq!(v["done"], true);
}

#[test]
fn job_cap_and_budget_stop_submitting_and_a_rerun_finishes() {
    let (env, _) = pics_env();
    let db = env.path("jobs.db").display().to_string();
    let rows = pic_rows(&env, 5);
    let a = batch_cmd(&env, &rows, &db)
        .args(["--max-jobs", "2"])
        .assert()
        .code(7);
    assert!(
        stderr_of(&a).contains("stopped submitting: the job cap was reached"),
        "{}",
        stderr_of(&a)
    );
    assert_eq!(env.server.submits(), 2);
    // $0.25 a row: a budget of $1.00 lets two more rows go (0.50 spent + 0.50).
    let a = batch_cmd(&env, &rows, &db)
        .args(["--budget-usd", "1.0"])
        .assert()
        .code(7);
    assert!(stderr_of(&a).contains("budget"), "{}", stderr_of(&a));
    assert_eq!(env.server.submits(), 4);
    let a = batch_cmd(&env, &rows, &db)
        .args(["--json"])
        .assert()
        .success();
    let events: Vec<Value> = stdout_of(&a)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "row_submitted")
            .count(),
        1
    );
    let done = events.iter().find(|e| e["event"] == "batch_done").unwrap();
    assert_eq!(done["exit_code"], 0);
    assert_eq!(done["totals"]["succeeded"], 5);
    // What this run's store calls cost: the one row it sent, marked, recorded and saved.
    let store = &done["store"];
    assert_eq!(store["rows_settled"], 1, "{store}");
    for op in [
        "mark_submitting",
        "record_submitted",
        "record_finished",
        "record_output_saved",
    ] {
        assert_eq!(store["operations"][op]["calls"], 1, "{op}: {store}");
    }
    assert!(
        store["operations"]["claim"]["calls"].as_u64() >= Some(1),
        "{store}"
    );
    assert!(
        store["row_store_seconds"].as_f64() <= store["row_seconds"].as_f64(),
        "{store}"
    );
    assert_eq!(env.server.submits(), 5);
    assert!(jobs_per_input(&env).iter().all(|n| *n == 1));
}

#[test]
fn an_uncertain_row_is_listed_and_sent_again_only_on_request() {
    let (env, _) = pics_env();
    let db = env.path("jobs.db").display().to_string();
    let rows = pic_rows(&env, 3);
    // The first submit reaches the server (a paid job) and its answer is lost.
    env.server.inject_times(
        runcomfy_fake::Route::Submit,
        runcomfy_fake::Fault::CloseAfterRead,
        1,
    );
    let a = batch_cmd(&env, &rows, &db)
        .args(["--concurrency", "1"])
        .assert()
        .code(7);
    let err = stderr_of(&a);
    assert!(err.contains("line 1: uncertain"), "{err}");
    assert!(err.contains("1 row(s) are uncertain"), "{err}");
    assert_eq!(env.server.job_count(), 3);
    let a = env
        .cmd()
        .args(["batch", "status", "pics", "--store", &db])
        .assert()
        .success();
    let hash = runcomfy_store::input_sha256(&json!({"prompt": "picture 1"}));
    assert!(stdout_of(&a).contains(&hash), "{}", stdout_of(&a));
    // Again: nothing is sent; the row stays uncertain.
    batch_cmd(&env, &rows, &db).assert().code(7);
    assert_eq!(env.server.job_count(), 3);
    // On request it is sent again (and paid again: the fake now has two jobs for it).
    batch_cmd(&env, &rows, &db)
        .arg("--resubmit-uncertain")
        .assert()
        .success();
    assert_eq!(
        env.server
            .jobs_for_input(PICS, &json!({"prompt": "picture 1"})),
        2
    );
    assert_eq!(env.server.job_count(), 4);
    assert_eq!(manifest(&env)[0]["state"], "succeeded");
}

#[runcomfy_testenv::needs(chromium)]
#[test]
fn a_real_batch_report_renders_its_images() {
    let (env, _) = pics_env();
    let db = env.path("jobs.db").display().to_string();
    let rows = pic_rows(&env, 3);
    batch_cmd(&env, &rows, &db).assert().success();
    let shot = env.path("pics.png");
    let seen = check_in_browser(&env.path("out/index.html"), &shot);
    assert!(
        seen.contains("rendered=1 media=3 loaded=3 failed=0 img=3/3 video=0/0 audio=0/0"),
        "{seen}"
    );
}

#[runcomfy_testenv::needs(chromium)]
#[test]
fn a_real_batch_report_plays_its_videos() {
    // A video model whose every job outputs a real WebM clip and a WAV sound track.
    let clip = "acme/clip/text-to-video";
    let env = Env::new();
    let video = env.files.add("clip.webm", media::WEBM.to_vec());
    let sound = env.files.add("track.wav", media::wav());
    env.server
        .set_model(
            runcomfy_fake::ModelSpec::new(clip, common::EXTRA_SCHEMA)
                .output(json!({"video": video, "audio": sound}))
                .price(0.1, "output"),
        )
        .unwrap();
    let rows = write_rows(
        &env,
        "clips.jsonl",
        &[
            json!({"prompt": "one"}).to_string(),
            json!({"prompt": "two"}).to_string(),
        ],
    );
    let db = env.path("jobs.db").display().to_string();
    env.cmd()
        .args(["batch", clip, "--unchecked", "--input"])
        .arg(&rows)
        .args(["--out", "out", "--store", &db])
        .assert()
        .success();
    for line in ["1", "2"] {
        let dir = env.path("out").join(line);
        assert_eq!(std::fs::read(dir.join("clip.webm")).unwrap(), media::WEBM);
    }
    let page = std::fs::read_to_string(env.path("out/index.html")).unwrap();
    assert!(
        page.contains(r#"{"n":"1/clip.webm","k":"video"}"#),
        "{page}"
    );
    let shot = env.path("clips.png");
    let seen = check_in_browser(&env.path("out/index.html"), &shot);
    // Each video loaded with a picture size, each sound with a duration.
    assert!(
        seen.contains("rendered=1 media=4 loaded=4 failed=0 img=0/0 video=2/2 audio=2/2"),
        "{seen}"
    );
}

#[test]
fn a_terminal_shows_one_bar_and_a_line_per_active_job() {
    let (env, _) = pics_env();
    env.server.set_lifecycle(runcomfy_fake::Lifecycle::timed(
        Duration::ZERO,
        Duration::from_millis(700),
    ));
    let db = env.path("jobs.db").display().to_string();
    let rows = pic_rows(&env, 4);
    let mut cmd = env.std_cmd();
    cmd.env("RUNCOMFY_POLL_INTERVAL_MS", "40")
        .args(["batch", PICS, "--unchecked", "--input"])
        .arg(&rows)
        .args(["--out", "out", "--store", &db, "--concurrency", "2"]);
    let (status, out) = common::run_in_pty(cmd);
    let text = String::from_utf8_lossy(&out);
    assert!(status.success(), "{text}");
    assert!(
        text.contains('\x1b'),
        "a terminal gets a live display: {text:?}"
    );
    assert!(
        text.contains("row 1 running fake-"),
        "a line per active job: {text:?}"
    );
    assert!(text.contains("/4 done"), "the bar's totals: {text:?}");
    assert!(text.contains("running, "), "{text:?}");
    assert!(text.contains("ETA"), "{text:?}");
    assert!(text.contains("4 rows: 4 succeeded"), "{text:?}");
}
