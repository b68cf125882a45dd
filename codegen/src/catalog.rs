//! Stage 3, catalog: the IR. Normalized schemas become plain, printable Rust type
//! descriptions with their final names; all naming goes through [`crate::names`].
//! No tokens and no `serde_json::Value` trees here, only small values (defaults for docs).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::diag::{Diagnostics, Location};
use crate::names;
use crate::normalize::{Bounds, Def, Kind, Model, Role, Schema};

/// Every generated model, sorted by id.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    /// One entry per model.
    pub models: Vec<ModelModule>,
}

/// One model's module.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelModule {
    /// The model id.
    pub id: String,
    /// Module path below `models` (`["happyhorse", "happyhorse_1_0", "image_to_video"]`).
    pub path: Vec<String>,
    /// The endpoint method's name on the client.
    pub method: String,
    /// The first segment of the id, as written: the vendor, and its cargo feature's name.
    pub vendor: String,
    /// Documentation of the model, from the input schema's root.
    pub docs: Vec<String>,
    /// The first line of the input schema's root description.
    pub summary: String,
    /// The types, `Input` first.
    pub types: Vec<TypeDef>,
    /// How `Output` is defined.
    pub output: OutputDef,
    /// `input.json`, compact.
    pub input_text: String,
    /// `output.json`, compact and unwrapped.
    pub output_text: Option<String>,
}

/// How a model's `Output` is defined.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputDef {
    /// No `output.json`: the runtime's documented media shape.
    Media,
    /// A struct named `Output` among the types.
    Struct,
    /// `type Output = ...`.
    Alias(Ty),
}

/// A generated type.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeDef {
    /// The Rust name.
    pub name: String,
    /// Doc lines.
    pub docs: Vec<String>,
    /// The shape.
    pub body: Body,
    /// The schema this type was made from, for messages.
    pub loc: Location,
    /// Whether the type describes request data (input) or response data (output): input
    /// types always serialize, output types always deserialize.
    pub role: Role,
}

/// The shape of a generated type.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A struct.
    Struct {
        /// Fields in schema order.
        fields: Vec<Field>,
        /// A flattened catch-all for unknown keys: its field name and value type.
        extra: Option<(String, Ty)>,
        /// This is the model's `Input`: it gets a constructor and setters.
        is_input: bool,
    },
    /// A string enum: `(variant, wire value)`.
    StrEnum {
        /// Variants in schema order.
        variants: Vec<(String, String)>,
        /// The default variant's index.
        default: Option<usize>,
    },
    /// An integer enum: `(variant, value)`.
    IntEnum {
        /// Variants in schema order.
        variants: Vec<(String, i64)>,
        /// The default variant's index.
        default: Option<usize>,
    },
    /// An untagged union: `(variant, type, checks)`.
    Union {
        /// Variants in the order serde tries them.
        variants: Vec<(String, Ty, Checks)>,
    },
}

/// A struct field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The Rust name (`r#type` form where needed).
    pub ident: String,
    /// The setter's name.
    pub setter: String,
    /// The JSON name.
    pub wire: String,
    /// The type, without the `Option` of an optional field.
    pub ty: Ty,
    /// Listed in `required`.
    pub required: bool,
    /// `null` is allowed.
    pub nullable: bool,
    /// Doc lines.
    pub docs: Vec<String>,
    /// The schema's default.
    pub default: Option<Value>,
    /// Constraints to check.
    pub checks: Checks,
    /// A required single-value enum: filled in by the constructor with this variant.
    pub fixed: Option<String>,
}

impl Field {
    /// The field's declared Rust type.
    pub fn decl_ty(&self) -> Ty {
        if self.required && !self.nullable {
            self.ty.clone()
        } else {
            Ty::Option(Box::new(self.ty.clone()))
        }
    }

    /// Sent only when set.
    pub fn skip_if_none(&self) -> bool {
        !self.required
    }
}

/// A Rust type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    /// `bool`
    Bool,
    /// An integer type (`u8`, `i64`, ...).
    Int(&'static str),
    /// `f64`
    F64,
    /// `String`
    String,
    /// `Url`
    Url,
    /// `serde_json::Value`, where the schema allows any JSON.
    Value,
    /// A generated type of this module; `true` when it implements `Validate` with checks.
    Named(String, bool),
    /// `Vec<T>`
    Vec(Box<Ty>),
    /// `BTreeMap<String, T>`
    Map(Box<Ty>),
    /// `Box<T>`
    Box(Box<Ty>),
    /// `Option<T>`
    Option(Box<Ty>),
}

