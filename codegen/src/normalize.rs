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
use crate::Mode;

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
    /// Validation-only rules (`not`, `if`/`then`/`else`): checked, never typed.
    pub rules: Vec<Rule>,
    /// The `file_size_mb<` (or `<=`) rule of the dialect's `validations` list, for file fields.
    pub file_size: Option<FileSize>,
    /// What is not typed or not checked here, and why (graceful mode): rustdoc lines of the
    /// generated field or type, each also a warning.
    pub notes: Vec<String>,
    /// An open object whose other keys a rule of its node reads: a request keeps them (in
    /// `extra`), so that the rule sees the value as sent.
    pub keep_unknown: bool,
}

/// A file size limit from the dialect's `validations` list (`file_size_mb<` 16).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FileSize {
    /// The limit, in MB.
    pub max_mb: f64,
    /// `<=` rather than `<`.
    pub inclusive: bool,
}

impl Schema {
    /// A schema of `kind` at `loc`, without annotations.
    pub fn new(loc: Location, kind: Kind) -> Self {
        Schema {
            loc,
            title: None,
            description: None,
            default: None,
            nullable: false,
            kind,
            rules: Vec::new(),
            file_size: None,
            notes: Vec::new(),
            keep_unknown: false,
        }
    }
}

/// A validation-only rule of a schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// `not`: the value must not match this schema.
    Not(Box<Schema>),
    /// `if`/`then`/`else`: a value matching `test` must match `then`, any other `otherwise`.
    Condition {
        /// `if`
        test: Box<Schema>,
        /// `then`
        then: Option<Box<Schema>>,
        /// `else`
        otherwise: Option<Box<Schema>>,
    },
}

/// Constraints written without a `type`: each applies to values of its own JSON type only
/// (`maximum` to numbers, `maxLength` to strings, ...), as JSON Schema says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Typeless {
    /// Numeric limits.
    pub num: Bounds,
    /// `minLength`
    pub min_len: Option<u64>,
    /// `maxLength`
    pub max_len: Option<u64>,
    /// `pattern`, known to compile
    pub pattern: Option<String>,
    /// `minItems`
    pub min_items: Option<u64>,
    /// `maxItems`
    pub max_items: Option<u64>,
    /// `uniqueItems`
    pub unique: bool,
    /// `minProperties`
    pub min_props: Option<u64>,
    /// `maxProperties`
    pub max_props: Option<u64>,
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
    /// Any JSON value, with constraints that apply by its JSON type.
    Typeless(Box<Typeless>),
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
        /// Other keys must match this pattern (`patternProperties` with
        /// `additionalProperties: false`).
        key_pattern: Option<String>,
    },
    /// An object with no named properties and values of one schema.
    Map {
        /// The value schema.
        values: Box<Schema>,
        /// `minProperties`
        min: Option<u64>,
        /// `maxProperties`
        max: Option<u64>,
        /// Keys must match this pattern (`patternProperties` with
        /// `additionalProperties: false`).
        key_pattern: Option<String>,
    },
    /// A reference to the model's definition with this index.
    Ref(usize),
    /// `anyOf`/`oneOf` of two or more shapes.
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

/// A `$ref` target: a named definition (`$defs`, `definitions`, `components/schemas`) or
/// any other local pointer, normalized once however many refs point to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Def {
    /// The file it lives in.
    pub role: Role,
    /// Its key, the source of its type name (empty for the file's root).
    pub key: String,
    /// Its JSON pointer in the file (empty for the root).
    pub pointer: String,
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
    /// How many schema nodes were normalized: linear in the size of the files, whatever
    /// their refs (each ref target is normalized once).
    pub nodes: usize,
    /// The mode it was normalized in (the catalog leaves out what it cannot check in
    /// graceful mode, and refuses it in strict mode).
    pub mode: Mode,
}

/// Normalizes one model's files in graceful mode.
pub fn normalize(files: &ModelFiles, diags: &mut Diagnostics) -> Option<Model> {
    normalize_with(files, Mode::Graceful, diags)
}

