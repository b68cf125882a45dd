//! Stage 3, catalog: normalized schemas in, the [IR](crate::ir) out. Decides every type's
//! name (through [`crate::names`]), integer widths, URL typing of outputs, boxing of
//! recursive definitions and the order of union variants.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::diag::{Diagnostics, Location};
use crate::doctext;
pub use crate::ir::*;
use crate::names::{self, Shape};
use crate::normalize::{Def, Kind, Model, Schema};

/// Builds the catalog of every model.
pub fn build(models: &[Model], diags: &mut Diagnostics) -> Catalog {
    let mut out: Vec<ModelModule> = models.iter().map(|m| build_model(m, diags)).collect();
    let ids: Vec<String> = out.iter().map(|m| m.id.clone()).collect();
    let paths = names::module_paths(&ids);
    let methods = names::trait_methods(&ids);
    for ((m, path), method) in out.iter_mut().zip(paths).zip(methods) {
        m.path = path;
        m.method = method;
    }
    Catalog { models: out }
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
    let root_docs = doctext::of_schema(&model.input);
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
            let (short, full) = names::def_type(&def.key, def.role == Role::Output);
            slots.push(Slot {
                loc: def.schema.loc.clone(),
                short,
                full,
            });
            self.def_names.insert(i, String::new());
        }
        collect_slots(&self.model.input, "", "Input", &mut slots);
        if let Some(out) = &self.model.output {
            collect_slots(out, "", "Output", &mut slots);
        }
        // Definitions come first and keep their own names; a later node whose short name is
        // taken gets its full path name (`InputImageSize`).
        let candidates: Vec<(String, String)> = slots
            .iter()
            .map(|s| (s.short.clone(), s.full.clone()))
            .collect();
        let chosen = names::type_names(&candidates);
        let ndefs = self.model.defs.len();
        for (i, (slot, name)) in slots.into_iter().zip(chosen).enumerate() {
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
                let variants = names::dedupe(&candidates, &[], names::spelled_variant, true);
                let default = s
                    .default
                    .as_ref()
                    .and_then(Value::as_str)
                    .and_then(|d| values.iter().position(|v| v == d));
                let mut docs = doctext::of_schema(s);
                doctext::fallback(&mut docs, s);
                doctext::push_default(&mut docs, s.default.as_ref());
                self.types.push(TypeDef {
                    name: name.to_owned(),
                    docs,
                    body: Body::StrEnum {
                        variants: variants
                            .into_iter()
                            .zip(values)
                            .map(|(name, wire)| StrVariant {
                                name,
                                wire: wire.clone(),
                            })
                            .collect(),
                        default,
                    },
                    loc: s.loc.clone(),
                    role,
                    validates: false,
                });
            }
            Kind::IntEnum(values) => {
                let variants: Vec<IntVariant> = values
                    .iter()
                    .map(|&value| IntVariant {
                        name: names::int_variant(value),
                        value,
                    })
                    .collect();
                let default = s
                    .default
                    .as_ref()
                    .and_then(Value::as_i64)
                    .and_then(|d| values.iter().position(|v| *v == d));
                let mut docs = doctext::of_schema(s);
                doctext::fallback(&mut docs, s);
                doctext::push_default(&mut docs, s.default.as_ref());
                self.types.push(TypeDef {
                    name: name.to_owned(),
                    docs,
                    body: Body::IntEnum { variants, default },
                    loc: s.loc.clone(),
                    role,
                    validates: false,
                });
            }
            Kind::Union(alternatives) => {
                let mut variants: Vec<(Shape, Variant)> = Vec::new();
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
                    variants.push((
                        rank,
                        Variant {
                            name: vname,
                            ty,
                            checks,
                        },
                    ));
                }
                // serde tries untagged variants in order: the narrower shapes first.
                variants.sort_by_key(|v| v.0);
                let mut docs = doctext::of_schema(s);
                doctext::fallback(&mut docs, s);
                doctext::push_default(&mut docs, s.default.as_ref());
                self.types.push(TypeDef {
                    name: name.to_owned(),
                    docs,
                    body: Body::Union {
                        variants: variants.into_iter().map(|(_, v)| v).collect(),
                    },
                    loc: s.loc.clone(),
                    role,
                    validates: has_checks_deep(s, &self.model.defs, &mut BTreeSet::new()),
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

    fn variant_name(&self, s: &Schema) -> (Shape, String) {
        let shape = shape_of(s);
        let name = match &s.kind {
            Kind::Ref(i) => self.def_names.get(i).cloned().unwrap_or_default(),
            _ => shape.variant().to_owned(),
        };
        (shape, name)
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
            &[names::EXTRA_FIELD]
        } else {
            &[]
        };
        let idents = names::dedupe(&candidates, reserved, names::snake, false);
        let mut fields = Vec::new();
        for (p, ident) in props.iter().zip(idents) {
            let ty = self.ty(&p.schema, role);
            self.check_ref_default(&p.schema);
            let checks = self.checks(&p.schema, &ty);
            let mut docs = doctext::of_schema(&p.schema);
            if docs.is_empty() {
                docs.push(format!("The `{}` field.", doctext::code(&p.name)));
            }
            doctext::push_constraints(&mut docs, &p.schema);
            doctext::push_field_default(&mut docs, p.required, p.schema.default.as_ref());
            let fixed = match (&p.schema.kind, &ty) {
                (Kind::StrEnum(v), Ty::Named { .. }) if v.len() == 1 && p.required => {
                    Some(names::variant(&v[0]))
                }
                (Kind::IntEnum(v), Ty::Named { .. }) if v.len() == 1 && p.required => {
                    Some(names::int_variant(v[0]))
                }
                _ => None,
            };
            fields.push(Field {
                setter: names::setter(&ident),
                ident: names::ident_text(&ident),
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
                Some(Extra {
                    ident: names::EXTRA_FIELD.to_owned(),
                    ty,
                })
            }
            _ => None,
        };
        let mut docs = doctext::of_schema(s);
        if is_input {
            docs = vec!["The request body.".to_owned(), String::new(), "Required fields are the parameters of [`Input::new`]; optional ones are set with the chained setters of the same name.".to_owned()];
        } else if name == "Output" {
            docs = vec!["The result's `output` object.".to_owned()];
        }
        doctext::fallback(&mut docs, s);
        self.types.push(TypeDef {
            name: name.to_owned(),
            docs,
            body: Body::Struct(Struct {
                fields,
                extra,
                is_input,
            }),
            loc: s.loc.clone(),
            role,
            validates: is_input || has_checks_deep(s, &self.model.defs, &mut BTreeSet::new()),
        });
    }

    /// The Rust type of a node, generating its named type when it needs one.
    fn ty(&mut self, s: &Schema, role: Role) -> Ty {
        let base = match &s.kind {
            Kind::Any => Ty::Value,
            Kind::Bool => Ty::Bool,
            Kind::BoolConst(_) => Ty::Bool,
            Kind::Integer(b) => Ty::Int(IntWidth::for_bounds(b)),
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
                    let named = Ty::Named { name, validates };
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
                Ty::Named { name, validates }
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
                c.len = Limits {
                    min: *min_len,
                    max: *max_len,
                };
                c.pattern = pattern.clone();
            }
            Kind::Array {
                items,
                min_items,
                max_items,
                unique,
                ..
            } => {
                c.count = Limits {
                    min: *min_items,
                    max: *max_items,
                };
                c.unique = *unique;
                if let (Some(items), Ty::Vec(item_ty)) = (items, ty) {
                    let each = self.checks(items, item_ty);
                    if !each.is_empty() {
                        c.each = Some(Box::new(each));
                    }
                }
            }
            Kind::Map { values, min, max } => {
                c.count = Limits {
                    min: *min,
                    max: *max,
                };
                if let Ty::Map(value_ty) = ty {
                    let each = self.checks(values, value_ty);
                    if !each.is_empty() {
                        c.each = Some(Box::new(each));
                    }
                }
            }
            _ => {}
        }
        if let Ty::Named {
            validates: true, ..
        } = ty.unboxed()
        {
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

fn collect_slots(s: &Schema, parent_short: &str, parent_full: &str, slots: &mut Vec<Slot>) {
    let visit = |child: &Schema, word: &str, slots: &mut Vec<Slot>| {
        let short = format!("{parent_short}{word}");
        let full = format!("{parent_full}{word}");
        if needs_type(child) {
            slots.push(Slot {
                loc: child.loc.clone(),
                short: short.clone(),
                full: full.clone(),
            });
        }
        collect_slots(child, &short, &full, slots);
    };
    match &s.kind {
        Kind::Object { props, extra } => {
            for p in props {
                visit(&p.schema, &names::camel(&p.name), slots);
            }
            if let Some(e) = extra {
                visit(e, names::EXTRA_WORD, slots);
            }
        }
        // The item of `loras` is `LorasItem`: `parent_short` already holds `Loras`.
        Kind::Array {
            items: Some(items), ..
        } => visit(items, names::ITEM_WORD, slots),
        Kind::Map { values, .. } => visit(values, names::MAP_VALUE_WORD, slots),
        Kind::Union(alternatives) => {
            for alt in alternatives {
                visit(alt, shape_of(alt).type_word(), slots);
            }
        }
        _ => {}
    }
}

/// The shape of a union alternative.
fn shape_of(s: &Schema) -> Shape {
    match &s.kind {
        Kind::StrEnum(_) => Shape::Preset,
        Kind::IntEnum(_) => Shape::Choice,
        Kind::BoolConst(_) | Kind::Bool => Shape::Bool,
        Kind::Integer(_) => Shape::Integer,
        Kind::Number(_) => Shape::Number,
        Kind::String { format, .. } if is_uri_format(format.as_deref()) => Shape::Url,
        Kind::String { .. } => Shape::Text,
        Kind::Ref(_) | Kind::Object { .. } => Shape::Object,
        Kind::Map { .. } => Shape::Map,
        Kind::Array { .. } => Shape::List,
        Kind::Union(_) => Shape::Union,
        Kind::Any => Shape::Any,
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
