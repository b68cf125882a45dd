//! `runcomfy-codegen sync` end to end: the real binary against the fake RunComfy catalog
//! (`runcomfy-fake`, over HTTP on 127.0.0.1), writing into a temporary schema folder.

use runcomfy_testenv::{Within as _, DEADLINE};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use runcomfy_fake::{FakeServer, Fault, ModelSpec, Route};
use serde_json::{json, Value};

/// A token no output may show.
const TOKEN: &str = "sk-sync-test-7c1f0e5b9d";

/// A fake catalog on its own runtime (its worker serves while the test runs the binary).
struct Catalog {
    server: FakeServer,
    _rt: tokio::runtime::Runtime,
}

impl Catalog {
    fn start(models: Vec<ModelSpec>) -> Catalog {
        Catalog::start_with(models, false)
    }

    /// A catalog of `models`, and of every model shipped in `runcomfy` when `shipped`.
    fn start_with(models: Vec<ModelSpec>, shipped: bool) -> Catalog {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = rt
            .block_on(async {
                let mut builder = FakeServer::builder().token(TOKEN);
                if shipped {
                    builder = builder.all_models();
                }
                for m in models {
                    builder = builder.add_model(m);
                }
                builder.start().await
            })
            .expect("fake server");
        Catalog { server, _rt: rt }
    }

    fn set(&self, id: &str, schema: Value) {
        self.server
            .set_model(ModelSpec::from_json(id, schema))
            .expect("the fake takes the schema");
    }
}

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn out(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }
}

fn run(args: &[&str], token: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runcomfy-codegen"));
    cmd.args(args).env_remove("RUNCOMFY_TOKEN");
    if let Some(t) = token {
        cmd.env("RUNCOMFY_TOKEN", t);
    }
    let out = cmd.within(DEADLINE);
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    // Whatever happens, the token is never shown.
    assert!(
        !run.out().contains(TOKEN),
        "the token leaked:\n{}",
        run.out()
    );
    assert!(
        !run.out().contains("sk-sync"),
        "the token leaked:\n{}",
        run.out()
    );
    run
}

fn sync(catalog: &Catalog, dir: &Path, extra: &[&str]) -> Run {
    let dir = dir.to_str().expect("utf-8 path");
    let mut args = vec!["sync", "--base-url", catalog.server.base_url(), "-o", dir];
    args.extend_from_slice(extra);
    run(&args, Some(TOKEN))
}

fn input(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "required": required, "properties": props})
}

/// The schema of `acme/draw` in its first version.
fn draw_v1() -> Value {
    input(
        json!({
            "prompt": {"type": "string", "description": "What to draw.", "maxLength": 2000},
            "duration": {"type": "integer", "enum": [5, 10, 15], "default": 5},
            "strength": {"type": "float", "minimum": 0, "maximum": 1, "default": 0.5},
            "resolution": {"type": "string", "enum": ["720p", "1080p"], "default": "720p"},
            "seed": {"type": "integer", "minimum": 0, "maximum": 255},
            "style": {"type": "string"},
        }),
        &["prompt"],
    )
}

fn first_catalog() -> Catalog {
    Catalog::start(vec![
        ModelSpec::from_json("acme/draw", draw_v1()),
        ModelSpec::from_json(
            "acme/clip/text-to-video",
            input(json!({"prompt": {"type": "string"}}), &["prompt"]),
        )
        .output_schema(json!({"output": {"type": "object", "properties": {
            "video": {"type": "string", "format": "uri"}}}})),
        ModelSpec::from_json(
            "zeta/sound",
            input(
                json!({"text": {"type": "string", "minLength": 1}}),
                &["text"],
            ),
        ),
    ])
}

/// Every file below `dir` with its modification time.
fn files(dir: &Path) -> Vec<(PathBuf, SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("folder") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let mtime = p.metadata().and_then(|m| m.modified()).expect("mtime");
                out.push((p.strip_prefix(dir).expect("below").to_path_buf(), mtime));
            }
        }
    }
    out.sort();
    out
}

fn read(dir: &Path, path: &str) -> String {
    std::fs::read_to_string(dir.join(path)).expect(path)
}