/// The constraints of one value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checks {
    /// Integer bounds.
    pub int: Option<Bounds>,
    /// Number bounds.
    pub num: Option<Bounds>,
    /// `minLength`, `maxLength`.
    pub len: (Option<u64>, Option<u64>),
    /// `pattern`.
    pub pattern: Option<String>,
    /// `minItems`/`maxItems` or `minProperties`/`maxProperties`.
    pub count: (Option<u64>, Option<u64>),
    /// `uniqueItems`.
    pub unique: bool,
    /// Checks of each item or map value.
    pub each: Option<Box<Checks>>,
    /// The value is a generated type with checks of its own.
    pub nested: bool,
}

impl Checks {
    /// No check at all.
    pub fn is_empty(&self) -> bool {
        self.int.is_none()
            && self.num.is_none()
            && self.len == (None, None)
            && self.pattern.is_none()
            && self.count == (None, None)
            && !self.unique
            && self.each.is_none()
            && !self.nested
    }
}

const RESERVED_TYPES: &[&str] = &["Input", "Output", "Model", "INFO"];
const RESERVED_SETTERS: &[&str] = &["new", "validate", "validate_into", "clone", "into", "fmt"];

/// Builds the catalog of every model.
pub fn build(models: &[Model], diags: &mut Diagnostics) -> Catalog {
    let mut out: Vec<ModelModule> = models.iter().map(|m| build_model(m, diags)).collect();
    // Modules: one path segment per id segment; collisions are told apart level by level.
    let paths = module_paths(&out.iter().map(|m| m.id.clone()).collect::<Vec<_>>());
    let methods = method_names(&out.iter().map(|m| m.id.clone()).collect::<Vec<_>>());
    for ((m, path), method) in out.iter_mut().zip(paths).zip(methods) {
        m.path = path;
        m.method = method;
    }
    Catalog { models: out }
}

fn module_paths(ids: &[String]) -> Vec<Vec<String>> {
    // Group siblings by parent path and dedupe their names.
    let mut paths: Vec<Vec<String>> = vec![Vec::new(); ids.len()];
    let max_depth = ids
        .iter()
        .map(|id| id.split('/').count())
        .max()
        .unwrap_or(0);
    for depth in 0..max_depth {
        let mut groups: BTreeMap<(Vec<String>, String), ()> = BTreeMap::new();
        let mut by_parent: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
        for id in ids {
            let segs: Vec<&str> = id.split('/').collect();
            if depth < segs.len() {
                let parent: Vec<String> = segs[..depth].iter().map(|s| s.to_string()).collect();
                by_parent
                    .entry(parent.clone())
                    .or_default()
                    .insert(segs[depth].to_owned());
                groups.insert((parent, segs[depth].to_owned()), ());
            }
        }
        let mut chosen: BTreeMap<(Vec<String>, String), String> = BTreeMap::new();
        for (parent, segs) in by_parent {
            let candidates: Vec<(String, String)> =
                segs.iter().map(|s| (s.clone(), names::snake(s))).collect();
            let dedup = names::dedupe(&candidates, &["models", "__rt"], names::snake, false);
            for ((wire, _), name) in candidates.into_iter().zip(dedup) {
                chosen.insert((parent.clone(), wire), name);
            }
        }
        for (i, id) in ids.iter().enumerate() {
            let segs: Vec<&str> = id.split('/').collect();
            if depth < segs.len() {
                let parent: Vec<String> = segs[..depth].iter().map(|s| s.to_string()).collect();
                if let Some(name) = chosen.get(&(parent, segs[depth].to_owned())) {
                    paths[i].push(names::ident_text(name));
                }
            }
        }
    }
    paths
}

