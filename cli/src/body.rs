//! The request body of `runcomfy run`: merged from `--input`, `--set` and the model's flags,
//! local files turned into `data:` URIs, then checked through the typed model before any
//! request is made.

use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use runcomfy::file::{FileError, FileInput, FileKind};
use runcomfy::{Model, Validate};

use crate::flags::{json_or_string, FlagSpec, ModelFlags, ValueKind};

/// Bad input or usage: nothing was sent (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage<T>(msg: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(msg.into()))
}

/// The library's kind of a flag's file kind (`image`, `video`, `audio`, `file`): it gives
/// the size limit when the schema states none.
fn file_kind(kind: &str) -> FileKind {
    match kind {
        "image" => FileKind::Image,
        "video" => FileKind::Video,
        "audio" => FileKind::Audio,
        _ => FileKind::Any,
    }
}

/// Reads `--input FILE` (`-` for standard input): a JSON object.
pub fn read_input_file(path: &Path) -> Result<Map<String, Value>, UsageError> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| UsageError(format!("cannot read standard input: {e}")))?;
        s
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("{}: cannot read: {e}", path.display())))?
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => usage(format!(
            "{}: the input must be a JSON object",
            path.display()
        )),
        Err(e) => usage(format!("{}: not valid JSON: {e}", path.display())),
    }
}

/// Applies `--set key=value` pairs: the value is JSON when it parses as JSON, else a string.
pub fn apply_sets(sets: &[String], body: &mut Map<String, Value>) -> Result<(), UsageError> {
    for pair in sets {
        let Some((key, value)) = pair.split_once('=') else {
            return usage(format!("--set {pair:?}: expected KEY=VALUE"));
        };
        let key = key.trim();
        if key.is_empty() {
            return usage(format!("--set {pair:?}: the key is empty"));
        }
        body.insert(key.to_owned(), json_or_string(value));
    }
    Ok(())
}