#[test]
fn first_sync_then_a_re_sync_that_writes_nothing() {
    let catalog = first_catalog();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("schemas");

    let first = sync(&catalog, &dir, &[]);
    assert_eq!(first.code, Some(0), "{}", first.out());
    let names: Vec<PathBuf> = files(&dir).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        names,
        [
            "acme/clip/text-to-video/input.json",
            "acme/clip/text-to-video/output.json",
            "acme/draw/input.json",
            "zeta/sound/input.json",
        ]
        .map(PathBuf::from)
    );
    assert!(first.stdout.contains("acme/draw: added"), "{}", first.out());
    assert!(
        first
            .stdout
            .contains("summary: 0 breaking, 3 compatible, 0 docs only, 0 removed (3 added"),
        "{}",
        first.out()
    );
    assert!(first.stdout.contains("4 files written"), "{}", first.out());
    // The dialect as served, keywords sorted, names in order, a trailing newline.
    let text = read(&dir, "acme/draw/input.json");
    assert!(text.contains("\"type\": \"float\""), "{text}");
    assert!(text.ends_with("}\n"), "{text}");
    let props: Vec<String> = serde_json::from_str::<Value>(&text).expect("json")["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        props,
        [
            "prompt",
            "duration",
            "strength",
            "resolution",
            "seed",
            "style"
        ]
    );
    assert!(text.find("\"default\"") < text.find("\"enum\""), "{text}");
    // The folder generates.
    let checked = run(&["check", dir.to_str().expect("utf-8")], None);
    assert_eq!(checked.code, Some(0), "{}", checked.out());

    // Again: nothing changed, nothing is written, and it says so.
    let before = files(&dir);
    let again = sync(&catalog, &dir, &[]);
    assert_eq!(again.code, Some(0), "{}", again.out());
    assert!(
        again
            .stdout
            .contains("up to date with the catalog (3 models), nothing written"),
        "{}",
        again.out()
    );
    assert!(
        again.stdout.contains("(0 models changed, 3 unchanged)"),
        "{}",
        again.out()
    );
    assert_eq!(files(&dir), before, "no file was touched");

    // --check agrees.
    let check = sync(&catalog, &dir, &["--check"]);
    assert_eq!(check.code, Some(0), "{}", check.out());
}

#[test]
fn each_kind_of_change_is_reported_and_check_writes_nothing() {
    let catalog = first_catalog();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("schemas");
    assert_eq!(sync(&catalog, &dir, &[]).code, Some(0));

    let v2 = input(
        json!({
            // docs only
            "prompt": {"type": "string", "description": "The scene, in English.", "maxLength": 2000},
            // enum value removed
            "duration": {"type": "integer", "enum": [5, 10], "default": 5},
            // bound narrowed
            "strength": {"type": "float", "minimum": 0, "maximum": 0.8, "default": 0.5},
            // enum value added
            "resolution": {"type": "string", "enum": ["720p", "1080p", "4k"], "default": "720p"},
            // type changed
            "seed": {"type": "string"},
            // "style" removed; a new optional and a new required field
            "negative_prompt": {"type": "string"},
            "image": {"type": "string", "format": "image_uri"},
        }),
        &["prompt", "image"],
    );
    catalog.set("acme/draw", v2);
    catalog.server.remove_model("zeta/sound");
    // Made required, and widened.
    catalog.set(
        "acme/clip/text-to-video",
        input(
            json!({"prompt": {"type": "string", "maxLength": 100}, "fps": {"type": "integer", "minimum": 1, "maximum": 60}}),
            &["prompt", "fps"],
        ),
    );

    let before = files(&dir);
    let check = sync(&catalog, &dir, &["--check"]);
    assert_eq!(check.code, Some(3), "{}", check.out());
    assert_eq!(files(&dir), before, "--check writes nothing");
    assert!(check.stdout.contains("would write"), "{}", check.out());

    let expected = [
        "acme/clip/text-to-video: changed",
        "  breaking: input.prompt: maxLength 100 added",
        "  breaking: input.fps: new required field: a new parameter of `Input::new`",
        "acme/draw: changed",
        "  breaking: input.duration: enum value 15 removed",
        "  breaking: input.strength: maximum narrowed from 1 to 0.8",
        "  breaking: input.seed: type changed from integer to string",
        "  breaking: input.style: field removed",
        "  breaking: input.image: new required field: a new parameter of `Input::new`",
        "  compatible: input.resolution: enum value \"4k\" added",
        "  compatible: input.negative_prompt: new optional field",
        "  docs: input.prompt: description changed",
        "zeta/sound: removed",
        "  removed: model removed",
        "summary: 7 breaking, 2 compatible, 1 docs only, 1 removed (1 removed, 2 models changed, 0 unchanged)",
    ];
    for line in expected {
        assert!(
            check.stdout.lines().any(|l| l == line),
            "missing {line:?}:\n{}",
            check.out()
        );
    }

    let applied = sync(&catalog, &dir, &[]);
    assert_eq!(applied.code, Some(0), "{}", applied.out());
    assert!(
        applied.stdout.contains("2 files written, 1 files removed"),
        "{}",
        applied.out()
    );
    assert!(
        !dir.join("zeta").exists(),
        "the removed model's folders are gone"
    );
    // The output schema the catalog still gives is kept; no temporary file is left.
    assert!(dir.join("acme/clip/text-to-video/output.json").is_file());
    assert!(files(&dir)
        .iter()
        .all(|(p, _)| !p.to_string_lossy().contains(".tmp")));
    let after = sync(&catalog, &dir, &["--check"]);
    assert_eq!(after.code, Some(0), "{}", after.out());
}