/// `happyhorse/happyhorse-1.0/image-to-video` → `happyhorse_1_0_image_to_video`: the id's
/// segments joined, without the vendor when the next segment repeats it. Ids whose short
/// names collide keep their vendor.
fn method_names(ids: &[String]) -> Vec<String> {
    let full: Vec<String> = ids
        .iter()
        .map(|id| names::snake(&id.replace('/', " ")))
        .collect();
    let short: Vec<String> = ids
        .iter()
        .zip(&full)
        .map(|(id, full)| {
            let segs: Vec<&str> = id.split('/').collect();
            let vendor = names::snake(segs[0]);
            let rest = names::snake(&segs[1..].join(" "));
            if rest.starts_with(&vendor) {
                rest
            } else {
                full.clone()
            }
        })
        .collect();
    let candidates: Vec<(String, String)> = full.iter().cloned().zip(short).collect();
    names::dedupe(
        &candidates,
        &[
            "new", "builder", "from_env", "submit", "run", "status", "result", "cancel",
        ],
        |full| full.to_owned(),
        false,
    )
    .into_iter()
    .map(|n| names::ident_text(&n))
    .collect()
}

fn first_paragraph(s: &Schema) -> Vec<String> {
    doc_lines(s.title.as_deref(), s.description.as_deref())
}

/// Doc lines from a title and a description: the title first, as documentation only.
fn doc_lines(title: Option<&str>, description: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = title.filter(|t| !t.trim().is_empty()) {
        out.push(format!("**{}**", escape_doc(t.trim())));
    }
    if let Some(d) = description {
        if !out.is_empty() {
            out.push(String::new());
        }
        out.extend(d.trim().lines().map(|l| escape_doc(l.trim_end())));
    }
    out
}

/// Keeps schema text from being read as rustdoc links or HTML.
fn escape_doc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('[', "\\[")
        .replace(']', "\\]")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "'")
}

struct Ctx<'a> {
    model: &'a Model,
    types: Vec<TypeDef>,
    /// Type names already chosen for schema nodes (by location) and defs (by index).
    node_names: BTreeMap<Location, String>,
    def_names: BTreeMap<usize, String>,
    def_done: BTreeSet<usize>,
    recursive: BTreeSet<usize>,
    diags: &'a mut Diagnostics,
}

/// A place in the schema where a generated type is needed, for naming before building.
struct Slot {
    loc: Location,
    short: String,
    full: String,
}

fn build_model(model: &Model, diags: &mut Diagnostics) -> ModelModule {
    let mut ctx = Ctx {
        model,
        types: Vec::new(),
        node_names: BTreeMap::new(),
        def_names: BTreeMap::new(),
        def_done: BTreeSet::new(),
        recursive: recursive_defs(&model.defs),
        diags,
    };
    ctx.assign_names();
    ctx.object_type("Input", &model.input, Role::Input, true);
    let output = match &model.output {
        None => OutputDef::Media,
        Some(s) if matches!(s.kind, Kind::Object { .. }) => {
            ctx.object_type("Output", s, Role::Output, false);
            OutputDef::Struct
        }
        Some(s) => {
            let ty = ctx.ty(s, Role::Output);
            OutputDef::Alias(ty)
        }
    };
    for i in 0..model.defs.len() {
        ctx.def_type(i);
    }
    let mut docs = vec![format!("Model `{}`.", model.id)];
    let root_docs = first_paragraph(&model.input);
    if !root_docs.is_empty() {
        docs.push(String::new());
        docs.extend(root_docs);
    }
    ModelModule {
        id: model.id.clone(),
        path: Vec::new(),
        method: String::new(),
        vendor: model.id.split('/').next().unwrap_or("").to_owned(),
        docs,
        summary: model
            .input
            .description
            .as_deref()
            .and_then(|d| d.lines().next())
            .unwrap_or("")
            .trim()
            .to_owned(),
        types: ctx.types,
        output,
        input_text: model.input_text.clone(),
        output_text: model.output_text.clone(),
    }
}

