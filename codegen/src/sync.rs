//! The catalog into a schema folder: what `runcomfy-codegen sync` decides, without the HTTP.
//!
//! The command line fetches every page of `GET /v1/models?include_schema=true`; this module
//! reads each page ([`parse_page`], [`Entry::from_catalog`]), decides what the folder should
//! hold ([`plan`]: the files to write, the models removed, the models skipped or refused,
//! and the change [`Report`]), and applies it ([`Plan::apply`]).
//!
//! Files are written byte-stable ([`schema_text`]): keywords sorted, the order of names kept
//! where it carries meaning (`properties`: struct fields and `Input::new`'s parameters;
//! definitions: which one takes a contested type name first), two-space indentation and a
//! trailing newline. The dialect is kept as served (`"type": "float"`, `validations`, ...).
//! A file whose bytes would not change is not touched, and every write goes to a temporary
//! file in the same folder renamed over the old one, so a reader or a failure halfway never
//! sees half a file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::diag::Diagnostics;
use crate::diff::{self, Report};
use crate::load::ModelFiles;

/// One model as the catalog lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// `model_id`.
    pub id: String,
    /// `input_schema`: `None` when the catalog gives none; a schema served as JSON text is
    /// parsed (a text that is not JSON is an `Err` with the parser's message).
    pub input: Option<Result<Value, String>>,
    /// `output_schema`, when the catalog gives one.
    pub output: Option<Value>,
}

impl Entry {
    /// Reads one catalog entry (`{"model_id", "input_schema"?, "output_schema"?, ...}`).
    pub fn from_catalog(entry: &Value) -> Result<Entry, String> {
        let id = entry
            .get("model_id")
            .and_then(Value::as_str)
            .ok_or_else(|| "a catalog entry has no `model_id` string".to_owned())?;
        let schema = |key: &str| -> Option<Result<Value, String>> {
            match entry.get(key)? {
                Value::Null => None,
                Value::String(text) => Some(
                    serde_json::from_str(text)
                        .map_err(|e| format!("`{key}` is a text that is not JSON: {e}")),
                ),
                other => Some(Ok(other.clone())),
            }
        };
        let output = match schema("output_schema") {
            Some(Ok(v)) => Some(v),
            // An output schema the catalog garbles is left out: the model keeps its own.
            _ => None,
        };
        Ok(Entry {
            id: id.to_owned(),
            input: schema("input_schema"),
            output,
        })
    }
}

/// One page of the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// `models`.
    pub models: Vec<Value>,
    /// `total`, when the page says it.
    pub total: Option<u64>,
}

/// Reads one catalog page: `{"models": [...], "total": N}`. A body that is not JSON, an
/// API error body (`error_code`) or a page without a `models` list is an error.
pub fn parse_page(body: &[u8]) -> Result<Page, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let start: String = String::from_utf8_lossy(body)
            .chars()
            .take(60)
            .filter(|c| !c.is_control())
            .collect();
        format!("the catalog page is not JSON ({e}); it starts with {start:?}")
    })?;
    if let Some(code) = value.get("error_code").filter(|c| !c.is_null()) {
        let message = ["error_message", "message", "detail"]
            .iter()
            .find_map(|k| value.get(*k).and_then(Value::as_str))
            .unwrap_or("no message");
        return Err(format!("the catalog answered error {code}: {message}"));
    }
    let models = value
        .get("models")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| "the catalog page has no `models` list".to_owned())?;
    Ok(Page {
        models,
        total: value.get("total").and_then(Value::as_u64),
    })
}

/// Whether `id` is one of `only` (model ids, or vendors and other leading segments);
/// everything is when `only` is empty.
pub fn in_scope(id: &str, only: &[String]) -> bool {
    only.is_empty()
        || only.iter().any(|o| {
            let o = o.trim_end_matches('/');
            id == o || id.strip_prefix(o).is_some_and(|rest| rest.starts_with('/'))
        })
}