#[test]
fn a_broken_schema_and_a_model_without_schema_leave_the_others_written() {
    let catalog = Catalog::start(vec![
        ModelSpec::from_json("acme/draw", draw_v1()),
        ModelSpec::without_schema("acme/bare"),
        ModelSpec::new(
            "acme/broken",
            r#"{"type": "object", "properties": {"steps": {"type": "int"}}}"#,
        )
        .as_is(),
        ModelSpec::new("acme/garbled", "{not json").as_is(),
    ]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("schemas");
    let r = sync(&catalog, &dir, &[]);
    assert_eq!(r.code, Some(1), "{}", r.out());
    assert!(dir.join("acme/draw/input.json").is_file(), "{}", r.out());
    for gone in ["acme/bare", "acme/broken", "acme/garbled"] {
        assert!(!dir.join(gone).exists(), "{gone}");
    }
    assert!(
        r.stderr
            .contains("skipped acme/bare: the catalog gives no input schema"),
        "{}",
        r.out()
    );
    let broken = format!(
        "{}#/properties/steps/type: unsupported type \"int\"",
        dir.join("acme/broken/input.json").display()
    );
    assert!(r.stderr.contains(&broken), "{}", r.out());
    assert!(
        r.stderr
            .contains("acme/garbled/input.json: `input_schema` is a text that is not JSON"),
        "{}",
        r.out()
    );
    assert!(r.stdout.contains("acme/draw: added"), "{}", r.out());
}

#[test]
fn paging_past_a_hundred_models() {
    let schema = input(json!({"prompt": {"type": "string"}}), &["prompt"]);
    let models = (0..230)
        .map(|i| ModelSpec::from_json(format!("bulk/model-{i:03}"), schema.clone()))
        .collect();
    let catalog = Catalog::start(models);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("schemas");
    let r = sync(&catalog, &dir, &[]);
    assert_eq!(r.code, Some(0), "{}", r.out());
    assert_eq!(files(&dir).len(), 230);
    assert!(dir.join("bulk/model-229/input.json").is_file());
    assert_eq!(
        catalog.server.count(Route::ListModels),
        3,
        "pages of 100, 100 and 30"
    );
    let pages: Vec<String> = catalog
        .server
        .requests()
        .iter()
        .filter(|r| r.route == Route::ListModels)
        .map(|r| r.query.clone().unwrap_or_default())
        .collect();
    assert!(
        pages
            .iter()
            .all(|q| q.contains("include_schema=true") && q.contains("limit=100")),
        "{pages:?}"
    );
}

#[test]
fn only_touches_the_models_it_names() {
    let catalog = first_catalog();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("schemas");
    assert_eq!(sync(&catalog, &dir, &["--only", "zeta"]).code, Some(0));
    assert_eq!(files(&dir).len(), 1);
    // A vendor the catalog lost, outside the scope: not removed.
    assert_eq!(sync(&catalog, &dir, &[]).code, Some(0));
    catalog.server.remove_model("zeta/sound");
    let r = sync(&catalog, &dir, &["--only", "acme/draw"]);
    assert_eq!(r.code, Some(0), "{}", r.out());
    assert!(dir.join("zeta/sound/input.json").is_file());
    assert!(
        r.stdout.contains("(0 models changed, 1 unchanged)"),
        "{}",
        r.out()
    );
}

#[test]
fn a_refused_token_is_named_and_nothing_is_written() {
    let catalog = first_catalog();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("schemas");
    let path = dir.to_str().expect("utf-8");
    let base = catalog.server.base_url();

    let missing = run(&["sync", "--base-url", base, "-o", path], None);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing.stderr.contains("RUNCOMFY_TOKEN is not set"),
        "{}",
        missing.out()
    );

    let wrong = run(
        &["sync", "--base-url", base, "-o", path],
        Some("sk-sync-wrong-token"),
    );
    assert_eq!(wrong.code, Some(1), "{}", wrong.out());
    // The fake answers a wrong token as the API does: HTTP 400 with error 400004.
    assert!(
        wrong.stderr.contains(
            "the catalog refused the token in RUNCOMFY_TOKEN (HTTP 400): set RUNCOMFY_TOKEN"
        ),
        "{}",
        wrong.out()
    );
    catalog
        .server
        .inject(Route::ListModels, Fault::unauthorized());
    let revoked = sync(&catalog, &dir, &[]);
    assert_eq!(revoked.code, Some(1), "{}", revoked.out());
    assert!(
        revoked
            .stderr
            .contains("the catalog refused the token in RUNCOMFY_TOKEN (HTTP 401)"),
        "{}",
        revoked.out()
    );
    assert!(!dir.exists(), "nothing written");
}

