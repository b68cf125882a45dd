//! Writes `$OUT_DIR/flags.rs`: one entry per model of the schema folder the `runcomfy` crate
//! was generated from (`DEP_RUNCOMFY_SCHEMAS`: its `schemas/`, or `$RUNCOMFY_SCHEMAS_DIR`),
//! each with the static table of its `run` flags. All schema reading goes through `runcomfy_codegen::analyze`; the
//! raw property JSON (kept in the IR as `input_text`) only adds what the IR does not keep:
//! the file `format`s and the `validations` rules.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use runcomfy_codegen::ir::{Body, Field, ModelModule, Ty};
use serde_json::Value;

include!("src/reserved.rs");

fn main() {
    println!("cargo::rerun-if-env-changed=RUNCOMFY_SCHEMAS_DIR");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/reserved.rs");
    // The folder `runcomfy`'s build script generated its models from (its `links` metadata),
    // so the flags always match the typed models this binary links.
    let Some(dir) = std::env::var_os("DEP_RUNCOMFY_SCHEMAS").map(PathBuf::from) else {
        println!("cargo::error=DEP_RUNCOMFY_SCHEMAS is not set: build through cargo with `runcomfy` as a dependency");
        std::process::exit(1);
    };
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        println!("cargo::error=OUT_DIR is not set");
        std::process::exit(1);
    };
    let out = PathBuf::from(out_dir).join("flags.rs");
    let (catalog, watched) = match runcomfy_codegen::analyze(&dir) {
        Ok(x) => x,
        Err(diags) => {
            for line in diags.to_string().lines() {
                println!("cargo::error={line}");
            }
            std::process::exit(1);
        }
    };
    for path in watched {
        println!("cargo::rerun-if-changed={}", path.display());
    }
    let mut code = String::from("&[\n");
    for model in &catalog.models {
        write_model(&mut code, model);
    }
    code.push_str("]\n");
    let unchanged = std::fs::read_to_string(&out).is_ok_and(|old| old == code);
    if !unchanged {
        if let Err(e) = std::fs::write(&out, code) {
            println!("cargo::error={}: {e}", out.display());
            std::process::exit(1);
        }
    }
}

/// A string as a Rust literal.
fn lit(s: &str) -> String {
    format!("{s:?}")
}

fn opt_str(s: Option<&str>) -> String {
    match s {
        Some(s) => format!("Some({})", lit(s)),
        None => "None".to_owned(),
    }
}

fn opt_f64(x: Option<f64>) -> String {
    match x {
        Some(x) if x.is_finite() => format!("Some({x:?}_f64)"),
        _ => "None".to_owned(),
    }
}

fn write_model(code: &mut String, model: &ModelModule) {
    let raw: Value = serde_json::from_str(&model.input_text).unwrap_or(Value::Null);
    let fields: &[Field] = model.input_fields();
    let mut taken: BTreeSet<String> = RESERVED.iter().map(|s| s.to_string()).collect();
    let _ = writeln!(
        code,
        "    ModelFlags {{ id: {}, summary: {}, flags: &[",
        lit(&model.id),
        lit(&model.summary)
    );
    for field in fields {
        let prop = raw
            .get("properties")
            .and_then(|p| p.get(&field.wire))
            .unwrap_or(&Value::Null);
        let name = flag_name(&field.wire, &mut taken);
        let (kind, list, choices) = kind_of(&field.ty, model);
        let (min, max, xmin, xmax) = match (&field.checks.int, &field.checks.num) {
            (Some(b), _) | (None, Some(b)) => (b.min, b.max, b.exclusive_min, b.exclusive_max),
            _ => (None, None, None, None),
        };
        let file = file_kind(&field.wire, prop, kind);
        let (max_mb, rule_error) = size_rule(prop);
        let help = help_text(prop, field);
        // A required field's schema default is never used (the field must be given): help
        // shows such a flag as required only.
        let default = match field.required {
            true => None,
            false => field.default.as_ref().map(Value::to_string),
        };
        let fixed = match (&choices[..], field.required) {
            ([only], true) => Some(match kind {
                "Int" => only.clone(),
                _ => Value::String(only.clone()).to_string(),
            }),
            _ => None,
        };
        let _ = writeln!(
            code,
            "        FlagSpec {{ name: {}, wire: {}, kind: ValueKind::{kind}, list: {list}, choices: &[{}], min: {}, max: {}, exclusive_min: {}, exclusive_max: {}, default: {}, fixed: {}, help: {}, required: {}, file: {}, max_file_mb: {}, file_rule_error: {} }},",
            lit(&name),
            lit(&field.wire),
            choices.iter().map(|c| lit(c)).collect::<Vec<_>>().join(", "),
            opt_f64(min),
            opt_f64(max),
            opt_f64(xmin),
            opt_f64(xmax),
            opt_str(default.as_deref()),
            opt_str(fixed.as_deref()),
            lit(&help),
            field.required,
            opt_str(file),
            opt_f64(max_mb),
            opt_str(rule_error.as_deref()),
        );
    }
    code.push_str("    ] },\n");
}

