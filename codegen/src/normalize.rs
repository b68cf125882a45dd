//! Stage 2, normalize: the RunComfy schema dialect in, one canonical [`Schema`] tree out.
//!
//! `type: "float"` (any casing) becomes a number, `type: [T, "null"]` and `anyOf [T, null]`
//! become nullable, a single-`$ref` `allOf` becomes the ref with its siblings kept, local
//! `$ref`s point into a per-model table of definitions, and a wrapped output
//! (`{"output": {...}}`) is unwrapped. Every node keeps its file and JSON pointer, and every
//! problem of a file is recorded, not just the first.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::diag::{Diagnostics, Location};
use crate::load::ModelFiles;

/// Which file of a model a node comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// `input.json`
    Input,
    /// `output.json`
    Output,
}

/// A canonical schema node.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    /// Where it was written.
    pub loc: Location,
    /// `title`: documentation only, never a name.
    pub title: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `default`, already checked against the node's type.
    pub default: Option<Value>,
    /// `null` is allowed too.
    pub nullable: bool,
    /// The shape.
    pub kind: Kind,
}

/// Numeric limits, as written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bounds {
    /// `minimum`
    pub min: Option<f64>,
    /// `maximum`
    pub max: Option<f64>,
    /// `exclusiveMinimum` (numeric form)
    pub exclusive_min: Option<f64>,
    /// `exclusiveMaximum` (numeric form)
    pub exclusive_max: Option<f64>,
    /// `multipleOf`
    pub multiple_of: Option<f64>,
}

/// The shape of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `{}` or `true`: any JSON value, stated so by the schema.
    Any,
    /// `boolean`
    Bool,
    /// `integer`
    Integer(Bounds),
    /// `number` or `float`
    Number(Bounds),
    /// `string`
    String {
        /// `minLength`
        min_len: Option<u64>,
        /// `maxLength`
        max_len: Option<u64>,
        /// `pattern`, known to compile
        pattern: Option<String>,
        /// `format`
        format: Option<String>,
    },
    /// A string `enum` (or string `const`).
    StrEnum(Vec<String>),
    /// An integer `enum` (or integer `const`).
    IntEnum(Vec<i64>),
    /// A boolean `const`.
    BoolConst(bool),
    /// `array`
    Array {
        /// `items`; absent in some RunComfy schemas.
        items: Option<Box<Schema>>,
        /// `minItems`
        min_items: Option<u64>,
        /// `maxItems`
        max_items: Option<u64>,
        /// `uniqueItems`
        unique: bool,
        /// `format` (`image_uris`, ...)
        format: Option<String>,
    },
    /// An object with named properties.
    Object {
        /// Properties in schema order.
        props: Vec<Prop>,
        /// What other keys may hold: `None` when closed (`additionalProperties: false`).
        extra: Option<Box<Schema>>,
    },
    /// An object with no named properties and values of one schema.
    Map {
        /// The value schema.
        values: Box<Schema>,
        /// `minProperties`
        min: Option<u64>,
        /// `maxProperties`
        max: Option<u64>,
    },
    /// A reference to the model's definition with this index.
    Ref(usize),
    /// `anyOf`/`oneOf` of distinct shapes.
    Union(Vec<Schema>),
}

/// A property of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Prop {
    /// The wire name.
    pub name: String,
    /// Its schema.
    pub schema: Schema,
    /// Listed in `required`.
    pub required: bool,
}

/// A named definition (`$defs`, `definitions`, `components/schemas`).
#[derive(Debug, Clone, PartialEq)]
pub struct Def {
    /// The file it lives in.
    pub role: Role,
    /// Its key, the source of its type name.
    pub key: String,
    /// Its schema.
    pub schema: Schema,
}

/// One model, normalized.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The model id.
    pub id: String,
    /// The input schema; its kind is always an object.
    pub input: Schema,
    /// The output schema, when the model has one.
    pub output: Option<Schema>,
    /// Definitions referenced from either file.
    pub defs: Vec<Def>,
    /// `input.json` as compact JSON.
    pub input_text: String,
    /// `output.json` as compact JSON (unwrapped).
    pub output_text: Option<String>,
}