/// A schema file's bytes: keywords sorted, names in the order served, two-space
/// indentation, a trailing newline. The output page form `{"output": {...}}` is kept.
pub fn schema_text(schema: &Value) -> String {
    let canonical = match schema {
        Value::Object(map) if map.len() == 1 && map.get("output").is_some_and(Value::is_object) => {
            let mut out = Map::new();
            out.insert("output".to_owned(), canonical_schema(&map["output"]));
            Value::Object(out)
        }
        other => canonical_schema(other),
    };
    let mut text = serde_json::to_string_pretty(&canonical).unwrap_or_else(|_| "null".into());
    text.push('\n');
    text
}

/// Keywords whose value is a schema (or a list of schemas).
const SCHEMA_KEYWORDS: &[&str] = &[
    "items",
    "additionalProperties",
    "additionalItems",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "anyOf",
    "oneOf",
    "allOf",
    "prefixItems",
];

/// Keywords whose value maps names to schemas: the order of names is kept.
const NAME_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];

fn canonical_schema(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    let mut out = Map::new();
    for key in keys {
        let value = &map[key];
        let v = if NAME_MAPS.contains(&key.as_str()) {
            names(value)
        } else if key == "components" {
            // `components/schemas` is a name map; other members are kept as served.
            match value {
                Value::Object(c) => {
                    let mut keys: Vec<&String> = c.keys().collect();
                    keys.sort();
                    Value::Object(
                        keys.into_iter()
                            .map(|k| {
                                let v = if k == "schemas" {
                                    names(&c[k])
                                } else {
                                    c[k].clone()
                                };
                                (k.clone(), v)
                            })
                            .collect(),
                    )
                }
                other => other.clone(),
            }
        } else if SCHEMA_KEYWORDS.contains(&key.as_str()) {
            match value {
                Value::Array(items) => Value::Array(items.iter().map(canonical_schema).collect()),
                other => canonical_schema(other),
            }
        } else {
            // Data (`default`, `enum`, `examples`, `validations`, ...) as served.
            value.clone()
        };
        out.insert(key.clone(), v);
    }
    Value::Object(out)
}

fn names(value: &Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), canonical_schema(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A model the catalog lists but that is not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The model id.
    pub id: String,
    /// Why.
    pub reason: String,
}

/// What a sync does to a schema folder.
#[derive(Debug)]
pub struct Plan {
    /// The schema folder.
    pub dir: PathBuf,
    /// Files whose bytes change (or are new), with their new text.
    pub writes: Vec<(PathBuf, String)>,
    /// Models the catalog no longer lists (within the scope): their files go.
    pub removed: Vec<String>,
    /// Models listed without an input schema: nothing is written for them.
    pub skipped: Vec<Skipped>,
    /// Models whose schema the generator refuses (or whose id cannot be a folder), each
    /// problem with its file and JSON pointer: their files are left as they are.
    pub failures: Diagnostics,
    /// Problems of the schemas already in the folder (the old side of the report).
    pub old_problems: Diagnostics,
    /// What changed for users of the generated API.
    pub report: Report,
    /// Models written or kept, in the scope.
    pub models: usize,
}

/// What [`Plan::apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Files written.
    pub written: Vec<PathBuf>,
    /// Files removed.
    pub removed: Vec<PathBuf>,
}

