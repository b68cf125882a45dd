//! The change report, data-driven: each folder of `fixtures/diff` is one case with the
//! schema folder before (`old/`) and after (`new/`) and the expected text report beside them
//! (`report.snap`). Adding a case is adding a folder.

use std::path::{Path, PathBuf};

use runcomfy_codegen::diff;

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diff");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("diff fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

#[test]
fn every_case_reports_what_its_snapshot_says() {
    let cases = cases();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    for case in cases {
        let report = diff::compare_dirs(&case.join("old"), &case.join("new"))
            .unwrap_or_else(|d| panic!("{}: {d}", case.display()));
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(&case);
        settings.set_prepend_module_to_snapshot(false);
        settings.set_input_file(case.join("new"));
        settings.bind(|| insta::assert_snapshot!("report", report.to_text()));
    }
}

#[test]
fn a_folder_compared_with_itself_reports_nothing() {
    for case in cases() {
        for side in ["old", "new"] {
            let dir = case.join(side);
            let report = diff::compare_dirs(&dir, &dir).expect("fixture loads");
            assert!(report.is_empty(), "{}: {}", dir.display(), report.to_text());
            assert!(report.unchanged >= 1);
        }
    }
}

#[test]
fn swapping_sides_swaps_added_and_removed_models() {
    let case = cases()
        .into_iter()
        .find(|c| c.ends_with("models-added-and-removed"))
        .expect("case");
    let forward = diff::compare_dirs(&case.join("old"), &case.join("new")).expect("loads");
    let backward = diff::compare_dirs(&case.join("new"), &case.join("old")).expect("loads");
    let (f, b) = (forward.summary(), backward.summary());
    assert_eq!((f.added, f.removed), (b.removed, b.added));
}

#[test]
fn the_json_report_carries_the_same_changes() {
    for case in cases() {
        let report = diff::compare_dirs(&case.join("old"), &case.join("new")).expect("loads");
        let json = report.to_json();
        let changes: usize = json["models"]
            .as_array()
            .expect("models")
            .iter()
            .map(|m| m["changes"].as_array().expect("changes").len())
            .sum();
        let s = report.summary();
        assert_eq!(changes, s.breaking + s.compatible + s.docs + s.removed);
        assert_eq!(json["summary"]["breaking"], s.breaking);
        assert_eq!(json["summary"]["unchanged"], s.unchanged);
    }
}

#[test]
fn a_schema_that_does_not_normalize_is_a_diagnostic_with_its_pointer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for (side, ty) in [("old", "integer"), ("new", "int")] {
        let dir = tmp.path().join(side).join("acme/draw");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join("input.json"),
            format!(r#"{{"type": "object", "properties": {{"n": {{"type": "{ty}"}}}}}}"#),
        )
        .expect("write");
    }
    let err = diff::compare_dirs(&tmp.path().join("old"), &tmp.path().join("new"))
        .expect_err("int is not a type")
        .to_string();
    assert!(
        err.trim_end()
            .ends_with("acme/draw/input.json#/properties/n/type: unsupported type \"int\""),
        "{err}"
    );
}
