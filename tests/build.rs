//! Generates the edge-case fixtures, and the shared corpus when it is present, the way a
//! user's crate generates its own models: through `runcomfy-codegen` in a build script.

use std::path::{Path, PathBuf};

fn generate(dir: &Path, out: &Path, trait_name: &str) {
    let options = runcomfy_codegen::Options::for_crate(trait_name);
    generate_with(dir, out, &options);
}

fn generate_with(dir: &Path, out: &Path, options: &runcomfy_codegen::Options) {
    match runcomfy_codegen::build(dir, out, options) {
        Ok(report) => report.print_rerun_lines(),
        Err(e) => {
            for line in e.to_string().lines() {
                println!("cargo::error={line}");
            }
            std::process::exit(1);
        }
    }
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(has_corpus)");
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    generate(
        &manifest.join("../codegen/tests/fixtures/edge"),
        &out_dir.join("fixtures.rs"),
        "FixtureModels",
    );
    // The hard-schema corpus, with a macro listing its models for the agreement tests.
    let mut hard = runcomfy_codegen::Options::for_crate("HardModels");
    hard.model_macro = Some("for_each_hard_model".to_owned());
    generate_with(
        &manifest.join("../codegen/tests/fixtures/hard"),
        &out_dir.join("hard.rs"),
        &hard,
    );
    let corpus = manifest.join("../../shared/corpus");
    println!("cargo::rerun-if-changed={}", corpus.display());
    println!(
        "cargo::rerun-if-env-changed={}",
        runcomfy_testenv::REQUIRE_ENV
    );
    let shared = runcomfy_testenv::Service::Shared;
    match shared.find(&manifest.join("..")) {
        Ok(_) => {
            generate(&corpus, &out_dir.join("corpus.rs"), "CorpusModels");
            println!("cargo::rustc-cfg=has_corpus");
        }
        // A run that requires ../shared fails here instead of compiling without the corpus;
        // otherwise `tests/tests/corpus.rs` shows the corpus check as ignored, with the reason.
        Err(why) if shared.required() => {
            println!("cargo::error={why}");
            std::process::exit(1);
        }
        Err(_) => {}
    }
}
