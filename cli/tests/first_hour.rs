//! The command line's rough edges a newcomer meets in the first hour, through the real
//! binary and the fake server: the data folder's variable, model search, a mistyped command,
//! the model's usage line, and `--dry-run` with a local file.

mod common;

use common::{text, Env, I2V};
use runcomfy_testenv::{Within as _, DEADLINE};

#[test]
fn the_data_folder_is_runcomfy_data_dir_and_the_old_name_still_works() {
    let env = Env::new();
    let new = env.path("new-data");
    let o = env
        .std_cmd()
        .env_remove("RUNCOMFY_JOURNAL_DIR")
        .env("RUNCOMFY_DATA_DIR", &new)
        .arg("jobs")
        .within(DEADLINE);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        new.join("jobs.db").is_file(),
        "the store is in RUNCOMFY_DATA_DIR"
    );
    assert!(!text(&o.stderr).contains("RUNCOMFY_JOURNAL_DIR"));

    let old = env.path("old-data");
    let o = env
        .std_cmd()
        .env_remove("RUNCOMFY_DATA_DIR")
        .env("RUNCOMFY_JOURNAL_DIR", &old)
        .arg("jobs")
        .within(DEADLINE);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(old.join("jobs.db").is_file(), "the old name is still read");
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("RUNCOMFY_JOURNAL_DIR is now called RUNCOMFY_DATA_DIR"),
        "{stderr}"
    );
}

#[test]
fn model_search_matches_words_and_categories_in_any_case() {
    let env = Env::new();
    let search = |args: &[&str]| {
        let o = env.std_cmd().arg("models").args(args).within(DEADLINE);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    let found = search(&["--search", "image to video"]);
    assert!(found.contains(I2V), "{found}");
    assert!(!found.contains("text-to-image"), "{found}");
    let found = search(&["--search", "HappyHorse Image-To-Video"]);
    assert!(found.contains(I2V), "{found}");
    let video = search(&["--category", "VIDEO"]);
    assert!(video.contains(I2V), "{video}");
    assert_eq!(video, search(&["--category", "video"]));
    let local = env
        .std_cmd()
        .args(["models", "--local", "--search", "image to video"])
        .within(DEADLINE);
    assert!(text(&local.stdout).contains(I2V));
}

#[test]
fn a_mistyped_command_gets_a_suggestion() {
    let env = Env::new();
    let o = env.std_cmd().arg("rnu").within(DEADLINE);
    assert_eq!(o.status.code(), Some(2));
    let stderr = text(&o.stderr);
    assert!(stderr.contains("did you mean 'run'?"), "{stderr}");
}

#[test]
fn a_models_help_shows_its_required_flags_in_the_usage_line() {
    let env = Env::new();
    let o = env.std_cmd().args(["run", I2V, "--help"]).within(DEADLINE);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let help = text(&o.stdout);
    let usage = help
        .lines()
        .find(|l| l.starts_with("Usage:"))
        .unwrap_or_default();
    assert!(usage.contains("--image-url <IMAGE_URL>"), "{usage}");
    assert!(usage.contains("--prompt <PROMPT>"), "{usage}");
}

#[test]
fn dry_run_shows_a_local_file_by_name_and_size() {
    let env = Env::new();
    let png = common::media::png(320, 320);
    std::fs::write(env.path("cat.png"), &png).expect("the image is written");
    let o = env
        .std_cmd()
        .args([
            "run",
            I2V,
            "--image-url",
            "./cat.png",
            "--prompt",
            "hi",
            "--dry-run",
        ])
        .within(DEADLINE);
    let stdout = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        stdout.contains(&format!(
            "./cat.png ({} bytes, sent as a data: URI)",
            png.len()
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("base64"), "{stdout}");
    assert_eq!(env.server.submits(), 0);
}

/// The offline tour on the standalone fake's defaults: any token works, outputs are real
/// media saved by `--out` (a PNG for an image model, a WebM clip for a video model), and
/// what a batch spends is what its estimate said (the charges follow the catalog's units).
#[test]
fn the_offline_tour_works_on_the_fakes_defaults() {
    use common::fleet::{Fake, BIN};
    let fake = Fake::start(&[]);
    let work = tempfile::tempdir().expect("a folder");
    let run = |args: &[&str]| {
        std::process::Command::new(BIN)
            .env_remove("RUNCOMFY_STORE")
            .env("RUNCOMFY_BASE_URL", &fake.url)
            .env("RUNCOMFY_TOKEN", "whatever-i-typed")
            .env("RUNCOMFY_DATA_DIR", work.path().join("data"))
            .env("RUNCOMFY_POLL_INTERVAL_MS", "20")
            .current_dir(work.path())
            .args(args)
            .within(DEADLINE)
    };
    let o = run(&[
        "run",
        "blackforestlabs/flux-2-klein/4b/text-to-image",
        "--prompt",
        "a cat",
        "--out",
        "pics",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let saved = std::path::PathBuf::from(text(&o.stdout).trim());
    let bytes = std::fs::read(&saved).expect("the image was saved");
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{}",
        saved.display()
    );

    let rows = work.path().join("rows.jsonl");
    std::fs::write(
        &rows,
        [
            r#"{"image_url": "https://example.test/a.png", "prompt": "one", "duration": 5}"#,
            r#"{"image_url": "https://example.test/b.png", "prompt": "two", "duration": 10}"#,
        ]
        .join("\n"),
    )
    .expect("the rows are written");
    let o = run(&[
        "batch",
        I2V,
        "--input",
        "rows.jsonl",
        "--out",
        "clips",
        "--dry-run",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let estimate = text(&o.stdout) + &text(&o.stderr);
    let o = run(&["batch", I2V, "--input", "rows.jsonl", "--out", "clips"]);
    let said = text(&o.stdout);
    assert!(o.status.success(), "{said}{}", text(&o.stderr));
    for line in ["1", "2"] {
        let folder = work.path().join("clips").join(line);
        let clip = std::fs::read_dir(&folder)
            .expect("the row's folder")
            .filter_map(Result::ok)
            .find(|e| e.file_name().to_string_lossy().ends_with(".webm"))
            .expect("a WebM clip");
        let bytes = std::fs::read(clip.path()).expect("the clip");
        assert!(
            bytes.starts_with(&[0x1a, 0x45, 0xdf, 0xa3]),
            "not a WebM file"
        );
    }
    // $0.10 per second: 5 s and 10 s, estimated and charged alike.
    assert!(estimate.contains("$1.50"), "{estimate}");
    assert!(said.contains("spent $1.500"), "{said}");
}

/// Polling and retry options appear where they act: `run` and `batch` wait and retry,
/// `status` retries, `jobs` (offline) does neither.
#[test]
fn network_options_only_where_they_act() {
    let env = Env::new();
    let help = |args: &[&str]| {
        let o = env.std_cmd().args(args).arg("--help").within(DEADLINE);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    for command in [&["run"][..], &["batch"], &["resume"]] {
        let h = help(command);
        assert!(
            h.contains("--poll-interval") && h.contains("--retries"),
            "{command:?}: {h}"
        );
    }
    let status = help(&["status"]);
    assert!(
        status.contains("--retries") && !status.contains("--poll-interval"),
        "{status}"
    );
    let jobs = help(&["jobs"]);
    for option in ["--poll-interval", "--timeout", "--retries"] {
        assert!(!jobs.contains(option), "jobs --help lists {option}: {jobs}");
    }
}