/// Definitions that can reach themselves: their direct uses are boxed.
fn recursive_defs(defs: &[Def]) -> BTreeSet<usize> {
    fn refs(s: &Schema, out: &mut BTreeSet<usize>) {
        match &s.kind {
            Kind::Ref(i) => {
                out.insert(*i);
            }
            Kind::Array {
                items: Some(items), ..
            } => refs(items, out),
            Kind::Object { props, extra } => {
                for p in props {
                    refs(&p.schema, out);
                }
                if let Some(e) = extra {
                    refs(e, out);
                }
            }
            Kind::Map { values, .. } => refs(values, out),
            Kind::Union(vs) => vs.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let edges: Vec<BTreeSet<usize>> = defs
        .iter()
        .map(|d| {
            let mut out = BTreeSet::new();
            refs(&d.schema, &mut out);
            out
        })
        .collect();
    let mut result = BTreeSet::new();
    for start in 0..defs.len() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<usize> = edges[start].iter().copied().collect();
        while let Some(n) = stack.pop() {
            if n == start {
                result.insert(start);
                break;
            }
            if seen.insert(n) {
                stack.extend(edges[n].iter().copied());
            }
        }
    }
    result
}

/// Does this node become a generated type of its own?
fn needs_type(s: &Schema) -> bool {
    match &s.kind {
        Kind::Object { props, .. } => !props.is_empty(),
        Kind::StrEnum(_) | Kind::IntEnum(_) | Kind::Union(_) => true,
        _ => false,
    }
}

impl Ctx<'_> {
    /// Walks every schema in a fixed order and gives each type-producing node its name,
    /// so that collisions are resolved over the whole module at once.
    fn assign_names(&mut self) {
        let mut slots = Vec::new();
        for (i, def) in self.model.defs.iter().enumerate() {
            let short = names::camel(&def.key);
            let prefix = if def.role == Role::Output {
                "OutputDef"
            } else {
                "Def"
            };
            slots.push(Slot {
                loc: def.schema.loc.clone(),
                short: short.clone(),
                full: format!("{prefix}{short}"),
            });
            self.def_names.insert(i, String::new());
        }
        collect_slots(&self.model.input, "", "Input", &mut slots, true);
        if let Some(out) = &self.model.output {
            collect_slots(out, "", "Output", &mut slots, true);
        }
        // Definitions come first and keep their own names; a later node whose short name is
        // taken gets its full path name (`InputImageSize`).
        let mut taken: BTreeSet<String> = RESERVED_TYPES.iter().map(|r| r.to_string()).collect();
        let mut chosen = Vec::new();
        for slot in &slots {
            let mut name = if taken.contains(&slot.short) {
                slot.full.clone()
            } else {
                slot.short.clone()
            };
            let base = name.clone();
            let mut n = 1;
            while taken.contains(&name) {
                n += 1;
                name = format!("{base}{n}");
            }
            taken.insert(name.clone());
            chosen.push(name);
        }
        let ndefs = self.model.defs.len();
        for (i, (slot, name)) in slots.into_iter().zip(chosen).enumerate() {
            let name = if name == "Self" {
                "SelfValue".to_owned()
            } else {
                name
            };
            if i < ndefs {
                self.def_names.insert(i, name);
            } else {
                self.node_names.insert(slot.loc, name);
            }
        }
    }

    fn name_of(&self, s: &Schema) -> String {
        self.node_names
            .get(&s.loc)
            .cloned()
            .unwrap_or_else(|| "Unnamed".to_owned())
    }

    fn def_type(&mut self, i: usize) {
        if !self.def_done.insert(i) {
            return;
        }
        let def = &self.model.defs[i];
        let name = self.def_names.get(&i).cloned().unwrap_or_default();
        let schema = def.schema.clone();
        let role = def.role;
        if needs_type(&schema) || matches!(schema.kind, Kind::Object { .. }) {
            self.named_type(&name, &schema, role);
        } else {
            // A def of a plain shape (string, number, array...) is used inline.
        }
    }

    /// Generates the type for a node that [`needs_type`], under `name`.
    fn named_type(&mut self, name: &str, s: &Schema, role: Role) {
        match &s.kind {
            Kind::Object { .. } => self.object_type(name, s, role, false),
            Kind::StrEnum(values) => {
                let candidates: Vec<(String, String)> = values
                    .iter()
                    .map(|v| (v.clone(), names::variant(v)))
                    .collect();
                let variants: Vec<String> =
                    names::dedupe(&candidates, &[], names::spelled_variant, true);
                let default = s
                    .default
                    .as_ref()
                    .and_then(Value::as_str)
                    .and_then(|d| values.iter().position(|v| v == d));
                let mut docs = first_paragraph(s);
                fallback_doc(&mut docs, s);
                push_default_doc(&mut docs, s.default.as_ref());
                self.types.push(TypeDef {
                    name: name.to_owned(),
                    docs,
                    body: Body::StrEnum {
                        variants: variants.into_iter().zip(values.iter().cloned()).collect(),
                        default,
                    },
                    loc: s.loc.clone(),
                    role,
                });
            }
            Kind::IntEnum(values) => {
                let variants: Vec<(String, i64)> = values
                    .iter()
                    .map(|v| (names::int_variant(*v), *v))
                    .collect();
                let default = s
                    .default
                    .as_ref()
                    .and_then(Value::as_i64)
                    .and_then(|d| values.iter().position(|v| *v == d));
                let mut docs = first_paragraph(s);
                fallback_doc(&mut docs, s);
                push_default_doc(&mut docs, s.default.as_ref());
                self.types.push(TypeDef {
                    name: name.to_owned(),
                    docs,
                    body: Body::IntEnum { variants, default },
                    loc: s.loc.clone(),
                    role,
                });
            }
            Kind::Union(alternatives) => {
                let mut variants: Vec<(usize, String, Ty, Checks)> = Vec::new();
                let mut seen: BTreeMap<String, Location> = BTreeMap::new();
                for alt in alternatives {
                    let (rank, vname) = self.variant_name(alt);
                    if let Some(first) = seen.get(&vname) {
                        self.diags.error(
                            &alt.loc,
                            format!("alternatives {} and {} have the same shape ({vname}); they cannot be told apart on the wire", first.pointer, alt.loc.pointer),
                        );
                        continue;
                    }
                    seen.insert(vname.clone(), alt.loc.clone());
                    let ty = self.ty(alt, role);
                    let checks = self.checks(alt, &ty);
                    variants.push((rank, vname, ty, checks));
                }
                // serde tries untagged variants in order: the narrower shapes first.
                variants.sort_by_key(|v| v.0);
                let mut docs = first_paragraph(s);
                fallback_doc(&mut docs, s);
                push_default_doc(&mut docs, s.default.as_ref());
                self.types.push(TypeDef {
                    name: name.to_owned(),
                    docs,
                    body: Body::Union {
                        variants: variants.into_iter().map(|(_, n, t, c)| (n, t, c)).collect(),
                    },
                    loc: s.loc.clone(),
                    role,
                });
            }
            _ => {}
        }
    }

    /// A default beside a `$ref` (Cog's `allOf: [{$ref}]` + `default`) is checked against the
    /// referenced enum here, once the definition is known.
    fn check_ref_default(&mut self, s: &Schema) {
        let (Kind::Ref(i), Some(default)) = (&s.kind, &s.default) else {
            return;
        };
        let ok = match &self.model.defs[*i].schema.kind {
            Kind::StrEnum(values) => default
                .as_str()
                .is_some_and(|d| values.iter().any(|v| v == d)),
            Kind::IntEnum(values) => default.as_i64().is_some_and(|d| values.contains(&d)),
            _ => true,
        };
        let null_ok = default.is_null() && s.nullable;
        if !(ok || null_ok) {
            let loc = s.loc.key("default");
            self.diags.error(
                &loc,
                format!("default {default} is not one of the values of the referenced enum"),
            );
        }
    }

    fn variant_name(&self, s: &Schema) -> (usize, String) {
        match &s.kind {
            Kind::StrEnum(_) => (0, "Preset".to_owned()),
            Kind::IntEnum(_) => (1, "Choice".to_owned()),
            Kind::BoolConst(_) | Kind::Bool => (2, "Bool".to_owned()),
            Kind::Integer(_) => (3, "Integer".to_owned()),
            Kind::Number(_) => (4, "Number".to_owned()),
            Kind::String { format, .. } if is_uri_format(format.as_deref()) => {
                (5, "Url".to_owned())
            }
            Kind::String { .. } => (6, "Text".to_owned()),
            Kind::Ref(i) => (7, self.def_names.get(i).cloned().unwrap_or_default()),
            Kind::Object { .. } => (7, "Object".to_owned()),
            Kind::Map { .. } => (8, "Map".to_owned()),
            Kind::Array { .. } => (9, "List".to_owned()),
            Kind::Union(_) => (10, "Union".to_owned()),
            Kind::Any => (11, "Any".to_owned()),
        }
    }

    fn object_type(&mut self, name: &str, s: &Schema, role: Role, is_input: bool) {
        let Kind::Object { props, extra } = &s.kind else {
            return;
        };
        let candidates: Vec<(String, String)> = props
            .iter()
            .map(|p| (p.name.clone(), names::snake(&p.name)))
            .collect();
        let reserved: &[&str] = if role == Role::Output {
            &["extra"]
        } else {
            &[]
        };
        let idents = names::dedupe(&candidates, reserved, names::snake, false);
        let mut fields = Vec::new();
        for (p, ident) in props.iter().zip(idents) {
            let ty = self.ty(&p.schema, role);
            self.check_ref_default(&p.schema);
            let checks = self.checks(&p.schema, &ty);
            let mut docs = first_paragraph(&p.schema);
            if docs.is_empty() {
                docs.push(format!("The `{}` field.", escape_doc(&p.name)));
            }
            push_constraint_docs(&mut docs, &p.schema);
            push_default_doc(&mut docs, p.schema.default.as_ref());
            let fixed = match (&p.schema.kind, &ty) {
                (Kind::StrEnum(v), Ty::Named(..)) if v.len() == 1 && p.required => {
                    Some(names::variant(&v[0]))
                }
                (Kind::IntEnum(v), Ty::Named(..)) if v.len() == 1 && p.required => {
                    Some(names::int_variant(v[0]))
                }
                _ => None,
            };
            let setter = if RESERVED_SETTERS.contains(&ident.as_str()) {
                format!("set_{ident}")
            } else {
                ident.clone()
            };
            fields.push(Field {
                ident: names::ident_text(&ident),
                setter: names::ident_text(&setter),
                wire: p.name.clone(),
                ty,
                required: p.required,
                nullable: p.schema.nullable,
                docs,
                default: p.schema.default.clone(),
                checks,
                fixed,
            });
        }
        // Output objects keep unknown keys; input objects send only what the schema names.
        let extra = match (role, extra) {
            (Role::Output, Some(e)) => {
                let ty = self.ty(e, role);
                Some(("extra".to_owned(), ty))
            }
            _ => None,
        };
        let mut docs = first_paragraph(s);
        if is_input {
            docs = vec!["The request body.".to_owned(), String::new(), "Required fields are the parameters of [`Input::new`]; optional ones are set with the chained setters of the same name.".to_owned()];
        } else if name == "Output" {
            docs = vec!["The result's `output` object.".to_owned()];
        }
        fallback_doc(&mut docs, s);
        self.types.push(TypeDef {
            name: name.to_owned(),
            docs,
            body: Body::Struct {
                fields,
                extra,
                is_input,
            },
            loc: s.loc.clone(),
            role,
        });
    }

    /// The Rust type of a node, generating its named type when it needs one.
    fn ty(&mut self, s: &Schema, role: Role) -> Ty {
        let base = match &s.kind {
            Kind::Any => Ty::Value,
            Kind::Bool => Ty::Bool,
            Kind::BoolConst(_) => Ty::Bool,
            Kind::Integer(b) => Ty::Int(int_width(b)),
            Kind::Number(_) => Ty::F64,
            Kind::String { format, .. } => {
                if role == Role::Output && is_uri_format(format.as_deref()) {
                    Ty::Url
                } else {
                    Ty::String
                }
            }
            Kind::Array { items, format, .. } => {
                let item = match items {
                    Some(items) => self.ty(items, role),
                    None if is_uri_list_format(format.as_deref()) => {
                        if role == Role::Output {
                            Ty::Url
                        } else {
                            Ty::String
                        }
                    }
                    None => Ty::Value,
                };
                Ty::Vec(Box::new(item))
            }
            Kind::Map { values, .. } => Ty::Map(Box::new(self.ty(values, role))),
            Kind::Object { props, extra } if props.is_empty() => match extra {
                Some(e) => Ty::Map(Box::new(self.ty(e, role))),
                None => Ty::Map(Box::new(Ty::Value)),
            },
            Kind::Ref(i) => {
                let i = *i;
                let def = &self.model.defs[i];
                if needs_type(&def.schema) || matches!(def.schema.kind, Kind::Object { .. }) {
                    let name = self.def_names.get(&i).cloned().unwrap_or_default();
                    let validates =
                        has_checks_deep(&def.schema, &self.model.defs, &mut BTreeSet::new());
                    self.def_type(i);
                    let named = Ty::Named(name, validates);
                    if self.recursive.contains(&i) {
                        Ty::Box(Box::new(named))
                    } else {
                        named
                    }
                } else {
                    let schema = def.schema.clone();
                    self.ty(&schema, def.role)
                }
            }
            Kind::Object { .. } | Kind::StrEnum(_) | Kind::IntEnum(_) | Kind::Union(_) => {
                let name = self.name_of(s);
                if !self.types.iter().any(|t| t.name == name) {
                    self.named_type(&name, s, role);
                }
                let validates = has_checks_deep(s, &self.model.defs, &mut BTreeSet::new());
                Ty::Named(name, validates)
            }
        };
        base
    }

    fn checks(&self, s: &Schema, ty: &Ty) -> Checks {
        let mut c = Checks::default();
        match &s.kind {
            Kind::Integer(b) if has_bounds(b) => c.int = Some(b.clone()),
            Kind::Number(b) if has_bounds(b) => c.num = Some(b.clone()),
            Kind::String {
                min_len,
                max_len,
                pattern,
                ..
            } => {
                c.len = (*min_len, *max_len);
                c.pattern = pattern.clone();
            }
            Kind::Array {
                items,
                min_items,
                max_items,
                unique,
                ..
            } => {
                c.count = (*min_items, *max_items);
                c.unique = *unique;
                if let (Some(items), Ty::Vec(item_ty)) = (items, ty) {
                    let each = self.checks(items, item_ty);
                    if !each.is_empty() {
                        c.each = Some(Box::new(each));
                    }
                }
            }
            Kind::Map { values, min, max } => {
                c.count = (*min, *max);
                if let Ty::Map(value_ty) = ty {
                    let each = self.checks(values, value_ty);
                    if !each.is_empty() {
                        c.each = Some(Box::new(each));
                    }
                }
            }
            _ => {}
        }
        if let Ty::Named(_, true) = strip_box(ty) {
            c.nested = true;
        }
        if let (
            Kind::Object {
                props,
                extra: Some(e),
            },
            Ty::Map(value_ty),
        ) = (&s.kind, ty)
        {
            if props.is_empty() {
                let each = self.checks(e, value_ty);
                if !each.is_empty() {
                    c.each = Some(Box::new(each));
                }
            }
        }
        c
    }
}

