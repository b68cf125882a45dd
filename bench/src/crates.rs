//! The throwaway crates `scripts/bench-compile` and `scripts/bench-features` build: the same
//! shape for every generator (`src/lib.rs` with `pub mod models;`, the generated code in
//! `src/models.rs`), each its own one-package workspace.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::typify_gen;
use crate::variants::{self, Variant};

/// The vendors of the synthetic sets (the first segment of their model ids).
pub use runcomfy_codegen::synth::VENDORS;

/// The workspace's folder (`bench/..`).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    here.canonicalize().unwrap_or(here)
}

fn toml_path(p: &Path) -> String {
    p.display().to_string().replace('\\', "/")
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))
}

const LIB_RS: &str =
    "//! Generated models, compiled for a benchmark.\n#![allow(warnings)]\npub mod models;\n";

/// A crate `name` in `dir` holding `code` as `src/models.rs`, with `deps` as its
/// `[dependencies]` lines.
pub fn write_crate(dir: &Path, name: &str, deps: &str, code: &str) -> Result<()> {
    write(
        &dir.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\n{deps}\n[workspace]\n"
        ),
    )?;
    write(&dir.join("src/lib.rs"), LIB_RS)?;
    write(&dir.join("src/models.rs"), code)
}

/// What `bench-gen compile` wrote.
#[derive(Debug)]
pub struct Written {
    /// `(crate folder, lines, bytes)` of each crate's `models.rs`.
    pub crates: Vec<(PathBuf, usize, usize)>,
}

/// Writes `count` synthetic models under `out/schemas`, then the crates `out/ours`,
/// `out/typify` and `out/ours-<variant>` for each of `variants`.
pub fn write_compile_set(out: &Path, count: usize, variants: &[Variant]) -> Result<Written> {
    let schemas = out.join("schemas");
    let normalized = out.join("schemas-typify");
    for d in [&schemas, &normalized] {
        if d.exists() {
            std::fs::remove_dir_all(d)?;
        }
    }
    runcomfy_codegen::synth::write(&schemas, count)?;
    typify_gen::write_normalized(&schemas, &normalized)?;
    let runtime = toml_path(&workspace_root().join("runtime"));
    let ours_deps = format!("runcomfy = {{ path = \"{runtime}\" }}\n");
    // As `runcomfy` generates its own models: request types derive `Deserialize` only behind a
    // cargo feature (`deserialize`, not enabled here).
    let mut options = runcomfy_codegen::Options::for_crate("BenchModels");
    options.input_deserialize_feature = Some("deserialize".to_owned());
    let ours = runcomfy_codegen::generate(&schemas, &options)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .code;
    let typify = typify_gen::generate(&normalized)?;
    let mut typify_deps =
        String::from("serde = { version = \"1\", features = [\"derive\"] }\nserde_json = \"1\"\n");
    if typify.contains("::regress::") {
        typify_deps.push_str("regress = \"0.12\"\n");
    }
    let mut crates = Vec::new();
    let mut add = |dir: PathBuf, name: &str, deps: &str, code: &str| -> Result<()> {
        write_crate(&dir, name, deps, code)?;
        crates.push((dir, code.lines().count(), code.len()));
        Ok(())
    };
    add(out.join("ours"), "bench-ours", &ours_deps, &ours)?;
    add(out.join("typify"), "bench-typify", &typify_deps, &typify)?;
    for v in variants {
        let Some((name, _)) = Variant::ALL.iter().find(|(_, x)| x == v) else {
            continue;
        };
        if *v == Variant::Full {
            continue;
        }
        let code = variants::apply(&ours, *v)?;
        add(
            out.join(format!("ours-{name}")),
            &format!("bench-ours-{name}"),
            &ours_deps,
            &code,
        )?;
    }
    Ok(Written { crates })
}

/// Writes `count` synthetic models under `out/features/schemas` and a crate `out/features`
/// with one cargo feature per vendor and `all-models` (the default), whose `build.rs`
/// generates with `vendor_features: true` (and request types' `Deserialize` behind a feature,
/// as `runcomfy` does), as a user's crate would.
pub fn write_features_crate(out: &Path, count: usize) -> Result<PathBuf> {
    let dir = out.join("features");
    let schemas = dir.join("schemas");
    if schemas.exists() {
        std::fs::remove_dir_all(&schemas)?;
    }
    runcomfy_codegen::synth::write(&schemas, count)?;
    let root = workspace_root();
    let runtime = toml_path(&root.join("runtime"));
    let codegen = toml_path(&root.join("codegen"));
    let quoted: Vec<String> = VENDORS.iter().map(|v| format!("\"{v}\"")).collect();
    let mut features = format!(
        "[features]\ndefault = [\"all-models\"]\nall-models = [{}]\n",
        quoted.join(", ")
    );
    for v in VENDORS {
        features.push_str(&format!("{v} = []\n"));
    }
    write(
        &dir.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"bench-features\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\nbuild = \"build.rs\"\n\n{features}\n[dependencies]\nruncomfy = {{ path = \"{runtime}\" }}\n\n[build-dependencies]\nruncomfy-codegen = {{ path = \"{codegen}\" }}\n\n[workspace]\n"
        ),
    )?;
    write(&dir.join("build.rs"), FEATURES_BUILD_RS)?;
    write(
        &dir.join("src/lib.rs"),
        "//! Generated models behind one feature per vendor.\n#![allow(warnings)]\npub mod models {\n    include!(concat!(env!(\"OUT_DIR\"), \"/models.rs\"));\n}\n",
    )?;
    Ok(dir)
}

const FEATURES_BUILD_RS: &str = r#"// Generates every model under schemas/, each vendor behind its cargo feature.
fn main() {
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("models.rs");
    let mut options = runcomfy_codegen::Options::for_crate("BenchModels");
    options.vendor_features = true;
    options.input_deserialize_feature = Some("deserialize".to_owned());
    match runcomfy_codegen::build("schemas".as_ref(), &out, &options) {
        Ok(report) => report.print_rerun_lines(),
        Err(e) => {
            for line in e.to_string().lines() {
                println!("cargo::error={line}");
            }
            std::process::exit(1);
        }
    }
}
"#;
