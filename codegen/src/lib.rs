//! Generates typed Rust clients for RunComfy models from their JSON Schemas.
//!
//! The pipeline, one module per stage:
//! [`load`] → [`normalize`] → [`catalog`] (builds the [`ir`]) → [`emit`] → [`render`].
//! Every problem of every schema is collected in [`diag::Diagnostics`] before any code is
//! emitted, each tied to its file and JSON pointer.
//!
//! Use it from a `build.rs` to generate clients for your own models:
//!
//! ```no_run
//! // build.rs
//! let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("models.rs");
//! let options = runcomfy_codegen::Options::for_crate("MyModels");
//! match runcomfy_codegen::build("schemas".as_ref(), &out, &options) {
//!     Ok(report) => report.print_rerun_lines(),
//!     Err(e) => {
//!         for line in e.to_string().lines() {
//!             println!("cargo::error={line}");
//!         }
//!         std::process::exit(1);
//!     }
//! }
//! ```
//! and in the crate: `mod models { include!(concat!(env!("OUT_DIR"), "/models.rs")); }`.

use std::fmt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub mod catalog;
pub mod diag;
pub mod dialect;
pub mod diff;
pub mod doctext;
pub mod emit;
pub mod import;
pub mod ir;
pub mod load;
pub mod names;
pub mod normalize;
pub mod render;
pub mod sync;
pub mod synth;

pub use diag::{Diagnostic, Diagnostics};

/// Whether endpoint methods are attached to `runcomfy::Client`. Every model module has
/// `pub fn endpoint(client: &Client) -> Endpoint<Model>` either way, and
/// `client.endpoint::<Model>()` works for every model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoints {
    /// An extension trait with this name, implemented for `runcomfy::Client`: one method
    /// per model (`client.happyhorse_1_0_image_to_video()`), for a crate's own models.
    Trait(String),
    /// No methods on the client: `model::endpoint(&client)` (what `runcomfy` itself does:
    /// hundreds of methods on one type are a wall in its rustdoc).
    None,
}

/// What the generator does with a shape it cannot type (an external `$ref`, `allOf` members
/// that conflict, a pattern the `regex` crate cannot compile, ...).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// The shape becomes a `serde_json::Value` (or the nearest sound type), documented in its
    /// rustdoc with why, and a warning names its file and JSON pointer; a check that cannot
    /// be made client-side is left out and documented, never turned into a refusal; a default
    /// that does not fit is dropped with a warning. The rest of the schema stays typed.
    #[default]
    Graceful,
    /// Every such shape is an error and the schema is refused.
    Strict,
}

/// Generator options.
#[derive(Debug, Clone)]
pub struct Options {
    /// The path generated code uses for the runtime crate.
    pub runtime_path: String,
    /// How endpoint methods are attached.
    pub endpoints: Endpoints,
    /// Derive `schemars::JsonSchema` behind this cargo feature of the including crate.
    pub schemars_feature: Option<String>,
    /// Derive `Deserialize` on request (input) types only behind this cargo feature of the
    /// including crate; `None` derives it always. Sending needs only `Serialize`, and the
    /// `Deserialize` derives are most of the compile time of generated code.
    pub input_deserialize_feature: Option<String>,
    /// Put each vendor's models behind a cargo feature named after the vendor (the first
    /// segment of the model id, as written: `wan-ai`).
    pub vendor_features: bool,
    /// With `vendor_features`: gate only these vendors (those the crate declares features
    /// for); models of other vendors are always compiled. `None` gates every vendor.
    pub feature_vendors: Option<std::collections::BTreeSet<String>>,
    /// Export a macro with this name that calls `callback!("model/id", path::Model)` for
    /// every model; model paths start with `$crate::models`. Only for the runtime crate.
    pub model_macro: Option<String>,
    /// Emit the `SCHEMAS` table (every model's schema text) only behind this cargo feature
    /// of the including crate; `None` emits it always.
    pub schema_texts_feature: Option<String>,
    /// Mark each `Input` `#[non_exhaustive]`, so that a struct literal in another crate
    /// cannot break when a schema adds an optional field (`Input::new` and the setters are
    /// the way in). For code that lives in the crate users depend on, as in `runcomfy`.
    pub non_exhaustive_input: bool,
    /// Graceful (the default) or strict handling of shapes the generator cannot type.
    pub mode: Mode,
}

impl Options {
    /// The options of `runcomfy`'s own build script.
    pub fn for_runtime(schemars: bool) -> Self {
        Options {
            runtime_path: "::runcomfy".to_owned(),
            endpoints: Endpoints::None,
            schemars_feature: schemars.then(|| "schemars".to_owned()),
            input_deserialize_feature: Some("deserialize".to_owned()),
            vendor_features: false,
            feature_vendors: None,
            model_macro: Some("for_each_model".to_owned()),
            schema_texts_feature: Some("schema-texts".to_owned()),
            non_exhaustive_input: true,
            mode: Mode::Graceful,
        }
    }

