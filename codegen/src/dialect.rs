//! The RunComfy schema dialect as standard JSON Schema (draft 2020-12).
//!
//! Model schemas are written in a dialect (`"type": "float"`, `type: [T, "null"]`, refs into
//! `components/schemas`, custom formats such as `image_uri`, a `validations` keyword).
//! Standard validators (the fake server's) must not read it themselves: they would
//! understand it differently from the generator. This module runs the generator's own
//! [`load`](crate::load) checks, [`normalize`] and [`catalog`](crate::catalog)
//! stages on a model and writes the normalized schema back as
//! standard JSON Schema, so that what a validator accepts is what the generated `Input` and
//! its `validate()` accept. A schema the generator refuses is refused here with the same
//! diagnostics.
//!
//! The translation, node by node:
//! - `float`/`double` (any casing) → `number`; nullable nodes (`type: [T, "null"]`,
//!   `anyOf [T, null]`, `null` in an enum) → `type: [T, "null"]`, or `anyOf [T, {"type": "null"}]`
//!   where `type` alone cannot say it;
//! - integers get the bounds of the Rust type the generator picks (`u32`, `i64`, ...) where
//!   the schema leaves them open, since the typed `Input` cannot hold a larger value;
//! - a `const` becomes a one-value `enum`; `oneOf`/`anyOf` → `anyOf`; `allOf` → its members
//!   merged, with its siblings; constraints without `type` stay without it;
//!   `not`/`if`/`then`/`else` are kept (the generated `validate()` checks them);
//! - every local ref target → `#/$defs/<key>` (a ref to the file's root → `#`); recursive
//!   refs stay refs; `patternProperties` with `additionalProperties: false` is kept;
//! - an array without `items` whose format names a URL list (`image_uris`, ...) holds strings,
//!   as its generated `Vec<String>` does;
//! - `format` stays an annotation (validators must not check formats: custom formats are not
//!   standard ones, and the generated code checks none of them);
//! - `title`, `description` and `default` are kept as annotations; the dialect's `validations`
//!   list (`file_size_mb<` ...) is kept as the annotation `x-runcomfy-validations`: it speaks
//!   of the file behind a URL, which neither the generated `validate()` nor a validator of the
//!   request body can see.
//!
//! Validate with formats off and the `regex` crate's pattern syntax (what the generated code
//! uses), for example with the `jsonschema` crate:
//! `jsonschema::draft202012::options().should_validate_formats(false)
//! .with_pattern_options(jsonschema::PatternOptions::regex()).build(&standard.input)`.
//!
//! Known differences that remain, all about JSON the typed `Input` never sends: serde reads
//! `null` as "unset" for an optional field that is not nullable and ignores unknown keys
//! where the schema closes an object, and JSON Schema counts `5.0` as an integer where serde
//! does not; `anyOf` accepts a value that any alternative accepts, where the generated union
//! takes the first alternative whose shape fits and checks only that one (they differ only
//! for overlapping alternatives with constraints, such as integer-or-number).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::diag::{Diagnostics, Location};
use crate::ir::IntWidth;
use crate::load::ModelFiles;
use crate::normalize::{self, Bounds, Kind, Role, Schema};

/// The `$schema` the translated schemas declare.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// One model: its schemas as written and as standard JSON Schema.
#[derive(Debug, Clone, PartialEq)]
pub struct StandardModel {
    /// The model id.
    pub id: String,
    /// `input.json` as written (the dialect, as a catalog serves it).
    pub source_input: Value,
    /// `output.json` as written, when the model has one.
    pub source_output: Option<Value>,
    /// The input schema in draft 2020-12.
    pub input: Value,
    /// The output schema in draft 2020-12 (unwrapped from `{"output": ...}`), when the
    /// model has one.
    pub output: Option<Value>,
}