/// Decides what a sync of `entries` (every page of the catalog) into `dir` writes, for the
/// models in `only` (all when empty). Reads the folder's current files; writes nothing.
pub fn plan(dir: &Path, entries: &[Entry], only: &[String]) -> Plan {
    let mut failures = Diagnostics::default();
    let mut skipped = Vec::new();

    // The folder as it is (a first sync starts from nothing).
    let mut old_problems = Diagnostics::default();
    let old_files: Vec<ModelFiles> = if dir.exists() {
        crate::load::load(dir, &mut old_problems)
            .models
            .into_iter()
            .filter(|m| in_scope(&m.id, only))
            .collect()
    } else {
        Vec::new()
    };
    let old_by_id: BTreeMap<&str, &ModelFiles> =
        old_files.iter().map(|m| (m.id.as_str(), m)).collect();

    let mut listed = BTreeSet::new();
    let mut new_files: Vec<ModelFiles> = Vec::new();
    let mut writes = Vec::new();
    for entry in entries.iter().filter(|e| in_scope(&e.id, only)) {
        let folder = dir.join(&entry.id);
        let input_path = folder.join("input.json");
        if !listed.insert(entry.id.clone()) {
            failures.text_error(&input_path, 0, 0, "the catalog lists this model twice");
            continue;
        }
        // The id becomes a path: `..`, absolute paths and odd characters never do.
        if let Err(message) = crate::load::check_model_id(&entry.id) {
            failures.text_error(Path::new(&entry.id), 0, 0, message);
            continue;
        }
        let old = old_by_id.get(entry.id.as_str()).copied();
        let input = match &entry.input {
            None => {
                skipped.push(Skipped {
                    id: entry.id.clone(),
                    reason: "the catalog gives no input schema".to_owned(),
                });
                new_files.extend(old.cloned());
                continue;
            }
            Some(Err(message)) => {
                failures.text_error(&input_path, 0, 0, message.clone());
                new_files.extend(old.cloned());
                continue;
            }
            Some(Ok(v)) => v,
        };
        // The catalog gives no output schema for most models: a model keeps its own.
        let output = entry
            .output
            .clone()
            .map(|o| (folder.join("output.json"), o))
            .or_else(|| old.and_then(|m| m.output.clone()));
        let files = ModelFiles {
            id: entry.id.clone(),
            input: (input_path.clone(), input.clone()),
            output,
        };
        // What the generator refuses is not written: the folder keeps the old version.
        if let Err(diags) = crate::dialect::translate_files(&files) {
            failures.extend(diags);
            new_files.extend(old.cloned());
            continue;
        }
        let mut texts = vec![(input_path, schema_text(input))];
        if let Some(o) = &entry.output {
            texts.push((folder.join("output.json"), schema_text(o)));
        }
        for (path, text) in texts {
            if crate::load::read_bytes(&path).as_deref() != Some(text.as_bytes()) {
                writes.push((path, text));
            }
        }
        new_files.push(files);
    }
    let removed: Vec<String> = old_files
        .iter()
        .filter(|m| !listed.contains(&m.id))
        .map(|m| m.id.clone())
        .collect();

    let mut scratch = Diagnostics::default();
    let old_sides = diff::normalize_all(&old_files, &mut old_problems);
    let new_sides = diff::normalize_all(&new_files, &mut scratch);
    // A model whose old schema did not normalize compares as added: say why.
    let report = diff::compare_normalized(&old_sides, &new_sides);
    failures.extend(scratch);
    let failures = failures.check(()).err().unwrap_or_default();
    let old_problems = old_problems.check(()).err().unwrap_or_default();
    Plan {
        dir: dir.to_path_buf(),
        writes,
        removed,
        skipped,
        failures,
        old_problems,
        report,
        models: new_files.len(),
    }
}

impl Plan {
    /// True when the folder already holds what the catalog serves.
    pub fn is_up_to_date(&self) -> bool {
        self.writes.is_empty() && self.removed.is_empty()
    }