#[test]
fn a_rate_limit_is_waited_out() {
    let catalog = first_catalog();
    catalog
        .server
        .inject_times(Route::ListModels, Fault::rate_limited(Some("0")), 2);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("schemas");
    let r = sync(&catalog, &dir, &[]);
    assert_eq!(r.code, Some(0), "{}", r.out());
    assert!(
        r.stderr.contains(
            "rate limited (HTTP 429): waiting 0s as the server asks, then asking again (2 of 5)"
        ),
        "{}",
        r.out()
    );
    assert_eq!(catalog.server.count(Route::ListModels), 3);
    assert_eq!(files(&dir).len(), 4);
}

#[test]
fn a_page_that_is_not_json_or_a_connection_lost_halfway_writes_nothing() {
    let schema = input(json!({"prompt": {"type": "string"}}), &["prompt"]);
    let mut models: Vec<ModelSpec> = (0..150)
        .map(|i| ModelSpec::from_json(format!("bulk/model-{i:03}"), schema.clone()))
        .collect();
    models.push(ModelSpec::from_json("acme/draw", draw_v1()));
    let catalog = Catalog::start(models);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("schemas");

    catalog.server.inject(Route::ListModels, Fault::not_json());
    let r = sync(&catalog, &dir, &[]);
    assert_eq!(r.code, Some(1), "{}", r.out());
    assert!(
        r.stderr
            .contains("catalog page at offset 0: the catalog page is not JSON"),
        "{}",
        r.out()
    );
    assert!(!dir.exists());

    // The first page arrives, the second never does (the server hangs up, every retry).
    catalog
        .server
        .inject(Route::ListModels, Fault::Delay(Duration::ZERO));
    catalog
        .server
        .inject_times(Route::ListModels, Fault::CloseAfterRead, 10);
    let r = sync(&catalog, &dir, &[]);
    assert_eq!(r.code, Some(1), "{}", r.out());
    assert!(r.stderr.contains("offset 100"), "{}", r.out());
    assert!(!dir.exists(), "nothing half-written:\n{}", r.out());
}

#[test]
fn diff_prints_json_for_tools() {
    let catalog = first_catalog();
    let tmp = tempfile::tempdir().expect("tempdir");
    let old = tmp.path().join("old");
    let new = tmp.path().join("new");
    assert_eq!(sync(&catalog, &old, &[]).code, Some(0));
    catalog.set(
        "acme/draw",
        input(json!({"prompt": {"type": "string", "description": "What to draw.", "maxLength": 2000}}), &["prompt"]),
    );
    assert_eq!(sync(&catalog, &new, &[]).code, Some(0));
    let r = run(
        &[
            "diff",
            old.to_str().expect("utf-8"),
            new.to_str().expect("utf-8"),
            "--format",
            "json",
        ],
        None,
    );
    assert_eq!(r.code, Some(0), "{}", r.out());
    let report: Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(report["summary"]["breaking"], 5, "{report:#}");
    assert_eq!(report["summary"]["unchanged"], 2);
    assert_eq!(report["models"][0]["id"], "acme/draw");
    assert_eq!(report["models"][0]["changes"][0]["class"], "breaking");
    assert_eq!(report["models"][0]["changes"][0]["path"], "input.duration");
}

#[test]
fn the_shipped_schemas_come_back_from_the_catalog_unchanged() {
    // The fake serves every shipped model as compact text, outputs unwrapped: the files
    // differ in bytes from `schemas/`, but not in anything a user of the API sees.
    let catalog = Catalog::start_with(Vec::new(), true);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("schemas");
    let r = sync(&catalog, &dir, &[]);
    assert_eq!(r.code, Some(0), "{}", r.out());
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    let report = runcomfy_codegen::diff::compare_dirs(&shipped, &dir).expect("both load");
    assert!(report.is_empty(), "{}", report.to_text());
    assert!(report.unchanged >= 40, "{}", report.to_text());
    let checked = run(&["check", dir.to_str().expect("utf-8")], None);
    assert_eq!(checked.code, Some(0), "{}", checked.out());
}
