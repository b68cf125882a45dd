//! The generator end to end: snapshots of every shipped model, diagnostics of every broken
//! fixture, determinism and the build-script contract.

use std::path::{Path, PathBuf};

use runcomfy_codegen::{build, check, generate, generate_each, Options};

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

/// One broken schema, the problems it must produce: `(pointer or line:col, message)`.
fn check_broken(case: &str, expected: &[(&str, &str)]) {
    let dir = fixtures().join("broken/cases").join(case);
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = tmp.path().join("broken").join(case);
    std::fs::create_dir_all(&model).expect("mkdir");
    for entry in std::fs::read_dir(&dir).expect("case folder") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), model.join(entry.file_name())).expect("copy");
    }
    let diags = check(tmp.path()).expect_err("a broken schema must not check");
    let got: Vec<(String, String)> = diags
        .items()
        .iter()
        .map(|d| {
            let place = match &d.place {
                runcomfy_codegen::diag::Place::Node(loc) => loc.pointer.clone(),
                runcomfy_codegen::diag::Place::Text { line, column, .. } => {
                    format!("{line}:{column}")
                }
            };
            (place, d.message.clone())
        })
        .collect();
    let want: Vec<(String, String)> = expected
        .iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
    assert_eq!(got, want, "case {case}");
    // Every line names the file.
    for line in diags.to_string().lines() {
        assert!(
            line.contains(&format!("broken/{case}/input.json")),
            "{line}"
        );
    }
}

#[test]
fn diagnostics_of_broken_schemas() {
    check_broken(
        "unknown-type",
        &[(
            "/properties/publish_at/type",
            "unsupported type \"datetime\"",
        )],
    );
    check_broken(
        "dangling-ref",
        &[(
            "/properties/size/$ref",
            "$ref target #/$defs/Nope not found",
        )],
    );
    check_broken("invalid-json", &[("3:25", "invalid JSON: trailing comma")]);
    check_broken(
        "default-not-in-enum",
        &[(
            "/properties/mode/default",
            "default \"c\" is not one of the enum values [\"a\", \"b\"]",
        )],
    );
    check_broken(
        "required-missing-property",
        &[(
            "/required/1",
            "required property \"prompt\" is not defined in `properties`",
        )],
    );
    check_broken(
        "root-not-object",
        &[(
            "/type",
            "the input schema's root must be an object with properties (`\"type\": \"object\"`)",
        )],
    );
    check_broken(
        "two-errors",
        &[
            (
                "/properties/resolution/default",
                "default \"4k\" is not one of the enum values [\"720p\", \"1080p\"]",
            ),
            (
                "/properties/start_time/type",
                "unsupported type \"datetime\"",
            ),
        ],
    );
    check_broken(
        "bad-pattern",
        &[(
            "/properties/code/pattern",
            "pattern \"([\" is not a valid regular expression: error: unclosed character class",
        )],
    );
    check_broken(
        "default-wrong-type",
        &[(
            "/properties/count/default",
            "default \"five\" is not an integer",
        )],
    );
    check_broken(
        "min-greater-than-max",
        &[("/properties/steps", "minimum 10 is greater than maximum 1")],
    );
    check_broken(
        "unsupported-keyword-shape",
        &[(
            "/properties",
            "`properties` must be an object, found an array",
        )],
    );
    check_broken(
        "external-ref",
        &[("/properties/size/$ref", "external $ref \"https://example.com/x.json\" is not supported; only local refs (#/...) are")],
    );
}

#[test]
fn every_problem_of_a_folder_is_reported_at_once() {
    let diags = check(&fixtures().join("broken")).expect_err("broken fixtures");
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

/// More problems at once in one file, beyond the fixtures: a data-driven table of
/// `(schema, expected "pointer: message" lines)`.
#[test]
fn more_diagnostics() {
    let cases: &[(&str, &[&str])] = &[
        (r#"{"type":"object","properties":{"a":{"type":"string","enum":["x","x"]}}}"#, &["/properties/a/enum/1: duplicate enum value \"x\""]),
        (r#"{"type":"object","properties":{"a":{"enum":["x",1]}}}"#, &["/properties/a/enum: an enum mixing strings and numbers is not supported"]),
        (r#"{"type":"object","properties":{"a":{"type":"string","minLength":5,"maxLength":2}}}"#, &["/properties/a: `minLength` 5 is greater than `maxLength` 2"]),
        (r#"{"type":"object","properties":{"a":{"allOf":[{"type":"string"},{"type":"integer"}]}}}"#, &["/properties/a/allOf: `allOf` is supported only around a single schema"]),
        (r#"{"type":"object","properties":{"a":{"anyOf":[{"type":"string"},{"type":"string","maxLength":3}]}}}"#, &["/properties/a/anyOf/1: alternatives /properties/a/anyOf/0 and /properties/a/anyOf/1 have the same shape (Text); they cannot be told apart on the wire"]),
        (r#"{"type":"object","properties":{"a":{"type":"integer","exclusiveMinimum":true}}}"#, &["/properties/a/exclusiveMinimum: boolean `exclusiveMinimum` (draft 4) is not supported; use the numeric form"]),
        (r#"{"type":"object","properties":{"a":{"type":"array","items":[{"type":"string"}]}}}"#, &["/properties/a/items: tuple `items` (an array of schemas) is not supported"]),
        (r#"{"type":"object","properties":{"a":{"type":"string","not":{"const":"x"}}}}"#, &["/properties/a/not: `not` is not supported"]),
        (r#"{"type":"object","properties":{"a":{"type":"boolean","default":null}}}"#, &["/properties/a/default: default null is not allowed: the schema is not nullable"]),
        (r#"{"type":"object","properties":{"a":{"type":"integer","minimum":0.5}}}"#, &["/properties/a/minimum: `minimum` 0.5 is not an integer bound"]),
        (r##"{"type":"object","properties":{"a":{"allOf":[{"$ref":"#/$defs/E"}],"default":"z"}},"$defs":{"E":{"type":"string","enum":["x","y"]}}}"##, &["/properties/a/default: default \"z\" is not one of the values of the referenced enum"]),
        (r#"{"type":"object","properties":{"a":{"type":"datetime"},"b":{"type":"string","default":3}}}"#, &["/properties/a/type: unsupported type \"datetime\"", "/properties/b/default: default 3 is not a string"]),
    ];
    for (schema, want) in cases {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t/case");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("input.json"), schema).expect("write");
        let diags = check(tmp.path()).expect_err(schema);
        let got: Vec<String> = diags
            .items()
            .iter()
            .map(|d| format!("{}: {}", d.pointer().unwrap_or(""), d.message))
            .collect();
        assert_eq!(&got, want, "schema {schema}");
    }
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
        .output()
        .expect("run");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = std::process::Command::new(bin)
        .arg("check")
        .arg(fixtures().join("broken"))
        .output()
        .expect("run");
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
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("models.rs");
    let gen = std::process::Command::new(bin)
        .arg("generate")
        .arg(root().join("schemas"))
        .arg("-o")
        .arg(&out)
        .output()
        .expect("run");
    assert!(gen.status.success());
    let code = std::fs::read_to_string(&out).expect("generated file");
    assert!(code.contains("pub mod image_to_video"));
}

#[test]
fn corpus_conformance() {
    let corpus = root().join("../shared/corpus");
    if !corpus.is_dir() {
        eprintln!("skipped: ../shared/corpus not present");
        return;
    }
    for part in ["runcomfy", "peers"] {
        match check(&corpus.join(part)) {
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