/// Normalizes one model's files: a shape the generator cannot type is an error in strict
/// mode, and in graceful mode a node of any value (documented, with a warning).
pub fn normalize_with(files: &ModelFiles, mode: Mode, diags: &mut Diagnostics) -> Option<Model> {
    let mut defs = Vec::new();
    let mut nodes = 0;
    let before = diags.error_count();
    let (input_path, input_json) = &files.input;
    let input = {
        let mut n = Normalizer::new(Role::Input, input_path, input_json, &mut defs, diags);
        n.strict = mode == Mode::Strict;
        let root = Location::root(input_path);
        let schema = n.node(input_json, &root, 0);
        n.finish();
        nodes += n.nodes;
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
        n.strict = mode == Mode::Strict;
        let schema = n.node(body, &loc, 0);
        n.finish();
        nodes += n.nodes;
        schema
    });
    // A ref to a file's root stands for `Input` (or `Output`): that root must be an object.
    for def in defs.iter().filter(|d| d.pointer.is_empty()) {
        if !matches!(def.schema.kind, Kind::Object { .. }) {
            diags.error(
                &def.schema.loc,
                "a `$ref` to the root of a schema that is not an object is not supported",
            );
        }
    }
    if diags.error_count() > before {
        return None;
    }
    Some(Model {
        id: files.id.clone(),
        input,
        output,
        defs,
        input_text: input_json.to_string(),
        output_text,
        nodes,
        mode,
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

const DEF_CONTAINERS: [&str; 3] = ["/$defs/", "/definitions/", "/components/schemas/"];

/// Keywords that give a schema a shape (beside annotations such as `title`).
const STRUCTURAL: &[&str] = &[
    "type",
    "properties",
    "additionalProperties",
    "patternProperties",
    "required",
    "items",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "not",
    "if",
];

/// Assertion keywords the generator does not check: each is a warning and a note in the
/// docs, and a `not`/`if` whose schema holds one is not checked at all (it would refuse what
/// the schema allows).
const IGNORED: &[&str] = &[
    "contains",
    "minContains",
    "maxContains",
    "propertyNames",
    "dependentRequired",
    "dependencies",
    "unevaluatedItems",
    "unevaluatedProperties",
    "additionalItems",
    "$dynamicRef",
    "$recursiveRef",
];

/// The keywords of `obj` that shape a value, but `skip` and the rules (`not`, `if`), which
/// stay with the node: what an `allOf`, `anyOf`/`oneOf` or `$ref` has beside it.
fn own_keywords(obj: &Map<String, Value>, skip: &[&str]) -> Map<String, Value> {
    obj.iter()
        .filter(|(k, _)| {
            let k = k.as_str();
            (STRUCTURAL.contains(&k) || matches!(k, "allOf" | "anyOf" | "oneOf" | "$ref"))
                && !matches!(k, "not" | "if")
                && !skip.contains(&k)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The schema of exactly the JSON value `v` (strings, numbers, booleans, null and objects of
/// them); `None` for an array, which no typed shape states exactly.
fn literal(v: &Value, loc: &Location) -> Option<Schema> {
    let kind = match v {
        // Null only: any value that is none of the other JSON types.
        Value::Null => {
            let other = |kind| Schema::new(loc.clone(), kind);
            let not_null = Kind::Union(vec![
                other(Kind::Bool),
                other(Kind::Number(Bounds::default())),
                other(Kind::String {
                    min_len: None,
                    max_len: None,
                    pattern: None,
                    format: None,
                }),
                other(Kind::Array {
                    items: None,
                    min_items: None,
                    max_items: None,
                    unique: false,
                    format: None,
                }),
                other(Kind::Object {
                    props: Vec::new(),
                    extra: Some(Box::new(Schema::new(loc.clone(), Kind::Any))),
                    key_pattern: None,
                }),
            ]);
            let mut s = Schema::new(loc.clone(), Kind::Any);
            s.rules.push(Rule::Not(Box::new(other(not_null))));
            return Some(s);
        }
        Value::String(s) => Kind::StrEnum(vec![s.clone()]),
        Value::Bool(b) => Kind::BoolConst(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Kind::IntEnum(vec![i]),
            (None, Some(f)) => Kind::Number(Bounds {
                min: Some(f),
                max: Some(f),
                ..Bounds::default()
            }),
            (None, None) => return None,
        },
        Value::Object(map) => {
            let mut props = Vec::new();
            for (k, v) in map {
                props.push(Prop {
                    name: k.clone(),
                    schema: literal(v, &loc.key(k))?,
                    required: true,
                });
            }
            Kind::Object {
                props,
                extra: None,
                key_pattern: None,
            }
        }
        Value::Array(_) => return None,
    };
    Some(Schema::new(loc.clone(), kind))
}

/// An open object closed to other keys (`extra: None`) or opened to `extra`'s values.
fn close(kind: Kind, extra: &Option<Box<Schema>>) -> Kind {
    match kind {
        Kind::Object {
            props,
            extra: Some(open),
            key_pattern: None,
        } if matches!(open.kind, Kind::Any) && open.rules.is_empty() => Kind::Object {
            props,
            extra: extra.clone(),
            key_pattern: None,
        },
        // The typed object of a node without `type` (the first alternative).
        Kind::Union(mut alts) if !alts.is_empty() => {
            let first = std::mem::replace(&mut alts[0].kind, Kind::Any);
            alts[0].kind = close(first, extra);
            Kind::Union(alts)
        }
        other => other,
    }
}

/// Whether a `$ref` appears anywhere in `v`.
fn has_ref(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, x)| k == "$ref" || has_ref(x)),
        Value::Array(a) => a.iter().any(has_ref),
        _ => false,
    }
}

/// The keywords that apply to one JSON type only: when `type` lists several types, each
/// alternative keeps its own, so every subschema is normalized once.
const TYPE_KEYWORDS: &[(&str, &[&str])] = &[
    (
        "object",
        &[
            "properties",
            "additionalProperties",
            "patternProperties",
            "required",
            "minProperties",
            "maxProperties",
        ],
    ),
    ("array", &["items", "minItems", "maxItems", "uniqueItems"]),
    ("string", &["minLength", "maxLength", "pattern"]),
    (
        "number",
        &[
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "multipleOf",
        ],
    ),
];

/// Where a def stands in its normalization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DefState {
    Pending,
    InProgress,
    Done,
}

struct Normalizer<'a> {
    role: Role,
    file: &'a Path,
    root: &'a Value,
    defs: &'a mut Vec<Def>,
    /// Decoded JSON pointer of this file → index in `defs`.
    def_index: BTreeMap<String, usize>,
    state: BTreeMap<usize, DefState>,
    /// Inside `if`/`then`/`else`/`not`: partial schemas (`required` may name properties
    /// defined elsewhere).
    in_rule: usize,
    nodes: usize,
    diags: &'a mut Diagnostics,
    /// Strict mode: a shape the generator cannot type is an error.
    strict: bool,
    /// Shapes found unsupported below the nodes being normalized (graceful mode), not yet
    /// turned into a node of any value by the node they belong to.
    pending: Vec<(Location, String)>,
    /// The notes of the node being normalized (what is not checked there).
    notes: Vec<String>,
    /// How many constraints were left unchecked so far: a rule (`not`, `if`) whose schema
    /// left one unchecked would refuse what the schema allows, so it is not checked at all.
    loose: usize,
    /// Keywords beside `$ref` apply too: the nearest `$schema` names 2019-09 or later. Draft
    /// 7 and older ignore them, and so does a schema that names no dialect (with a warning:
    /// ignoring them never refuses what either reading allows).
    ref_siblings: bool,
    /// The node being normalized is merged with others (an `allOf` member, the keywords
    /// beside a `$ref` or a list): its object keywords make an object, never a union.
    merged: Option<Location>,
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
            state: BTreeMap::new(),
            in_rule: 0,
            nodes: 0,
            diags,
            strict: false,
            pending: Vec::new(),
            notes: Vec::new(),
            loose: 0,
            merged: None,
            ref_siblings: false,
        }
    }

    /// Normalizes every def still pending, in index order.
    fn finish(&mut self) {
        loop {
            let next = self
                .state
                .iter()
                .find(|(_, s)| **s == DefState::Pending)
                .map(|(i, _)| *i);
            match next {
                Some(i) => {
                    self.resolve(i);
                }
                None => break,
            }
        }
    }

    /// The normalized schema of def `index`, normalizing it now if it is pending; `None`
    /// while it is being normalized (a cycle through `allOf`).
    fn resolve(&mut self, index: usize) -> Option<Schema> {
        match self.state.get(&index).copied() {
            Some(DefState::Pending) => {
                self.state.insert(index, DefState::InProgress);
                let pointer = self.defs[index].pointer.clone();
                let loc = Location {
                    file: self.file.to_path_buf(),
                    pointer: pointer.clone(),
                };
                let in_rule = std::mem::take(&mut self.in_rule);
                let schema = match self.root.pointer(&pointer) {
                    Some(target) => self.node(target, &loc, 0),
                    None => Schema::new(loc, Kind::Any),
                };
                self.in_rule = in_rule;
                self.defs[index].schema = schema;
                self.state.insert(index, DefState::Done);
                Some(self.defs[index].schema.clone())
            }
            Some(DefState::InProgress) => None,
            Some(DefState::Done) | None => Some(self.defs[index].schema.clone()),
        }
    }

    fn error(&mut self, loc: &Location, msg: impl Into<String>) {
        self.diags.error(loc, msg);
    }

    /// A shape the generator cannot type: an error in strict mode; in graceful mode the node
    /// it belongs to accepts any value instead (see [`Normalizer::node`]).
    fn unsupported(&mut self, loc: &Location, msg: impl Into<String>) {
        if self.strict {
            self.diags.error(loc, msg);
        } else {
            self.pending.push((loc.clone(), msg.into()));
        }
    }

    /// A constraint left unchecked (its node stays typed): a warning and a note in the
    /// node's docs. With `refused`, strict mode refuses it instead (as before graceful mode);
    /// returns whether to go on without it.
    fn unchecked(&mut self, loc: &Location, msg: impl Into<String>, refused: bool) -> bool {
        let msg = msg.into();
        if refused && self.strict {
            self.diags.error(loc, msg);
            return false;
        }
        self.loose += 1;
        self.notes.push(format!(
            "Not checked client-side: {msg} (at #{}).",
            loc.pointer
        ));
        self.diags
            .warn(loc, format!("{msg}: not checked client-side"));
        true
    }

    /// One schema node. In graceful mode a node whose own shape is unsupported becomes a
    /// node of any value, documented and warned about, so its siblings stay typed; the root
    /// of an input must be typed, so there it is refused.
    fn node(&mut self, json: &Value, loc: &Location, depth: usize) -> Schema {
        // A `$schema` sets the dialect of the subtree (a property may embed another).
        if let Some(dialect) = json.get("$schema").and_then(Value::as_str) {
            let newer = !["draft-03", "draft-04", "draft-06", "draft-07"]
                .iter()
                .any(|d| dialect.contains(d));
            let outer = std::mem::replace(&mut self.ref_siblings, newer);
            let schema = self.node_in_dialect(json, loc, depth);
            self.ref_siblings = outer;
            return schema;
        }
        self.node_in_dialect(json, loc, depth)
    }

    fn node_in_dialect(&mut self, json: &Value, loc: &Location, depth: usize) -> Schema {
        let pending = self.pending.len();
        let notes = std::mem::take(&mut self.notes);
        let mut schema = self.node_inner(json, loc, depth);
        schema.notes = std::mem::replace(&mut self.notes, notes);
        if self.pending.len() == pending {
            return schema;
        }
        let reasons: Vec<(Location, String)> = self.pending.drain(pending..).collect();
        if depth == 0 && self.role == Role::Input && loc.pointer.is_empty() {
            for (l, m) in reasons {
                self.diags.error(&l, m);
            }
            return schema;
        }
        self.loose += 1;
        let mut fallback = Schema::new(loc.clone(), Kind::Any);
        fallback.title = schema.title;
        fallback.description = schema.description;
        for (l, m) in reasons {
            fallback.notes.push(format!(
                "Any JSON value: {m} (at #{}); the server checks it.",
                l.pointer
            ));
            self.diags
                .warn(&l, format!("{m}: typed as `serde_json::Value`"));
        }
        fallback
    }

    /// Whether `unevaluatedProperties` here is what `additionalProperties` would be on the
    /// object the node's `properties`, `allOf` members, `$ref` and `oneOf` alternatives make
    /// (graceful mode): no `additionalProperties` or `patternProperties` evaluates every key
    /// already, and nothing that evaluates keys conditionally (`if`, `anyOf`,
    /// `dependentSchemas`, dynamic refs) is beside it.
    fn unevaluated_closes(&self, obj: &Map<String, Value>) -> bool {
        if self.strict || !obj.contains_key("unevaluatedProperties") {
            return false;
        }
        let conditional = [
            "if",
            "anyOf",
            "dependentSchemas",
            "$dynamicRef",
            "$recursiveRef",
        ];
        let evaluates_all = [
            "additionalProperties",
            "patternProperties",
            "unevaluatedProperties",
        ];
        let mut members: Vec<&Map<String, Value>> = Vec::new();
        for key in ["allOf", "oneOf"] {
            if let Some(list) = obj.get(key).and_then(Value::as_array) {
                members.extend(list.iter().filter_map(Value::as_object));
            }
        }
        let mut refs: Vec<&Map<String, Value>> = Vec::new();
        for m in std::iter::once(obj).chain(members.iter().copied()) {
            if let Some(target) = m
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix('#'))
                .and_then(|p| self.root.pointer(&percent_decode(p)))
                .and_then(Value::as_object)
            {
                refs.push(target);
            }
        }
        let own_ok = !conditional.iter().any(|k| obj.contains_key(*k))
            && !evaluates_all[..2].iter().any(|k| obj.contains_key(*k));
        own_ok
            && members.iter().chain(refs.iter()).all(|m| {
                !conditional.iter().any(|k| m.contains_key(*k))
                    && !evaluates_all.iter().any(|k| m.contains_key(*k))
                    && !["allOf", "oneOf", "$ref"]
                        .iter()
                        .any(|k| m.contains_key(*k))
            })
    }

    /// `unevaluatedProperties` applied as `additionalProperties` to the node's object (each
    /// object alternative of a `oneOf`, whose one match evaluates its own keys).
    fn close_unevaluated(
        &mut self,
        obj: &Map<String, Value>,
        loc: &Location,
        depth: usize,
        schema: &mut Schema,
    ) {
        let Some(rule) = obj.get("unevaluatedProperties") else {
            return;
        };
        if rule == &Value::Bool(true) {
            return;
        }
        let uloc = loc.key("unevaluatedProperties");
        let extra = match rule {
            Value::Bool(false) => None,
            other => Some(Box::new(self.node(other, &uloc, depth + 1))),
        };
        let kind = std::mem::replace(&mut schema.kind, Kind::Any);
        let kind = match self.deref(Schema::new(loc.clone(), kind)) {
            Ok(s) => s.kind,
            Err(msg) => {
                self.unsupported(&uloc, msg);
                return;
            }
        };
        schema.kind = match kind {
            Kind::Union(variants) => Kind::Union(
                variants
                    .into_iter()
                    .map(|mut v| {
                        if let Ok(d) = self.deref(v.clone()) {
                            v.kind = close(d.kind, &extra);
                        }
                        v
                    })
                    .collect(),
            ),
            other => close(other, &extra),
        };
    }

    /// A node merged with others (see `merged`).
    fn merged_node(&mut self, json: &Value, loc: &Location, depth: usize) -> Schema {
        let outer = self.merged.replace(loc.clone());
        let schema = self.node(json, loc, depth);
        self.merged = outer;
        schema
    }

    fn node_inner(&mut self, json: &Value, loc: &Location, depth: usize) -> Schema {
        self.nodes += 1;
        let mut schema = Schema::new(loc.clone(), Kind::Any);
        if depth > 64 {
            self.error(loc, "schema nests deeper than 64 levels");
            return schema;
        }
        let obj = match json {
            Value::Bool(true) => return schema,
            // `false`: no value is valid; `not {}` says so to `validate()`.
            Value::Bool(false) if !self.strict => {
                schema
                    .rules
                    .push(Rule::Not(Box::new(Schema::new(loc.clone(), Kind::Any))));
                self.notes
                    .push("No value is valid here (the schema is `false`).".to_owned());
                return schema;
            }
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
        // Keywords checked as rules in graceful mode (`contains`, `dependentRequired`, ...).
        let as_rules = self.as_rules(obj);
        for kw in ["prefixItems", "dependentSchemas"] {
            if obj.contains_key(kw) && !as_rules.contains(&kw) {
                self.unchecked(&loc.key(kw), format!("`{kw}` is not supported"), true);
            }
        }
        let unevaluated = self.unevaluated_closes(obj);
        for kw in IGNORED {
            if obj.contains_key(*kw)
                && !(*kw == "unevaluatedProperties" && unevaluated)
                && !as_rules.contains(kw)
            {
                self.unchecked(&loc.key(kw), format!("`{kw}` is not supported"), false);
            }
        }
        if !loc.pointer.is_empty() && obj.contains_key("$id") && has_ref(json) {
            self.unsupported(
                &loc.key("$id"),
                "`$id` below the root (it moves the base of the `$ref`s below it) is not supported",
            );
        }
        schema.rules = self.rules(obj, loc, depth);
        let more = self.keyword_rules(obj, &as_rules, loc, depth);
        schema.rules.extend(more);
        schema.file_size = self.file_size(obj, loc);

        // Wrappers that stand for another schema: $ref, allOf, anyOf/oneOf. Keywords beside
        // them apply too: they are one more `allOf` member, or part of each alternative.
        if let Some(r) = obj.get("$ref") {
            let kind = self.reference(r, &loc.key("$ref"));
            let own = own_keywords(obj, &["$ref"]);
            if self.ref_siblings && !own.is_empty() {
                let target = Schema::new(loc.key("$ref"), kind);
                let own_schema = self.merged_node(&Value::Object(own), loc, depth + 1);
                let merged = self.merge_all(vec![target, own_schema], loc);
                let rules = std::mem::take(&mut schema.rules);
                schema = merge_outer(merged, schema);
                schema.rules.extend(rules);
            } else {
                if !own.is_empty() {
                    let names: Vec<&str> = own.keys().map(String::as_str).collect();
                    self.diags.warn(
                        &loc.key("$ref"),
                        format!(
                            "keywords beside `$ref` ({}) are ignored, as drafts up to 7 say; a `$schema` of 2019-09 or later applies them",
                            names.join(", ")
                        ),
                    );
                }
                schema.kind = kind;
            }
        } else if let Some(all) = obj.get("allOf") {
            let all_loc = loc.key("allOf");
            match all.as_array() {
                Some(items) if !items.is_empty() => {
                    let mut members: Vec<Schema> = items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| self.merged_node(item, &all_loc.index(i), depth + 1))
                        .collect();
                    // Keywords beside `allOf` are one more member.
                    let own = own_keywords(obj, &["allOf"]);
                    if own.contains_key("anyOf") || own.contains_key("oneOf") {
                        members.push(self.merged_node(&Value::Object(own), loc, depth + 1));
                    } else if !own.is_empty() {
                        let mut own_schema = Schema::new(loc.clone(), Kind::Any);
                        own_schema.kind = self.direct(&own, loc, depth, &mut own_schema.nullable);
                        members.push(own_schema);
                    }
                    let merged = self.merge_all(members, &all_loc);
                    let rules = std::mem::take(&mut schema.rules);
                    schema = merge_outer(merged, schema);
                    schema.rules.extend(rules);
                }
                _ => self.error(&all_loc, "`allOf` must be a non-empty array"),
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
                    // Keywords beside the list (`properties` beside a `oneOf`): part of each
                    // alternative.
                    let own = own_keywords(obj, &[kw]);
                    if !own.is_empty() {
                        let own_schema = self.merged_node(&Value::Object(own), loc, depth + 1);
                        variants = variants
                            .into_iter()
                            .map(|v| {
                                let at = v.loc.clone();
                                let mut merged = self.merge_all(vec![v, own_schema.clone()], &at);
                                merged.loc = at;
                                merged
                            })
                            .collect();
                    }
                    if kw == "oneOf" && variants.len() > 1 && !self.disjoint(&variants) {
                        self.unchecked(
                            &list_loc,
                            "`oneOf` is checked as `anyOf` (a value matching several alternatives is accepted)",
                            false,
                        );
                    }
                    if !self.strict {
                        self.distinguishable(&variants, &list_loc);
                    }
                    match variants.len() {
                        0 => self.unsupported(&list_loc, format!("`{kw}` allows only null")),
                        1 => {
                            let nullable = schema.nullable;
                            let rules = std::mem::take(&mut schema.rules);
                            let inner = variants.pop().map(|v| merge_outer(v, schema.clone()));
                            if let Some(mut inner) = inner {
                                inner.nullable |= nullable;
                                inner.rules.extend(rules);
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
            self.implied(obj, &mut schema);
        }

        if unevaluated {
            self.close_unevaluated(obj, loc, depth, &mut schema);
        }
        // Rules judge the value as JSON: an open object under them keeps its other keys.
        if !schema.rules.is_empty() {
            match &mut schema.kind {
                Kind::Object { .. } => schema.keep_unknown = true,
                Kind::Union(alternatives) => {
                    for a in alternatives {
                        a.keep_unknown = true;
                    }
                }
                _ => {}
            }
        }

        if let Some(default) = obj.get("default") {
            let fits = (default.is_null() && schema.nullable)
                || self.check_default(&schema, default, &loc.key("default"));
            if fits {
                schema.default = Some(default.clone());
            }
        }
        schema
    }

    /// The `file_size_mb<` or `file_size_mb<=` entry of a `validations` list; other entries
    /// (pixel sizes, aspect ratios) are the server's to check. A file size rule without a
    /// positive number is a diagnostic.
    fn file_size(&mut self, obj: &Map<String, Value>, loc: &Location) -> Option<FileSize> {
        let list = obj.get("validations")?.as_array()?;
        let mut out = None;
        for (i, v) in list.iter().enumerate() {
            let rule = v
                .get("validation_rule")
                .and_then(Value::as_str)
                .unwrap_or("");
            let inclusive = match rule.trim() {
                "file_size_mb<" => false,
                "file_size_mb<=" => true,
                _ => continue,
            };
            match v.get("validation_value").and_then(Value::as_f64) {
                Some(max_mb) if max_mb > 0.0 && max_mb.is_finite() => {
                    out = Some(FileSize { max_mb, inclusive });
                }
                _ => self.error(
                    &loc.key("validations").index(i),
                    "a file_size_mb rule needs a positive number as validation_value",
                ),
            }
        }
        out
    }

    /// `not` and `if`/`then`/`else`, as validation-only rules. A `not` or an `if` whose
    /// schema is not fully checked (a keyword left out, a node of any value) is not checked
    /// at all, with a warning: checking what remains would refuse values the schema allows.
    fn rules(&mut self, obj: &Map<String, Value>, loc: &Location, depth: usize) -> Vec<Rule> {
        let mut rules = Vec::new();
        self.in_rule += 1;
        if let Some(not) = obj.get("not") {
            let loose = self.loose;
            let schema = self.node(not, &loc.key("not"), depth + 1);
            if self.loose == loose {
                rules.push(Rule::Not(Box::new(schema)));
            } else {
                self.rule_unchecked(&loc.key("not"), "`not`");
            }
        }
        if let Some(test) = obj.get("if") {
            let loose = self.loose;
            let test = Box::new(self.node(test, &loc.key("if"), depth + 1));
            let test_loose = self.loose != loose;
            let then = obj
                .get("then")
                .map(|t| Box::new(self.node(t, &loc.key("then"), depth + 1)));
            let otherwise = obj
                .get("else")
                .map(|e| Box::new(self.node(e, &loc.key("else"), depth + 1)));
            if test_loose && (then.is_some() || otherwise.is_some()) {
                self.rule_unchecked(&loc.key("if"), "`if`/`then`/`else`");
            } else if then.is_some() || otherwise.is_some() {
                rules.push(Rule::Condition {
                    test,
                    then,
                    otherwise,
                });
            }
        }
        self.in_rule -= 1;
        rules
    }

    /// A rule left out because its schema is not fully checked.
    fn rule_unchecked(&mut self, loc: &Location, what: &str) {
        self.loose += 1;
        self.notes.push(format!(
            "Not checked client-side: {what} (at #{}), whose schema the generator cannot check in full.",
            loc.pointer
        ));
        self.diags.warn(
            loc,
            format!("{what} is not checked client-side: its schema cannot be checked in full"),
        );
    }

    /// Object keywords (`properties`, ...) or `items` without a `type` apply to objects (or
    /// arrays) only: any other value is valid too. Below the input's root, such a node is a
    /// union of the typed object and each other JSON type (graceful mode; strict mode types
    /// the object alone, as before). Each alternative reads only its own JSON type, so none
    /// captures a value meant for another alternative of an enclosing union.
    fn implied(&mut self, obj: &Map<String, Value>, schema: &mut Schema) {
        let loc = schema.loc.clone();
        let root = loc.pointer.is_empty() && self.role == Role::Input;
        let constant = obj.contains_key("const") || obj.contains_key("enum");
        if self.strict
            || root
            || constant
            || obj.contains_key("type")
            || self.merged.as_ref() == Some(&loc)
        {
            return;
        }
        let object = matches!(schema.kind, Kind::Object { .. } | Kind::Map { .. });
        if !object && !matches!(schema.kind, Kind::Array { .. }) {
            return;
        }
        // The typed alternative at the keyword that implies it, so that it is named apart
        // from the union.
        let at = [
            "properties",
            "additionalProperties",
            "patternProperties",
            "items",
            "required",
        ]
        .into_iter()
        .find(|k| obj.contains_key(*k))
        .map_or_else(|| loc.clone(), |k| loc.key(k));
        let typed = std::mem::replace(&mut schema.kind, Kind::Any);
        let mut alternatives = vec![
            Schema::new(at, typed),
            Schema::new(loc.clone(), Kind::Bool),
            Schema::new(loc.clone(), Kind::Number(Bounds::default())),
            Schema::new(
                loc.clone(),
                Kind::String {
                    min_len: None,
                    max_len: None,
                    pattern: None,
                    format: None,
                },
            ),
        ];
        alternatives.push(Schema::new(
            loc.clone(),
            if object {
                Kind::Array {
                    items: None,
                    min_items: None,
                    max_items: None,
                    unique: false,
                    format: None,
                }
            } else {
                Kind::Object {
                    props: Vec::new(),
                    extra: Some(Box::new(Schema::new(loc.clone(), Kind::Any))),
                    key_pattern: None,
                }
            },
        ));
        schema.kind = Kind::Union(alternatives);
        schema.nullable = true;
    }

    /// Whether no value can match two of `variants` (so `oneOf` means `anyOf`): their JSON
    /// types differ, and objects are told apart by a required property of distinct constant
    /// values (a tag).
    fn disjoint(&mut self, variants: &[Schema]) -> bool {
        // Per alternative: its JSON types, and its tag (a required property and its value).
        type Tag = Option<(String, String)>;
        let mut seen: Vec<(Vec<&'static str>, Tag)> = Vec::new();
        for v in variants {
            let Some(kind) = self.target_kind(&v.kind) else {
                return false;
            };
            let types: Vec<&'static str> = match &kind {
                Kind::Bool | Kind::BoolConst(_) => vec!["boolean"],
                Kind::Integer(_) | Kind::IntEnum(_) | Kind::Number(_) => vec!["number"],
                Kind::String { .. } | Kind::StrEnum(_) => vec!["string"],
                Kind::Array { .. } => vec!["array"],
                Kind::Object { .. } | Kind::Map { .. } => vec!["object"],
                Kind::Any | Kind::Typeless(_) | Kind::Union(_) | Kind::Ref(_) => return false,
            };
            let tags: Vec<(String, String)> = match &kind {
                Kind::Object { props, .. } => props
                    .iter()
                    .filter(|p| p.required)
                    .filter_map(|p| match &p.schema.kind {
                        Kind::StrEnum(v) if v.len() == 1 => Some((p.name.clone(), v[0].clone())),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for (other, other_tag) in &seen {
                if !types.iter().any(|t| other.contains(t)) {
                    continue;
                }
                let told_apart = other_tag
                    .as_ref()
                    .is_some_and(|(k, val)| tags.iter().any(|(k2, v2)| k2 == k && v2 != val));
                if !told_apart {
                    return false;
                }
            }
            seen.push((types, tags.first().cloned()));
        }
        true
    }

    /// `kind`, or the kind of the def its refs lead to; `None` for a def being normalized (a
    /// cycle) or a chain of 64 refs.
    fn target_kind(&mut self, kind: &Kind) -> Option<Kind> {
        let mut kind = kind.clone();
        for _ in 0..64 {
            match kind {
                Kind::Ref(i) => kind = self.resolve(i)?.kind,
                other => return Some(other),
            }
        }
        None
    }

    /// Alternatives of an `anyOf`/`oneOf` that serde could not tell apart (two of one
    /// non-object shape, two objects requiring the same properties) make the node any value
    /// (graceful mode; strict mode refuses them when typing the union).
    fn distinguishable(&mut self, variants: &[Schema], loc: &Location) {
        let mut seen: Vec<String> = Vec::new();
        for v in variants {
            let Some(kind) = self.target_kind(&v.kind) else {
                return;
            };
            let key = match &kind {
                Kind::Object { props, .. } => {
                    let req: Vec<&str> = props
                        .iter()
                        .filter(|p| p.required)
                        .map(|p| p.name.as_str())
                        .collect();
                    format!("object {req:?}")
                }
                Kind::String { format, .. } => {
                    format!(
                        "string {}",
                        crate::catalog::is_uri_format(format.as_deref())
                    )
                }
                Kind::Any | Kind::Typeless(_) => "any".to_owned(),
                Kind::Bool | Kind::BoolConst(_) => "bool".to_owned(),
                other => describe(other).to_owned(),
            };
            if seen.contains(&key) {
                self.unsupported(
                    loc,
                    "alternatives that cannot be told apart on the wire (two of one shape) are not supported",
                );
                return;
            }
            seen.push(key);
        }
    }

    /// The keywords of `obj` that graceful mode checks as rules, on the value's JSON form.
    fn as_rules(&self, obj: &Map<String, Value>) -> Vec<&'static str> {
        if self.strict {
            return Vec::new();
        }
        let mut out = Vec::new();
        // `minContains`/`maxContains` count matches, which a rule cannot.
        if obj.contains_key("contains")
            && !obj.contains_key("minContains")
            && !obj.contains_key("maxContains")
        {
            out.push("contains");
        }
        for kw in ["dependentRequired", "dependentSchemas", "dependencies"] {
            if obj.get(kw).is_some_and(Value::is_object) {
                out.push(kw);
            }
        }
        out
    }

    /// `contains: S` as `not` (an array whose items all fail S); `dependentRequired`,
    /// `dependentSchemas` and draft 7's `dependencies` as `if` (the key is present) / `then`.
    /// Each is exact or looser than the keyword, never stricter.
    fn keyword_rules(
        &mut self,
        obj: &Map<String, Value>,
        handled: &[&str],
        loc: &Location,
        depth: usize,
    ) -> Vec<Rule> {
        let mut rules = Vec::new();
        self.in_rule += 1;
        if handled.contains(&"contains") {
            if let Some(sub) = obj.get("contains") {
                let cloc = loc.key("contains");
                let wanted = self.node(sub, &cloc, depth + 1);
                let mut fails = Schema::new(cloc.clone(), Kind::Any);
                fails.rules.push(Rule::Not(Box::new(wanted)));
                let none = Kind::Array {
                    items: Some(Box::new(fails)),
                    min_items: None,
                    max_items: None,
                    unique: false,
                    format: None,
                };
                rules.push(Rule::Not(Box::new(Schema::new(cloc, none))));
            }
        }
        for kw in ["dependentRequired", "dependentSchemas", "dependencies"] {
            if !handled.contains(&kw) {
                continue;
            }
            let Some(map) = obj.get(kw).and_then(Value::as_object) else {
                continue;
            };
            for (key, then) in map {
                let kloc = loc.key(kw).key(key);
                let present = serde_json::json!({ "required": [key] });
                let test = self.node(&present, &kloc, depth + 1);
                let then = match then {
                    Value::Array(names) => {
                        self.node(&serde_json::json!({ "required": names }), &kloc, depth + 1)
                    }
                    schema => self.node(schema, &kloc, depth + 1),
                };
                rules.push(Rule::Condition {
                    test: Box::new(test),
                    then: Some(Box::new(then)),
                    otherwise: None,
                });
            }
        }
        self.in_rule -= 1;
        rules
    }

    /// A local `$ref`: its target becomes a def, normalized once however many refs point
    /// to it (so work stays linear in the file's size whatever its refs).
    fn reference(&mut self, r: &Value, loc: &Location) -> Kind {
        let Some(r) = r.as_str() else {
            self.error(loc, "`$ref` must be a string");
            return Kind::Any;
        };
        let Some(fragment) = r.strip_prefix('#') else {
            self.unsupported(
                loc,
                format!("external $ref {r:?} is not supported; only local refs (#/...) are"),
            );
            return Kind::Any;
        };
        let pointer = percent_decode(fragment);
        if !pointer.is_empty() && !pointer.starts_with('/') {
            self.unsupported(
                loc,
                format!("$ref {r:?} is not a JSON pointer (anchors are not supported)"),
            );
            return Kind::Any;
        }
        if self.root.pointer(&pointer).is_none() {
            self.error(loc, format!("$ref target {r} not found"));
            return Kind::Any;
        }
        if let Some(&index) = self.def_index.get(&pointer) {
            return Kind::Ref(index);
        }
        let index = self.defs.len();
        self.defs.push(Def {
            role: self.role,
            key: def_key(&pointer),
            pointer: pointer.clone(),
            schema: Schema::new(loc.clone(), Kind::Any),
        });
        self.def_index.insert(pointer, index);
        self.state.insert(index, DefState::Pending);
        Kind::Ref(index)
    }

    /// `allOf`: the members merged into one schema. A lone shaped member stays as it is (a
    /// ref keeps its named type); objects merge their properties, `required` and limits;
    /// constraints without a type join the typed member. A real conflict names both members.
    fn merge_all(&mut self, members: Vec<Schema>, loc: &Location) -> Schema {
        let mut shaped: Vec<Schema> = members
            .into_iter()
            .filter(|m| !(matches!(m.kind, Kind::Any) && m.rules.is_empty() && !m.nullable))
            .collect();
        if shaped.len() <= 1 {
            return shaped
                .pop()
                .unwrap_or_else(|| Schema::new(loc.clone(), Kind::Any));
        }
        let mut acc: Option<Schema> = None;
        for member in shaped {
            let member = match self.deref(member) {
                Ok(m) => m,
                Err(msg) => {
                    self.unsupported(loc, msg);
                    return Schema::new(loc.clone(), Kind::Any);
                }
            };
            acc = Some(match acc {
                None => member,
                Some(prev) => {
                    let (a, b) = (prev.loc.pointer.clone(), member.loc.pointer.clone());
                    match merge(prev, member) {
                        Ok(m) => m,
                        Err(why) => {
                            self.unsupported(
                                loc,
                                format!("`allOf` members {a} and {b} cannot be merged: {why}"),
                            );
                            return Schema::new(loc.clone(), Kind::Any);
                        }
                    }
                }
            });
        }
        acc.unwrap_or_else(|| Schema::new(loc.clone(), Kind::Any))
    }

    /// A ref replaced by its target's schema (for merging), keeping the ref's place.
    fn deref(&mut self, mut s: Schema) -> Result<Schema, String> {
        let mut hops = 0;
        while let Kind::Ref(i) = s.kind {
            hops += 1;
            let Some(target) = self.resolve(i).filter(|_| hops < 64) else {
                return Err(format!(
                    "`allOf` through {} refers to itself",
                    self.defs[i].pointer
                ));
            };
            s.kind = target.kind;
            s.nullable |= target.nullable;
            s.rules.extend(target.rules);
        }
        Ok(s)
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
            return self.constant(c, &loc.key("const"), nullable);
        }
        if let Some(e) = obj.get("enum") {
            return self.enumeration(e, &types, &loc.key("enum"), nullable);
        }
        let ty = match types.as_slice() {
            [] => {
                if ["properties", "additionalProperties", "patternProperties"]
                    .iter()
                    .any(|k| obj.contains_key(*k))
                    || (self.in_rule > 0 && obj.contains_key("required"))
                {
                    "object".to_owned()
                } else if obj.contains_key("items") {
                    "array".to_owned()
                } else {
                    return self.typeless(obj, loc);
                }
            }
            [one] => one.clone(),
            many => {
                // `type: [string, object]`: one alternative per type, each with only its
                // own keywords, so that no subschema is normalized twice.
                let mut variants = Vec::new();
                for (i, t) in many.iter().enumerate() {
                    let mut sub = obj.clone();
                    sub.insert("type".to_owned(), Value::String(t.clone()));
                    for (owner, keys) in TYPE_KEYWORDS {
                        let own = *owner == t || (*owner == "number" && t == "integer");
                        if !own {
                            for k in *keys {
                                sub.remove(*k);
                            }
                        }
                    }
                    for k in [
                        "default",
                        "description",
                        "title",
                        "not",
                        "if",
                        "then",
                        "else",
                    ] {
                        sub.remove(k);
                    }
                    // Each alternative at its own place (its entry of `type`), so that each
                    // gets its own type name.
                    let at = if obj.get("type").is_some_and(Value::is_array) {
                        loc.key("type").index(i)
                    } else {
                        loc.clone()
                    };
                    variants.push(self.node(&Value::Object(sub), &at, depth + 1));
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
                let pattern = self.pattern(obj, "pattern", loc);
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
                    // `items` beside `prefixItems` applies past the prefix only: unchecked.
                    Some(_) if obj.contains_key("prefixItems") => {
                        self.unchecked(
                            &loc.key("items"),
                            "`items` beside `prefixItems` is not supported",
                            false,
                        );
                        None
                    }
                    // Tuple `items`: an array of any values (its length limits kept).
                    Some(Value::Array(_)) => {
                        self.unchecked(
                            &loc.key("items"),
                            "tuple `items` (an array of schemas) is not supported",
                            true,
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

    /// A schema without `type`: its constraints, checked on values of their own JSON type.
    fn typeless(&mut self, obj: &Map<String, Value>, loc: &Location) -> Kind {
        let has = |keys: &[&str]| keys.iter().any(|k| obj.contains_key(*k));
        if !has(&[
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "multipleOf",
            "minLength",
            "maxLength",
            "pattern",
            "minItems",
            "maxItems",
            "uniqueItems",
            "minProperties",
            "maxProperties",
        ]) {
            return Kind::Any;
        }
        let num = self.bounds(obj, loc, false);
        let min_len = self.count(obj, "minLength", loc);
        let max_len = self.count(obj, "maxLength", loc);
        self.check_order(min_len, max_len, loc, "minLength", "maxLength");
        let pattern = self.pattern(obj, "pattern", loc);
        let min_items = self.count(obj, "minItems", loc);
        let max_items = self.count(obj, "maxItems", loc);
        self.check_order(min_items, max_items, loc, "minItems", "maxItems");
        let min_props = self.count(obj, "minProperties", loc);
        let max_props = self.count(obj, "maxProperties", loc);
        self.check_order(min_props, max_props, loc, "minProperties", "maxProperties");
        Kind::Typeless(Box::new(Typeless {
            num,
            min_len,
            max_len,
            pattern,
            min_items,
            max_items,
            unique: obj
                .get("uniqueItems")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            min_props,
            max_props,
        }))
    }

    /// A string keyword holding a regular expression, known to compile.
    fn pattern(&mut self, obj: &Map<String, Value>, key: &str, loc: &Location) -> Option<String> {
        let p = self.string_kw(obj, key, loc)?;
        if let Err(e) = regex::Regex::new(&p) {
            let first = e.to_string().lines().last().unwrap_or("").trim().to_owned();
            self.unchecked(
                &loc.key(key),
                format!("pattern {p:?} is not a valid regular expression: {first}"),
                true,
            );
            return None;
        }
        Some(p)
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
                            // A partial schema of a rule may require a property defined
                            // beside it.
                            None if self.in_rule > 0 => props.push(Prop {
                                name: name.to_owned(),
                                schema: Schema::new(rloc, Kind::Any),
                                required: true,
                            }),
                            // The key must be there, with any value.
                            None if !self.strict => props.push(Prop {
                                name: name.to_owned(),
                                schema: Schema::new(rloc, Kind::Any),
                                required: true,
                            }),
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
        // `patternProperties`: one pattern, whose schema types the other keys' values. Any
        // other form is left unchecked in graceful mode: other keys then hold any value.
        let mut pattern_schema = None;
        let mut key_pattern = None;
        let mut pp_unchecked = false;
        if let Some(pp) = obj.get("patternProperties") {
            let pploc = loc.key("patternProperties");
            match pp.as_object().map(|m| m.iter().collect::<Vec<_>>()) {
                Some(entries) if entries.len() == 1 => {
                    let (pattern, sub) = entries[0];
                    match regex::Regex::new(pattern) {
                        Ok(_) => {
                            key_pattern = Some(pattern.clone());
                            pattern_schema =
                                Some(Box::new(self.node(sub, &pploc.key(pattern), depth + 1)));
                        }
                        Err(_) => {
                            pp_unchecked = self.unchecked(
                                &pploc.key(pattern),
                                format!("pattern {pattern:?} is not a valid regular expression for the `regex` crate"),
                                true,
                            );
                        }
                    }
                }
                Some(entries) if entries.is_empty() => {}
                Some(_) => {
                    pp_unchecked = self.unchecked(
                        &pploc,
                        "`patternProperties` with more than one pattern is not supported",
                        true,
                    );
                }
                None => self.error(&pploc, "`patternProperties` must be an object"),
            }
        }
        let closed =
            matches!(obj.get("additionalProperties"), Some(Value::Bool(false))) && !pp_unchecked;
        let extra = match (obj.get("additionalProperties"), pattern_schema) {
            // Keys matching an unchecked `patternProperties` may hold anything.
            _ if pp_unchecked => Some(Box::new(Schema::new(
                loc.key("patternProperties"),
                Kind::Any,
            ))),
            // Keys outside the pattern are refused: the pattern's schema types every value.
            (Some(Value::Bool(false)), Some(values)) => Some(values),
            (Some(Value::Bool(false)), None) => None,
            // Other keys may hold anything: responses keep whatever comes; requests are
            // refused in strict mode (a typed map would be stricter than the schema), and
            // send any value in graceful mode, the pattern's schema unchecked.
            (None | Some(Value::Bool(true)), Some(values)) => {
                key_pattern = None;
                if self.role == Role::Input {
                    self.unchecked(
                        &loc.key("patternProperties"),
                        "`patternProperties` is supported with `additionalProperties: false` (a map whose keys match the pattern); here other keys may hold anything, which a typed map cannot check",
                        true,
                    );
                }
                Some(Box::new(Schema::new(values.loc.clone(), Kind::Any)))
            }
            (None | Some(Value::Bool(true)), None) => Some(Box::new(Schema::new(
                loc.key("additionalProperties"),
                Kind::Any,
            ))),
            (Some(sub), pattern) => {
                if pattern.is_some()
                    && self.unchecked(
                        &loc.key("patternProperties"),
                        "`patternProperties` beside an `additionalProperties` schema is not supported",
                        true,
                    )
                {
                    // Keys matching the pattern escape `additionalProperties`: any value.
                    self.node(sub, &loc.key("additionalProperties"), depth + 1);
                    Some(Box::new(Schema::new(
                        loc.key("patternProperties"),
                        Kind::Any,
                    )))
                } else {
                    Some(Box::new(self.node(
                        sub,
                        &loc.key("additionalProperties"),
                        depth + 1,
                    )))
                }
            }
        };
        let key_pattern = if closed { key_pattern } else { None };
        let explicit_map = matches!(obj.get("additionalProperties"), Some(Value::Object(_)))
            || obj.contains_key("patternProperties");
        if props.is_empty() && explicit_map {
            if let Some(values) = extra {
                let min = self.count(obj, "minProperties", loc);
                let max = self.count(obj, "maxProperties", loc);
                return Kind::Map {
                    values,
                    min,
                    max,
                    key_pattern,
                };
            }
        }
        Kind::Object {
            props,
            extra,
            key_pattern,
        }
    }

    fn constant(&mut self, c: &Value, loc: &Location, nullable: &mut bool) -> Kind {
        match c {
            Value::Null => {
                self.unsupported(loc, "a `const` null is not supported");
                *nullable = true;
                Kind::Any
            }
            Value::String(s) => Kind::StrEnum(vec![s.clone()]),
            Value::Bool(b) => Kind::BoolConst(*b),
            // An object constant: a closed object of its keys, each required and constant.
            Value::Object(_) if !self.strict => match literal(c, loc) {
                Some(s) => s.kind,
                None => {
                    self.unsupported(loc, "a `const` object holding an array is not supported");
                    Kind::Any
                }
            },
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Kind::IntEnum(vec![i]),
                // A number constant: the number between two equal bounds.
                (None, Some(f)) if !self.strict && f.fract() != 0.0 => Kind::Number(Bounds {
                    min: Some(f),
                    max: Some(f),
                    ..Bounds::default()
                }),
                _ => {
                    self.unsupported(loc, "a `const` number must be an integer");
                    Kind::Any
                }
            },
            other => {
                self.unsupported(
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
        let mut bools = Vec::new();
        let mut others = false;
        for (i, v) in values.iter().enumerate() {
            match v {
                Value::Null => *nullable = true,
                Value::String(s) => strings.push((i, s.clone())),
                Value::Number(n) if n.as_i64().is_some() => {
                    ints.push((i, n.as_i64().unwrap_or_default()))
                }
                Value::Bool(b) if !self.strict => bools.push(*b),
                other => {
                    others = true;
                    self.unsupported(
                        &loc.index(i),
                        format!(
                            "enum value {other} is not supported; enums hold strings or integers"
                        ),
                    );
                }
            }
        }
        // With a `type`, only the values of that type are valid: the others are left out
        // (strict mode refuses them, as before).
        if let Some(t) = types.first().filter(|_| self.strict || types.len() == 1) {
            let want_str = t == "string";
            let want_int = t == "integer" || t == "number";
            let want_bool = t == "boolean";
            let wrong = (!want_str && !strings.is_empty())
                || (!want_int && !ints.is_empty())
                || (!want_bool && !bools.is_empty())
                || (!want_str && !want_int && !want_bool);
            if wrong {
                if self.strict {
                    self.error(loc, format!("enum values do not match `type: {t}`"));
                    return Kind::Any;
                }
                self.diags.warn(
                    loc,
                    format!("enum values that are not of `type: {t}` are left out (no value of another type is valid)"),
                );
                if !want_str {
                    strings.clear();
                }
                if !want_int {
                    ints.clear();
                }
                if !want_bool {
                    bools.clear();
                }
                if strings.is_empty() && ints.is_empty() && bools.is_empty() && !others {
                    self.unsupported(loc, format!("no enum value is of `type: {t}`"));
                    return Kind::Any;
                }
            }
        }
        let shapes = [!strings.is_empty(), !ints.is_empty(), !bools.is_empty()];
        if shapes.iter().filter(|x| **x).count() > 1 {
            let what = if bools.is_empty() {
                "an enum mixing strings and numbers is not supported"
            } else {
                "an enum mixing strings, numbers or booleans is not supported"
            };
            self.unsupported(loc, what);
            return Kind::Any;
        }
        if others {
            return Kind::Any;
        }
        if !bools.is_empty() {
            let has = |b: bool| bools.contains(&b);
            return if has(true) && has(false) {
                Kind::Bool
            } else {
                Kind::BoolConst(has(true))
            };
        }
        if strings.is_empty() && ints.is_empty() {
            if *nullable {
                self.unsupported(loc, "an `enum` of only null is not supported");
            } else {
                self.unsupported(loc, "`enum` has no values");
            }
            return Kind::Any;
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut dup = |this: &mut Self, i: usize, key: String, shown: String| {
            if seen.insert(key) {
                return true;
            }
            if this.strict {
                this.error(&loc.index(i), format!("duplicate enum value {shown}"));
            } else {
                this.diags.warn(
                    &loc.index(i),
                    format!("duplicate enum value {shown} is listed once"),
                );
            }
            false
        };
        strings.retain(|(i, s)| dup(self, *i, format!("s{s}"), format!("{s:?}")));
        ints.retain(|(i, n)| dup(self, *i, format!("i{n}"), n.to_string()));
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
                    self.unsupported(
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
                self.unsupported(loc, format!("minimum {lo} is greater than maximum {hi}"));
            }
        }
        if let Some(m) = b.multiple_of {
            if m <= 0.0 {
                self.error(
                    &loc.key("multipleOf"),
                    format!(
                        "`multipleOf` {m} must be a positive{}",
                        if integer { " integer" } else { " number" }
                    ),
                );
            } else if integer && m.fract() != 0.0 {
                self.unsupported(
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
                        self.unsupported(
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
        // `2.0` is an integer too (the suites write counts so).
        let whole = v
            .as_f64()
            .filter(|f| !self.strict && *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19)
            .map(|f| f as u64);
        match v.as_u64().or(whole) {
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
                self.unsupported(loc, format!("`{lo_kw}` {a} is greater than `{hi_kw}` {b}"));
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

    /// A default must be a value of the node's own type (and one of its enum values). One
    /// that is not is an error in strict mode, and dropped with a warning in graceful mode
    /// (its docs would state a value the server cannot use); returns whether it fits.
    fn check_default(&mut self, schema: &Schema, default: &Value, loc: &Location) -> bool {
        let problem = default_problem(schema, default);
        match problem {
            None => true,
            Some(why) if self.strict => {
                self.error(loc, why);
                false
            }
            Some(why) => {
                self.diags
                    .warn(loc, format!("{why}: the default is left out"));
                false
            }
        }
    }
}

/// Why `default` is not a value of `schema`'s own type (or enum), if it is not.
fn default_problem(schema: &Schema, default: &Value) -> Option<String> {
    if default.is_null() {
        return (!schema.nullable)
            .then(|| "default null is not allowed: the schema is not nullable".to_owned());
    }
    let want = match &schema.kind {
        Kind::Bool if !default.is_boolean() => "a boolean",
        Kind::Integer(_) if !(default.is_i64() || default.is_u64()) => "an integer",
        Kind::Number(_) if !default.is_number() => "a number",
        Kind::String { .. } if !default.is_string() => "a string",
        Kind::Array { .. } if !default.is_array() => "an array",
        Kind::Object { .. } | Kind::Map { .. } if !default.is_object() => "an object",
        Kind::StrEnum(values) => {
            if default
                .as_str()
                .is_some_and(|d| values.iter().any(|v| v == d))
            {
                return None;
            }
            return Some(format!(
                "default {default} is not one of the enum values {}",
                list(values.iter().map(|v| format!("{v:?}")))
            ));
        }
        Kind::IntEnum(values) => {
            if default.as_i64().is_some_and(|d| values.contains(&d)) {
                return None;
            }
            return Some(format!(
                "default {default} is not one of the enum values {}",
                list(values.iter().map(|v| v.to_string()))
            ));
        }
        _ => return None,
    };
    Some(format!("default {default} is not {want}"))
}

fn list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}

/// `%xx` escapes of a URI fragment decoded (`#/definitions/a%20b`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The key naming a def: the key under `$defs`, `definitions` or `components/schemas`,
/// else the pointer's last segment that is not a keyword; empty for the root.
fn def_key(pointer: &str) -> String {
    let unescape = |s: &str| s.replace("~1", "/").replace("~0", "~");
    for c in DEF_CONTAINERS {
        if let Some(key) = pointer.strip_prefix(c) {
            if !key.contains('/') {
                return unescape(key);
            }
        }
    }
    const KEYWORDS: &[&str] = &[
        "properties",
        "items",
        "additionalProperties",
        "patternProperties",
        "anyOf",
        "oneOf",
        "allOf",
        "not",
        "if",
        "then",
        "else",
        "$defs",
        "definitions",
        "components",
        "schemas",
    ];
    pointer
        .split('/')
        .rev()
        .find(|seg| !seg.is_empty() && !KEYWORDS.contains(seg) && seg.parse::<usize>().is_err())
        .map(unescape)
        .unwrap_or_default()
}

/// `allOf`: two members merged into one, or why they cannot be.
fn merge(a: Schema, b: Schema) -> Result<Schema, String> {
    let mut out = Schema::new(a.loc.clone(), Kind::Any);
    out.title = a.title.or(b.title);
    out.description = a.description.or(b.description);
    out.default = a.default.or(b.default);
    out.nullable = a.nullable && b.nullable;
    out.rules = a.rules;
    out.rules.extend(b.rules);
    out.kind = merge_kinds(a.kind, b.kind)?;
    Ok(out)
}

fn merge_kinds(a: Kind, b: Kind) -> Result<Kind, String> {
    use Kind as K;
    Ok(match (a, b) {
        (K::Any, k) | (k, K::Any) => k,
        (K::Typeless(t), K::Typeless(u)) => K::Typeless(Box::new(Typeless {
            num: merge_bounds(&t.num, &u.num)?,
            min_len: max_opt(t.min_len, u.min_len),
            max_len: min_opt(t.max_len, u.max_len),
            pattern: merge_pattern(t.pattern, u.pattern)?,
            min_items: max_opt(t.min_items, u.min_items),
            max_items: min_opt(t.max_items, u.max_items),
            unique: t.unique || u.unique,
            min_props: max_opt(t.min_props, u.min_props),
            max_props: min_opt(t.max_props, u.max_props),
        })),
        (K::Typeless(t), k) | (k, K::Typeless(t)) => apply_typeless(k, *t)?,
        (K::Integer(x), K::Integer(y))
        | (K::Integer(x), K::Number(y))
        | (K::Number(x), K::Integer(y)) => K::Integer(merge_bounds(&x, &y)?),
        (K::Number(x), K::Number(y)) => K::Number(merge_bounds(&x, &y)?),
        (K::Bool, K::Bool) => K::Bool,
        (K::BoolConst(c), K::Bool) | (K::Bool, K::BoolConst(c)) => K::BoolConst(c),
        (K::BoolConst(c), K::BoolConst(d)) if c == d => K::BoolConst(c),
        (
            K::String {
                min_len,
                max_len,
                pattern,
                format,
            },
            K::String {
                min_len: l2,
                max_len: m2,
                pattern: p2,
                format: f2,
            },
        ) => K::String {
            min_len: max_opt(min_len, l2),
            max_len: min_opt(max_len, m2),
            pattern: merge_pattern(pattern, p2)?,
            format: format.or(f2),
        },
        (K::StrEnum(v), K::String { .. }) | (K::String { .. }, K::StrEnum(v)) => K::StrEnum(v),
        (K::IntEnum(v), K::Integer(_) | K::Number(_))
        | (K::Integer(_) | K::Number(_), K::IntEnum(v)) => K::IntEnum(v),
        (K::StrEnum(v), K::StrEnum(w)) => {
            let both: Vec<String> = v.into_iter().filter(|x| w.contains(x)).collect();
            if both.is_empty() {
                return Err("their enums share no value".to_owned());
            }
            K::StrEnum(both)
        }
        (K::IntEnum(v), K::IntEnum(w)) => {
            let both: Vec<i64> = v.into_iter().filter(|x| w.contains(x)).collect();
            if both.is_empty() {
                return Err("their enums share no value".to_owned());
            }
            K::IntEnum(both)
        }
        (
            K::Array {
                items,
                min_items,
                max_items,
                unique,
                format,
            },
            K::Array {
                items: i2,
                min_items: n2,
                max_items: x2,
                unique: u2,
                format: f2,
            },
        ) => K::Array {
            items: match (items, i2) {
                (Some(a), Some(b)) => Some(Box::new(merge(*a, *b)?)),
                (a, b) => a.or(b),
            },
            min_items: max_opt(min_items, n2),
            max_items: min_opt(max_items, x2),
            unique: unique || u2,
            format: format.or(f2),
        },
        (
            K::Object {
                mut props,
                extra,
                key_pattern,
            },
            K::Object {
                props: p2,
                extra: e2,
                key_pattern: k2,
            },
        ) => {
            for p in p2 {
                match props.iter_mut().find(|q| q.name == p.name) {
                    Some(q) => {
                        let name = p.name.clone();
                        let a = std::mem::replace(
                            &mut q.schema,
                            Schema::new(p.schema.loc.clone(), K::Any),
                        );
                        q.schema = merge(a, p.schema)
                            .map_err(|why| format!("property {name:?}: {why}"))?;
                        q.required |= p.required;
                    }
                    None => props.push(p),
                }
            }
            let extra = match (extra, e2) {
                (Some(a), Some(b)) => Some(Box::new(merge(*a, *b)?)),
                // Closed in one member: closed.
                _ => None,
            };
            K::Object {
                props,
                extra,
                key_pattern: merge_pattern(key_pattern, k2)?,
            }
        }
        (
            K::Map {
                values,
                min,
                max,
                key_pattern,
            },
            K::Map {
                values: v2,
                min: n2,
                max: x2,
                key_pattern: k2,
            },
        ) => K::Map {
            values: Box::new(merge(*values, *v2)?),
            min: max_opt(min, n2),
            max: min_opt(max, x2),
            key_pattern: merge_pattern(key_pattern, k2)?,
        },
        (a, b) => {
            return Err(format!("{} and {}", describe(&a), describe(&b)));
        }
    })
}

/// Constraints without a type joined to a typed schema: those of its JSON type apply.
fn apply_typeless(k: Kind, t: Typeless) -> Result<Kind, String> {
    Ok(match k {
        Kind::Integer(b) => Kind::Integer(merge_bounds(&b, &t.num)?),
        Kind::Number(b) => Kind::Number(merge_bounds(&b, &t.num)?),
        Kind::String {
            min_len,
            max_len,
            pattern,
            format,
        } => Kind::String {
            min_len: max_opt(min_len, t.min_len),
            max_len: min_opt(max_len, t.max_len),
            pattern: merge_pattern(pattern, t.pattern)?,
            format,
        },
        Kind::Array {
            items,
            min_items,
            max_items,
            unique,
            format,
        } => Kind::Array {
            items,
            min_items: max_opt(min_items, t.min_items),
            max_items: min_opt(max_items, t.max_items),
            unique: unique || t.unique,
            format,
        },
        Kind::Map {
            values,
            min,
            max,
            key_pattern,
        } => Kind::Map {
            values,
            min: max_opt(min, t.min_props),
            max: min_opt(max, t.max_props),
            key_pattern,
        },
        Kind::Object { .. } if t.min_props.is_some() || t.max_props.is_some() => {
            return Err(
                "`minProperties`/`maxProperties` on an object with properties is not supported"
                    .to_owned(),
            );
        }
        other => other,
    })
}

fn describe(k: &Kind) -> &'static str {
    match k {
        Kind::Any | Kind::Typeless(_) => "any value",
        Kind::Bool | Kind::BoolConst(_) => "a boolean",
        Kind::Integer(_) => "an integer",
        Kind::Number(_) => "a number",
        Kind::String { .. } => "a string",
        Kind::StrEnum(_) => "a string enum",
        Kind::IntEnum(_) => "an integer enum",
        Kind::Array { .. } => "an array",
        Kind::Object { .. } => "an object",
        Kind::Map { .. } => "a map",
        Kind::Ref(_) => "a reference",
        Kind::Union(_) => "a union (`anyOf`/`oneOf`)",
    }
}

fn max_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn merge_pattern(a: Option<String>, b: Option<String>) -> Result<Option<String>, String> {
    match (a, b) {
        (Some(a), Some(b)) if a != b => Err(format!("two patterns ({a:?} and {b:?})")),
        (a, b) => Ok(a.or(b)),
    }
}

fn merge_bounds(a: &Bounds, b: &Bounds) -> Result<Bounds, String> {
    let hi = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    };
    let lo = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    let multiple_of = match (a.multiple_of, b.multiple_of) {
        (Some(x), Some(y)) if x != y => {
            let (small, big) = if x < y { (x, y) } else { (y, x) };
            if (big / small).fract() == 0.0 {
                Some(big)
            } else {
                return Err(format!("`multipleOf` {x} and {y}"));
            }
        }
        (x, y) => x.or(y),
    };
    Ok(Bounds {
        min: hi(a.min, b.min),
        max: lo(a.max, b.max),
        exclusive_min: hi(a.exclusive_min, b.exclusive_min),
        exclusive_max: lo(a.exclusive_max, b.exclusive_max),
        multiple_of,
    })
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
    if outer.file_size.is_some() {
        inner.file_size = outer.file_size;
    }
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
