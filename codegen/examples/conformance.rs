//! The conformance report of `docs/conformance.md`: the JSON-Schema-Test-Suite (drafts 2020-12
//! and 7) through the generator. Every test group's schema is a model twice, as the input's
//! root (`root`) and wrapped as a required property `value` (`prop`, its local refs moved
//! under `#/properties/value`). The accepted models are generated into ONE throwaway crate,
//! compiled once under `#![deny(warnings)]` (a model whose code does not build, or builds with
//! a warning, is left out and the rest compiled again), and its generated `Input`
//! (deserialize + `validate()`) judges every test instance against the suite's verdict.
//!
//! `cargo run -p runcomfy-codegen --example conformance -- SUITE OUT [--check BASELINE]
//! [--write-baseline BASELINE]` (`scripts/conformance` runs it). Prints a markdown table per
//! draft and keyword: schemas, accepted, compiled, agreeing verdicts, valid instances
//! refused. With `--check`, fails when a total falls below the baseline (or valid instances
//! refused rise above it).
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use runcomfy_codegen::{catalog, load, normalize, Diagnostics, Mode, Options};
use serde_json::{json, Value};

const DRAFTS: [(&str, &str); 2] = [("draft2020-12", "d2020"), ("draft7", "d7")];

/// One test group as one model.
struct Case {
    id: String,
    draft: &'static str,
    keyword: String,
    /// `(data, valid)` per test.
    tests: Vec<(Value, bool)>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Tally {
    schemas: usize,
    accepted: usize,
    compiled: usize,
    verdicts: usize,
    agree: usize,
    valid_refused: usize,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.schemas += o.schemas;
        self.accepted += o.accepted;
        self.compiled += o.compiled;
        self.verdicts += o.verdicts;
        self.agree += o.agree;
        self.valid_refused += o.valid_refused;
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("conformance: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut pos = Vec::new();
    let (mut check, mut write_baseline, mut strict) = (None, None, false);
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--check" => check = it.next(),
            "--write-baseline" => write_baseline = it.next(),
            "--strict" => strict = true,
            _ => pos.push(a),
        }
    }
    let [suite, out] = pos.as_slice() else {
        return Err(
            "usage: conformance SUITE OUT [--check FILE] [--write-baseline FILE] [--strict]".into(),
        );
    };
    let (suite, out) = (PathBuf::from(suite), PathBuf::from(out));
    let schemas = out.join("schemas");
    if schemas.exists() {
        std::fs::remove_dir_all(&schemas).map_err(|e| format!("{}: {e}", schemas.display()))?;
    }
    let cases = write_cases(&suite, &schemas)?;
    let mode = if strict { Mode::Strict } else { Mode::Graceful };
    let accepted = accepted_models(&schemas, mode);
    if let Ok(path) = std::env::var("CONFORMANCE_ACCEPTED") {
        let ids: Vec<&str> = accepted.keys().map(String::as_str).collect();
        std::fs::write(&path, ids.join("\n") + "\n").map_err(|e| format!("{path}: {e}"))?;
    }
    eprintln!("{} models, {} accepted", cases.len(), accepted.len());
    let (compiled, verdicts) = compile_and_run(&out, &schemas, &cases, &accepted, mode)?;

    let mut table: BTreeMap<(&str, String), Tally> = BTreeMap::new();
    for case in &cases {
        let t = table.entry((case.draft, case.keyword.clone())).or_default();
        t.schemas += 1;
        if !accepted.contains_key(&case.id) {
            continue;
        }
        t.accepted += 1;
        if !compiled.contains(&case.id) {
            continue;
        }
        t.compiled += 1;
        for (i, (_, valid)) in case.tests.iter().enumerate() {
            let Some(&got) = verdicts.get(&(case.id.clone(), i)) else {
                continue;
            };
            t.verdicts += 1;
            if got == *valid {
                t.agree += 1;
            } else if *valid {
                t.valid_refused += 1;
                eprintln!("valid instance refused: {} test {i}", case.id);
            }
        }
    }
    let mut totals: BTreeMap<&str, Tally> = BTreeMap::new();
    for ((draft, _), t) in &table {
        totals.entry(draft).or_default().add(t);
    }
    print!("{}", markdown(&table, &totals));