    /// Options for a user's crate: endpoint methods come through the trait `trait_name`.
    pub fn for_crate(trait_name: &str) -> Self {
        Options {
            runtime_path: "::runcomfy".to_owned(),
            endpoints: Endpoints::Trait(trait_name.to_owned()),
            schemars_feature: None,
            input_deserialize_feature: None,
            vendor_features: false,
            feature_vendors: None,
            model_macro: None,
            schema_texts_feature: None,
            non_exhaustive_input: false,
            mode: Mode::Graceful,
        }
    }

    /// Checks the options that become code: the runtime path must be a Rust path, the trait
    /// and macro names identifiers, feature names non-empty.
    pub fn check(&self) -> Result<(), Error> {
        let bad = |what: &str, value: &str, want: &str| {
            Err(Error::Options(format!("{what} {value:?} is not {want}")))
        };
        if syn::parse_str::<syn::Path>(&self.runtime_path).is_err() {
            return bad(
                "runtime_path",
                &self.runtime_path,
                "a Rust path (like `::runcomfy`)",
            );
        }
        if let Endpoints::Trait(name) = &self.endpoints {
            if !names::is_ident(name) {
                return bad("the endpoint trait name", name, "a Rust identifier");
            }
        }
        if let Some(name) = &self.model_macro {
            if !names::is_ident(name) {
                return bad("the model macro name", name, "a Rust identifier");
            }
        }
        for (what, feature) in [
            ("schemars_feature", &self.schemars_feature),
            ("input_deserialize_feature", &self.input_deserialize_feature),
            ("schema_texts_feature", &self.schema_texts_feature),
        ] {
            if let Some(f) = feature
                .as_deref()
                .filter(|f| f.trim().is_empty() || f.contains('"'))
            {
                return bad(what, f, "a cargo feature name");
            }
        }
        Ok(())
    }
}

impl Default for Options {
    fn default() -> Self {
        Options::for_runtime(false)
    }
}

/// The result of a generation.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The formatted Rust file.
    pub code: String,
    /// The model ids, sorted.
    pub models: Vec<String>,
    /// Files and folders read, for cargo's `rerun-if-changed`.
    pub watched: Vec<PathBuf>,
    /// What was typed loosely or left unchecked (graceful mode), each with its place.
    pub warnings: Vec<Diagnostic>,
}

