//! Generates `models.rs` from the workspace's `schemas/` folder (or `$RUNCOMFY_SCHEMAS_DIR`).
//! All logic lives in `runcomfy-codegen`; this file only adapts it to cargo.

use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-env-changed=RUNCOMFY_SCHEMAS_DIR");
    println!("cargo::rerun-if-changed=build.rs");
    let dir = match std::env::var_os("RUNCOMFY_SCHEMAS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas"),
    };
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("models.rs");
    let options = runcomfy_codegen::Options::for_runtime(true);
    match runcomfy_codegen::build(&dir, &out, &options) {
        Ok(report) => {
            for path in report.watched {
                println!("cargo::rerun-if-changed={}", path.display());
            }
        }
        Err(err) => {
            for line in err.to_string().lines() {
                println!("cargo::error={line}");
            }
            std::process::exit(1);
        }
    }
}