    /// Writes the changed files (each through a temporary file renamed over it) and removes
    /// the files of removed models. Stops at the first I/O error, with the path.
    pub fn apply(&self) -> Result<Applied, (PathBuf, std::io::Error)> {
        let mut applied = Applied::default();
        for (path, text) in &self.writes {
            crate::render::write_atomic(path, text.as_bytes()).map_err(|e| (path.clone(), e))?;
            applied.written.push(path.clone());
        }
        for id in &self.removed {
            let removed =
                crate::render::remove_model(&self.dir, id).map_err(|e| (self.dir.join(id), e))?;
            applied.removed.extend(removed);
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schema_text_sorts_keywords_and_keeps_names_in_order() {
        let served = json!({
            "type": "object",
            "required": ["b", "a"],
            "properties": {
                "b": {"type": "float", "maximum": 1, "default": 0.5, "minimum": 0},
                "a": {"type": "string", "enum": ["z", "y"], "description": "A."},
            },
            "$defs": {"Z": {"type": "string"}, "A": {"type": "integer"}},
        });
        let want = r#"{
  "$defs": {
    "Z": {
      "type": "string"
    },
    "A": {
      "type": "integer"
    }
  },
  "properties": {
    "b": {
      "default": 0.5,
      "maximum": 1,
      "minimum": 0,
      "type": "float"
    },
    "a": {
      "description": "A.",
      "enum": [
        "z",
        "y"
      ],
      "type": "string"
    }
  },
  "required": [
    "b",
    "a"
  ],
  "type": "object"
}
"#;
        assert_eq!(schema_text(&served), want);
        // Served in another keyword order, the bytes are the same.
        let reordered: Value = serde_json::from_str(
            r#"{"$defs": {"Z": {"type": "string"}, "A": {"type": "integer"}}, "type": "object",
            "properties": {"b": {"minimum": 0, "type": "float", "default": 0.5, "maximum": 1},
            "a": {"type": "string", "description": "A.", "enum": ["z", "y"]}},
            "required": ["b", "a"]}"#,
        )
        .unwrap();
        assert_eq!(schema_text(&reordered), want);
    }

    #[test]
    fn schema_text_of_nested_schemas_and_the_output_page_form() {
        let cases = [
            (
                json!({"anyOf": [{"type": "string", "format": "uri"}, {"type": "null"}]}),
                json!({"anyOf": [{"format": "uri", "type": "string"}, {"type": "null"}]}),
            ),
            (
                json!({"items": {"type": "object", "properties": {"z": {"type": "string"}, "a": {}}}}),
                json!({"items": {"properties": {"z": {"type": "string"}, "a": {}}, "type": "object"}}),
            ),
            (
                json!({"output": {"type": "object", "properties": {"video": {"type": "string", "format": "uri"}}}}),
                json!({"output": {"properties": {"video": {"format": "uri", "type": "string"}}, "type": "object"}}),
            ),
            (
                json!({"default": {"z": 1, "a": 2}, "type": "object"}),
                json!({"default": {"z": 1, "a": 2}, "type": "object"}),
            ),
        ];
        for (served, want) in cases {
            let text = schema_text(&served);
            let want = format!("{}\n", serde_json::to_string_pretty(&want).unwrap());
            assert_eq!(text, want, "{served}");
        }
    }