/// Translates one model given as JSON values (such as a catalog entry's `input_schema`).
///
/// Diagnostics name the files `<id>/input.json` and `<id>/output.json`.
///
/// ```
/// use serde_json::json;
/// let input = json!({"type": "object", "required": ["prompt"], "properties": {
///     "prompt": {"type": "string"},
///     "strength": {"type": "Float", "minimum": 0, "maximum": 1},
/// }});
/// let model = runcomfy_codegen::dialect::translate("acme/echo", &input, None).unwrap();
/// assert_eq!(model.input["properties"]["strength"]["type"], "number");
///
/// let bad = json!({"type": "object", "properties": {"steps": {"type": "int"}}});
/// let diags = runcomfy_codegen::dialect::translate("acme/echo", &bad, None).unwrap_err();
/// assert_eq!(
///     diags.to_string().trim(),
///     r#"acme/echo/input.json#/properties/steps/type: unsupported type "int""#
/// );
/// ```
pub fn translate(
    id: &str,
    input: &Value,
    output: Option<&Value>,
) -> Result<StandardModel, Diagnostics> {
    let folder = PathBuf::from(id);
    let mut diags = Diagnostics::default();
    if let Err(msg) = crate::load::check_model_id(id) {
        diags.text_error(&folder, 0, 0, msg);
        return Err(diags);
    }
    let files = ModelFiles {
        id: id.to_owned(),
        input: (folder.join("input.json"), input.clone()),
        output: output.map(|o| (folder.join("output.json"), o.clone())),
    };
    translate_files(&files)
}

/// Translates one model as [`load`](crate::load::load) read it.
pub fn translate_files(files: &ModelFiles) -> Result<StandardModel, Diagnostics> {
    let mut diags = Diagnostics::default();
    let model = normalize::normalize(files, &mut diags);
    let standard = model.map(|model| {
        // The catalog stage refuses some schemas the normalizer lets through (alternatives
        // that cannot be told apart, defaults outside a referenced enum): refuse them too.
        let _ = crate::catalog::build(std::slice::from_ref(&model), &mut diags);
        StandardModel {
            id: model.id.clone(),
            source_input: files.input.1.clone(),
            source_output: files.output.as_ref().map(|(_, v)| v.clone()),
            input: document(&model, Role::Input, &model.input, &files.input.1),
            output: model
                .output
                .as_ref()
                .zip(files.output.as_ref())
                .map(|(schema, (_, raw))| document(&model, Role::Output, schema, raw)),
        }
    });
    match standard {
        Some(standard) => diags.check(standard),
        None => Err(diags),
    }
}

/// Loads every model below `dir` (`<model_id>/input.json`, optional `output.json`) and
/// translates it; every problem of every model is reported at once.
pub fn translate_dir(dir: &Path) -> Result<Vec<StandardModel>, Diagnostics> {
    let mut diags = Diagnostics::default();
    let loaded = crate::load::load(dir, &mut diags);
    let mut out = Vec::with_capacity(loaded.models.len());
    for files in &loaded.models {
        match translate_files(files) {
            Ok(model) => out.push(model),
            Err(more) => diags.extend(more),
        }
    }
    diags.check(out)
}

/// The schema of one file of `model`, with the definitions of that file under `$defs`.
fn document(model: &normalize::Model, role: Role, root: &Schema, raw: &Value) -> Value {
    let names = def_names(model, role);
    let writer = Writer {
        model,
        names: &names,
        raw,
    };
    let mut doc = Map::new();
    doc.insert("$schema".to_owned(), Value::from(DRAFT_2020_12));
    if let Value::Object(body) = writer.node(root) {
        doc.extend(body);
    }
    let defs: Map<String, Value> = model
        .defs
        .iter()
        .enumerate()
        .filter(|(_, d)| d.role == role)
        .filter_map(|(i, d)| Some((names.get(&i)?.clone(), writer.node(&d.schema))))
        .collect();
    if !defs.is_empty() {
        doc.insert("$defs".to_owned(), Value::Object(defs));
    }
    Value::Object(doc)
}

/// `$defs` keys of one file's definitions, by index: the definition's own key, numbered when
/// two containers (`$defs`, `definitions`) use the same one.
fn def_names(model: &normalize::Model, role: Role) -> BTreeMap<usize, String> {
    let mut names = BTreeMap::new();
    let mut taken = std::collections::BTreeSet::new();
    for (i, def) in model.defs.iter().enumerate() {
        // A ref to the file's root is written `#`.
        if def.role != role || def.pointer.is_empty() {
            continue;
        }
        let mut name = def.key.clone();
        let mut n = 1;
        while taken.contains(&name) {
            n += 1;
            name = format!("{}_{n}", def.key);
        }
        taken.insert(name.clone());
        names.insert(i, name);
    }
    names
}

