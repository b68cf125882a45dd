//! Stage 3, catalog: normalized schemas in, the [IR](crate::ir) out. Decides every type's
//! name (through [`crate::names`]), integer widths, URL typing of outputs, boxing of
//! recursive definitions, union tagging and variant order, and which types validate.
//!
//! Work is linear in the size of the normalized model: each definition's type is built once,
//! and facts about definitions (recursion, whether they validate) are computed once for all.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::diag::{Diagnostics, Location};
use crate::doctext;
pub use crate::ir::*;
use crate::names::{self, Shape};
use crate::normalize::{self, Def, Kind, Model, Schema, Typeless};

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
    Catalog {
        models: out,
        warnings: Vec::new(),
    }
}

struct Ctx<'a> {
    model: &'a Model,
    types: Vec<TypeDef>,
    /// Type names chosen for schema nodes (by location) and defs (by index).
    node_names: BTreeMap<Location, String>,
    def_names: Vec<String>,
    /// Every type name handed out, so that late names stay unique.
    taken: BTreeSet<String>,
    def_done: BTreeSet<usize>,
    /// Each generated type's name and whether it validates.
    built: BTreeMap<String, bool>,
    /// Defs that can reach themselves: their uses are boxed.
    recursive: BTreeSet<usize>,
    /// Defs whose type implements `Validate` with checks.
    def_validates: Vec<bool>,
    /// Problems found while only reading (rules that cannot be checked).
    late_errors: std::cell::RefCell<Vec<(Location, String)>>,
    /// Rules left out in graceful mode.
    late_warnings: std::cell::RefCell<Vec<(Location, String)>>,
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
        def_names: Vec::new(),
        taken: BTreeSet::new(),
        def_done: BTreeSet::new(),
        built: BTreeMap::new(),
        recursive: recursive_defs(&model.defs),
        def_validates: defs_validate(&model.defs),
        late_errors: Default::default(),
        late_warnings: Default::default(),
        diags,
    };
    ctx.assign_names();
    ctx.check_plain_recursion();
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
    for (loc, msg) in ctx.late_errors.take() {
        ctx.diags.error(&loc, msg);
    }
    for (loc, msg) in ctx.late_warnings.take() {
        ctx.diags.warn(&loc, msg);
    }
    box_large_fields(&mut ctx.types);
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
        summary: doctext::summary(model.input.description.as_deref()),
        types: ctx.types,
        output,
        input_text: model.input_text.clone(),
        output_text: model.output_text.clone(),
    }
}