fn strip_box(ty: &Ty) -> &Ty {
    match ty {
        Ty::Box(inner) => strip_box(inner),
        other => other,
    }
}

fn has_bounds(b: &Bounds) -> bool {
    b.min.is_some()
        || b.max.is_some()
        || b.exclusive_min.is_some()
        || b.exclusive_max.is_some()
        || b.multiple_of.is_some()
}

/// Whether a generated type made from `s` has anything to check.
fn has_checks_deep(s: &Schema, defs: &[Def], seen: &mut BTreeSet<usize>) -> bool {
    match &s.kind {
        Kind::Integer(b) | Kind::Number(b) => has_bounds(b),
        Kind::String {
            min_len,
            max_len,
            pattern,
            ..
        } => min_len.is_some() || max_len.is_some() || pattern.is_some(),
        Kind::Array {
            items,
            min_items,
            max_items,
            unique,
            ..
        } => {
            min_items.is_some()
                || max_items.is_some()
                || *unique
                || items
                    .as_ref()
                    .is_some_and(|i| has_checks_deep(i, defs, seen))
        }
        Kind::Map { values, min, max } => {
            min.is_some() || max.is_some() || has_checks_deep(values, defs, seen)
        }
        Kind::Object { props, extra } => {
            props.iter().any(|p| has_checks_deep(&p.schema, defs, seen))
                || extra
                    .as_ref()
                    .is_some_and(|e| has_checks_deep(e, defs, seen))
        }
        Kind::Union(vs) => vs.iter().any(|v| has_checks_deep(v, defs, seen)),
        Kind::Ref(i) => seen.insert(*i) && has_checks_deep(&defs[*i].schema, defs, seen),
        _ => false,
    }
}

