//! The generator end to end: snapshots of every shipped model, diagnostics of every broken
//! fixture, determinism and the build-script contract.

use runcomfy_testenv::{Within as _, DEADLINE};
use std::path::{Path, PathBuf};

use runcomfy_codegen::{
    analyze_with, build, check, check_with, generate, generate_each, Mode, Options,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn snapshot_every_shipped_model() {
    let models = generate_each(&root().join("schemas"), &Options::for_runtime(true))
        .expect("shipped schemas generate");
    assert!(
        models.len() >= 10,
        "expected the shipped models, got {}",
        models.len()
    );
    for (id, code) in models {
        insta::assert_snapshot!(id.replace('/', "__"), code);
    }
}

#[test]
fn snapshot_edge_fixtures() {
    let models = generate_each(
        &fixtures().join("edge"),
        &Options::for_crate("FixtureModels"),
    )
    .expect("edge fixtures generate");
    for (id, code) in models {
        insta::assert_snapshot!(format!("edge__{}", id.replace('/', "__")), code);
    }
}

/// The diagnostics of one broken case folder in strict mode, as `file#pointer: message` lines
/// with the file named relative to the case (`input.json#/properties/a: ...`,
/// `input.json:3:25: ...`).
fn diagnostics_of_case(case_dir: &Path) -> String {
    case_result(case_dir, Mode::Strict)
}

/// What one case folder gives in `mode`: its errors (and warnings), or `accepted` and its
/// warnings, each line with the file named relative to the case.
fn case_result(case_dir: &Path, mode: Mode) -> String {
    let case = case_dir.file_name().expect("case name");
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = tmp.path().join("broken").join(case);
    std::fs::create_dir_all(&model).expect("mkdir");
    for entry in std::fs::read_dir(case_dir).expect("case folder") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            std::fs::copy(&path, model.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    let text = match analyze_with(tmp.path(), mode) {
        Ok((catalog, _)) => {
            assert_eq!(
                mode,
                Mode::Graceful,
                "a broken schema must not check in strict mode"
            );
            let mut lines = vec!["accepted".to_owned()];
            lines.extend(catalog.warnings.iter().map(|w| format!("warning: {w}")));
            lines.join("\n")
        }
        Err(diags) => diags.to_string(),
    };
    let prefix = format!("{}/", model.display());
    text.lines()
        .map(|line| {
            // Every line names the file of the case.
            let (head, rest) = line.split_at(if line.starts_with("warning: ") { 9 } else { 0 });
            if line == "accepted" {
                return line.to_owned();
            }
            assert!(rest.starts_with(&prefix), "{line}");
            format!("{head}{}", &rest[prefix.len()..])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each folder of `fixtures/broken/cases` is one broken model; its expected diagnostics in
/// strict mode are the insta snapshot beside it (`diagnostics.snap`), and what graceful mode
/// (the default) makes of it is `graceful.snap`: its errors, or `accepted` and its warnings.
/// Adding a diagnostic or a fallback is adding a folder.
#[test]
fn diagnostics_of_broken_schemas() {
    let cases_dir = fixtures().join("broken/cases");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&cases_dir)
        .expect("cases")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    for case in cases {
        let text = diagnostics_of_case(&case);
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(&case);
        settings.set_prepend_module_to_snapshot(false);
        settings.set_input_file(case.join("input.json"));
        settings.bind(|| insta::assert_snapshot!("diagnostics", text));
        let text = case_result(&case, Mode::Graceful);
        settings.bind(|| insta::assert_snapshot!("graceful", text));
    }
}

#[test]
fn every_problem_of_a_folder_is_reported_at_once() {
    let diags = check_with(&fixtures().join("broken"), Mode::Strict).expect_err("broken fixtures");
    let files: std::collections::BTreeSet<String> = diags
        .items()
        .iter()
        .map(|d| match &d.place {
            runcomfy_codegen::diag::Place::Node(loc) => loc.file.display().to_string(),
            runcomfy_codegen::diag::Place::Text { file, .. } => file.display().to_string(),
        })
        .collect();
    let cases = std::fs::read_dir(fixtures().join("broken/cases"))
        .expect("cases")
        .count();
    assert_eq!(
        files.len(),
        cases,
        "one file per case, all reported: {diags}"
    );
}

#[test]
fn unusable_options_are_errors_not_fallbacks() {
    let schemas = root().join("schemas");
    let cases: Vec<(Options, &str)> = vec![
        (
            Options {
                runtime_path: "::run comfy!".into(),
                ..Options::default()
            },
            "runtime_path \"::run comfy!\" is not a Rust path (like `::runcomfy`)",
        ),
        (
            Options::for_crate("1Models"),
            "the endpoint trait name \"1Models\" is not a Rust identifier",
        ),
        (
            Options {
                model_macro: Some("for each".into()),
                ..Options::default()
            },
            "the model macro name \"for each\" is not a Rust identifier",
        ),
    ];
    for (options, want) in cases {
        let err = generate(&schemas, &options).expect_err(want);
        assert!(matches!(err, runcomfy_codegen::Error::Options(_)), "{err}");
        assert_eq!(err.to_string(), want);
    }
    // A path other than `::runcomfy` is used as given.
    let options = Options {
        runtime_path: "crate::rt".into(),
        ..Options::default()
    };
    let code = generate(&schemas, &options).expect("generate").code;
    assert!(code.contains("use crate::rt::__codegen as __rt;"));
    assert!(!code.contains("::runcomfy::"));
}

#[test]
fn a_missing_folder_is_a_diagnostic() {
    let diags = check(Path::new("/nonexistent/schemas")).expect_err("missing");
    assert_eq!(
        diags.to_string().trim(),
        "/nonexistent/schemas: schema folder not found"
    );
}

#[test]
fn generation_is_deterministic_and_location_free() {
    let a = generate(&root().join("schemas"), &Options::default()).expect("generate");
    // The same schemas under another absolute path give the same bytes.
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&root().join("schemas"), &tmp.path().join("schemas"));
    let b = generate(&tmp.path().join("schemas"), &Options::default()).expect("generate copy");
    assert_eq!(a.code, b.code);
    assert!(
        !a.code.contains(&*root().to_string_lossy()),
        "no absolute path in generated code"
    );
    assert!(a.code.starts_with("// @generated"));
    let mut ids = a.models.clone();
    ids.sort();
    assert_eq!(ids, a.models, "models sorted by id");
}

#[test]
fn build_writes_only_when_the_output_changes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let schemas = tmp.path().join("schemas");
    copy_dir(&root().join("schemas"), &schemas);
    let out = tmp.path().join("out/models.rs");
    let first = build(&schemas, &out, &Options::default()).expect("first build");
    assert!(first.written);
    assert!(
        first.watched.contains(&schemas),
        "the folder itself is watched, so new models are seen"
    );
    let second = build(&schemas, &out, &Options::default()).expect("second build");
    assert!(!second.written, "unchanged schemas leave the file alone");
    // A schema change rewrites it.
    let input = schemas.join("happyhorse/happyhorse-1.0/image-to-video/input.json");
    let text = std::fs::read_to_string(&input)
        .expect("read")
        .replace("\"maxLength\": 5000", "\"maxLength\": 4000");
    std::fs::write(&input, text).expect("write");
    let third = build(&schemas, &out, &Options::default()).expect("third build");
    assert!(third.written);
    assert!(std::fs::read_to_string(&out).expect("out").contains("4000"));
}

#[test]
fn titles_never_become_identifiers() {
    let code = generate(
        &fixtures().join("edge"),
        &Options::for_crate("FixtureModels"),
    )
    .expect("edge")
    .code;
    let ja = generate(&root().join("schemas"), &Options::default())
        .expect("schemas")
        .code;
    for code in [&code, &ja] {
        for line in code
            .lines()
            .filter(|l| !l.trim_start().starts_with("///") && !l.contains('"'))
        {
            assert!(
                line.is_ascii(),
                "non-ASCII outside docs and strings: {line}"
            );
        }
    }
}

#[test]
fn cli_check_and_generate() {
    let bin = env!("CARGO_BIN_EXE_runcomfy-codegen");
    let ok = std::process::Command::new(bin)
        .arg("check")
        .arg(root().join("schemas"))
        .within(DEADLINE);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = std::process::Command::new(bin)
        .arg("check")
        .arg(fixtures().join("broken"))
        .within(DEADLINE);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains(
            "two-errors/input.json#/properties/start_time/type: unsupported type \"datetime\""
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("invalid-json/input.json:3:25: invalid JSON"),
        "{stderr}"
    );
    // A shape the generator cannot type: a warning by default, an error with `--strict`.
    let case = fixtures().join("broken/cases/tuple-items");
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = tmp.path().join("x/tuple-items");
    std::fs::create_dir_all(&model).expect("mkdir");
    std::fs::copy(case.join("input.json"), model.join("input.json")).expect("copy");
    let graceful = std::process::Command::new(bin)
        .arg("check")
        .arg(tmp.path())
        .output()
        .expect("run");
    assert!(graceful.status.success());
    let stderr = String::from_utf8_lossy(&graceful.stderr);
    assert!(
        stderr.starts_with("warning: ")
            && stderr.contains("tuple-items/input.json#/properties/a/items: tuple"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&graceful.stdout).contains("1 models ok, 1 warnings"));
    let strict = std::process::Command::new(bin)
        .args(["check", "--strict"])
        .arg(tmp.path())
        .output()
        .expect("run");
    assert_eq!(strict.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(
        stderr.contains("tuple-items/input.json#/properties/a/items: tuple")
            && !stderr.contains("warning"),
        "{stderr}"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("models.rs");
    let gen = std::process::Command::new(bin)
        .arg("generate")
        .arg(root().join("schemas"))
        .arg("-o")
        .arg(&out)
        .within(DEADLINE);
    assert!(gen.status.success());
    let code = std::fs::read_to_string(&out).expect("generated file");
    assert!(code.contains("pub mod image_to_video"));
}

#[runcomfy_testenv::needs(shared)]
#[test]
fn corpus_conformance() {
    let corpus = runcomfy_testenv::shared().join("corpus");
    for part in ["runcomfy", "peers"] {
        match check_with(&corpus.join(part), Mode::Strict) {
            Ok(models) => assert!(!models.is_empty()),
            Err(d) => panic!("corpus {part} refused:\n{d}"),
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