struct Writer<'a> {
    model: &'a normalize::Model,
    names: &'a BTreeMap<usize, String>,
    /// The file as written, for the annotations the normalizer does not keep.
    raw: &'a Value,
}

impl Writer<'_> {
    fn node(&self, s: &Schema) -> Value {
        let mut out = self.shape(s);
        if s.nullable {
            out = nullable(out);
        }
        let mut annotations = Map::new();
        if let Some(t) = &s.title {
            annotations.insert("title".to_owned(), Value::from(t.clone()));
        }
        if let Some(d) = &s.description {
            annotations.insert("description".to_owned(), Value::from(d.clone()));
        }
        if let Some(d) = &s.default {
            annotations.insert("default".to_owned(), d.clone());
        }
        if let Some(v) = self.validations(&s.loc) {
            annotations.insert("x-runcomfy-validations".to_owned(), v);
        }
        for rule in &s.rules {
            match rule {
                normalize::Rule::Not(n) => {
                    annotations.insert("not".to_owned(), self.node(n));
                }
                normalize::Rule::Condition {
                    test,
                    then,
                    otherwise,
                } => {
                    annotations.insert("if".to_owned(), self.node(test));
                    if let Some(t) = then {
                        annotations.insert("then".to_owned(), self.node(t));
                    }
                    if let Some(e) = otherwise {
                        annotations.insert("else".to_owned(), self.node(e));
                    }
                }
            }
        }
        if let Value::Object(map) = &mut out {
            map.extend(annotations);
        }
        out
    }

    /// The node's `validations` list as written, when it has one.
    fn validations(&self, loc: &Location) -> Option<Value> {
        let node = self.raw.pointer(&loc.pointer)?;
        node.get("validations").cloned()
    }

    fn shape(&self, s: &Schema) -> Value {
        match &s.kind {
            Kind::Any => json!({}),
            Kind::Typeless(t) => {
                let mut out = json!({});
                bounds(&mut out, &t.num);
                put(&mut out, "minLength", t.min_len.map(Value::from));
                put(&mut out, "maxLength", t.max_len.map(Value::from));
                put(&mut out, "pattern", t.pattern.clone().map(Value::from));
                put(&mut out, "minItems", t.min_items.map(Value::from));
                put(&mut out, "maxItems", t.max_items.map(Value::from));
                put(
                    &mut out,
                    "uniqueItems",
                    t.unique.then_some(Value::Bool(true)),
                );
                put(&mut out, "minProperties", t.min_props.map(Value::from));
                put(&mut out, "maxProperties", t.max_props.map(Value::from));
                out
            }
            Kind::Bool => json!({"type": "boolean"}),
            Kind::BoolConst(b) => json!({"type": "boolean", "enum": [b]}),
            Kind::Integer(b) => integer(b),
            Kind::Number(b) => {
                let mut out = json!({"type": "number"});
                bounds(&mut out, b);
                out
            }
            Kind::String {
                min_len,
                max_len,
                pattern,
                format,
            } => {
                let mut out = json!({"type": "string"});
                put(&mut out, "minLength", min_len.map(Value::from));
                put(&mut out, "maxLength", max_len.map(Value::from));
                put(&mut out, "pattern", pattern.clone().map(Value::from));
                put(&mut out, "format", format.clone().map(Value::from));
                out
            }
            Kind::StrEnum(values) => json!({"type": "string", "enum": values}),
            Kind::IntEnum(values) => json!({"type": "integer", "enum": values}),
            Kind::Array {
                items,
                min_items,
                max_items,
                unique,
                format,
            } => {
                let mut out = json!({"type": "array"});
                let items = match items {
                    Some(items) => Some(self.node(items)),
                    // The generator types these `Vec<String>`.
                    None if is_uri_list_format(format.as_deref()) => {
                        Some(json!({"type": "string"}))
                    }
                    None => None,
                };
                put(&mut out, "items", items);
                put(&mut out, "minItems", min_items.map(Value::from));
                put(&mut out, "maxItems", max_items.map(Value::from));
                put(&mut out, "uniqueItems", unique.then_some(Value::Bool(true)));
                put(&mut out, "format", format.clone().map(Value::from));
                out
            }
            Kind::Object {
                props,
                extra,
                key_pattern,
            } => {
                let mut out = json!({"type": "object"});
                if !props.is_empty() {
                    let properties: Map<String, Value> = props
                        .iter()
                        .map(|p| (p.name.clone(), self.node(&p.schema)))
                        .collect();
                    out["properties"] = Value::Object(properties);
                }
                let required: Vec<&str> = props
                    .iter()
                    .filter(|p| p.required)
                    .map(|p| p.name.as_str())
                    .collect();
                if !required.is_empty() {
                    out["required"] = json!(required);
                }
                match (extra, key_pattern) {
                    (Some(e), Some(p)) => {
                        out["patternProperties"] = json!({ p.as_str(): self.node(e) });
                        out["additionalProperties"] = Value::Bool(false);
                    }
                    (None, _) => out["additionalProperties"] = Value::Bool(false),
                    (Some(e), None) if e.kind == Kind::Any && !e.nullable => {}
                    (Some(e), None) => out["additionalProperties"] = self.node(e),
                }
                out
            }
            Kind::Map {
                values,
                min,
                max,
                key_pattern,
            } => {
                let mut out = match key_pattern {
                    Some(p) => {
                        json!({"type": "object", "patternProperties": { p.as_str(): self.node(values) }, "additionalProperties": false})
                    }
                    None => json!({"type": "object", "additionalProperties": self.node(values)}),
                };
                put(&mut out, "minProperties", min.map(Value::from));
                put(&mut out, "maxProperties", max.map(Value::from));
                out
            }
            Kind::Ref(i)
                if self
                    .model
                    .defs
                    .get(*i)
                    .is_some_and(|d| d.pointer.is_empty()) =>
            {
                json!({"$ref": "#"})
            }
            Kind::Ref(i) => match self.names.get(i) {
                Some(name) => json!({"$ref": format!("#/$defs/{}", escape_pointer(name))}),
                // A ref into the other file cannot happen (refs are local to their file);
                // write the definition inline rather than a dangling ref.
                None => self
                    .model
                    .defs
                    .get(*i)
                    .map_or_else(|| json!({}), |d| self.node(&d.schema)),
            },
            Kind::Union(alternatives) => {
                json!({"anyOf": alternatives.iter().map(|a| self.node(a)).collect::<Vec<_>>()})
            }
        }
    }
}