fn collect_slots(
    s: &Schema,
    parent_short: &str,
    parent_full: &str,
    slots: &mut Vec<Slot>,
    root: bool,
) {
    let visit = |child: &Schema, word: String, slots: &mut Vec<Slot>| {
        let short = format!("{parent_short}{word}");
        let full = format!("{parent_full}{word}");
        if needs_type(child) {
            slots.push(Slot {
                loc: child.loc.clone(),
                short: short.clone(),
                full: full.clone(),
            });
        }
        collect_slots(child, &short, &full, slots, false);
    };
    match &s.kind {
        Kind::Object { props, extra } => {
            for p in props {
                visit(&p.schema, names::camel(&p.name), slots);
            }
            if let Some(e) = extra {
                visit(e, "Extra".to_owned(), slots);
            }
        }
        Kind::Array {
            items: Some(items), ..
        } => {
            // The item of `loras` is `LorasItem`: parent_short already holds `Loras`.
            let _ = root;
            visit(items, "Item".to_owned(), slots);
        }
        Kind::Map { values, .. } => visit(values, "Value".to_owned(), slots),
        Kind::Union(alternatives) => {
            for alt in alternatives {
                let word = match &alt.kind {
                    Kind::StrEnum(_) => "Preset",
                    Kind::IntEnum(_) => "Choice",
                    Kind::Object { .. } => "Object",
                    Kind::Union(_) => "Union",
                    _ => "Value",
                };
                visit(alt, word.to_owned(), slots);
            }
        }
        _ => {}
    }
}

