//! Generates `models.rs` from this package's `schemas/` folder (or `$RUNCOMFY_SCHEMAS_DIR`).
//! In the workspace `runtime/schemas` is a symlink to the top-level `schemas/`, the single
//! source; `cargo package` follows it, so the published package carries a real copy.
//! All logic lives in `runcomfy-codegen`; this file only adapts it to cargo.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The feature names declared in this crate's `[features]` table: a vendor with a feature is
/// compiled only when it is enabled.
fn declared_features(manifest: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest).unwrap_or_default();
    let mut in_features = false;
    let mut out = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_features = line == "[features]";
        } else if in_features {
            if let Some((name, _)) = line.split_once('=') {
                out.insert(name.trim().to_owned());
            }
        }
    }
    out
}

fn main() {
    println!("cargo::rerun-if-env-changed=RUNCOMFY_SCHEMAS_DIR");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=Cargo.toml");
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = match std::env::var_os("RUNCOMFY_SCHEMAS_DIR") {
        Some(dir) => PathBuf::from(dir),
        // A checkout without symlinks (`core.symlinks=false`) has a plain file there.
        None if manifest_dir.join("schemas").is_dir() => manifest_dir.join("schemas"),
        None => manifest_dir.join("../schemas"),
    };
    // The folder generated from, for the build scripts of dependents that declare
    // `runcomfy` as a dependency (`DEP_RUNCOMFY_SCHEMAS`): the CLI builds its flags from it.
    let shared = dir.canonicalize().unwrap_or_else(|_| dir.clone());
    println!("cargo::metadata=schemas={}", shared.display());
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        println!("cargo::error=OUT_DIR is not set: run this build script through cargo");
        return;
    };
    let out = PathBuf::from(out_dir).join("models.rs");
    // `schemars` derives sit behind `cfg_attr(feature = "schemars")` whatever the features of
    // this build, so the generated file does not change when features do.
    let mut options = runcomfy_codegen::Options::for_runtime(true);
    let features = declared_features(&manifest_dir.join("Cargo.toml"));
    options.vendor_features = true;
    options.feature_vendors = Some(features.clone());
    match runcomfy_codegen::build(&dir, &out, &options) {
        Ok(report) => {
            report.print_rerun_lines();
            let vendors: BTreeSet<&str> = report
                .models
                .iter()
                .filter_map(|id| id.split('/').next())
                .collect();
            for vendor in vendors.iter().filter(|v| !features.contains(**v)) {
                println!(
                    "cargo::warning=vendor `{vendor}` has no cargo feature, so its models are always compiled; add `{vendor} = []` to runtime/Cargo.toml and list it in `all-models`"
                );
            }
        }
        Err(err) => {
            for line in err.to_string().lines() {
                println!("cargo::error={line}");
            }
        }
    }
}