/// Normalizes one model's files.
pub fn normalize(files: &ModelFiles, diags: &mut Diagnostics) -> Option<Model> {
    let mut defs = Vec::new();
    let before = diags.items().len();
    let (input_path, input_json) = &files.input;
    let input = {
        let mut n = Normalizer::new(Role::Input, input_path, input_json, &mut defs, diags);
        let root = Location::root(input_path);
        let schema = n.node(input_json, &root, 0);
        n.finish();
        schema
    };
    if !matches!(input.kind, Kind::Object { .. }) || input.nullable {
        let root = Location::root(input_path);
        let loc = if input_json.get("type").is_some() {
            root.key("type")
        } else {
            root
        };
        diags.error(
            &loc,
            "the input schema's root must be an object with properties (`\"type\": \"object\"`)",
        );
    }
    let mut output_text = None;
    let output = files.output.as_ref().map(|(path, json)| {
        let root = Location::root(path);
        let (body, loc) = match unwrap_output(json) {
            Some(inner) => (inner, root.key("output")),
            None => (json, root),
        };
        output_text = Some(body.to_string());
        let mut n = Normalizer::new(Role::Output, path, json, &mut defs, diags);
        let schema = n.node(body, &loc, 0);
        n.finish();
        schema
    });
    if diags.items().len() > before {
        return None;
    }
    Some(Model {
        id: files.id.clone(),
        input,
        output,
        defs,
        input_text: input_json.to_string(),
        output_text,
    })
}

/// The page form `{"output": {schema}}`: a lone `output` key holding a schema.
fn unwrap_output(json: &Value) -> Option<&Value> {
    let obj = json.as_object()?;
    let schema_keys = [
        "type",
        "properties",
        "$ref",
        "anyOf",
        "oneOf",
        "allOf",
        "items",
        "enum",
    ];
    if schema_keys.iter().any(|k| obj.contains_key(*k)) {
        return None;
    }
    let inner = obj.get("output")?;
    inner.is_object().then_some(inner)
}

const DEF_CONTAINERS: [&str; 3] = ["#/$defs/", "#/definitions/", "#/components/schemas/"];

struct Normalizer<'a> {
    role: Role,
    file: &'a Path,
    root: &'a Value,
    defs: &'a mut Vec<Def>,
    /// `$ref` string of this file → index in `defs`.
    def_index: BTreeMap<String, usize>,
    pending: Vec<(usize, String)>,
    diags: &'a mut Diagnostics,
}

impl<'a> Normalizer<'a> {
    fn new(
        role: Role,
        file: &'a Path,
        root: &'a Value,
        defs: &'a mut Vec<Def>,
        diags: &'a mut Diagnostics,
    ) -> Self {
        Normalizer {
            role,
            file,
            root,
            defs,
            def_index: BTreeMap::new(),
            pending: Vec::new(),
            diags,
        }
    }

    fn finish(&mut self) {
        while let Some((index, reference)) = self.pending.pop() {
            let pointer = &reference[1..];
            let loc = Location {
                file: self.file.to_path_buf(),
                pointer: pointer.to_owned(),
            };
            if let Some(target) = self.root.pointer(pointer) {
                let schema = self.node(target, &loc, 0);
                self.defs[index].schema = schema;
            }
        }
    }

    fn error(&mut self, loc: &Location, msg: impl Into<String>) {
        self.diags.error(loc, msg);
    }

