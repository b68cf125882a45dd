//! `runcomfy-codegen import`: model pages (the two seed pages of `../shared/seeds`, required
//! under CI, and an HTML fixture) become schema folders that pass `check`; each seed page gives
//! exactly its seed fixture (snapshotted and compiled) and the facts of the shipped schema.

use runcomfy_testenv::{Within as _, DEADLINE};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("codegen sits in the workspace")
        .to_path_buf()
}

/// Runs `runcomfy-codegen import PAGE -o DIR`; returns the printed model id.
fn import(page: &Path, dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_runcomfy-codegen"))
        .arg("import")
        .arg(page)
        .arg("-o")
        .arg(dir)
        .within(DEADLINE);
    assert!(
        out.status.success(),
        "import {} failed: {}",
        page.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `value` without `title` and `description` anywhere: the facts a translation must keep.
fn facts(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| *k != "title" && *k != "description")
                .map(|(k, v)| (k.clone(), facts(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(facts).collect()),
        other => other.clone(),
    }
}

/// Imports `page` and checks what the HappyHorse I2V page must yield: the same bytes as the
/// seed fixture `fixture` (which `tests/generate.rs` snapshots and the `runcomfy-tests` crate
/// compiles under `deny(warnings)`), and the same facts as the shipped English schema.
fn check_seed(page: &Path, fixture: &str) {
    let dir = tempfile::tempdir().unwrap();
    let id = import(page, dir.path());
    assert_eq!(
        id,
        "happyhorse/happyhorse-1.0/image-to-video",
        "{}",
        page.display()
    );
    let folder = dir.path().join(&id);
    let input = read_json(&folder.join("input.json"));
    let props = input["properties"].as_object().unwrap();
    let keys: Vec<&str> = props.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "image_url",
            "prompt",
            "resolution",
            "duration",
            "seed",
            "watermark"
        ]
    );
    assert_eq!(
        input["required"],
        serde_json::json!(["image_url", "prompt"])
    );
    let output = read_json(&folder.join("output.json"));
    assert!(output["output"]["properties"]["video"].is_object());
    let models = runcomfy_codegen::check(dir.path()).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(models, std::slice::from_ref(&id));

    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/edge/fixtures")
        .join(fixture)
        .join("happyhorse-i2v");
    let shipped = workspace_root().join("schemas").join(&id);
    for file in ["input.json", "output.json"] {
        let imported = std::fs::read_to_string(folder.join(file)).unwrap();
        assert_eq!(
            imported,
            std::fs::read_to_string(fixture.join(file)).unwrap(),
            "{file} of {} differs from the fixture {}",
            page.display(),
            fixture.display()
        );
        assert_eq!(
            facts(&read_json(&folder.join(file))),
            facts(&read_json(&shipped.join(file))),
            "the shipped {file} of {id} says something the page does not"
        );
    }
}

/// The seed page of `../shared/seeds` whose file name starts with `prefix` (for tests
/// marked `#[needs(shared)]`).
fn seed(prefix: &str) -> PathBuf {
    let seeds = runcomfy_testenv::shared().join("seeds");
    std::fs::read_dir(&seeds)
        .ok()
        .and_then(|entries| {
            entries.filter_map(Result::ok).map(|e| e.path()).find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".txt"))
            })
        })
        .unwrap_or_else(|| panic!("no {prefix}*.txt in {}", seeds.display()))
}

#[runcomfy_testenv::needs(shared)]
#[test]
fn seed_page_traditional_chinese() {
    check_seed(&seed("000_"), "seed-zh");
}

#[runcomfy_testenv::needs(shared)]
#[test]
fn seed_page_japanese() {
    check_seed(&seed("003_"), "seed-ja");
}

#[test]
fn html_page_with_entities_and_pre_blocks() {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/page.html");
    let dir = tempfile::tempdir().unwrap();
    let id = import(&page, dir.path());
    assert_eq!(id, "acme/echo-2.0/text-to-image");
    let input = read_json(&dir.path().join(&id).join("input.json"));
    assert_eq!(
        input["properties"]["prompt"]["description"],
        "Was zu sehen ist & wie <kurz>."
    );
    assert!(
        input["properties"].get("decoy").is_none(),
        "scripts are skipped"
    );
    let output = read_json(&dir.path().join(&id).join("output.json"));
    assert_eq!(output["output"]["properties"]["images"]["type"], "array");
    assert_eq!(runcomfy_codegen::check(dir.path()).unwrap(), [id]);
}

#[test]
fn page_without_schema_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("page.txt");
    std::fs::write(&page, "acme/echo/text-to-image\nno schema here {oops}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_runcomfy-codegen"))
        .arg("import")
        .arg(&page)
        .arg("-o")
        .arg(dir.path())
        .within(DEADLINE);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no input schema found"));
}