    #[test]
    fn pages_and_entries() {
        let page = parse_page(br#"{"models": [{"model_id": "a/b"}], "total": 1}"#).unwrap();
        assert_eq!((page.models.len(), page.total), (1, Some(1)));
        let errors = [
            (
                &b"<!doctype html><html>"[..],
                "the catalog page is not JSON",
            ),
            (
                br#"{"error_code": 400004, "error_message": "revoked"}"#,
                "the catalog answered error 400004: revoked",
            ),
            (br#"{"data": []}"#, "the catalog page has no `models` list"),
        ];
        for (body, want) in errors {
            let err = parse_page(body).unwrap_err();
            assert!(err.starts_with(want), "{err}");
        }
        let entry = |v: Value| Entry::from_catalog(&v);
        assert_eq!(entry(json!({"model_id": "a/b"})).unwrap().input, None);
        assert_eq!(
            entry(json!({"model_id": "a/b", "input_schema": null}))
                .unwrap()
                .input,
            None
        );
        assert_eq!(
            entry(json!({"model_id": "a/b", "input_schema": "{\"type\": \"object\"}"}))
                .unwrap()
                .input,
            Some(Ok(json!({"type": "object"})))
        );
        assert!(matches!(
            entry(json!({"model_id": "a/b", "input_schema": "{oops"}))
                .unwrap()
                .input,
            Some(Err(_))
        ));
        assert!(entry(json!({"id": "a/b"})).is_err());
    }

    #[test]
    fn scope() {
        let only = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases = [
            ("kling/x/y", &[][..], true),
            ("kling/x/y", &["kling"][..], true),
            ("kling/x/y", &["kling/"][..], true),
            ("kling/x/y", &["kling/x/y"][..], true),
            ("kling/x/y", &["kling/x"][..], true),
            ("klingon/x", &["kling"][..], false),
            ("kling/x/yz", &["kling/x/y"][..], false),
            ("wan-ai/x", &["kling", "wan-ai"][..], true),
        ];
        for (id, o, want) in cases {
            assert_eq!(in_scope(id, &only(o)), want, "{id} in {o:?}");
        }
    }

    fn write(dir: &Path, id: &str, schema: &Value) {
        std::fs::create_dir_all(dir.join(id)).unwrap();
        std::fs::write(dir.join(id).join("input.json"), schema_text(schema)).unwrap();
    }

    #[test]
    fn a_plan_writes_what_changed_and_keeps_what_it_cannot_take() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let same = json!({"type": "object", "properties": {"p": {"type": "string"}}});
        write(dir, "v/same", &same);
        write(dir, "v/changed", &same);
        write(dir, "v/gone", &same);
        write(dir, "v/broken", &same);
        write(dir, "w/other", &same);
        let changed = json!({"type": "object", "properties": {"p": {"type": "string"}, "q": {"type": "integer"}}});
        let entries = vec![
            Entry {
                id: "v/same".into(),
                input: Some(Ok(same.clone())),
                output: None,
            },
            Entry {
                id: "v/changed".into(),
                input: Some(Ok(changed)),
                output: None,
            },
            Entry {
                id: "v/new".into(),
                input: Some(Ok(same.clone())),
                output: Some(json!({"type": "object"})),
            },
            Entry {
                id: "v/broken".into(),
                input: Some(Ok(
                    json!({"type": "object", "properties": {"n": {"type": "int"}}}),
                )),
                output: None,
            },
            Entry {
                id: "v/bare".into(),
                input: None,
                output: None,
            },
            Entry {
                id: "v/../../etc".into(),
                input: Some(Ok(same.clone())),
                output: None,
            },
        ];
        let plan = plan(dir, &entries, &["v".to_owned()]);
        let written: Vec<String> = plan
            .writes
            .iter()
            .map(|(p, _)| p.strip_prefix(dir).unwrap().display().to_string())
            .collect();
        assert_eq!(
            written,
            [
                "v/changed/input.json",
                "v/new/input.json",
                "v/new/output.json"
            ]
        );
        assert_eq!(plan.removed, ["v/gone"]);
        assert_eq!(plan.skipped.len(), 1);
        let failures = plan.failures.to_string();
        assert!(
            failures.contains("v/broken/input.json#/properties/n/type: unsupported type \"int\""),
            "{failures}"
        );
        assert!(failures.contains("segment \"..\""), "{failures}");
        let s = plan.report.summary();
        assert_eq!(
            (s.added, s.removed, s.changed, s.unchanged),
            (1, 1, 1, 2),
            "{}",
            plan.report.to_text()
        );

        let applied = plan.apply().unwrap();
        assert_eq!(applied.written.len(), 3);
        assert!(!dir.join("v/gone").exists());
        assert!(
            dir.join("w/other/input.json").exists(),
            "out of scope: untouched"
        );
        assert!(
            !dir.join("etc").exists() && !dir.parent().unwrap().join("etc/input.json").exists()
        );

        // Once applied, the same catalog changes nothing.
        let again = super::plan(dir, &entries, &["v".to_owned()]);
        assert!(
            again.is_up_to_date() && again.report.is_empty(),
            "{}",
            again.report.to_text()
        );
    }
}