    fn node(&mut self, json: &Value, loc: &Location, depth: usize) -> Schema {
        let mut schema = Schema {
            loc: loc.clone(),
            title: None,
            description: None,
            default: None,
            nullable: false,
            kind: Kind::Any,
        };
        if depth > 64 {
            self.error(loc, "schema nests deeper than 64 levels");
            return schema;
        }
        let obj = match json {
            Value::Bool(true) => return schema,
            Value::Object(obj) => obj,
            _ => {
                self.error(
                    loc,
                    format!("expected a schema object, found {}", kind_of(json)),
                );
                return schema;
            }
        };
        schema.title = self.string_kw(obj, "title", loc);
        schema.description = self
            .string_kw(obj, "description", loc)
            .filter(|d| !d.trim().is_empty());
        for unsupported in [
            "not",
            "if",
            "then",
            "else",
            "patternProperties",
            "prefixItems",
            "dependentSchemas",
        ] {
            if obj.contains_key(unsupported) {
                self.error(
                    &loc.key(unsupported),
                    format!("`{unsupported}` is not supported"),
                );
            }
        }

        // Wrappers that stand for another schema: $ref, allOf, anyOf/oneOf.
        if let Some(r) = obj.get("$ref") {
            schema.kind = self.reference(r, &loc.key("$ref"), depth);
        } else if let Some(all) = obj.get("allOf") {
            let all_loc = loc.key("allOf");
            match all.as_array().map(|a| a.as_slice()) {
                Some([single]) => {
                    let inner = self.node(single, &all_loc.index(0), depth + 1);
                    schema = merge_outer(inner, schema);
                }
                Some(_) => self.error(&all_loc, "`allOf` is supported only around a single schema"),
                None => self.error(&all_loc, "`allOf` must be an array"),
            }
        } else if let Some((kw, list)) = ["anyOf", "oneOf"]
            .iter()
            .find_map(|k| obj.get(*k).map(|v| (*k, v)))
        {
            let list_loc = loc.key(kw);
            match list.as_array() {
                Some(items) if !items.is_empty() => {
                    let mut variants = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        if is_null_schema(item) {
                            schema.nullable = true;
                        } else {
                            variants.push(self.node(item, &list_loc.index(i), depth + 1));
                        }
                    }
                    match variants.len() {
                        0 => self.error(&list_loc, format!("`{kw}` allows only null")),
                        1 => {
                            let nullable = schema.nullable;
                            let inner = variants.pop().map(|v| merge_outer(v, schema.clone()));
                            if let Some(mut inner) = inner {
                                inner.nullable |= nullable;
                                schema = inner;
                            }
                        }
                        _ => schema.kind = Kind::Union(variants),
                    }
                }
                _ => self.error(&list_loc, format!("`{kw}` must be a non-empty array")),
            }
        } else {
            schema.kind = self.direct(obj, loc, depth, &mut schema.nullable);
        }

