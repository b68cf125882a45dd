//! The shared corpus (`../shared/corpus`, RunComfy's and its peers' schemas) is generated and
//! compiled under `#![deny(warnings)]` by this crate's build script; without the folder that
//! check is reported ignored here, never passed silently.

/// The corpus models this build generated (none when it was built without the corpus).
fn generated() -> Vec<&'static str> {
    #[cfg(has_corpus)]
    return runcomfy_tests::corpus::ALL.iter().map(|m| m.id).collect();
    #[cfg(not(has_corpus))]
    return Vec::new();
}

#[runcomfy_testenv::needs(shared)]
#[test]
fn every_corpus_schema_was_generated_and_compiled() {
    let corpus = runcomfy_testenv::shared().join("corpus");
    // One model per folder holding an input.json.
    fn count(dir: &std::path::Path) -> usize {
        let here = usize::from(dir.join("input.json").is_file());
        let below: usize = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .map(|e| count(&e.path()))
            .sum();
        here + below
    }
    let folders = count(&corpus);
    let generated = generated();
    assert!(folders > 0, "no schema folder under {}", corpus.display());
    assert_eq!(
        generated.len(),
        folders,
        "{} holds {folders} models but the build generated {} (build the tests again): {generated:?}",
        corpus.display(),
        generated.len()
    );
}