/// What went wrong: schema problems, or an I/O error writing the output.
#[derive(Debug)]
pub enum Error {
    /// The schemas have problems; every one is listed.
    Schema(Diagnostics),
    /// The output could not be written.
    Io(PathBuf, std::io::Error),
    /// The generator produced code that does not parse: a bug in the generator.
    Internal(String),
    /// An option is unusable (a runtime path that is not a path, ...).
    Options(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Schema(d) => write!(f, "{}", d.to_string().trim_end()),
            Error::Io(p, e) => write!(f, "{}: cannot write: {e}", p.display()),
            Error::Internal(m) | Error::Options(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// Checks every model below `dir` without generating code (graceful mode: the warnings are
/// in [`analyze`]'s catalog).
pub fn check(dir: &Path) -> Result<Vec<String>, Diagnostics> {
    check_with(dir, Mode::Graceful)
}

/// [`check`] in the given mode.
pub fn check_with(dir: &Path, mode: Mode) -> Result<Vec<String>, Diagnostics> {
    let (catalog, _) = analyze_with(dir, mode)?;
    Ok(catalog.models.iter().map(|m| m.id.clone()).collect())
}

/// Loads, normalizes and catalogs every model below `dir` in graceful mode: the IR other
/// emitters (such as the command line's flag tables) build on, with the files read.
pub fn analyze(dir: &Path) -> Result<(catalog::Catalog, Vec<PathBuf>), Diagnostics> {
    analyze_with(dir, Mode::Graceful)
}

/// [`analyze`] in the given mode; the catalog carries the warnings.
pub fn analyze_with(
    dir: &Path,
    mode: Mode,
) -> Result<(catalog::Catalog, Vec<PathBuf>), Diagnostics> {
    let mut diags = Diagnostics::default();
    let loaded = load::load(dir, &mut diags);
    let (models, more) = par_map(&loaded.models, |files, d| {
        normalize::normalize_with(files, mode, d)
    });
    diags.extend(more);
    let models: Vec<normalize::Model> = models.into_iter().flatten().collect();
    let mut catalog = catalog::build(&models, &mut diags);
    catalog.warnings = diags.warnings();
    diags.check((catalog, loaded.watched))
}

/// Maps `f` over `items` on every core (rayon), keeping the order; each item collects its
/// own diagnostics, merged (and later sorted) by the caller.
pub(crate) fn par_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T, &mut Diagnostics) -> R + Sync,
) -> (Vec<R>, Diagnostics) {
    let results: Vec<(R, Diagnostics)> = items
        .par_iter()
        .map(|item| {
            let mut diags = Diagnostics::default();
            let out = f(item, &mut diags);
            (out, diags)
        })
        .collect();
    let mut out = Vec::with_capacity(items.len());
    let mut diags = Diagnostics::default();
    for (r, d) in results {
        out.push(r);
        diags.extend(d);
    }
    (out, diags)
}

/// Runs the whole pipeline on the schema folder `dir`: load, normalize, catalog, emit, render.
pub fn generate(dir: &Path, options: &Options) -> Result<Generated, Error> {
    options.check()?;
    let (catalog, watched) = analyze_with(dir, options.mode).map_err(Error::Schema)?;
    let code = emit_and_render(&catalog, options, &display_source(dir)).map_err(Error::Internal)?;
    Ok(Generated {
        code,
        models: catalog.models.iter().map(|m| m.id.clone()).collect(),
        watched,
        warnings: catalog.warnings,
    })
}

/// Emits and formats on every core. Models are grouped by vendor (their top-level module);
/// rayon emits and formats each group (and the tail) on its own, since tokens are not `Send`
/// and each text is, and the texts are joined in group order: the result is byte-identical
/// to formatting the whole file at once, and small groups keep memory hot.
fn emit_and_render(
    catalog: &catalog::Catalog,
    options: &Options,
    source: &str,
) -> Result<String, String> {
    let mut models: Vec<&catalog::ModelModule> = catalog.models.iter().collect();
    models.sort_by(|a, b| a.path.cmp(&b.path));
    let mut groups: Vec<Vec<&catalog::ModelModule>> = Vec::new();
    for m in models {
        match groups.last_mut() {
            Some(g) if g[0].path.first() == m.path.first() => g.push(m),
            _ => groups.push(vec![m]),
        }
    }
    // Jobs 0..n are the vendor groups, job n is the tail.
    let parts: Vec<String> = (0..=groups.len())
        .into_par_iter()
        .map(|i| {
            let tokens = match groups.get(i) {
                Some(group) => emit::emit_modules(group, options),
                None => emit::emit_tail(catalog, options),
            };
            render::format(tokens)
        })
        .collect::<Result<_, String>>()?;
    let mut code = render::header(source);
    for part in parts {
        code.push_str(&part);
    }
    Ok(code)
}

/// Generates each model on its own, as `(model id, Rust code)`: what the snapshots review.
pub fn generate_each(dir: &Path, options: &Options) -> Result<Vec<(String, String)>, Error> {
    options.check()?;
    let (catalog, _) = analyze_with(dir, options.mode).map_err(Error::Schema)?;
    let mut out = Vec::new();
    for model in catalog.models {
        let id = model.id.clone();
        let single = catalog::Catalog {
            models: vec![model],
            warnings: Vec::new(),
        };
        let code =
            emit_and_render(&single, options, &format!("`{id}`")).map_err(Error::Internal)?;
        out.push((id, code));
    }
    Ok(out)
}

/// The schema folder as the header names it: its last two components, never an absolute path.
fn display_source(dir: &Path) -> String {
    let parts: Vec<String> = dir
        .components()
        .filter(|c| matches!(c, std::path::Component::Normal(_)))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let start = parts.len().saturating_sub(1);
    format!("`{}/`", parts[start..].join("/"))
}

/// What [`build`] did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// The model ids generated.
    pub models: Vec<String>,
    /// Files and folders cargo should watch.
    pub watched: Vec<PathBuf>,
    /// Whether the output file was (re)written.
    pub written: bool,
    /// What was typed loosely or left unchecked (graceful mode), each with its place.
    pub warnings: Vec<Diagnostic>,
}

impl BuildReport {
    /// Prints the `cargo::rerun-if-changed` lines for a build script.
    pub fn print_rerun_lines(&self) {
        for path in &self.watched {
            println!("cargo::rerun-if-changed={}", path.display());
        }
    }

    /// Prints each warning as a `cargo::warning=` line for a build script.
    pub fn print_warnings(&self) {
        for w in &self.warnings {
            println!("cargo::warning={w}");
        }
    }
}

/// Generates from `dir` and writes `out` only when its content changed: for build scripts.
pub fn build(dir: &Path, out: &Path, options: &Options) -> Result<BuildReport, Error> {
    let generated = generate(dir, options)?;
    let written = render::write_if_changed(out, &generated.code)
        .map_err(|e| Error::Io(out.to_path_buf(), e))?;
    Ok(BuildReport {
        models: generated.models,
        watched: generated.watched,
        written,
        warnings: generated.warnings,
    })
}