/// Adds `null` to what a node accepts.
fn nullable(mut shape: Value) -> Value {
    let simple = shape.get("type").and_then(Value::as_str).map(str::to_owned);
    let has_enum = shape.get("enum").is_some();
    match (simple, shape.as_object_mut()) {
        (Some(t), Some(map)) => {
            map.insert("type".to_owned(), json!([t, "null"]));
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                values.push(Value::Null);
            }
            shape
        }
        _ if has_enum => shape,
        (None, Some(map)) if map.is_empty() => shape,
        _ => json!({"anyOf": [shape, {"type": "null"}]}),
    }
}

fn integer(b: &Bounds) -> Value {
    let mut out = json!({"type": "integer"});
    bounds(&mut out, b);
    // The generated field's Rust type cannot hold values past its range.
    let (lo, hi): (Value, Value) = match IntWidth::for_bounds(b) {
        IntWidth::U8 => (0.into(), u8::MAX.into()),
        IntWidth::U16 => (0.into(), u16::MAX.into()),
        IntWidth::U32 => (0.into(), u32::MAX.into()),
        IntWidth::U64 => (0.into(), u64::MAX.into()),
        IntWidth::I8 => (i8::MIN.into(), i8::MAX.into()),
        IntWidth::I16 => (i16::MIN.into(), i16::MAX.into()),
        IntWidth::I32 => (i32::MIN.into(), i32::MAX.into()),
        IntWidth::I64 => (i64::MIN.into(), i64::MAX.into()),
    };
    if b.min.is_none() && b.exclusive_min.is_none() {
        out["minimum"] = lo;
    }
    if b.max.is_none() && b.exclusive_max.is_none() {
        out["maximum"] = hi;
    }
    out
}