/// `image_url` → `image-url`, `imageURL` → `image-url`; a name that is taken (by an option of
/// `run` or by another field) gets a `field-` prefix, then a number.
fn flag_name(wire: &str, taken: &mut BTreeSet<String>) -> String {
    let mut out = String::new();
    let mut prev: Option<char> = None;
    for c in wire.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase()
                && prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
            {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
        prev = Some(c);
    }
    let base = out.trim_matches('-').to_owned();
    let base = if base.is_empty() {
        "field".to_owned()
    } else {
        base
    };
    let mut name = base.clone();
    if taken.contains(&name) {
        name = format!("field-{base}");
    }
    let mut n = 1;
    while taken.contains(&name) {
        n += 1;
        name = format!("field-{base}-{n}");
    }
    taken.insert(name.clone());
    name
}

/// The value kind of a field, whether it takes a list, and its enum choices.
fn kind_of(ty: &Ty, model: &ModelModule) -> (&'static str, bool, Vec<String>) {
    match ty {
        Ty::Option(inner) | Ty::Box(inner) => kind_of(inner, model),
        Ty::Vec(inner) => match kind_of(inner, model) {
            (kind, false, choices) if kind != "Json" => (kind, true, choices),
            _ => ("Json", false, Vec::new()),
        },
        Ty::Bool => ("Bool", false, Vec::new()),
        Ty::Int(_) => ("Int", false, Vec::new()),
        Ty::F64 => ("Number", false, Vec::new()),
        Ty::String | Ty::Url | Ty::File => ("Str", false, Vec::new()),
        Ty::Named { name, .. } => match model.type_named(name).map(|t| &t.body) {
            Some(Body::StrEnum { variants, .. }) => (
                "Str",
                false,
                variants.iter().map(|v| v.wire.clone()).collect(),
            ),
            Some(Body::IntEnum { variants, .. }) => (
                "Int",
                false,
                variants.iter().map(|v| v.value.to_string()).collect(),
            ),
            _ => ("Json", false, Vec::new()),
        },
        Ty::Map(_) | Ty::Value => ("Json", false, Vec::new()),
    }
}

/// The kind of file a field takes (`image`, `video`, `audio`, `file`), from its `format`
/// (`image_uri`, `video_uris`, `uri`, ...), else from a wire name ending in `_url`/`_uri`.
fn file_kind(wire: &str, prop: &Value, kind: &str) -> Option<&'static str> {
    if kind != "Str" {
        return None;
    }
    let format = prop
        .get("format")
        .and_then(Value::as_str)
        .or_else(|| prop.pointer("/items/format").and_then(Value::as_str))
        .unwrap_or("");
    let by_format = matches!(format, "uri" | "url" | "uris" | "urls")
        || format.ends_with("_uri")
        || format.ends_with("_uris");
    let lower = wire.to_ascii_lowercase();
    let by_name = ["_url", "_uri", "_urls", "_uris"]
        .iter()
        .any(|s| lower.ends_with(s))
        || matches!(lower.as_str(), "url" | "uri" | "urls" | "uris");
    if !by_format && !by_name {
        return None;
    }
    let hint = if by_format && format.contains('_') {
        format
    } else {
        lower.as_str()
    };
    Some(if hint.contains("image") {
        "image"
    } else if hint.contains("video") {
        "video"
    } else if hint.contains("audio") {
        "audio"
    } else {
        "file"
    })
}

/// The `file_size_mb<` (or `<=`) rule of the schema's non-standard `validations` list.
fn size_rule(prop: &Value) -> (Option<f64>, Option<String>) {
    let rules = prop
        .get("validations")
        .or_else(|| prop.pointer("/items/validations"))
        .and_then(Value::as_array);
    for rule in rules.into_iter().flatten() {
        let name = rule
            .get("validation_rule")
            .and_then(Value::as_str)
            .unwrap_or("");
        if name.trim().starts_with("file_size_mb<") {
            let value = rule.get("validation_value").and_then(|v| match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            });
            let message = rule
                .get("validation_error")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if value.is_some() {
                return (value, message);
            }
        }
    }
    (None, None)
}

/// The help line: the description's first paragraph (titles are translated labels), else
/// the title, else the IR's generated doc.
fn help_text(prop: &Value, field: &Field) -> String {
    let pick = |key: &str| {
        prop.get(key)
            .and_then(Value::as_str)
            .map(|s| {
                s.trim()
                    .split("\n\n")
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            })
            .filter(|s| !s.is_empty())
    };
    pick("description")
        .or_else(|| pick("title"))
        .or_else(|| field.docs.first().cloned())
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