fn is_uri_format(f: Option<&str>) -> bool {
    matches!(
        f,
        Some("uri" | "url" | "image_uri" | "video_uri" | "audio_uri" | "file_uri")
    )
}

fn is_uri_list_format(f: Option<&str>) -> bool {
    matches!(
        f,
        Some("image_uris" | "video_uris" | "audio_uris" | "file_uris" | "uris")
    )
}

/// The narrowest common integer type that holds the schema's bounds.
pub fn int_width(b: &Bounds) -> &'static str {
    let lo = b.min.or(b.exclusive_min.map(|x| x + 1.0));
    let hi = b.max.or(b.exclusive_max.map(|x| x - 1.0));
    match (lo, hi) {
        (Some(lo), Some(hi)) if lo >= 0.0 => {
            if hi <= u8::MAX as f64 {
                "u8"
            } else if hi <= u16::MAX as f64 {
                "u16"
            } else if hi <= u32::MAX as f64 {
                "u32"
            } else {
                "u64"
            }
        }
        (Some(lo), Some(hi)) => {
            if lo >= i8::MIN as f64 && hi <= i8::MAX as f64 {
                "i8"
            } else if lo >= i16::MIN as f64 && hi <= i16::MAX as f64 {
                "i16"
            } else if lo >= i32::MIN as f64 && hi <= i32::MAX as f64 {
                "i32"
            } else {
                "i64"
            }
        }
        (Some(lo), None) if lo >= 0.0 => "u64",
        _ => "i64",
    }
}