fn bounds(out: &mut Value, b: &Bounds) {
    put(out, "minimum", b.min.map(number));
    put(out, "maximum", b.max.map(number));
    put(out, "exclusiveMinimum", b.exclusive_min.map(number));
    put(out, "exclusiveMaximum", b.exclusive_max.map(number));
    put(out, "multipleOf", b.multiple_of.map(number));
}

/// A bound as JSON: integral values as integers (`4294967295`, not `4294967295.0`).
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Value::from(v as i64)
    } else {
        Value::from(v)
    }
}

fn put(out: &mut Value, key: &str, value: Option<Value>) {
    if let (Some(v), Some(map)) = (value, out.as_object_mut()) {
        map.insert(key.to_owned(), v);
    }
}

fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn is_uri_list_format(f: Option<&str>) -> bool {
    matches!(
        f,
        Some("image_uris" | "video_uris" | "audio_uris" | "file_uris" | "uris")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(props: Value) -> Value {
        json!({"type": "object", "properties": props})
    }

    fn prop(schema: &Value, name: &str) -> Value {
        schema["properties"][name].clone()
    }

    #[test]
    fn floats_and_nullable_forms() {
        let m = translate(
            "a/b",
            &input(json!({
                "x": {"type": "FLOAT", "minimum": 0.5},
                "y": {"type": ["integer", "null"], "minimum": 1, "maximum": 9},
                "z": {"anyOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "null"}]},
                "w": {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]},
            })),
            None,
        )
        .unwrap();
        assert_eq!(m.input["$schema"], DRAFT_2020_12);
        assert_eq!(
            prop(&m.input, "x"),
            json!({"type": "number", "minimum": 0.5})
        );
        assert_eq!(
            prop(&m.input, "y"),
            json!({"type": ["integer", "null"], "minimum": 1, "maximum": 9})
        );
        assert_eq!(
            prop(&m.input, "z"),
            json!({"type": ["string", "null"], "enum": ["a", "b", null]})
        );
        let w = prop(&m.input, "w");
        assert_eq!(w["anyOf"][1], json!({"type": "null"}), "{w}");
    }

    #[test]
    fn integers_get_the_range_of_their_rust_type() {
        let m = translate(
            "a/b",
            &input(json!({
                "seed": {"type": "integer", "minimum": 0},
                "any": {"type": "integer"},
                "small": {"type": "integer", "minimum": 1, "maximum": 8},
            })),
            None,
        )
        .unwrap();
        assert_eq!(prop(&m.input, "seed")["maximum"], json!(u64::MAX));
        assert_eq!(prop(&m.input, "any")["minimum"], json!(i64::MIN));
        assert_eq!(prop(&m.input, "any")["maximum"], json!(i64::MAX));
        assert_eq!(
            prop(&m.input, "small"),
            json!({"type": "integer", "minimum": 1, "maximum": 8})
        );
    }

    #[test]
    fn refs_become_defs_and_all_of_keeps_its_siblings() {
        let m = translate(
            "a/b",
            &json!({
                "type": "object",
                "properties": {
                    "size": {"allOf": [{"$ref": "#/components/schemas/Size"}], "default": "s", "description": "d"},
                    "tree": {"$ref": "#/definitions/Node"},
                },
                "components": {"schemas": {"Size": {"type": "string", "enum": ["s", "m"]}}},
                "definitions": {"Node": {"type": "object", "properties": {
                    "kids": {"type": "array", "items": {"$ref": "#/definitions/Node"}}}}},
            }),
            None,
        )
        .unwrap();
        assert_eq!(
            prop(&m.input, "size"),
            json!({"$ref": "#/$defs/Size", "description": "d", "default": "s"})
        );
        assert_eq!(
            m.input["$defs"]["Node"]["properties"]["kids"]["items"],
            json!({"$ref": "#/$defs/Node"})
        );
        assert_eq!(
            m.input["$defs"]["Size"],
            json!({"type": "string", "enum": ["s", "m"]})
        );
    }

    #[test]
    fn formats_and_validations_stay_annotations() {
        let v = json!([{"validation_rule": "file_size_mb<", "validation_value": 16, "validation_error": "too big"}]);
        let m = translate(
            "a/b",
            &input(json!({
                "video": {"type": "string", "format": "video_uri", "validations": v},
                "images": {"type": "array", "format": "image_uris", "maxItems": 3},
            })),
            None,
        )
        .unwrap();
        assert_eq!(
            prop(&m.input, "video"),
            json!({"type": "string", "format": "video_uri", "x-runcomfy-validations": v})
        );
        assert_eq!(
            prop(&m.input, "images"),
            json!({"type": "array", "items": {"type": "string"}, "maxItems": 3, "format": "image_uris"})
        );
    }

    #[test]
    fn closed_objects_consts_and_unions() {
        let m = translate(
            "a/b",
            &json!({
                "type": "object",
                "required": ["mode"],
                "additionalProperties": false,
                "properties": {
                    "mode": {"type": "string", "const": "edit"},
                    "n": {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 5}, {"type": "string", "enum": ["auto"]}]},
                },
            }),
            None,
        )
        .unwrap();
        assert_eq!(m.input["additionalProperties"], false);
        assert_eq!(m.input["required"], json!(["mode"]));
        assert_eq!(
            prop(&m.input, "mode"),
            json!({"type": "string", "enum": ["edit"]})
        );
        assert_eq!(
            prop(&m.input, "n")["anyOf"].as_array().map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn what_the_generator_refuses_is_refused_with_its_diagnostics() {
        let cases = [
            (
                input(json!({"n": {"type": "int"}})),
                "x/y/input.json#/properties/n/type: unsupported type \"int\"",
            ),
            (
                json!({"type": "array"}),
                "x/y/input.json#/type: the input schema's root must be an object",
            ),
            (
                input(json!({"n": {"type": "integer", "minimum": "x"}})),
                "x/y/input.json#/properties/n/minimum: `minimum` must be a number",
            ),
        ];
        for (schema, want) in cases {
            let err = translate("x/y", &schema, None).unwrap_err().to_string();
            assert!(err.starts_with(want), "{err}");
        }
        let err = translate("../etc", &input(json!({})), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("segment \"..\""), "{err}");
    }

    #[test]
    fn a_shape_graceful_mode_cannot_type_is_any_value() {
        let schema = input(
            json!({"n": {"anyOf": [{"type": "string"}, {"type": "string", "minLength": 2}]}}),
        );
        let m = translate("x/y", &schema, None).unwrap();
        assert_eq!(m.input["properties"]["n"], json!({}));
    }

    #[test]
    fn output_schemas_are_unwrapped() {
        let out = json!({"output": {"type": "object", "properties": {"video": {"type": "string", "format": "uri"}}}});
        let m = translate("a/b", &input(json!({})), Some(&out)).unwrap();
        assert_eq!(m.source_output.as_ref(), Some(&out));
        let standard = m.output.unwrap();
        assert_eq!(standard["properties"]["video"]["format"], "uri");
        assert_eq!(standard["$schema"], DRAFT_2020_12);
    }

    #[test]
    fn a_folder_translates_every_model_or_lists_every_problem() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        let models = translate_dir(&dir).unwrap();
        assert!(models.len() >= 10);
        assert!(models.windows(2).all(|w| w[0].id < w[1].id));

        let tmp = tempfile::tempdir().unwrap();
        for (id, schema) in [
            (
                "v/good",
                r#"{"type": "object", "properties": {"a": {"type": "float"}}}"#,
            ),
            (
                "v/int",
                r#"{"type": "object", "properties": {"a": {"type": "int"}}}"#,
            ),
            ("v/json", "{not json"),
        ] {
            std::fs::create_dir_all(tmp.path().join(id)).unwrap();
            std::fs::write(tmp.path().join(id).join("input.json"), schema).unwrap();
        }
        let err = translate_dir(tmp.path()).unwrap_err().to_string();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(lines[0].ends_with("unsupported type \"int\""), "{err}");
        assert!(lines[1].contains("invalid JSON"), "{err}");
    }
}