    let summary: BTreeMap<&str, Value> = totals
        .iter()
        .map(|(d, t)| {
            let v = json!({
                "schemas": t.schemas, "accepted": t.accepted, "compiled": t.compiled,
                "verdicts": t.verdicts, "agree": t.agree, "valid_refused": t.valid_refused,
            });
            (*d, v)
        })
        .collect();
    if let Some(path) = write_baseline {
        let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())? + "\n";
        std::fs::write(&path, text).map_err(|e| format!("{path}: {e}"))?;
    }
    if let Some(path) = check {
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let base: BTreeMap<String, BTreeMap<String, u64>> =
            serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
        let mut failed = Vec::new();
        for (draft, want) in &base {
            let got = summary.get(draft.as_str()).cloned().unwrap_or(Value::Null);
            for (key, &w) in want {
                let g = got.get(key).and_then(Value::as_u64).unwrap_or(0);
                let worse = if key == "valid_refused" { g > w } else { g < w };
                if worse {
                    failed.push(format!("{draft} {key}: {g}, baseline {w}"));
                }
            }
        }
        if !failed.is_empty() {
            return Err(format!("below the baseline {path}: {}", failed.join("; ")));
        }
        eprintln!("conformance: at or above the baseline {path}");
    }
    Ok(())
}