/// Types without a description still say where they come from.
fn fallback_doc(docs: &mut Vec<String>, s: &Schema) {
    if docs.is_empty() {
        let pointer = if s.loc.pointer.is_empty() {
            "/"
        } else {
            &s.loc.pointer
        };
        docs.push(format!("The schema at `{}`.", pointer.replace('`', "'")));
    }
}

fn push_default_doc(docs: &mut Vec<String>, default: Option<&Value>) {
    if let Some(d) = default {
        if !docs.is_empty() {
            docs.push(String::new());
        }
        docs.push(format!("Default: `{d}`."));
    }
}

fn push_constraint_docs(docs: &mut Vec<String>, s: &Schema) {
    let mut rules = Vec::new();
    match &s.kind {
        Kind::Integer(b) | Kind::Number(b) => {
            if let Some(v) = b.min {
                rules.push(format!("at least {v}"));
            }
            if let Some(v) = b.exclusive_min {
                rules.push(format!("greater than {v}"));
            }
            if let Some(v) = b.max {
                rules.push(format!("at most {v}"));
            }
            if let Some(v) = b.exclusive_max {
                rules.push(format!("less than {v}"));
            }
            if let Some(v) = b.multiple_of {
                rules.push(format!("a multiple of {v}"));
            }
        }
        Kind::String {
            min_len,
            max_len,
            pattern,
            format,
        } => {
            if let Some(v) = min_len {
                rules.push(format!("at least {v} characters"));
            }
            if let Some(v) = max_len {
                rules.push(format!("at most {v} characters"));
            }
            if let Some(p) = pattern {
                rules.push(format!("matches `{}`", p.replace('`', "'")));
            }
            if let Some(f) = format {
                rules.push(format!("format `{f}`"));
            }
        }
        Kind::Array {
            min_items,
            max_items,
            unique,
            format,
            ..
        } => {
            if let Some(v) = min_items {
                rules.push(format!("at least {v} items"));
            }
            if let Some(v) = max_items {
                rules.push(format!("at most {v} items"));
            }
            if *unique {
                rules.push("unique items".to_owned());
            }
            if let Some(f) = format {
                rules.push(format!("format `{f}`"));
            }
        }
        _ => {}
    }
    if !rules.is_empty() {
        if !docs.is_empty() {
            docs.push(String::new());
        }
        docs.push(format!("Constraints: {}.", rules.join(", ")));
    }
}