/// Fills in required single-value enums, checks required fields, turns local files into
/// `data:` URIs (checking their size limits) and warns about keys the schema does not name.
pub fn complete(
    model: &ModelFlags,
    body: &mut Map<String, Value>,
) -> Result<Vec<String>, UsageError> {
    let mut warnings = Vec::new();
    for spec in model.flags {
        if let (Some(fixed), false) = (spec.fixed, body.contains_key(spec.wire)) {
            body.insert(spec.wire.to_owned(), json_or_string(fixed));
        }
    }
    let missing: Vec<String> = model
        .flags
        .iter()
        .filter(|f| f.required && !body.contains_key(f.wire))
        .map(|f| format!("--{} ({})", f.name, f.wire))
        .collect();
    if !missing.is_empty() {
        return usage(format!(
            "missing required input for {}: {}",
            model.id,
            missing.join(", ")
        ));
    }
    let mut problems = Vec::new();
    for spec in model.flags {
        if let Some(v) = body.get(spec.wire) {
            if let Err(why) = check_value(spec, v) {
                problems.push(format!("--{} ({}): {why}", spec.name, spec.wire));
            }
        }
    }
    if !problems.is_empty() {
        return usage(format!(
            "input for {} is invalid: {}",
            model.id,
            problems.join("; ")
        ));
    }
    for spec in model.flags {
        let Some(kind) = spec.file else { continue };
        match body.get_mut(spec.wire) {
            Some(Value::String(s)) => {
                if let Some(uri) = local_file(spec, kind, s)? {
                    *s = uri;
                }
            }
            Some(Value::Array(items)) => {
                for item in items {
                    if let Value::String(s) = item {
                        if let Some(uri) = local_file(spec, kind, s)? {
                            *s = uri;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    for key in body.keys() {
        if !model.flags.iter().any(|f| f.wire == key) {
            warnings.push(format!(
                "{key:?} is not in the input schema of {}; sent as given",
                model.id
            ));
        }
    }
    Ok(warnings)
}

/// Checks a value against what the flag table knows (type, enum, bounds), naming the field;
/// the typed model checks everything again afterwards.
fn check_value(spec: &FlagSpec, v: &Value) -> Result<(), String> {
    if spec.list {
        return match v {
            Value::Array(items) => items.iter().try_for_each(|i| check_scalar(spec, i)),
            _ => check_scalar(spec, v).map_err(|e| format!("{e} (a list is expected)")),
        };
    }
    check_scalar(spec, v)
}

fn check_scalar(spec: &FlagSpec, v: &Value) -> Result<(), String> {
    let number = match (spec.kind, v) {
        (ValueKind::Json, _)
        | (ValueKind::Str, Value::String(_))
        | (ValueKind::Bool, Value::Bool(_)) => None,
        (ValueKind::Int, Value::Number(n)) if n.is_i64() || n.is_u64() => n.as_f64(),
        (ValueKind::Number, Value::Number(n)) => n.as_f64(),
        (kind, _) => {
            let expected = match kind {
                ValueKind::Int => "an integer",
                ValueKind::Number => "a number",
                ValueKind::Bool => "true or false",
                _ => "a string",
            };
            return Err(format!("expected {expected}, got {v}"));
        }
    };
    if !spec.choices.is_empty() {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if !spec.choices.contains(&text.as_str()) {
            return Err(format!("{v} is not one of {}", spec.choices.join(", ")));
        }
    }
    if let Some(x) = number {
        let fails = spec.min.is_some_and(|m| x < m)
            || spec.max.is_some_and(|m| x > m)
            || spec.exclusive_min.is_some_and(|m| x <= m)
            || spec.exclusive_max.is_some_and(|m| x >= m);
        if fails {
            return Err(format!(
                "{v} is out of range ({})",
                crate::flags::bounds_text(spec)
            ));
        }
    }
    Ok(())
}

fn is_remote(s: &str) -> bool {
    let lower = s.trim_start().to_ascii_lowercase();
    ["http://", "https://", "data:"]
        .iter()
        .any(|p| lower.starts_with(p))
}

/// A local path given for a file field: its `data:` URI (through [`FileInput`]), after the
/// size checks. URLs and `data:` URIs pass through (`None`).
fn local_file(spec: &FlagSpec, kind: &str, value: &str) -> Result<Option<String>, UsageError> {
    if is_remote(value) {
        return Ok(None);
    }
    let file = FileInput::path(value);
    let size = match file.inline_size() {
        Ok(Some(size)) => size,
        Ok(None) => return Ok(None),
        Err(FileError::NotAFile { .. }) => {
            return usage(format!("--{}: {value} is not a file", spec.name))
        }
        Err(e) => {
            let cause =
                std::error::Error::source(&e).map_or_else(|| e.to_string(), |c| c.to_string());
            return usage(format!(
                "--{}: {value:?} is neither an http(s) URL nor a readable file: {cause}",
                spec.name
            ));
        }
    };
    let path = Path::new(value);
    let mb = size as f64 / (1024.0 * 1024.0);
    if let Some(limit) = spec.max_file_mb {
        if mb >= limit {
            let why = spec
                .file_rule_error
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            return usage(format!(
                "--{}: {} is {mb:.1} MB; the schema requires file_size_mb < {limit}{why}",
                spec.name,
                path.display()
            ));
        }
    }
    let max = file_kind(kind).max_bytes();
    if size > max {
        return usage(format!(
            "--{}: {} is {mb:.1} MB; {kind} inputs are limited to {} MB",
            spec.name,
            path.display(),
            max / (1024 * 1024)
        ));
    }
    let wire = file
        .to_wire()
        .map_err(|e| UsageError(format!("--{}: {e}", spec.name)))?;
    Ok(Some(wire.into_owned()))
}

/// `sent` (a completed body) with every local file that became a `data:` URI shown as
/// what it was in `given` (the body before [`complete`]): `<path> (<size> bytes, sent as a
/// data: URI)`. For `--dry-run`, which must not print whole files.
pub fn files_shown(given: &Value, sent: &Value) -> Value {
    match (given, sent) {
        (Value::String(path), Value::String(uri)) if uri.starts_with("data:") && path != uri => {
            let size = std::fs::metadata(path).map_or_else(
                |_| format!("{} characters", uri.len()),
                |m| format!("{} bytes", m.len()),
            );
            Value::String(format!("{path} ({size}, sent as a data: URI)"))
        }
        (Value::Array(g), Value::Array(s)) if g.len() == s.len() => {
            Value::Array(g.iter().zip(s).map(|(g, s)| files_shown(g, s)).collect())
        }
        (Value::Object(g), Value::Object(s)) => Value::Object(
            s.iter()
                .map(|(k, v)| {
                    let shown = g.get(k).map_or_else(|| v.clone(), |g| files_shown(g, v));
                    (k.clone(), shown)
                })
                .collect(),
        ),
        (_, sent) => sent.clone(),
    }
}

/// Checks `body` through the typed model `model_id`: the exact check the typed client runs
/// (`Input` deserialization, then `validate()`). `None` when the model was not generated.
pub fn check_typed(model_id: &str, body: &Value) -> Option<Result<(), UsageError>> {
    macro_rules! arm {
        ($id:literal, $model:ty) => {
            if model_id == $id {
                return Some(typed::<$model>(model_id, body));
            }
        };
    }
    runcomfy::for_each_model!(arm);
    None
}

fn typed<M: Model>(model_id: &str, body: &Value) -> Result<(), UsageError>
where
    M::Input: DeserializeOwned,
{
    let input: M::Input = serde_json::from_value(body.clone()).map_err(|e| {
        UsageError(format!(
            "input for {model_id} does not match its schema: {e}"
        ))
    })?;
    input
        .validate()
        .map_err(|e| UsageError(format!("input for {model_id} is invalid: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_check_dispatches_on_the_model_id() {
        let id = "happyhorse/happyhorse-1.0/image-to-video";
        let ok = serde_json::json!({"image_url": "https://x/y.png", "prompt": "p", "duration": 5});
        assert!(matches!(check_typed(id, &ok), Some(Ok(()))));
        let bad = serde_json::json!({"image_url": "https://x/y.png", "prompt": "p", "seed": -1});
        let err = check_typed(id, &bad).unwrap().unwrap_err();
        assert!(err.0.contains("expected u32"), "{err}");
        let long = serde_json::json!({"image_url": "u", "prompt": "x".repeat(5001)});
        let err = check_typed(id, &long).unwrap().unwrap_err();
        assert!(err.0.contains("/prompt"), "{err}");
        assert!(check_typed("acme/unknown/model", &ok).is_none());
    }

    #[test]
    fn table_checks_name_the_field() {
        let m = crate::flags::model("happyhorse/happyhorse-1.0/image-to-video").unwrap();
        let mut body = serde_json::json!({"image_url": "https://x/y.png", "prompt": "p", "seed": -1, "duration": "soon", "watermark": "yes"});
        let Value::Object(map) = &mut body else {
            unreachable!()
        };
        let err = complete(m, map).unwrap_err().0;
        assert!(
            err.contains("--seed (seed): -1 is out of range (>= 0, <= 2147483647)"),
            "{err}"
        );
        assert!(
            err.contains("--duration (duration): expected an integer, got \"soon\""),
            "{err}"
        );
        assert!(
            err.contains("--watermark (watermark): expected true or false"),
            "{err}"
        );
        let mut ok = serde_json::json!({"image_url": "https://x/y.png", "prompt": "p", "duration": 7, "resolution": "720P"});
        let Value::Object(map) = &mut ok else {
            unreachable!()
        };
        assert!(complete(m, map).unwrap().is_empty());
    }

    #[test]
    fn sets_parse_json_or_strings() {
        let mut body = Map::new();
        apply_sets(
            &["a=1".into(), "b=x y".into(), "c=[1,2]".into(), "d=".into()],
            &mut body,
        )
        .unwrap();
        assert_eq!(
            Value::Object(body),
            serde_json::json!({"a": 1, "b": "x y", "c": [1, 2], "d": ""})
        );
        assert!(apply_sets(&["nokey".into()], &mut Map::new()).is_err());
    }

    #[test]
    fn local_files_become_data_uris() {
        let m = crate::flags::model("happyhorse/happyhorse-1.0/image-to-video").unwrap();
        let spec = m.flags.iter().find(|f| f.wire == "image_url").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("cat.PNG");
        std::fs::write(&png, [1u8, 2, 3]).unwrap();
        let uri = local_file(spec, "image", png.to_str().unwrap()).unwrap();
        assert_eq!(uri.as_deref(), Some("data:image/png;base64,AQID"));
        assert_eq!(local_file(spec, "image", "https://x/y.png").unwrap(), None);
        let missing = dir.path().join("missing.png");
        let err = local_file(spec, "image", missing.to_str().unwrap()).unwrap_err();
        assert!(
            err.0.contains("neither an http(s) URL nor a readable file"),
            "{err}"
        );
        let err = local_file(spec, "image", dir.path().to_str().unwrap()).unwrap_err();
        assert!(err.0.contains("is not a file"), "{err}");
    }
}