        if let Some(default) = obj.get("default") {
            if !default.is_null() || !schema.nullable {
                self.check_default(&schema, default, &loc.key("default"));
            }
            schema.default = Some(default.clone());
        }
        schema
    }

    fn reference(&mut self, r: &Value, loc: &Location, depth: usize) -> Kind {
        let Some(r) = r.as_str() else {
            self.error(loc, "`$ref` must be a string");
            return Kind::Any;
        };
        if !r.starts_with('#') {
            self.error(
                loc,
                format!("external $ref {r:?} is not supported; only local refs (#/...) are"),
            );
            return Kind::Any;
        }
        let pointer = &r[1..];
        let Some(target) = self.root.pointer(pointer) else {
            self.error(loc, format!("$ref target {r} not found"));
            return Kind::Any;
        };
        if let Some(prefix) = DEF_CONTAINERS.iter().find(|p| r.starts_with(**p)) {
            let key = &r[prefix.len()..];
            if !key.contains('/') {
                if let Some(&index) = self.def_index.get(r) {
                    return Kind::Ref(index);
                }
                let index = self.defs.len();
                self.defs.push(Def {
                    role: self.role,
                    key: key.replace("~1", "/").replace("~0", "~"),
                    schema: Schema {
                        loc: loc.clone(),
                        title: None,
                        description: None,
                        default: None,
                        nullable: false,
                        kind: Kind::Any,
                    },
                });
                self.def_index.insert(r.to_owned(), index);
                self.pending.push((index, r.to_owned()));
                return Kind::Ref(index);
            }
        }
        // Any other local pointer: inline the target.
        let target_loc = Location {
            file: self.file.to_path_buf(),
            pointer: pointer.to_owned(),
        };
        if depth > 32 {
            self.error(
                loc,
                format!("$ref {r} is recursive; put the target under $defs"),
            );
            return Kind::Any;
        }
        self.node(target, &target_loc, depth + 1).kind
    }

    fn direct(
        &mut self,
        obj: &Map<String, Value>,
        loc: &Location,
        depth: usize,
        nullable: &mut bool,
    ) -> Kind {
        let mut types: Vec<String> = Vec::new();
        match obj.get("type") {
            None => {}
            Some(Value::String(t)) => types.push(t.to_ascii_lowercase()),
            Some(Value::Array(list)) => {
                for (i, t) in list.iter().enumerate() {
                    match t.as_str() {
                        Some(t) => types.push(t.to_ascii_lowercase()),
                        None => {
                            self.error(&loc.key("type").index(i), "`type` entries must be strings")
                        }
                    }
                }
            }
            Some(other) => {
                self.error(
                    &loc.key("type"),
                    format!(
                        "`type` must be a string or an array, found {}",
                        kind_of(other)
                    ),
                );
            }
        }
        if types.iter().any(|t| t == "null") {
            *nullable = true;
            types.retain(|t| t != "null");
        }
        for t in &mut types {
            if t == "float" || t == "double" {
                *t = "number".to_owned();
            }
        }
        if let Some(c) = obj.get("const") {
            return self.constant(c, &loc.key("const"));
        }
        if let Some(e) = obj.get("enum") {
            return self.enumeration(e, &types, &loc.key("enum"), nullable);
        }
        let ty = match types.as_slice() {
            [] => {
                if obj.contains_key("properties") || obj.contains_key("additionalProperties") {
                    "object".to_owned()
                } else if obj.contains_key("items") {
                    "array".to_owned()
                } else {
                    return Kind::Any;
                }
            }
            [one] => one.clone(),
            many => {
                // `type: [string, integer]`: a union of plain shapes.
                let mut variants = Vec::new();
                for t in many {
                    let mut sub = obj.clone();
                    sub.insert("type".to_owned(), Value::String(t.clone()));
                    sub.remove("default");
                    sub.remove("description");
                    variants.push(self.node(&Value::Object(sub), loc, depth + 1));
                }
                return Kind::Union(variants);
            }
        };
        match ty.as_str() {
            "boolean" => Kind::Bool,
            "integer" => Kind::Integer(self.bounds(obj, loc, true)),
            "number" => Kind::Number(self.bounds(obj, loc, false)),
            "string" => {
                let min_len = self.count(obj, "minLength", loc);
                let max_len = self.count(obj, "maxLength", loc);
                self.check_order(min_len, max_len, loc, "minLength", "maxLength");
                let pattern = self.string_kw(obj, "pattern", loc);
                if let Some(p) = &pattern {
                    if let Err(e) = regex::Regex::new(p) {
                        let first = e.to_string().lines().last().unwrap_or("").trim().to_owned();
                        self.error(
                            &loc.key("pattern"),
                            format!("pattern {p:?} is not a valid regular expression: {first}"),
                        );
                    }
                }
                let format = self.string_kw(obj, "format", loc);
                Kind::String {
                    min_len,
                    max_len,
                    pattern,
                    format,
                }
            }
            "array" => {
                let items = match obj.get("items") {
                    None => None,
                    Some(Value::Array(_)) => {
                        self.error(
                            &loc.key("items"),
                            "tuple `items` (an array of schemas) is not supported",
                        );
                        None
                    }
                    Some(items) => Some(Box::new(self.node(items, &loc.key("items"), depth + 1))),
                };
                let min_items = self.count(obj, "minItems", loc);
                let max_items = self.count(obj, "maxItems", loc);
                self.check_order(min_items, max_items, loc, "minItems", "maxItems");
                let unique = obj
                    .get("uniqueItems")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let format = self.string_kw(obj, "format", loc);
                Kind::Array {
                    items,
                    min_items,
                    max_items,
                    unique,
                    format,
                }
            }
            "object" => self.object(obj, loc, depth),
            other => {
                self.error(&loc.key("type"), format!("unsupported type {other:?}"));
                Kind::Any
            }
        }
    }

    fn object(&mut self, obj: &Map<String, Value>, loc: &Location, depth: usize) -> Kind {
        let mut props = Vec::new();
        match obj.get("properties") {
            None => {}
            Some(Value::Object(map)) => {
                let ploc = loc.key("properties");
                for (name, sub) in map {
                    let schema = self.node(sub, &ploc.key(name), depth + 1);
                    props.push(Prop {
                        name: name.clone(),
                        schema,
                        required: false,
                    });
                }
            }
            Some(other) => self.error(
                &loc.key("properties"),
                format!("`properties` must be an object, found {}", kind_of(other)),
            ),
        }
        match obj.get("required") {
            None => {}
            Some(Value::Array(list)) => {
                for (i, r) in list.iter().enumerate() {
                    let rloc = loc.key("required").index(i);
                    match r.as_str() {
                        Some(name) => match props.iter_mut().find(|p| p.name == name) {
                            Some(p) => p.required = true,
                            None => self.error(
                                &rloc,
                                format!(
                                    "required property {name:?} is not defined in `properties`"
                                ),
                            ),
                        },
                        None => self.error(&rloc, "`required` entries must be strings"),
                    }
                }
            }
            Some(_) => self.error(&loc.key("required"), "`required` must be an array of names"),
        }
        let extra = match obj.get("additionalProperties") {
            None | Some(Value::Bool(true)) => Some(Box::new(Schema {
                loc: loc.key("additionalProperties"),
                title: None,
                description: None,
                default: None,
                nullable: false,
                kind: Kind::Any,
            })),
            Some(Value::Bool(false)) => None,
            Some(sub) => Some(Box::new(self.node(
                sub,
                &loc.key("additionalProperties"),
                depth + 1,
            ))),
        };
        let explicit_map = matches!(obj.get("additionalProperties"), Some(Value::Object(_)));
        if props.is_empty() && explicit_map {
            if let Some(values) = extra {
                let min = self.count(obj, "minProperties", loc);
                let max = self.count(obj, "maxProperties", loc);
                return Kind::Map { values, min, max };
            }
        }
        Kind::Object { props, extra }
    }

    fn constant(&mut self, c: &Value, loc: &Location) -> Kind {
        match c {
            Value::String(s) => Kind::StrEnum(vec![s.clone()]),
            Value::Bool(b) => Kind::BoolConst(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Kind::IntEnum(vec![i]),
                None => {
                    self.error(loc, "a `const` number must be an integer");
                    Kind::Any
                }
            },
            other => {
                self.error(
                    loc,
                    format!("a `const` {} is not supported", kind_of(other)),
                );
                Kind::Any
            }
        }
    }

    fn enumeration(
        &mut self,
        e: &Value,
        types: &[String],
        loc: &Location,
        nullable: &mut bool,
    ) -> Kind {
        let Some(values) = e.as_array() else {
            self.error(loc, "`enum` must be an array");
            return Kind::Any;
        };
        let mut strings = Vec::new();
        let mut ints = Vec::new();
        for (i, v) in values.iter().enumerate() {
            match v {
                Value::Null => *nullable = true,
                Value::String(s) => strings.push((i, s.clone())),
                Value::Number(n) if n.as_i64().is_some() => {
                    ints.push((i, n.as_i64().unwrap_or_default()))
                }
                other => self.error(
                    &loc.index(i),
                    format!("enum value {other} is not supported; enums hold strings or integers"),
                ),
            }
        }
        if !strings.is_empty() && !ints.is_empty() {
            self.error(loc, "an enum mixing strings and numbers is not supported");
            return Kind::Any;
        }
        if let Some(t) = types.first() {
            let want_str = t == "string";
            let want_int = t == "integer" || t == "number";
            if (want_str && !ints.is_empty())
                || (want_int && !strings.is_empty())
                || (!want_str && !want_int)
            {
                self.error(loc, format!("enum values do not match `type: {t}`"));
                return Kind::Any;
            }
        }
        if strings.is_empty() && ints.is_empty() {
            self.error(loc, "`enum` has no values");
            return Kind::Any;
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, s) in &strings {
            if !seen.insert(s.clone()) {
                self.error(&loc.index(*i), format!("duplicate enum value {s:?}"));
            }
        }
        for (i, n) in &ints {
            if !seen.insert(n.to_string()) {
                self.error(&loc.index(*i), format!("duplicate enum value {n}"));
            }
        }
        if strings.is_empty() {
            Kind::IntEnum(ints.into_iter().map(|(_, n)| n).collect())
        } else {
            Kind::StrEnum(strings.into_iter().map(|(_, s)| s).collect())
        }
    }

    fn bounds(&mut self, obj: &Map<String, Value>, loc: &Location, integer: bool) -> Bounds {
        let mut num = |key: &str| -> Option<f64> {
            let v = obj.get(key)?;
            match v.as_f64() {
                Some(f) => Some(f),
                None if v.is_boolean() && key.starts_with("exclusive") => {
                    self.error(
                        &loc.key(key),
                        format!("boolean `{key}` (draft 4) is not supported; use the numeric form"),
                    );
                    None
                }
                None => {
                    self.error(&loc.key(key), format!("`{key}` must be a number"));
                    None
                }
            }
        };
        let b = Bounds {
            min: num("minimum"),
            max: num("maximum"),
            exclusive_min: num("exclusiveMinimum"),
            exclusive_max: num("exclusiveMaximum"),
            multiple_of: num("multipleOf"),
        };
        let lo = b.min.or(b.exclusive_min);
        let hi = b.max.or(b.exclusive_max);
        if let (Some(lo), Some(hi)) = (lo, hi) {
            if lo > hi {
                self.error(loc, format!("minimum {lo} is greater than maximum {hi}"));
            }
        }
        if let Some(m) = b.multiple_of {
            if m <= 0.0 || (integer && m.fract() != 0.0) {
                self.error(
                    &loc.key("multipleOf"),
                    format!(
                        "`multipleOf` {m} must be a positive{}",
                        if integer { " integer" } else { " number" }
                    ),
                );
            }
        }
        if integer {
            for (key, v) in [
                ("minimum", b.min),
                ("maximum", b.max),
                ("exclusiveMinimum", b.exclusive_min),
                ("exclusiveMaximum", b.exclusive_max),
            ] {
                if let Some(v) = v {
                    if v.fract() != 0.0 || v.abs() > 1.8e19 {
                        self.error(
                            &loc.key(key),
                            format!("`{key}` {v} is not an integer bound"),
                        );
                    }
                }
            }
        }
        b
    }

    fn count(&mut self, obj: &Map<String, Value>, key: &str, loc: &Location) -> Option<u64> {
        let v = obj.get(key)?;
        match v.as_u64() {
            Some(n) => Some(n),
            None => {
                self.error(
                    &loc.key(key),
                    format!("`{key}` must be a non-negative integer"),
                );
                None
            }
        }
    }

    fn check_order(
        &mut self,
        lo: Option<u64>,
        hi: Option<u64>,
        loc: &Location,
        lo_kw: &str,
        hi_kw: &str,
    ) {
        if let (Some(a), Some(b)) = (lo, hi) {
            if a > b {
                self.error(loc, format!("`{lo_kw}` {a} is greater than `{hi_kw}` {b}"));
            }
        }
    }

    fn string_kw(&mut self, obj: &Map<String, Value>, key: &str, loc: &Location) -> Option<String> {
        match obj.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.error(
                    &loc.key(key),
                    format!("`{key}` must be a string, found {}", kind_of(other)),
                );
                None
            }
        }
    }

    /// A default must be a value of the node's own type (and one of its enum values).
    fn check_default(&mut self, schema: &Schema, default: &Value, loc: &Location) {
        if default.is_null() {
            if !schema.nullable {
                self.error(
                    loc,
                    "default null is not allowed: the schema is not nullable",
                );
            }
            return;
        }
        let problem = match &schema.kind {
            Kind::Bool if !default.is_boolean() => Some("a boolean"),
            Kind::Integer(_) if !(default.is_i64() || default.is_u64()) => Some("an integer"),
            Kind::Number(_) if !default.is_number() => Some("a number"),
            Kind::String { .. } if !default.is_string() => Some("a string"),
            Kind::Array { .. } if !default.is_array() => Some("an array"),
            Kind::Object { .. } | Kind::Map { .. } if !default.is_object() => Some("an object"),
            Kind::StrEnum(values) => {
                if default
                    .as_str()
                    .is_some_and(|d| values.iter().any(|v| v == d))
                {
                    None
                } else {
                    self.error(
                        loc,
                        format!(
                            "default {default} is not one of the enum values {}",
                            list(values.iter().map(|v| format!("{v:?}")))
                        ),
                    );
                    return;
                }
            }
            Kind::IntEnum(values) => {
                if default.as_i64().is_some_and(|d| values.contains(&d)) {
                    None
                } else {
                    self.error(
                        loc,
                        format!(
                            "default {default} is not one of the enum values {}",
                            list(values.iter().map(|v| v.to_string()))
                        ),
                    );
                    return;
                }
            }
            _ => None,
        };
        if let Some(want) = problem {
            self.error(loc, format!("default {default} is not {want}"));
        }
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}

/// Annotations written beside an `allOf`/`anyOf` wrapper override the wrapped schema's.
fn merge_outer(mut inner: Schema, outer: Schema) -> Schema {
    inner.loc = outer.loc;
    if outer.title.is_some() {
        inner.title = outer.title;
    }
    if outer.description.is_some() {
        inner.description = outer.description;
    }
    inner.nullable |= outer.nullable;
    inner
}

fn is_null_schema(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("null")
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