/// Writes one model folder per test group and form; returns the cases.
fn write_cases(suite: &Path, schemas: &Path) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    for (dir, short) in DRAFTS {
        let folder = suite.join("tests").join(dir);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map_err(|e| format!("{}: {e}", folder.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            let keyword = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let groups: Vec<Value> =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            for (g, group) in groups.iter().enumerate() {
                let schema = group.get("schema").cloned().unwrap_or(Value::Null);
                let tests: Vec<(Value, bool)> = group
                    .get("tests")
                    .and_then(Value::as_array)
                    .map(|ts| {
                        ts.iter()
                            .map(|t| {
                                let data = t.get("data").cloned().unwrap_or(Value::Null);
                                (data, t.get("valid").and_then(Value::as_bool) == Some(true))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let wrapped = json!({
                    "type": "object",
                    "properties": {"value": move_refs(&schema)},
                    "required": ["value"],
                });
                // A model's input is a JSON object: the root form judges objects only (the
                // property form judges every instance).
                let objects = tests
                    .iter()
                    .filter(|(d, _)| d.is_object())
                    .cloned()
                    .collect();
                for (form, input, tests) in [
                    ("root", schema.clone(), objects),
                    (
                        "prop",
                        wrapped,
                        tests
                            .iter()
                            .map(|(d, v)| (json!({ "value": d }), *v))
                            .collect(),
                    ),
                ] {
                    let id = format!("{short}/{keyword}/g{g}-{form}");
                    let folder = schemas.join(&id);
                    std::fs::create_dir_all(&folder)
                        .map_err(|e| format!("{}: {e}", folder.display()))?;
                    let text = serde_json::to_string_pretty(&input).map_err(|e| e.to_string())?;
                    std::fs::write(folder.join("input.json"), text)
                        .map_err(|e| format!("{}: {e}", folder.display()))?;
                    cases.push(Case {
                        id,
                        draft: short,
                        keyword: keyword.clone(),
                        tests,
                    });
                }
            }
        }
    }
    Ok(cases)
}

/// The schema with its local refs (`#`, `#/...`) moved under `#/properties/value`.
fn move_refs(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let moved = match (k.as_str(), x.as_str()) {
                        ("$ref", Some(r)) if r == "#" || r.starts_with("#/") => {
                            Value::String(format!("#/properties/value{}", &r[1..]))
                        }
                        _ => move_refs(x),
                    };
                    (k.clone(), moved)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(move_refs).collect()),
        other => other.clone(),
    }
}

/// The models the generator accepts, each judged alone (load, normalize, catalog), with
/// their module paths.
fn accepted_models(schemas: &Path, mode: Mode) -> BTreeMap<String, Vec<String>> {
    let mut diags = Diagnostics::default();
    let loaded = load::load(schemas, &mut diags);
    let mut out = BTreeMap::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for files in &loaded.models {
        let mut d = Diagnostics::default();
        let cat = normalize::normalize_with(files, mode, &mut d)
            .map(|model| catalog::build(&[model], &mut d));
        match (cat, d.items().first()) {
            (Some(cat), None) => {
                if let Some(m) = cat.models.first() {
                    out.insert(files.id.clone(), m.path.clone());
                }
            }
            (_, first) => {
                let why = first.map_or(String::new(), |f| f.message.clone());
                *reasons.entry(why).or_default() += 1;
            }
        }
    }
    let mut reasons: Vec<(usize, String)> = reasons.into_iter().map(|(r, n)| (n, r)).collect();
    reasons.sort_by(|a, b| b.cmp(a));
    for (n, why) in reasons.iter().take(25) {
        eprintln!("refused ({n}): {why}");
    }
    out
}

/// Generates the accepted models into one crate, compiles it (leaving out the models whose
/// code fails or warns, then compiling again), runs every instance through it.
#[allow(clippy::type_complexity)]
fn compile_and_run(
    out: &Path,
    schemas: &Path,
    cases: &[Case],
    accepted: &BTreeMap<String, Vec<String>>,
    mode: Mode,
) -> Result<(Vec<String>, BTreeMap<(String, usize), bool>), String> {
    let krate = out.join("crate");
    let gen_dir = out.join("accepted");
    std::fs::create_dir_all(krate.join("src/bin")).map_err(|e| e.to_string())?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().map_err(|e| e.to_string())?;
    let manifest = format!(
        "[package]\nname = \"conformance-suite\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[workspace]\n\n[dependencies]\nruncomfy = {{ path = {:?}, default-features = false, features = [\"deserialize\"] }}\n",
        root.join("runtime").display().to_string()
    );
    write(&krate.join("Cargo.toml"), &manifest)?;
    std::fs::copy(root.join("Cargo.lock"), krate.join("Cargo.lock")).map_err(|e| e.to_string())?;
    write(
        &krate.join("src/lib.rs"),
        "//! The suite's accepted schemas, generated.\n#![deny(warnings)]\n#![deny(missing_docs)]\n/// The generated models.\npub mod models {\n    include!(\"models.rs\");\n}\n",
    )?;
    write(&krate.join("src/bin/run.rs"), RUNNER)?;
    let mut cases_json = Vec::new();
    for c in cases {
        for (i, (data, _)) in c.tests.iter().enumerate() {
            cases_json.push(json!([c.id, i, data]));
        }
    }
    write(
        &krate.join("cases.json"),
        &serde_json::to_string(&cases_json).map_err(|e| e.to_string())?,
    )?;

    let mut included: Vec<String> = accepted.keys().cloned().collect();
    for round in 0..6 {
        if gen_dir.exists() {
            std::fs::remove_dir_all(&gen_dir).map_err(|e| e.to_string())?;
        }
        for id in &included {
            let to = gen_dir.join(id);
            std::fs::create_dir_all(&to).map_err(|e| e.to_string())?;
            std::fs::copy(schemas.join(id).join("input.json"), to.join("input.json"))
                .map_err(|e| e.to_string())?;
        }
        let mut options = Options::for_crate("SuiteModels");
        options.endpoints = runcomfy_codegen::Endpoints::None;
        options.model_macro = Some("for_each_suite_model".to_owned());
        options.mode = mode;
        let code = if included.is_empty() {
            String::new()
        } else {
            runcomfy_codegen::generate(&gen_dir, &options)
                .map_err(|e| format!("the accepted models do not generate together: {e}"))?
                .code
        };
        write(&krate.join("src/models.rs"), &code)?;
        eprintln!("round {round}: compiling {} models", included.len());
        // A throwaway build: no incremental state (it is large and never reused).
        let build = Command::new("cargo")
            .env("CARGO_INCREMENTAL", "0")
            .args(["build", "--offline", "--message-format=short", "--bins"])
            .current_dir(&krate)
            .output()
            .map_err(|e| format!("cargo: {e}"))?;
        let stderr = String::from_utf8_lossy(&build.stderr);
        let bad = failing_models(&code, &stderr, accepted);
        if build.status.success() && bad.is_empty() {
            let run = Command::new("cargo")
                .env("CARGO_INCREMENTAL", "0")
                .args(["run", "--offline", "-q", "--bin", "run", "--", "cases.json"])
                .current_dir(&krate)
                .output()
                .map_err(|e| format!("cargo: {e}"))?;
            if !run.status.success() {
                return Err(format!(
                    "the runner failed: {}",
                    String::from_utf8_lossy(&run.stderr)
                ));
            }
            let mut verdicts = BTreeMap::new();
            for line in String::from_utf8_lossy(&run.stdout).lines() {
                let mut f = line.split('\t');
                if let (Some(id), Some(i), Some(v)) = (f.next(), f.next(), f.next()) {
                    if let Ok(i) = i.parse() {
                        verdicts.insert((id.to_owned(), i), v == "1");
                    }
                }
            }
            return Ok((included, verdicts));
        }
        if bad.is_empty() {
            return Err(format!(
                "the crate does not build, and no model is to blame:\n{stderr}"
            ));
        }
        for (id, msg) in &bad {
            eprintln!("does not compile: {id}: {msg}");
        }
        included.retain(|id| !bad.contains_key(id));
    }
    Err("the crate still does not build after 6 rounds".into())
}

/// The models that errors and warnings in `models.rs` point into, with the first message.
fn failing_models(
    code: &str,
    stderr: &str,
    accepted: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, String> {
    // The module path open at each line of the generated file.
    let mut at_line: Vec<Vec<String>> = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    for line in code.lines() {
        let indent = line.len() - line.trim_start().len();
        while stack.last().is_some_and(|(i, _)| *i >= indent) && !line.trim().is_empty() {
            stack.pop();
        }
        let t = line.trim();
        if let Some(name) = t
            .strip_prefix("pub mod ")
            .and_then(|r| r.strip_suffix(" {"))
        {
            stack.push((indent, name.to_owned()));
        }
        at_line.push(stack.iter().map(|(_, n)| n.clone()).collect());
    }
    let by_path: BTreeMap<&Vec<String>, &String> = accepted.iter().map(|(i, p)| (p, i)).collect();
    let mut bad = BTreeMap::new();
    for line in stderr.lines() {
        let Some(rest) = line.split("src/models.rs:").nth(1) else {
            continue;
        };
        let Some(n) = rest.split(':').next().and_then(|n| n.parse::<usize>().ok()) else {
            continue;
        };
        let Some(path) = at_line.get(n.saturating_sub(1)) else {
            continue;
        };
        for len in (1..=path.len()).rev() {
            if let Some(id) = by_path.get(&path[..len].to_vec()) {
                bad.entry((*id).clone())
                    .or_insert_with(|| rest.splitn(3, ':').nth(2).unwrap_or("").trim().to_owned());
                break;
            }
        }
    }
    bad
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if std::fs::read_to_string(path).is_ok_and(|t| t == text) {
        return Ok(());
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn markdown(table: &BTreeMap<(&str, String), Tally>, totals: &BTreeMap<&str, Tally>) -> String {
    let mut s = String::new();
    let row = |s: &mut String, name: &str, t: &Tally| {
        let pct = if t.verdicts == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}%", 100.0 * t.agree as f64 / t.verdicts as f64)
        };
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {}/{} ({pct}) | {} |",
            t.schemas, t.accepted, t.compiled, t.agree, t.verdicts, t.valid_refused
        );
    };
    for (draft, total) in totals {
        let _ = writeln!(s, "\n### {draft}\n");
        let _ = writeln!(
            s,
            "| keyword | schemas | accepted | compiled | agreeing verdicts | valid refused |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
        for ((d, kw), t) in table {
            if d == draft {
                row(&mut s, kw, t);
            }
        }
        row(&mut s, "**total**", total);
    }
    s
}

/// The runner compiled with the generated models: `id\tindex\t1|0` per instance (1: the
/// typed `Input` deserializes it and `validate()` passes).
const RUNNER: &str = r#"//! Judges every suite instance with the generated models.
use runcomfy::__codegen::serde_json::{self, Value};
use runcomfy::Validate;

fn main() {
    let path = std::env::args().nth(1).expect("cases.json");
    let text = std::fs::read_to_string(path).expect("read cases");
    let cases: Vec<(String, usize, Value)> = serde_json::from_str(&text).expect("cases");
    let mut by_id: std::collections::BTreeMap<&str, Vec<(usize, &Value)>> = Default::default();
    for (id, i, data) in &cases {
        by_id.entry(id.as_str()).or_default().push((*i, data));
    }
    macro_rules! judge {
        ($id:expr, $m:path) => {{
            for (i, data) in by_id.get($id).map(Vec::as_slice).unwrap_or(&[]) {
                type I = <$m as runcomfy::Model>::Input;
                let ok = match serde_json::from_value::<I>((*data).clone()) {
                    Ok(input) => input.validate().is_ok(),
                    Err(_) => false,
                };
                println!("{}\t{}\t{}", $id, i, u8::from(ok));
            }
        }};
    }
    conformance_suite::for_each_suite_model!(judge);
}
"#;