/// The defs each def's schema refers to (where a type is needed, not inside rules).
fn def_edges(defs: &[Def]) -> Vec<BTreeSet<usize>> {
    fn refs(s: &Schema, out: &mut BTreeSet<usize>) {
        match &s.kind {
            Kind::Ref(i) => {
                out.insert(*i);
            }
            Kind::Array {
                items: Some(items), ..
            } => refs(items, out),
            Kind::Object { props, extra, .. } => {
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
    defs.iter()
        .map(|d| {
            let mut out = BTreeSet::new();
            refs(&d.schema, &mut out);
            out
        })
        .collect()
}

/// Definitions that can reach themselves (Tarjan's strongly connected components: linear in
/// defs and refs). A ref to a file's root is always recursive: it sits inside that root.
fn recursive_defs(defs: &[Def]) -> BTreeSet<usize> {
    let edges = def_edges(defs);
    let n = defs.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut out = BTreeSet::new();
    for start in 0..n {
        if index[start] != usize::MAX {
            continue;
        }
        // Iterative DFS: (node, its successors still to visit).
        let mut work: Vec<(usize, Vec<usize>)> = Vec::new();
        index[start] = next;
        low[start] = next;
        next += 1;
        stack.push(start);
        on_stack[start] = true;
        work.push((start, edges[start].iter().rev().copied().collect()));
        while let Some((v, succ)) = work.last_mut() {
            let v = *v;
            if let Some(w) = succ.pop() {
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, edges[w].iter().rev().copied().collect()));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some((parent, _)) = work.last() {
                low[*parent] = low[*parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 || edges[v].contains(&v) {
                    out.extend(component);
                }
            }
        }
    }
    out.extend(
        defs.iter()
            .enumerate()
            .filter(|(_, d)| d.pointer.is_empty())
            .map(|(i, _)| i),
    );
    out
}

/// Whether each def's type has checks, its refs included: the defs with checks of their own,
/// then every def that reaches one (one pass over the reversed refs).
fn defs_validate(defs: &[Def]) -> Vec<bool> {
    let edges = def_edges(defs);
    let mut reverse: Vec<Vec<usize>> = vec![Vec::new(); defs.len()];
    for (from, tos) in edges.iter().enumerate() {
        for &to in tos {
            reverse[to].push(from);
        }
    }
    let mut out: Vec<bool> = defs
        .iter()
        .map(|d| has_own_checks(&d.schema, d.role == Role::Input))
        .collect();
    let mut queue: Vec<usize> = (0..defs.len()).filter(|&i| out[i]).collect();
    while let Some(i) = queue.pop() {
        for &j in &reverse[i] {
            if !out[j] {
                out[j] = true;
                queue.push(j);
            }
        }
    }
    out
}

/// Whether a schema has checks of its own, not counting those of the defs it refers to. In
/// a request (`input`), every file field has one (its size).
fn has_own_checks(s: &Schema, input: bool) -> bool {
    if !s.rules.is_empty() {
        return true;
    }
    let own = |s: &Schema| has_own_checks(s, input);
    match &s.kind {
        Kind::Integer(b) | Kind::Number(b) => has_bounds(b),
        Kind::String {
            min_len,
            max_len,
            pattern,
            format,
        } => {
            min_len.is_some()
                || max_len.is_some()
                || pattern.is_some()
                || (input && is_uri_format(format.as_deref()))
        }
        Kind::Typeless(_) => true,
        Kind::Array {
            items,
            min_items,
            max_items,
            unique,
            format,
        } => {
            min_items.is_some()
                || max_items.is_some()
                || *unique
                || (input && is_uri_list_format(format.as_deref()))
                || items.as_ref().is_some_and(|i| own(i))
        }
        Kind::Map {
            values,
            min,
            max,
            key_pattern,
        } => min.is_some() || max.is_some() || key_pattern.is_some() || own(values),
        Kind::Object {
            props,
            extra,
            key_pattern,
        } => {
            key_pattern.is_some()
                || props.iter().any(|p| own(&p.schema))
                || extra.as_ref().is_some_and(|e| own(e))
        }
        Kind::Union(vs) => vs.iter().any(own),
        _ => false,
    }
}

/// Does this node become a generated type of its own?
fn needs_type(s: &Schema) -> bool {
    match &s.kind {
        Kind::Object { props, .. } => !props.is_empty(),
        Kind::StrEnum(_) | Kind::IntEnum(_) | Kind::Union(_) => true,
        _ => false,
    }
}

/// Does a def become a named type (or stand for `Input`/`Output`)?
fn def_is_type(d: &Def) -> bool {
    d.pointer.is_empty() || needs_type(&d.schema) || matches!(d.schema.kind, Kind::Object { .. })
}

impl Ctx<'_> {
    /// Walks every schema in a fixed order and gives each type-producing node its name, so
    /// that collisions are resolved over the whole module at once: definitions first (by
    /// their keys), then the types nested in `Input` and `Output`, then those nested in
    /// definitions (prefixed by the definition's name: `Lora` → `LoraMode`).
    fn assign_names(&mut self) {
        let defs = &self.model.defs;
        let mut def_slots = Vec::new();
        for def in defs {
            let (short, full) = names::def_type(&def.key, def.role == Role::Output);
            def_slots.push((short, full));
        }
        let mut slots = Vec::new();
        collect_slots(defs, &self.model.input, "", "Input", &mut slots);
        if let Some(out) = &self.model.output {
            collect_slots(defs, out, "", "Output", &mut slots);
        }
        // Defs that stand for a file's root are `Input`/`Output` themselves.
        let mut candidates: Vec<(String, String)> = def_slots.clone();
        candidates.extend(slots.iter().map(|s| (s.short.clone(), s.full.clone())));
        let chosen = names::type_names(&candidates);
        let (def_chosen, node_chosen) = chosen.split_at(defs.len());
        self.def_names = defs
            .iter()
            .zip(def_chosen)
            .map(|(d, name)| match (d.pointer.is_empty(), d.role) {
                (true, Role::Input) => "Input".to_owned(),
                (true, Role::Output) => "Output".to_owned(),
                _ => name.clone(),
            })
            .collect();
        for (slot, name) in slots.into_iter().zip(node_chosen) {
            self.node_names.insert(slot.loc, name.clone());
        }
        self.taken = names::RESERVED_TYPES
            .iter()
            .map(|s| s.to_string())
            .collect();
        self.taken.extend(chosen.iter().cloned());
        // Types nested in definitions, named after the definition.
        let mut nested = Vec::new();
        for (i, def) in defs.iter().enumerate() {
            if !def.pointer.is_empty() {
                let (short, full) = (&self.def_names[i], &def_slots[i].1);
                collect_slots(defs, &def.schema, short, full, &mut nested);
            }
        }
        for slot in nested {
            if !self.node_names.contains_key(&slot.loc) {
                let name = self.fresh(&slot.short, &slot.full);
                self.node_names.insert(slot.loc, name);
            }
        }
    }

    fn push_type(&mut self, t: TypeDef) {
        // Named by its place: a node reached again while it was being built (through a
        // `$ref` to the place, or to a node around it) is the same type.
        if self.built.contains_key(&t.name) {
            return;
        }
        self.built.insert(t.name.clone(), t.validates);
        self.types.push(t);
    }

    /// A name not yet handed out: `short`, else `full`, else `full2`, `full3`, ...
    fn fresh(&mut self, short: &str, full: &str) -> String {
        let name = names::type_names_after(&self.taken, &[(short.to_owned(), full.to_owned())])
            .pop()
            .unwrap_or_else(|| full.to_owned());
        self.taken.insert(name.clone());
        name
    }

    /// A recursive def of a plain shape (`A = array of A`) has no type of its own to hold
    /// the recursion.
    fn check_plain_recursion(&mut self) {
        for (i, def) in self.model.defs.iter().enumerate() {
            if self.recursive.contains(&i) && !def_is_type(def) {
                self.diags.error(
                    &def.schema.loc,
                    "a recursive definition must be an object, an enum or a union (here it is a plain array, map or value)",
                );
            }
        }
    }

    /// The type name of a node: the one assigned, or a fresh one from its pointer.
    fn name_of(&mut self, s: &Schema) -> String {
        if let Some(name) = self.node_names.get(&s.loc) {
            return name.clone();
        }
        let words: String = s
            .loc
            .pointer
            .split('/')
            .filter(|w| !w.is_empty())
            .map(names::camel)
            .collect();
        let name = self.fresh(&words, &format!("Schema{words}"));
        self.node_names.insert(s.loc.clone(), name.clone());
        name
    }

    fn def_type(&mut self, i: usize) {
        if !self.def_done.insert(i) {
            return;
        }
        let def = &self.model.defs[i];
        if def.pointer.is_empty() || !def_is_type(def) {
            // The root is `Input`/`Output`; a plain shape (string, array...) is used inline.
            return;
        }
        let name = self.def_names[i].clone();
        let schema = def.schema.clone();
        self.named_type(&name, &schema, def.role);
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
                self.push_type(TypeDef {
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
                self.push_type(TypeDef {
                    name: name.to_owned(),
                    docs,
                    body: Body::IntEnum { variants, default },
                    loc: s.loc.clone(),
                    role,
                    validates: false,
                });
            }
            Kind::Union(alternatives) => self.union_type(name, s, alternatives, role),
            _ => {}
        }
    }

    fn object_of<'s>(&'s self, s: &'s Schema) -> Option<&'s Schema> {
        object_of(&self.model.defs, s)
    }

    fn discriminator(&self, alternatives: &[Schema]) -> Option<(String, Vec<String>)> {
        discriminator(&self.model.defs, alternatives)
    }

    /// A union: tagged by a discriminator property when every alternative has one
    /// ([`Ctx::discriminator`]), else untagged, its variants ordered so that serde (which
    /// tries them in order) picks the right one: narrower shapes first (enums, then scalars,
    /// then objects, maps, arrays), and among objects those that require more properties
    /// first, so that an object never captures a value meant for a stricter one.
    fn union_type(&mut self, name: &str, s: &Schema, alternatives: &[Schema], role: Role) {
        let mut docs = doctext::of_schema(s);
        doctext::fallback(&mut docs, s);
        doctext::push_default(&mut docs, s.default.as_ref());
        if let Some((tag, values)) = self.discriminator(alternatives) {
            let candidates: Vec<(String, String)> = values
                .iter()
                .map(|v| (v.clone(), names::variant(v)))
                .collect();
            let vnames = names::dedupe(&candidates, &[], names::spelled_variant, true);
            let mut variants = Vec::new();
            for ((alt, value), vname) in alternatives.iter().zip(&values).zip(vnames) {
                // The variant's struct: the alternative without its tag (serde reads and
                // writes the tag itself).
                let Some(object) = self.object_of(alt).cloned() else {
                    continue;
                };
                let mut object = object;
                if let Kind::Object { props, .. } = &mut object.kind {
                    props.retain(|p| p.name != tag);
                }
                object.loc = alt.loc.clone();
                let sname = if matches!(alt.kind, Kind::Object { .. }) {
                    self.name_of(alt)
                } else {
                    self.fresh(&format!("{name}{vname}"), &format!("{name}{vname}"))
                };
                self.object_type(&sname, &object, role, false);
                let validates = self.built.get(&sname).copied().unwrap_or(false);
                let ty = Ty::Named {
                    name: sname,
                    validates,
                };
                let checks = Checks {
                    nested: validates,
                    ..Checks::default()
                };
                variants.push(Variant {
                    name: vname,
                    tag_value: Some(value.clone()),
                    ty,
                    checks,
                });
            }
            let validates = variants.iter().any(|v| v.checks.nested);
            self.push_type(TypeDef {
                name: name.to_owned(),
                docs,
                body: Body::Union {
                    variants,
                    tag: Some(tag),
                },
                loc: s.loc.clone(),
                role,
                validates,
            });
            return;
        }
        // Untagged.
        let object_count = alternatives
            .iter()
            .filter(|a| self.object_of(a).is_some() || matches!(a.kind, Kind::Object { .. }))
            .count();
        let mut ranked: Vec<(Shape, usize, usize, Variant)> = Vec::new();
        let mut seen: BTreeMap<String, Location> = BTreeMap::new();
        let mut required_sets: Vec<(BTreeSet<String>, Location)> = Vec::new();
        let mut from_defs: Vec<bool> = Vec::new();
        for (order, alt) in alternatives.iter().enumerate() {
            let shape = shape_of(self.resolved_def(alt));
            let required: BTreeSet<String> = match self.object_of(alt).map(|o| &o.kind) {
                Some(Kind::Object { props, .. }) => props
                    .iter()
                    .filter(|p| p.required)
                    .map(|p| p.name.clone())
                    .collect(),
                _ => BTreeSet::new(),
            };
            let is_object = shape == Shape::Object;
            let vname = match &alt.kind {
                Kind::Ref(i) if is_object || def_is_type(&self.model.defs[*i]) => {
                    self.def_names[*i].clone()
                }
                _ if is_object && object_count > 1 => self
                    .distinguishing_name(alt, alternatives)
                    .unwrap_or_else(|| shape.variant().to_owned()),
                _ => shape.variant().to_owned(),
            };
            if is_object {
                if let Some((_, first)) = required_sets.iter().find(|(r, _)| *r == required) {
                    self.diags.error(
                        &alt.loc,
                        format!("alternatives {} and {} require the same properties; they cannot be told apart on the wire", first.pointer, alt.loc.pointer),
                    );
                    continue;
                }
                required_sets.push((required.clone(), alt.loc.clone()));
            } else if let Some(first) = seen.get(&vname) {
                self.diags.error(
                    &alt.loc,
                    format!("alternatives {} and {} have the same shape ({vname}); they cannot be told apart on the wire", first.pointer, alt.loc.pointer),
                );
                continue;
            }
            seen.insert(vname.clone(), alt.loc.clone());
            from_defs.push(matches!(alt.kind, Kind::Ref(_)));
            let ty = self.ty(alt, role);
            let checks = self.checks(alt, &ty);
            ranked.push((
                shape,
                usize::MAX - required.len(),
                order,
                Variant {
                    name: vname,
                    tag_value: None,
                    ty,
                    checks,
                },
            ));
        }
        strip_common_prefix(&mut ranked, &from_defs);
        ranked.sort_by_key(|(shape, req, order, _)| (*shape, *req, *order));
        let candidates: Vec<(String, String)> = ranked
            .iter()
            .map(|(.., v)| (v.name.clone(), v.name.clone()))
            .collect();
        let unique = names::dedupe(&candidates, &[], |w| w.to_owned(), true);
        let variants: Vec<Variant> = ranked
            .into_iter()
            .zip(unique)
            .map(|((.., mut v), n)| {
                v.name = n;
                v
            })
            .collect();
        let validates = variants.iter().any(|v| !v.checks.is_empty());
        self.push_type(TypeDef {
            name: name.to_owned(),
            docs,
            body: Body::Union {
                variants,
                tag: None,
            },
            loc: s.loc.clone(),
            role,
            validates,
        });
    }

    fn distinguishing_name(&self, alt: &Schema, all: &[Schema]) -> Option<String> {
        distinguishing_name(&self.model.defs, alt, all)
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

    fn object_type(&mut self, name: &str, s: &Schema, role: Role, is_input: bool) {
        let Kind::Object {
            props,
            extra,
            key_pattern,
        } = &s.kind
        else {
            return;
        };
        let candidates: Vec<(String, String)> = props
            .iter()
            .map(|p| (p.name.clone(), names::snake(&p.name)))
            .collect();
        let idents = names::dedupe(&candidates, &[names::EXTRA_FIELD], names::snake, false);
        let mut fields = Vec::new();
        for (p, ident) in props.iter().zip(idents) {
            let ty = self.ty(&p.schema, role);
            self.check_ref_default(&p.schema);
            let checks = self.checks(&p.schema, &ty);
            let mut docs = doctext::of_schema(&p.schema);
            if docs.is_empty() {
                docs.push(format!("The `{}` field.", doctext::code(&p.name)));
            }
            doctext::push_constraints(&mut docs, self.resolved(&p.schema));
            push_file_doc(&mut docs, &ty, &checks);
            doctext::push_field_default(&mut docs, p.required, p.schema.default.as_ref());
            let single = match (&self.resolved(&p.schema).kind, &ty) {
                (Kind::StrEnum(v), Ty::Named { .. }) if v.len() == 1 => Some(names::variant(&v[0])),
                (Kind::IntEnum(v), Ty::Named { .. }) if v.len() == 1 => {
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
                fixed: single.filter(|_| p.required),
            });
        }
        // Unknown keys: outputs keep them (as the schema types them); inputs send only what
        // the schema names, unless it types the other keys (`additionalProperties` schema,
        // `patternProperties`).
        let extra = match extra {
            // Keys matching `patternProperties` are kept even when any value goes: a
            // closed object that dropped them would lose what the schema allows.
            Some(e)
                if role == Role::Output
                    || key_pattern.is_some()
                    || s.keep_unknown
                    || !matches!(e.kind, Kind::Any) =>
            {
                let ty = self.ty(e, role);
                let checks = self.checks(e, &ty);
                Some(Extra {
                    ident: names::EXTRA_FIELD.to_owned(),
                    ty,
                    checks,
                })
            }
            _ => None,
        };
        let deny_unknown = extra.is_none() && matches!(s.kind, Kind::Object { extra: None, .. });
        let mut docs = doctext::of_schema(s);
        if is_input {
            docs = vec!["The request body.".to_owned(), String::new(), "Required fields are the parameters of [`Input::new`]; optional ones are set with the chained setters of the same name.".to_owned()];
        } else if name == "Output" {
            docs = vec!["The result's `output` object.".to_owned()];
        }
        doctext::fallback(&mut docs, s);
        let rules = self.rule_checks(s);
        let validates = is_input
            || !rules.is_empty()
            || key_pattern.is_some()
            || fields.iter().any(|f| !f.checks.is_empty())
            || extra.as_ref().is_some_and(|e| !e.checks.is_empty());
        self.push_type(TypeDef {
            name: name.to_owned(),
            docs,
            body: Body::Struct(Struct {
                fields,
                extra,
                is_input,
                deny_unknown,
                key_pattern: key_pattern.clone(),
                rules,
            }),
            loc: s.loc.clone(),
            role,
            validates,
        });
    }

    /// A node, or the def it refers to (not a file's root).
    fn resolved_def<'s>(&'s self, s: &'s Schema) -> &'s Schema {
        match &s.kind {
            Kind::Ref(i) if !self.model.defs[*i].pointer.is_empty() => &self.model.defs[*i].schema,
            _ => s,
        }
    }

    /// A node, or the def it refers to when that def is used inline (a plain shape).
    fn resolved<'s>(&'s self, s: &'s Schema) -> &'s Schema {
        let mut s = s;
        for _ in 0..64 {
            match &s.kind {
                Kind::Ref(i) if !def_is_type(&self.model.defs[*i]) => {
                    s = &self.model.defs[*i].schema;
                }
                _ => break,
            }
        }
        s
    }

    /// A string without constraints or format: the items of a file list that say nothing
    /// more themselves.
    fn plain_string(&self, s: &Schema) -> bool {
        let s = self.resolved(s);
        s.rules.is_empty()
            && !s.nullable
            && matches!(
                &s.kind,
                Kind::String {
                    min_len: None,
                    max_len: None,
                    pattern: None,
                    format,
                } if format.is_none() || is_uri_format(format.as_deref())
            )
    }

    /// The Rust type of a node, generating its named type when it needs one.
    fn ty(&mut self, s: &Schema, role: Role) -> Ty {
        match &s.kind {
            Kind::Any | Kind::Typeless(_) => Ty::Value,
            Kind::Bool => Ty::Bool,
            Kind::BoolConst(_) => Ty::Bool,
            Kind::Integer(b) => Ty::Int(IntWidth::for_bounds(b)),
            Kind::Number(_) => Ty::F64,
            Kind::String {
                format,
                min_len,
                max_len,
                pattern,
            } => {
                let uri = is_uri_format(format.as_deref());
                let constrained = min_len.is_some() || max_len.is_some() || pattern.is_some();
                match role {
                    Role::Output if uri => Ty::Url,
                    // A file field whose text is constrained stays a string: those
                    // constraints speak of the text, not of a file.
                    Role::Input if uri && !constrained => Ty::File,
                    _ => Ty::String,
                }
            }
            Kind::Array { items, format, .. } => {
                let files = is_uri_list_format(format.as_deref());
                let item = match items {
                    Some(items) if files && role == Role::Input && self.plain_string(items) => {
                        Ty::File
                    }
                    Some(items) => self.ty(items, role),
                    None if files => {
                        if role == Role::Output {
                            Ty::Url
                        } else {
                            Ty::File
                        }
                    }
                    None => Ty::Value,
                };
                Ty::Vec(Box::new(item))
            }
            Kind::Map { values, .. } => Ty::Map(Box::new(self.ty(values, role))),
            Kind::Object { props, extra, .. } if props.is_empty() => match extra {
                Some(e) => Ty::Map(Box::new(self.ty(e, role))),
                None => Ty::Map(Box::new(Ty::Value)),
            },
            Kind::Ref(i) => {
                let i = *i;
                let def = &self.model.defs[i];
                if def_is_type(def) {
                    let name = self.def_names[i].clone();
                    let validates = if def.pointer.is_empty() {
                        def.role == Role::Input || self.def_validates[i]
                    } else {
                        self.def_validates[i]
                    };
                    self.def_type(i);
                    let named = Ty::Named { name, validates };
                    if self.recursive.contains(&i) {
                        Ty::Box(Box::new(named))
                    } else {
                        named
                    }
                } else if self.recursive.contains(&i) {
                    // Reported by `check_plain_recursion`.
                    Ty::Value
                } else {
                    let schema = def.schema.clone();
                    self.ty(&schema, def.role)
                }
            }
            Kind::Object { .. } | Kind::StrEnum(_) | Kind::IntEnum(_) | Kind::Union(_) => {
                let name = self.name_of(s);
                if !self.built.contains_key(&name) {
                    self.named_type(&name, s, role);
                }
                let validates = self.built.get(&name).copied().unwrap_or(false);
                Ty::Named { name, validates }
            }
        }
    }

    fn checks(&self, s: &Schema, ty: &Ty) -> Checks {
        let mut c = Checks {
            rules: self.rule_checks(s),
            ..Checks::default()
        };
        let s = match &s.kind {
            Kind::Ref(i) if !def_is_type(&self.model.defs[*i]) && !self.recursive.contains(i) => {
                let inner = self.checks(&self.model.defs[*i].schema, ty);
                c.rules.extend(inner.rules.clone());
                return Checks {
                    rules: c.rules,
                    ..inner
                };
            }
            _ => s,
        };
        match &s.kind {
            // A boolean constant (`const`, a one-value `enum`) is a `bool`: the other value
            // is refused as a rule.
            Kind::BoolConst(b) => c
                .rules
                .push(RuleCheck::Not(Pred::OneOf(vec![Literal::Bool(!b)]))),
            Kind::Integer(b) if has_bounds(b) => c.int = Some(b.clone()),
            Kind::Number(b) if has_bounds(b) => c.num = Some(b.clone()),
            Kind::String {
                min_len,
                max_len,
                pattern,
                format,
            } => {
                c.len = Limits {
                    min: *min_len,
                    max: *max_len,
                };
                c.pattern = pattern.clone();
                if ty.unboxed() == &Ty::File {
                    c.file = Some(file_check(format.as_deref(), s.file_size));
                }
            }
            Kind::Typeless(t) => typeless_checks(&mut c, t),
            Kind::Array {
                items,
                min_items,
                max_items,
                unique,
                format,
            } => {
                c.count = Limits {
                    min: *min_items,
                    max: *max_items,
                };
                c.unique = *unique;
                if let Ty::Vec(item_ty) = ty.unboxed() {
                    let mut each = match items {
                        Some(items) => self.checks(items, item_ty),
                        None => Checks::default(),
                    };
                    if item_ty.unboxed() == &Ty::File {
                        // The list's `format` and `validations` speak of each file; the
                        // items' own, when they have them, win.
                        let own = items.as_deref().map(|i| self.resolved(i));
                        let item_format = own.and_then(|i| match &i.kind {
                            Kind::String { format, .. } => format.clone(),
                            _ => None,
                        });
                        let list_format = format.as_deref().map(|f| f.trim_end_matches('s'));
                        let size = own.and_then(|i| i.file_size).or(s.file_size);
                        each.file = Some(file_check(item_format.as_deref().or(list_format), size));
                    }
                    if !each.is_empty() {
                        c.each = Some(Box::new(each));
                    }
                }
            }
            Kind::Map {
                values,
                min,
                max,
                key_pattern,
            } => {
                c.props = Limits {
                    min: *min,
                    max: *max,
                };
                c.key_pattern = key_pattern.clone();
                if let Ty::Map(value_ty) = ty {
                    let each = self.checks(values, value_ty);
                    if !each.is_empty() {
                        c.each = Some(Box::new(each));
                    }
                }
            }
            Kind::Object {
                props,
                extra: Some(e),
                key_pattern,
            } if props.is_empty() => {
                c.key_pattern = key_pattern.clone();
                if let Ty::Map(value_ty) = ty {
                    let each = self.checks(e, value_ty);
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
        c
    }

    /// The validation-only rules of a node, as predicates. A rule that refers to itself
    /// through refs, or that is too large to check, is a diagnostic (it is never silently
    /// dropped).
    fn rule_checks(&self, s: &Schema) -> Vec<RuleCheck> {
        if s.rules.is_empty() {
            return Vec::new();
        }
        let mut cx = PredCx {
            stack: Vec::new(),
            budget: 4096,
            error: None,
        };
        let rules = s
            .rules
            .iter()
            .map(|r| self.rule_check(r, &mut cx))
            .collect();
        match cx.error {
            // Graceful mode: the rules are left out (checking part of them could refuse
            // what the schema allows).
            Some(e) if self.model.mode == crate::Mode::Graceful => {
                self.late_warnings
                    .borrow_mut()
                    .push((s.loc.clone(), format!("{e}: not checked client-side")));
                Vec::new()
            }
            Some(e) => {
                self.late_errors.borrow_mut().push((s.loc.clone(), e));
                Vec::new()
            }
            None => rules,
        }
    }

    fn rule_check(&self, r: &normalize::Rule, cx: &mut PredCx) -> RuleCheck {
        match r {
            normalize::Rule::Not(n) => RuleCheck::Not(simplify(self.pred(n, cx))),
            normalize::Rule::Condition {
                test,
                then,
                otherwise,
            } => RuleCheck::Condition {
                test: simplify(self.pred(test, cx)),
                then: then
                    .as_ref()
                    .map_or(Pred::True, |t| simplify(self.pred(t, cx))),
                otherwise: otherwise
                    .as_ref()
                    .map_or(Pred::True, |e| simplify(self.pred(e, cx))),
            },
        }
    }

    /// What an object's keys outside `known` must be: none when closed, else matching the
    /// key pattern, with values matching `extra`.
    fn others(
        &self,
        known: Vec<String>,
        extra: Option<&Schema>,
        key_pattern: &Option<String>,
        cx: &mut PredCx,
    ) -> Option<Pred> {
        let each = match extra {
            None => Pred::False,
            Some(e) => self.pred(e, cx),
        };
        if each == Pred::True && key_pattern.is_none() {
            return None;
        }
        Some(Pred::Others {
            known,
            pattern: key_pattern.clone(),
            each: Box::new(each),
        })
    }

    /// Whether a JSON value matches `s`, as a predicate.
    fn pred(&self, s: &Schema, cx: &mut PredCx) -> Pred {
        if cx.error.is_some() {
            return Pred::True;
        }
        if cx.budget == 0 {
            cx.error = Some(
                "the schemas of `not`/`if`/`then`/`else` here are too large to check (over 4096 nodes)"
                    .to_owned(),
            );
            return Pred::True;
        }
        cx.budget -= 1;
        let mut all = Vec::new();
        let typed = |t: JsonType, rest: Vec<Pred>| {
            let mut v = vec![Pred::Type(t)];
            v.extend(rest);
            Pred::All(v)
        };
        let base = match &s.kind {
            Kind::Any => Pred::True,
            Kind::Typeless(t) => {
                let mut c = Checks::default();
                typeless_checks(&mut c, t);
                Pred::All(check_preds(&c))
            }
            Kind::Bool => Pred::Type(JsonType::Bool),
            Kind::BoolConst(b) => Pred::OneOf(vec![Literal::Bool(*b)]),
            Kind::Integer(b) => typed(JsonType::Integer, vec![Pred::Bounds(b.clone())]),
            Kind::Number(b) => typed(JsonType::Number, vec![Pred::Bounds(b.clone())]),
            Kind::String {
                min_len,
                max_len,
                pattern,
                ..
            } => {
                let mut v = vec![Pred::Len(Limits {
                    min: *min_len,
                    max: *max_len,
                })];
                v.extend(pattern.iter().map(|p| Pred::Pattern(p.clone())));
                typed(JsonType::String, v)
            }
            Kind::StrEnum(vs) => Pred::OneOf(vs.iter().map(|v| Literal::Str(v.clone())).collect()),
            Kind::IntEnum(vs) => Pred::OneOf(vs.iter().map(|v| Literal::Int(*v)).collect()),
            Kind::Array {
                items,
                min_items,
                max_items,
                unique,
                ..
            } => {
                let mut v = vec![Pred::Items(Limits {
                    min: *min_items,
                    max: *max_items,
                })];
                if let Some(items) = items {
                    v.push(Pred::Each(Box::new(self.pred(items, cx))));
                }
                if *unique {
                    v.push(Pred::Unique);
                }
                typed(JsonType::Array, v)
            }
            Kind::Object {
                props,
                extra,
                key_pattern,
            } => {
                let mut v = Vec::new();
                for p in props {
                    if p.required {
                        v.push(Pred::Has(p.name.clone()));
                    }
                    let inner = self.pred(&p.schema, cx);
                    if inner != Pred::True {
                        v.push(Pred::Prop(p.name.clone(), Box::new(inner)));
                    }
                }
                let known = props.iter().map(|p| p.name.clone()).collect();
                v.extend(self.others(known, extra.as_deref(), key_pattern, cx));
                typed(JsonType::Object, v)
            }
            Kind::Map {
                values,
                min,
                max,
                key_pattern,
            } => {
                let mut v = vec![Pred::Props(Limits {
                    min: *min,
                    max: *max,
                })];
                v.extend(self.others(Vec::new(), Some(values), key_pattern, cx));
                typed(JsonType::Object, v)
            }
            Kind::Ref(i) => {
                if cx.stack.contains(i) {
                    cx.error = Some(format!(
                        "`not`/`if`/`then`/`else` here refers to #{} recursively; recursive rules are not supported",
                        self.model.defs[*i].pointer
                    ));
                    return Pred::True;
                }
                cx.stack.push(*i);
                let p = self.pred(&self.model.defs[*i].schema, cx);
                cx.stack.pop();
                p
            }
            Kind::Union(vs) => Pred::Any(vs.iter().map(|v| self.pred(v, cx)).collect()),
        };
        let base = if s.nullable {
            Pred::Any(vec![Pred::Type(JsonType::Null), base])
        } else {
            base
        };
        all.push(base);
        for r in &s.rules {
            let r = self.rule_check(r, cx);
            all.push(match r {
                RuleCheck::Not(p) => Pred::Not(Box::new(p)),
                RuleCheck::Condition {
                    test,
                    then,
                    otherwise,
                } => Pred::Any(vec![
                    Pred::All(vec![test.clone(), then]),
                    Pred::All(vec![Pred::Not(Box::new(test)), otherwise]),
                ]),
            });
        }
        simplify(Pred::All(all))
    }
}

/// A field or variant whose type would take more than this many bytes inline is boxed.
const MAX_INLINE: usize = 1024;

/// Boxes the fields and variants of types large enough to matter, so that no generated
/// type's size grows with the schema's size: a definition used twice in each of 40 nested
/// levels would otherwise be 2^40 times its own size.
fn box_large_fields(types: &mut [TypeDef]) {
    let index: BTreeMap<String, usize> = types
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut sizes: Vec<Option<usize>> = vec![None; types.len()];
    for i in 0..types.len() {
        type_size(types, &index, &mut sizes, i, 0);
    }
}

/// The estimated inline size of type `i`, boxing its large members on the way (memoized;
/// recursion already goes through boxes, so it stops there).
fn type_size(
    types: &mut [TypeDef],
    index: &BTreeMap<String, usize>,
    sizes: &mut Vec<Option<usize>>,
    i: usize,
    depth: usize,
) -> usize {
    if let Some(n) = sizes[i] {
        return n;
    }
    if depth > 256 {
        return 8;
    }
    // Placeholder while in progress (a cycle without a box cannot be generated anyway).
    sizes[i] = Some(8);
    let mut member_tys: Vec<Ty> = match &types[i].body {
        Body::Struct(st) => st.fields.iter().map(|f| f.ty.clone()).collect(),
        Body::Union { variants, .. } => variants.iter().map(|v| v.ty.clone()).collect(),
        Body::StrEnum { .. } | Body::IntEnum { .. } => Vec::new(),
    };
    let mut total = 0;
    let mut largest = 0;
    for ty in &mut member_tys {
        let n = ty_size(types, index, sizes, ty, depth + 1);
        let n = if n > MAX_INLINE {
            *ty = Ty::Box(Box::new(ty.clone()));
            8
        } else {
            n
        };
        total += n + 8;
        largest = largest.max(n);
    }
    let size = match &mut types[i].body {
        Body::Struct(st) => {
            for (f, ty) in st.fields.iter_mut().zip(member_tys) {
                f.ty = ty;
            }
            total + 24
        }
        Body::Union { variants, .. } => {
            for (v, ty) in variants.iter_mut().zip(member_tys) {
                v.ty = ty;
            }
            largest + 8
        }
        _ => 8,
    };
    sizes[i] = Some(size);
    size
}

fn ty_size(
    types: &mut [TypeDef],
    index: &BTreeMap<String, usize>,
    sizes: &mut Vec<Option<usize>>,
    ty: &Ty,
    depth: usize,
) -> usize {
    match ty {
        Ty::Bool => 1,
        Ty::Int(_) | Ty::F64 | Ty::Box(_) => 8,
        Ty::String | Ty::Vec(_) | Ty::Map(_) => 24,
        Ty::Url => 88,
        Ty::File => 56,
        Ty::Value => 32,
        Ty::Option(inner) => 8 + ty_size(types, index, sizes, inner, depth),
        Ty::Named { name, .. } => match index.get(name) {
            Some(&j) => type_size(types, index, sizes, j, depth),
            None => 8,
        },
    }
}

/// The state of turning one node's rules into predicates.
struct PredCx {
    /// The defs being expanded (a ref back to one of them is a recursion).
    stack: Vec<usize>,
    /// Predicate nodes still allowed.
    budget: usize,
    /// Why the rules cannot be checked.
    error: Option<String>,
}

/// The checks of constraints without a type, each for its own JSON type.
fn typeless_checks(c: &mut Checks, t: &Typeless) {
    if has_bounds(&t.num) {
        c.num = Some(t.num.clone());
    }
    c.len = Limits {
        min: t.min_len,
        max: t.max_len,
    };
    c.pattern = t.pattern.clone();
    c.count = Limits {
        min: t.min_items,
        max: t.max_items,
    };
    c.unique = t.unique;
    c.props = Limits {
        min: t.min_props,
        max: t.max_props,
    };
}

/// The predicates of value checks on any JSON value (each true for other JSON types).
fn check_preds(c: &Checks) -> Vec<Pred> {
    let mut v = Vec::new();
    if let Some(b) = &c.num {
        v.push(Pred::Bounds(b.clone()));
    }
    if !c.len.is_empty() {
        v.push(Pred::Len(c.len));
    }
    if let Some(p) = &c.pattern {
        v.push(Pred::Pattern(p.clone()));
    }
    if !c.count.is_empty() {
        v.push(Pred::Items(c.count));
    }
    if !c.props.is_empty() {
        v.push(Pred::Props(c.props));
    }
    v
}

/// Flattens nested `All`s and drops `True`s.
fn simplify(p: Pred) -> Pred {
    match p {
        // A limit that limits nothing holds for every value.
        Pred::Len(l) | Pred::Items(l) | Pred::Props(l) if l.min.is_none() && l.max.is_none() => {
            Pred::True
        }
        Pred::Bounds(b) if !has_bounds(&b) => Pred::True,
        Pred::All(v) => simplify_list(v, true),
        Pred::Any(v) => simplify_list(v, false),
        Pred::Not(p) => match simplify(*p) {
            Pred::True => Pred::False,
            Pred::False => Pred::True,
            Pred::Not(inner) => *inner,
            other => Pred::Not(Box::new(other)),
        },
        Pred::Prop(k, p) => match simplify(*p) {
            Pred::True => Pred::True,
            p => Pred::Prop(k, Box::new(p)),
        },
        Pred::Each(p) => match simplify(*p) {
            Pred::True => Pred::True,
            p => Pred::Each(Box::new(p)),
        },
        Pred::Others {
            known,
            pattern,
            each,
        } => Pred::Others {
            known,
            pattern,
            each: Box::new(simplify(*each)),
        },
        other => other,
    }
}

/// `All` (`all`) or `Any` of `v`, simplified: the neutral member left out, the absorbing one
/// absorbing, nested lists of the same kind flattened, one member standing alone.
fn simplify_list(v: Vec<Pred>, all: bool) -> Pred {
    let (neutral, absorbing) = if all {
        (Pred::True, Pred::False)
    } else {
        (Pred::False, Pred::True)
    };
    let mut out = Vec::new();
    for p in v.into_iter().map(simplify) {
        match p {
            p if p == neutral => {}
            p if p == absorbing => return absorbing,
            Pred::All(inner) if all => out.extend(inner),
            Pred::Any(inner) if !all => out.extend(inner),
            other => out.push(other),
        }
    }
    match (out.len(), all) {
        (0, _) => neutral,
        (1, _) => out.pop().unwrap_or(neutral),
        (_, true) => Pred::All(out),
        (_, false) => Pred::Any(out),
    }
}

/// The object schema an alternative stands for: itself, or the def it refers to.
fn object_of<'s>(defs: &'s [Def], s: &'s Schema) -> Option<&'s Schema> {
    match &s.kind {
        Kind::Object { props, .. } if !props.is_empty() => Some(s),
        Kind::Ref(i) => {
            let d = &defs[*i];
            match &d.schema.kind {
                Kind::Object { props, .. } if !props.is_empty() && !d.pointer.is_empty() => {
                    Some(&d.schema)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// The property that tags every alternative: present and required in each, holding a
/// distinct single string (`const`, one-value enum).
fn discriminator(defs: &[Def], alternatives: &[Schema]) -> Option<(String, Vec<String>)> {
    let objects: Vec<&Schema> = alternatives
        .iter()
        .map(|a| object_of(defs, a))
        .collect::<Option<_>>()?;
    let Kind::Object { props: first, .. } = &objects.first()?.kind else {
        return None;
    };
    'candidates: for candidate in first {
        let mut values = Vec::new();
        for o in &objects {
            let Kind::Object { props, .. } = &o.kind else {
                continue 'candidates;
            };
            let Some(p) = props.iter().find(|p| p.name == candidate.name) else {
                continue 'candidates;
            };
            let kind = match &p.schema.kind {
                Kind::Ref(i) => &defs[*i].schema.kind,
                k => k,
            };
            match kind {
                Kind::StrEnum(v) if v.len() == 1 && p.required && !p.schema.nullable => {
                    if values.contains(&v[0]) {
                        continue 'candidates;
                    }
                    values.push(v[0].clone());
                }
                _ => continue 'candidates,
            }
        }
        return Some((candidate.name.clone(), values));
    }
    None
}

/// An inline object alternative among several, named by the first property it requires
/// that the others do not: `WithMask`.
fn distinguishing_name(defs: &[Def], alt: &Schema, all: &[Schema]) -> Option<String> {
    let required = |s: &Schema| -> Vec<String> {
        match object_of(defs, s).map(|o| &o.kind) {
            Some(Kind::Object { props, .. }) => props
                .iter()
                .filter(|p| p.required)
                .map(|p| p.name.clone())
                .collect(),
            _ => Vec::new(),
        }
    };
    let mine = required(alt);
    let others: Vec<Vec<String>> = all
        .iter()
        .filter(|a| a.loc != alt.loc)
        .map(required)
        .collect();
    let pick = mine
        .iter()
        .find(|p| others.iter().all(|o| !o.contains(p)))
        .or(mine.first())?;
    Some(names::union_object_variant(pick))
}

/// The word naming each alternative of a union, for its variant and its own type: the
/// discriminator's value when the union is tagged, the property that tells an object apart
/// when there are several objects, else the shape (`Preset`, `Object`, ...).
fn union_words(defs: &[Def], alternatives: &[Schema]) -> Vec<String> {
    if let Some((_, values)) = discriminator(defs, alternatives) {
        return values.iter().map(|v| names::variant(v)).collect();
    }
    let objects = alternatives
        .iter()
        .filter(|a| object_of(defs, a).is_some())
        .count();
    alternatives
        .iter()
        .map(|alt| {
            let shape = shape_of(alt);
            if shape == Shape::Object && objects > 1 {
                distinguishing_name(defs, alt, alternatives)
                    .unwrap_or_else(|| shape.type_word().to_owned())
            } else {
                shape.type_word().to_owned()
            }
        })
        .collect()
}

/// Strips the words that the names of def-named variants share (`ImageSizePreset`,
/// `ImageSizeCustom` → `Preset`, `Custom`), when every name keeps a word.
fn strip_common_prefix(ranked: &mut [(Shape, usize, usize, Variant)], from_defs: &[bool]) {
    let named: Vec<usize> = (0..ranked.len()).filter(|&i| from_defs[i]).collect();
    if named.len() < 2 {
        return;
    }
    let words = |s: &str| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in s.chars() {
            if c.is_ascii_uppercase() || out.is_empty() {
                out.push(String::new());
            }
            if let Some(last) = out.last_mut() {
                last.push(c);
            }
        }
        out
    };
    let split: Vec<Vec<String>> = named.iter().map(|&i| words(&ranked[i].3.name)).collect();
    let mut common = 0;
    while split.iter().all(|w| w.len() > common + 1)
        && split.iter().all(|w| w[common] == split[0][common])
    {
        common += 1;
    }
    if common == 0 {
        return;
    }
    for (&i, w) in named.iter().zip(&split) {
        let rest: String = w[common..].concat();
        if names::is_ident(&rest) {
            ranked[i].3.name = rest;
        }
    }
}

fn has_bounds(b: &Bounds) -> bool {
    b.min.is_some()
        || b.max.is_some()
        || b.exclusive_min.is_some()
        || b.exclusive_max.is_some()
        || b.multiple_of.is_some()
}

fn collect_slots(
    defs: &[Def],
    s: &Schema,
    parent_short: &str,
    parent_full: &str,
    slots: &mut Vec<Slot>,
) {
    let visit = |child: &Schema, word: &str, slots: &mut Vec<Slot>| {
        let short = names::nested_type(parent_short, word);
        let full = names::nested_type(parent_full, word);
        if needs_type(child) {
            slots.push(Slot {
                loc: child.loc.clone(),
                short: short.clone(),
                full: full.clone(),
            });
        }
        collect_slots(defs, child, &short, &full, slots);
    };
    match &s.kind {
        Kind::Object { props, extra, .. } => {
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
            for (alt, word) in alternatives.iter().zip(union_words(defs, alternatives)) {
                visit(alt, &word, slots);
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
        Kind::Any | Kind::Typeless(_) => Shape::Any,
    }
}

/// What a file field takes, and its size limit.
fn push_file_doc(docs: &mut Vec<String>, ty: &Ty, checks: &Checks) {
    let (file, each) = match ty.unboxed() {
        Ty::File => (checks.file.as_ref(), false),
        Ty::Vec(item) if item.unboxed() == &Ty::File => {
            (checks.each.as_ref().and_then(|e| e.file.as_ref()), true)
        }
        _ => return,
    };
    let what = if each { "Each file" } else { "A file" };
    let mut line =
        format!("{what}: a URL, or a local path or bytes sent as a `data:` URI (`FileInput`).");
    if let Some(max) = file.and_then(|f| f.max_mb) {
        let op = if file.is_some_and(|f| f.inclusive) {
            "at most"
        } else {
            "smaller than"
        };
        line.push_str(&format!(" Local files must be {op} {max} MB."));
    }
    docs.push(String::new());
    docs.push(line);
}

/// The size rule of a file input of this `format` (`image_uri`, ...).
fn file_check(format: Option<&str>, size: Option<normalize::FileSize>) -> FileCheck {
    let kind = match format {
        Some("image_uri") => "Image",
        Some("video_uri") => "Video",
        Some("audio_uri") => "Audio",
        _ => "Any",
    };
    FileCheck {
        kind,
        max_mb: size.map(|s| s.max_mb),
        inclusive: size.is_some_and(|s| s.inclusive),
    }
}

pub(crate) fn is_uri_format(f: Option<&str>) -> bool {
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
