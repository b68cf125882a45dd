//! What changed between two versions of a schema folder, for users of the generated API.
//!
//! The comparison runs on the normalized schemas ([`normalize`]), never on the JSON text:
//! `"type": "float"` and `"type": "number"`, reordered keywords, `type: [T, "null"]` and
//! `anyOf [T, null]`, a `$ref` and the definition written inline all compare equal, so a
//! pure reformat reports nothing.
//!
//! Every change is classified ([`Class`]):
//! - breaking: a field removed, a new required field, a field made required (or no longer
//!   required: `Input::new`'s parameters change), a type changed (the generated Rust type
//!   too: an integer bound that moves the field from `u8` to `u16`), an enum value removed,
//!   a bound or length narrowed, `null` no longer accepted, a pattern or rule added, the
//!   order of `Input::new`'s parameters changed;
//! - compatible: a new optional field, a new enum value, a bound widened, a default changed,
//!   a model added;
//! - docs only: titles, descriptions, examples, the order of optional fields;
//! - removed: a model the new folder no longer has.
//!
//! In an output schema the direction of fields turns: a new field (required or not) is
//! compatible, since the client only reads it.
//!
//! ```
//! use runcomfy_codegen::diff::{self, Class};
//! use serde_json::json;
//! let old = json!({"type": "object", "properties": {
//!     "duration": {"type": "integer", "enum": [5, 10, 15]},
//!     "prompt": {"type": "string", "description": "what to draw"}}});
//! let new = json!({"type": "object", "required": ["prompt"], "properties": {
//!     "duration": {"type": "integer", "enum": [5, 10]},
//!     "prompt": {"type": "string", "description": "What to draw."}}});
//! let report = diff::compare(
//!     &[diff::files("acme/draw", old, None)],
//!     &[diff::files("acme/draw", new, None)],
//! ).unwrap();
//! let classes: Vec<Class> = report.models[0].changes.iter().map(|c| c.class).collect();
//! assert_eq!(classes, [Class::Breaking, Class::Breaking, Class::Docs]);
//! assert_eq!(report.summary().line(), "summary: 2 breaking, 0 compatible, 1 docs only, 0 removed (1 model changed, 0 unchanged)");
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::diag::Diagnostics;
use crate::ir::IntWidth;
use crate::load::ModelFiles;
use crate::normalize::{self, Bounds, Kind, Model, Role, Schema, Typeless};

/// How a change affects users of the generated API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Code or requests that worked may stop working.
    Breaking,
    /// Everything that worked still works.
    Compatible,
    /// Only the documentation changes.
    Docs,
    /// The model is gone.
    Removed,
}

impl Class {
    /// The word the reports use: `breaking`, `compatible`, `docs`, `removed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Breaking => "breaking",
            Class::Compatible => "compatible",
            Class::Docs => "docs",
            Class::Removed => "removed",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change of one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Its class.
    pub class: Class,
    /// Where, as a path of wire names: `input.duration`, `input.loras[].scale`,
    /// `output.video`, `input` for the schema's root, empty for the model itself.
    pub path: String,
    /// What, lowercase, no trailing period.
    pub what: String,
}

/// What happened to a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Only in the new folder.
    Added,
    /// Only in the old folder.
    Removed,
    /// In both, with changes.
    Changed,
}

impl Status {
    /// `added`, `removed` or `changed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Added => "added",
            Status::Removed => "removed",
            Status::Changed => "changed",
        }
    }
}

/// The changes of one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelChanges {
    /// The model id.
    pub id: String,
    /// Added, removed or changed.
    pub status: Status,
    /// The changes, breaking first, then in schema order.
    pub changes: Vec<Change>,
}

/// The changes between two schema folders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Every model with a change, sorted by id.
    pub models: Vec<ModelChanges>,
    /// How many models are in both folders without a change.
    pub unchanged: usize,
}

/// The counts of a [`Report`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Breaking changes.
    pub breaking: usize,
    /// Compatible changes (an added model counts as one).
    pub compatible: usize,
    /// Documentation-only changes.
    pub docs: usize,
    /// Removed models.
    pub removed: usize,
    /// Models added.
    pub added: usize,
    /// Models in both folders, with changes.
    pub changed: usize,
    /// Models in both folders, without a change.
    pub unchanged: usize,
}

impl Summary {
    /// The summary line of the text report.
    pub fn line(&self) -> String {
        let mut models = Vec::new();
        if self.added > 0 {
            models.push(format!("{} added", self.added));
        }
        if self.removed > 0 {
            models.push(format!("{} removed", self.removed));
        }
        models.push(format!(
            "{} {} changed",
            self.changed,
            if self.changed == 1 { "model" } else { "models" }
        ));
        models.push(format!("{} unchanged", self.unchanged));
        format!(
            "summary: {} breaking, {} compatible, {} docs only, {} removed ({})",
            self.breaking,
            self.compatible,
            self.docs,
            self.removed,
            models.join(", ")
        )
    }
}

impl Report {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// The counts.
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            unchanged: self.unchanged,
            ..Summary::default()
        };
        for m in &self.models {
            match m.status {
                Status::Added => s.added += 1,
                Status::Removed => s.removed += 1,
                Status::Changed => s.changed += 1,
            }
            for c in &m.changes {
                match c.class {
                    Class::Breaking => s.breaking += 1,
                    Class::Compatible => s.compatible += 1,
                    Class::Docs => s.docs += 1,
                    Class::Removed => {}
                }
            }
        }
        s
    }

    /// The text report: per model a line `<id>: <status>`, then one indented line per
    /// change (`breaking: input.duration: enum value 15 removed`), and the summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for m in &self.models {
            let _ = writeln!(out, "{}: {}", m.id, m.status.as_str());
            for c in &m.changes {
                if c.path.is_empty() {
                    let _ = writeln!(out, "  {}: {}", c.class, c.what);
                } else {
                    let _ = writeln!(out, "  {}: {}: {}", c.class, c.path, c.what);
                }
            }
        }
        out.push_str(&self.summary().line());
        out.push('\n');
        out
    }

    /// The JSON report, for tools:
    /// `{"models": [{"id", "status", "changes": [{"class", "path", "change"}]}], "summary": {...}}`.
    pub fn to_json(&self) -> Value {
        let s = self.summary();
        json!({
            "models": self.models.iter().map(|m| json!({
                "id": m.id,
                "status": m.status.as_str(),
                "changes": m.changes.iter().map(|c| json!({
                    "class": c.class.as_str(),
                    "path": c.path,
                    "change": c.what,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "summary": {
                "breaking": s.breaking,
                "compatible": s.compatible,
                "docs": s.docs,
                "removed": s.removed,
                "added": s.added,
                "changed": s.changed,
                "unchanged": s.unchanged,
            },
        })
    }
}

/// A model's files as values (such as a catalog entry's schemas); diagnostics name
/// `<id>/input.json` and `<id>/output.json`.
pub fn files(id: &str, input: Value, output: Option<Value>) -> ModelFiles {
    let folder = PathBuf::from(id);
    ModelFiles {
        id: id.to_owned(),
        input: (folder.join("input.json"), input),
        output: output.map(|o| (folder.join("output.json"), o)),
    }
}

/// Compares two schema folders (`<model_id>/input.json`, optional `output.json`).
/// A model of either folder that does not load or normalize is a diagnostic.
pub fn compare_dirs(old: &Path, new: &Path) -> Result<Report, Diagnostics> {
    let mut diags = Diagnostics::default();
    let old = crate::load::load(old, &mut diags);
    let new = crate::load::load(new, &mut diags);
    let report = compare(&old.models, &new.models);
    match report {
        Ok(report) => diags.check(report),
        Err(more) => {
            diags.extend(more);
            Err(diags)
        }
    }
}

/// Compares two sets of models. Every model of either side must normalize; the problems
/// of those that do not are returned together.
pub fn compare(old: &[ModelFiles], new: &[ModelFiles]) -> Result<Report, Diagnostics> {
    let mut diags = Diagnostics::default();
    let old = normalize_all(old, &mut diags);
    let new = normalize_all(new, &mut diags);
    diags.check(compare_normalized(&old, &new))
}

/// One normalized model with the files it came from (for annotations the normalized tree
/// does not keep: `examples`, `validations`, rules as written).
#[derive(Debug, Clone)]
pub struct Side {
    /// The normalized model.
    pub model: Model,
    /// `input.json` as written.
    pub input: Value,
    /// `output.json` as written.
    pub output: Option<Value>,
}

/// Normalizes each model, recording the problems of those that fail.
pub fn normalize_all(models: &[ModelFiles], diags: &mut Diagnostics) -> Vec<Side> {
    let (sides, more) = crate::par_map(models, |files, diags| {
        normalize::normalize(files, diags).map(|model| Side {
            model,
            input: files.input.1.clone(),
            output: files.output.as_ref().map(|(_, v)| v.clone()),
        })
    });
    diags.extend(more);
    sides.into_iter().flatten().collect()
}

/// Compares normalized models by id.
pub fn compare_normalized(old: &[Side], new: &[Side]) -> Report {
    let old: BTreeMap<&str, &Side> = old.iter().map(|s| (s.model.id.as_str(), s)).collect();
    let new: BTreeMap<&str, &Side> = new.iter().map(|s| (s.model.id.as_str(), s)).collect();
    let ids: BTreeSet<&str> = old.keys().chain(new.keys()).copied().collect();
    let mut report = Report::default();
    for id in ids {
        let (status, changes) = match (old.get(id), new.get(id)) {
            (Some(o), Some(n)) => {
                let changes = compare_model(o, n);
                if changes.is_empty() {
                    report.unchanged += 1;
                    continue;
                }
                (Status::Changed, changes)
            }
            (None, Some(_)) => (
                Status::Added,
                vec![Change {
                    class: Class::Compatible,
                    path: String::new(),
                    what: "model added".to_owned(),
                }],
            ),
            (Some(_), None) => (
                Status::Removed,
                vec![Change {
                    class: Class::Removed,
                    path: String::new(),
                    what: "model removed".to_owned(),
                }],
            ),
            (None, None) => continue,
        };
        report.models.push(ModelChanges {
            id: id.to_owned(),
            status,
            changes,
        });
    }
    report
}

/// The changes between two versions of one model, breaking first, then in schema order.
pub fn compare_model(old: &Side, new: &Side) -> Vec<Change> {
    let mut w = Walker {
        old,
        new,
        role: Role::Input,
        changes: Vec::new(),
        seen: BTreeSet::new(),
    };
    w.node("input", &old.model.input, &new.model.input, Place::Root);
    match (&old.model.output, &new.model.output) {
        (Some(o), Some(n)) => {
            w.role = Role::Output;
            w.node("output", o, n, Place::Root);
        }
        (None, Some(_)) => w.push(
            Class::Breaking,
            "output",
            "output schema added: `Output` becomes a type of its own",
        ),
        (Some(_), None) => w.push(
            Class::Breaking,
            "output",
            "output schema removed: `Output` becomes the documented media shape",
        ),
        (None, None) => {}
    }
    let mut changes = w.changes;
    changes.sort_by_key(|c| c.class);
    changes
}

/// Where a node sits, for what its changes mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The root of a file.
    Root,
    /// A field of an object; `required` on the old side.
    Field { required: bool },
    /// Anything else (items, map values, union alternatives).
    Inner,
}

struct Walker<'a> {
    old: &'a Side,
    new: &'a Side,
    role: Role,
    changes: Vec<Change>,
    /// Pairs of definitions already compared (recursive schemas end here).
    seen: BTreeSet<(usize, usize)>,
}

impl Walker<'_> {
    fn push(&mut self, class: Class, path: &str, what: impl Into<String>) {
        self.changes.push(Change {
            class,
            path: path.to_owned(),
            what: what.into(),
        });
    }

    /// The raw JSON of a node, for the annotations the normalized tree drops.
    fn raw<'v>(&self, side: &'v Side, s: &Schema) -> Option<&'v Value> {
        let file = match self.role {
            Role::Input => &side.input,
            Role::Output => side.output.as_ref()?,
        };
        file.pointer(&s.loc.pointer)
    }

    fn node(&mut self, path: &str, o: &Schema, n: &Schema, place: Place) {
        let (ro, o_def) = resolve(&self.old.model, o);
        let (rn, n_def) = resolve(&self.new.model, n);
        self.annotations(path, (o, ro), (n, rn), place);
        if let (Some(i), Some(j)) = (o_def, n_def) {
            let (ok, nk) = (&self.old.model.defs[i].key, &self.new.model.defs[j].key);
            if ok != nk && !ok.is_empty() && !nk.is_empty() {
                self.push(
                    Class::Breaking,
                    path,
                    format!("definition `{ok}` replaced by `{nk}`: the Rust type's name changes"),
                );
            }
            // A recursive schema: this pair of definitions is compared once.
            if !self.seen.insert((i, j)) {
                return;
            }
        }
        self.nullability(
            path,
            o.nullable || ro.nullable,
            n.nullable || rn.nullable,
            place,
        );
        self.kinds(path, ro, rn, place);
        self.rules(path, (o, ro), (n, rn));
    }

    /// A keyword of a node as written, on the node or else on the definition it refers to.
    fn raw_key<'v>(
        &self,
        side: &'v Side,
        (s, r): (&Schema, &Schema),
        key: &str,
    ) -> Option<&'v Value> {
        self.raw(side, s)
            .and_then(|v| v.get(key))
            .or_else(|| self.raw(side, r).and_then(|v| v.get(key)))
    }

    fn annotations(
        &mut self,
        path: &str,
        o: (&Schema, &Schema),
        n: (&Schema, &Schema),
        place: Place,
    ) {
        let title = |(s, r): (&Schema, &Schema)| s.title.clone().or_else(|| r.title.clone());
        let description =
            |(s, r): (&Schema, &Schema)| s.description.clone().or_else(|| r.description.clone());
        let default = |(s, r): (&Schema, &Schema)| s.default.clone().or_else(|| r.default.clone());
        let (a, b) = (title(o), title(n));
        if a != b {
            self.push(Class::Docs, path, changed_text("title", &a, &b));
        }
        let (a, b) = (description(o), description(n));
        if a != b {
            self.push(Class::Docs, path, changed_text("description", &a, &b));
        }
        let (a, b) = (default(o), default(n));
        if a != b {
            let what = match (&a, &b) {
                (Some(a), Some(b)) => format!("default changed from {a} to {b}"),
                (None, Some(b)) => format!("default {b} added"),
                (Some(a), None) => format!("default {a} removed"),
                (None, None) => String::new(),
            };
            // A required field is always sent: its default is documentation.
            let class = match place {
                Place::Field { required: true } => Class::Docs,
                _ => Class::Compatible,
            };
            self.push(class, path, what);
        }
        for key in ["examples", "example"] {
            if self.raw_key(self.old, o, key) != self.raw_key(self.new, n, key) {
                self.push(Class::Docs, path, format!("{key} changed"));
            }
        }
        let (a, b) = (
            self.raw_key(self.old, o, "validations"),
            self.raw_key(self.new, n, "validations"),
        );
        if a != b {
            let list = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
            let (a, b) = (list(a), list(b));
            let added = b.iter().filter(|x| !a.contains(x)).count();
            let removed = a.iter().filter(|x| !b.contains(x)).count();
            if added > 0 {
                self.push(
                    Class::Breaking,
                    path,
                    format!("file rules (`validations`): {added} added or changed"),
                );
            } else if removed > 0 {
                self.push(
                    Class::Compatible,
                    path,
                    format!("file rules (`validations`): {removed} removed"),
                );
            }
        }
    }

    fn nullability(&mut self, path: &str, o: bool, n: bool, place: Place) {
        let optional_field = matches!(place, Place::Field { required: false });
        match (o, n) {
            (false, true) if optional_field => {
                self.push(Class::Compatible, path, "now accepts null")
            }
            (false, true) => self.push(
                Class::Breaking,
                path,
                "now nullable: its Rust type becomes an `Option`",
            ),
            (true, false) if optional_field && self.role == Role::Output => {
                self.push(Class::Compatible, path, "no longer null")
            }
            (true, false) => self.push(Class::Breaking, path, "null no longer accepted"),
            _ => {}
        }
    }

    fn rules(&mut self, path: &str, o: (&Schema, &Schema), n: (&Schema, &Schema)) {
        for key in ["not", "if", "then", "else"] {
            let (a, b) = (
                self.raw_key(self.old, o, key),
                self.raw_key(self.new, n, key),
            );
            match (a, b) {
                (None, Some(_)) => self.push(Class::Breaking, path, format!("rule `{key}` added")),
                (Some(_), None) => {
                    self.push(Class::Compatible, path, format!("rule `{key}` removed"))
                }
                (Some(a), Some(b)) if a != b => {
                    self.push(Class::Breaking, path, format!("rule `{key}` changed"))
                }
                _ => {}
            }
        }
    }

    fn kinds(&mut self, path: &str, o: &Schema, n: &Schema, place: Place) {
        let any = Kind::Typeless(Box::default());
        let ok = if matches!(o.kind, Kind::Any) {
            &any
        } else {
            &o.kind
        };
        let nk = if matches!(n.kind, Kind::Any) {
            &any
        } else {
            &n.kind
        };
        match (ok, nk) {
            (Kind::Typeless(a), Kind::Typeless(b)) => self.typeless(path, a, b),
            (Kind::Bool, Kind::Bool) => {}
            (Kind::Integer(a), Kind::Integer(b)) => {
                self.bounds(path, a, b);
                let (wa, wb) = (IntWidth::for_bounds(a), IntWidth::for_bounds(b));
                if wa != wb {
                    self.push(
                        Class::Breaking,
                        path,
                        format!("Rust type changed from {} to {}", wa.as_str(), wb.as_str()),
                    );
                }
            }
            (Kind::Number(a), Kind::Number(b)) => self.bounds(path, a, b),
            (
                Kind::String {
                    min_len: a_min,
                    max_len: a_max,
                    pattern: a_pat,
                    format: a_fmt,
                },
                Kind::String {
                    min_len: b_min,
                    max_len: b_max,
                    pattern: b_pat,
                    format: b_fmt,
                },
            ) => {
                self.limits(
                    path,
                    "minLength",
                    "maxLength",
                    (*a_min, *a_max),
                    (*b_min, *b_max),
                );
                self.pattern(path, "pattern", a_pat, b_pat);
                self.format(path, a_fmt, b_fmt);
            }
            (Kind::StrEnum(a), Kind::StrEnum(b)) => {
                let show = |v: &String| Value::from(v.as_str()).to_string();
                self.enums(path, a, b, show);
            }
            (Kind::IntEnum(a), Kind::IntEnum(b)) => self.enums(path, a, b, i64::to_string),
            (Kind::BoolConst(a), Kind::BoolConst(b)) => {
                if a != b {
                    self.push(
                        Class::Breaking,
                        path,
                        format!("constant changed from {a} to {b}"),
                    );
                }
            }
            (
                Kind::Array {
                    items: a_items,
                    min_items: a_min,
                    max_items: a_max,
                    unique: a_unique,
                    format: a_fmt,
                },
                Kind::Array {
                    items: b_items,
                    min_items: b_min,
                    max_items: b_max,
                    unique: b_unique,
                    format: b_fmt,
                },
            ) => {
                self.limits(
                    path,
                    "minItems",
                    "maxItems",
                    (*a_min, *a_max),
                    (*b_min, *b_max),
                );
                self.flag(path, "uniqueItems", *a_unique, *b_unique);
                self.format(path, a_fmt, b_fmt);
                let item_path = format!("{path}[]");
                match (a_items, b_items) {
                    (Some(a), Some(b)) => self.node(&item_path, a, b, Place::Inner),
                    (None, Some(_)) => {
                        self.push(Class::Breaking, path, "items are typed now (`items` added)")
                    }
                    (Some(_), None) => self.push(
                        Class::Breaking,
                        path,
                        "items are untyped now (`items` removed)",
                    ),
                    (None, None) => {}
                }
            }
            (
                Kind::Object {
                    props: a_props,
                    extra: a_extra,
                    key_pattern: a_keys,
                },
                Kind::Object {
                    props: b_props,
                    extra: b_extra,
                    key_pattern: b_keys,
                },
            ) => {
                self.props(path, a_props, b_props, place == Place::Root);
                match (a_extra, b_extra) {
                    (Some(a), Some(b)) => self.node(&format!("{path}.*"), a, b, Place::Inner),
                    (Some(_), None) => self.push(
                        Class::Breaking,
                        path,
                        "closed: keys it does not name are refused (`additionalProperties: false`)",
                    ),
                    (None, Some(_)) => self.push(
                        Class::Compatible,
                        path,
                        "open: keys it does not name are accepted",
                    ),
                    (None, None) => {}
                }
                self.pattern(path, "key pattern", a_keys, b_keys);
            }
            (
                Kind::Map {
                    values: a_values,
                    min: a_min,
                    max: a_max,
                    key_pattern: a_keys,
                },
                Kind::Map {
                    values: b_values,
                    min: b_min,
                    max: b_max,
                    key_pattern: b_keys,
                },
            ) => {
                self.limits(
                    path,
                    "minProperties",
                    "maxProperties",
                    (*a_min, *a_max),
                    (*b_min, *b_max),
                );
                self.pattern(path, "key pattern", a_keys, b_keys);
                self.node(&format!("{path}.*"), a_values, b_values, Place::Inner);
            }
            (Kind::Union(a), Kind::Union(b)) => self.union(path, a, b),
            (Kind::Ref(_), _) | (_, Kind::Ref(_)) => {
                // `resolve` follows refs; a ref left is a dangling one normalize refused.
            }
            (a, b) => self.push(
                Class::Breaking,
                path,
                format!("type changed from {} to {}", kind_name(a), kind_name(b)),
            ),
        }
    }

    fn props(&mut self, path: &str, a: &[normalize::Prop], b: &[normalize::Prop], file_root: bool) {
        let join = |name: &str| format!("{path}.{name}");
        let input = self.role == Role::Input;
        for p in a {
            match b.iter().find(|q| q.name == p.name) {
                Some(q) => {
                    let here = join(&p.name);
                    match (p.required, q.required) {
                        (false, true) if input => self.push(
                            Class::Breaking,
                            &here,
                            "made required: a new parameter of `Input::new`",
                        ),
                        (true, false) if input => self.push(
                            Class::Breaking,
                            &here,
                            "no longer required: it leaves `Input::new`'s parameters for a setter",
                        ),
                        (false, true) => self.push(
                            Class::Breaking,
                            &here,
                            "always present now: its Rust type loses the `Option`",
                        ),
                        (true, false) => self.push(
                            Class::Breaking,
                            &here,
                            "may be missing now: its Rust type becomes an `Option`",
                        ),
                        _ => {}
                    }
                    self.node(
                        &here,
                        &p.schema,
                        &q.schema,
                        Place::Field {
                            required: p.required && q.required,
                        },
                    );
                }
                None => self.push(Class::Breaking, &join(&p.name), "field removed"),
            }
        }
        for q in b.iter().filter(|q| !a.iter().any(|p| p.name == q.name)) {
            let (class, what) = match (input, q.required) {
                (true, true) => (
                    Class::Breaking,
                    "new required field: a new parameter of `Input::new`",
                ),
                (true, false) => (Class::Compatible, "new optional field"),
                (false, _) => (Class::Compatible, "new field"),
            };
            self.push(class, &join(&q.name), what);
        }
        // Order: required fields are `Input::new`'s parameters, in schema order.
        let common =
            |xs: &[normalize::Prop], ys: &[normalize::Prop], required: bool| -> Vec<String> {
                xs.iter()
                    .filter(|p| !required || p.required)
                    .filter(|p| {
                        ys.iter()
                            .any(|q| q.name == p.name && (!required || q.required))
                    })
                    .map(|p| p.name.clone())
                    .collect()
            };
        if input && file_root && common(a, b, true) != common(b, a, true) {
            self.push(
                Class::Breaking,
                path,
                format!(
                    "`Input::new`'s parameters reordered: ({}) became ({})",
                    common(a, b, true).join(", "),
                    common(b, a, true).join(", ")
                ),
            );
        } else if common(a, b, false) != common(b, a, false) {
            self.push(Class::Docs, path, "field order changed");
        }
    }

    fn union(&mut self, path: &str, a: &[Schema], b: &[Schema]) {
        // Alternatives pair up by shape, in order; the rest were added or removed.
        let mut used = vec![false; b.len()];
        for (i, alt) in a.iter().enumerate() {
            let name = kind_name(&resolve(&self.old.model, alt).0.kind);
            let found = b.iter().enumerate().position(|(j, other)| {
                !used[j] && kind_name(&resolve(&self.new.model, other).0.kind) == name
            });
            match found {
                Some(j) => {
                    used[j] = true;
                    self.node(&format!("{path}|{i}"), alt, &b[j], Place::Inner);
                }
                None => self.push(
                    Class::Breaking,
                    path,
                    format!("alternative {i} ({name}) removed"),
                ),
            }
        }
        for (j, alt) in b.iter().enumerate().filter(|(j, _)| !used[*j]) {
            let name = kind_name(&resolve(&self.new.model, alt).0.kind);
            self.push(
                Class::Compatible,
                path,
                format!("alternative {j} ({name}) added"),
            );
        }
    }

    fn typeless(&mut self, path: &str, a: &Typeless, b: &Typeless) {
        self.bounds(path, &a.num, &b.num);
        self.limits(
            path,
            "minLength",
            "maxLength",
            (a.min_len, a.max_len),
            (b.min_len, b.max_len),
        );
        self.pattern(path, "pattern", &a.pattern, &b.pattern);
        self.limits(
            path,
            "minItems",
            "maxItems",
            (a.min_items, a.max_items),
            (b.min_items, b.max_items),
        );
        self.flag(path, "uniqueItems", a.unique, b.unique);
        self.limits(
            path,
            "minProperties",
            "maxProperties",
            (a.min_props, a.max_props),
            (b.min_props, b.max_props),
        );
    }

    fn bounds(&mut self, path: &str, a: &Bounds, b: &Bounds) {
        self.bound(path, "minimum", a.min, b.min, Edge::Lower);
        self.bound(path, "maximum", a.max, b.max, Edge::Upper);
        self.bound(
            path,
            "exclusiveMinimum",
            a.exclusive_min,
            b.exclusive_min,
            Edge::Lower,
        );
        self.bound(
            path,
            "exclusiveMaximum",
            a.exclusive_max,
            b.exclusive_max,
            Edge::Upper,
        );
        match (a.multiple_of, b.multiple_of) {
            (None, Some(y)) => self.push(
                Class::Breaking,
                path,
                format!("multipleOf {} added", number(y)),
            ),
            (Some(x), None) => self.push(
                Class::Compatible,
                path,
                format!("multipleOf {} removed", number(x)),
            ),
            (Some(x), Some(y)) if x != y => {
                // When y divides x, every multiple of x is one of y: more values pass; any
                // other change refuses some value that passed.
                let wider = (x / y).fract() == 0.0;
                self.push(
                    if wider {
                        Class::Compatible
                    } else {
                        Class::Breaking
                    },
                    path,
                    format!("multipleOf changed from {} to {}", number(x), number(y)),
                );
            }
            _ => {}
        }
    }

    fn bound(&mut self, path: &str, name: &str, a: Option<f64>, b: Option<f64>, side: Edge) {
        let what = match (a, b) {
            (Some(x), Some(y)) if x == y => return,
            (None, None) => return,
            (Some(x), Some(y)) => {
                let narrowed = match side {
                    Edge::Lower => y > x,
                    Edge::Upper => y < x,
                };
                let word = if narrowed { "narrowed" } else { "widened" };
                (
                    narrowed,
                    format!("{name} {word} from {} to {}", number(x), number(y)),
                )
            }
            (None, Some(y)) => (true, format!("{name} {} added", number(y))),
            (Some(x), None) => (false, format!("{name} {} removed", number(x))),
        };
        let class = if what.0 {
            Class::Breaking
        } else {
            Class::Compatible
        };
        self.push(class, path, what.1);
    }

    fn limits(
        &mut self,
        path: &str,
        min_name: &str,
        max_name: &str,
        a: (Option<u64>, Option<u64>),
        b: (Option<u64>, Option<u64>),
    ) {
        let f = |v: Option<u64>| v.map(|v| v as f64);
        self.bound(path, min_name, f(a.0), f(b.0), Edge::Lower);
        self.bound(path, max_name, f(a.1), f(b.1), Edge::Upper);
    }

    fn flag(&mut self, path: &str, name: &str, a: bool, b: bool) {
        match (a, b) {
            (false, true) => self.push(Class::Breaking, path, format!("{name} added")),
            (true, false) => self.push(Class::Compatible, path, format!("{name} removed")),
            _ => {}
        }
    }

    fn pattern(&mut self, path: &str, name: &str, a: &Option<String>, b: &Option<String>) {
        let show = |s: &String| Value::from(s.as_str()).to_string();
        match (a, b) {
            (None, Some(y)) => {
                self.push(Class::Breaking, path, format!("{name} {} added", show(y)))
            }
            (Some(x), None) => self.push(
                Class::Compatible,
                path,
                format!("{name} {} removed", show(x)),
            ),
            (Some(x), Some(y)) if x != y => self.push(
                Class::Breaking,
                path,
                format!("{name} changed from {} to {}", show(x), show(y)),
            ),
            _ => {}
        }
    }

    fn format(&mut self, path: &str, a: &Option<String>, b: &Option<String>) {
        if a != b {
            let show = |f: &Option<String>| f.as_deref().unwrap_or("none").to_owned();
            // A format can change the generated type (`uri` → `Url`) and what the server
            // accepts (`image_uri`).
            self.push(
                Class::Breaking,
                path,
                format!("format changed from {} to {}", show(a), show(b)),
            );
        }
    }

    fn enums<T: PartialEq>(&mut self, path: &str, a: &[T], b: &[T], show: impl Fn(&T) -> String) {
        for x in a.iter().filter(|x| !b.contains(x)) {
            self.push(
                Class::Breaking,
                path,
                format!("enum value {} removed", show(x)),
            );
        }
        for y in b.iter().filter(|y| !a.contains(y)) {
            self.push(
                Class::Compatible,
                path,
                format!("enum value {} added", show(y)),
            );
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Edge {
    Lower,
    Upper,
}

/// Follows refs to the schema they stand for; the last definition followed, if any.
fn resolve<'m>(model: &'m Model, s: &'m Schema) -> (&'m Schema, Option<usize>) {
    let mut current = s;
    let mut def = None;
    // A chain of refs is at most as long as the table of definitions.
    for _ in 0..=model.defs.len() {
        match current.kind {
            Kind::Ref(i) => match model.defs.get(i) {
                Some(d) => {
                    def = Some(i);
                    current = &d.schema;
                }
                None => break,
            },
            _ => break,
        }
    }
    (current, def)
}

fn kind_name(k: &Kind) -> &'static str {
    match k {
        Kind::Any | Kind::Typeless(_) => "any",
        Kind::Bool => "boolean",
        Kind::Integer(_) => "integer",
        Kind::Number(_) => "number",
        Kind::String { .. } => "string",
        Kind::StrEnum(_) => "string enum",
        Kind::IntEnum(_) => "integer enum",
        Kind::BoolConst(_) => "boolean constant",
        Kind::Array { .. } => "array",
        Kind::Object { .. } => "object",
        Kind::Map { .. } => "map",
        Kind::Ref(_) => "reference",
        Kind::Union(_) => "union",
    }
}

fn changed_text(what: &str, a: &Option<String>, b: &Option<String>) -> String {
    match (a, b) {
        (None, Some(_)) => format!("{what} added"),
        (Some(_), None) => format!("{what} removed"),
        _ => format!("{what} changed"),
    }
}

/// A bound as written: integral values without a fraction.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The changes of one field, from its schema before and after, as `class: what` lines.
    fn field(role: Role, required: bool, old: Value, new: Value) -> Vec<String> {
        let wrap = |s: Value| {
            let mut schema = json!({"type": "object", "properties": {"f": s}});
            if required {
                schema["required"] = json!(["f"]);
            }
            schema
        };
        let pair = |s: Value| match role {
            Role::Input => files("a/b", wrap(s), None),
            Role::Output => files("a/b", json!({"type": "object"}), Some(wrap(s))),
        };
        let report = compare(&[pair(old)], &[pair(new)]).expect("normalizes");
        report
            .models
            .iter()
            .flat_map(|m| &m.changes)
            .map(|c| format!("{}: {}", c.class, c.what))
            .collect()
    }

    #[test]
    fn changes_of_one_field() {
        use Role::{Input, Output};
        let cases: Vec<(Role, bool, Value, Value, &[&str])> = vec![
            // Spellings of one schema.
            (
                Input,
                false,
                json!({"type": "float"}),
                json!({"type": "number"}),
                &[],
            ),
            (
                Input,
                false,
                json!({"type": "DOUBLE"}),
                json!({"type": "number"}),
                &[],
            ),
            (
                Input,
                false,
                json!({"type": ["string", "null"]}),
                json!({"anyOf": [{"type": "string"}, {"type": "null"}]}),
                &[],
            ),
            (Input, false, json!({}), json!(true), &[]),
            (
                Input,
                false,
                json!({"type": "string", "const": "x"}),
                json!({"type": "string", "enum": ["x"]}),
                &[],
            ),
            // Types.
            (
                Input,
                false,
                json!({"type": "integer"}),
                json!({"type": "number"}),
                &["breaking: type changed from integer to number"],
            ),
            (
                Input,
                false,
                json!({}),
                json!({"type": "string"}),
                &["breaking: type changed from any to string"],
            ),
            (
                Input,
                false,
                json!({"type": "string", "format": "uri"}),
                json!({"type": "string", "format": "image_uri"}),
                &["breaking: format changed from uri to image_uri"],
            ),
            (
                Input,
                false,
                json!({"type": "integer", "minimum": -1, "maximum": 100}),
                json!({"type": "integer", "minimum": 0, "maximum": 100}),
                &[
                    "breaking: minimum narrowed from -1 to 0",
                    "breaking: Rust type changed from i8 to u8",
                ],
            ),
            // Bounds.
            (
                Input,
                false,
                json!({"type": "number", "multipleOf": 0.5}),
                json!({"type": "number", "multipleOf": 0.25}),
                &["compatible: multipleOf changed from 0.5 to 0.25"],
            ),
            (
                Input,
                false,
                json!({"type": "number", "multipleOf": 0.5}),
                json!({"type": "number", "multipleOf": 1}),
                &["breaking: multipleOf changed from 0.5 to 1"],
            ),
            (
                Input,
                false,
                json!({"type": "number", "exclusiveMaximum": 1}),
                json!({"type": "number"}),
                &["compatible: exclusiveMaximum 1 removed"],
            ),
            (
                Input,
                false,
                json!({"type": "array", "items": {"type": "string"}}),
                json!({"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": true}),
                &["breaking: minItems 1 added", "breaking: uniqueItems added"],
            ),
            (
                Input,
                false,
                json!({"type": "array", "items": {"type": "string", "maxLength": 9}}),
                json!({"type": "array", "items": {"type": "string", "maxLength": 10}}),
                &["compatible: maxLength widened from 9 to 10"],
            ),
            (
                Input,
                false,
                json!({"type": "object", "additionalProperties": {"type": "integer", "maximum": 9}}),
                json!({"type": "object", "additionalProperties": {"type": "integer", "maximum": 5}}),
                &["breaking: maximum narrowed from 9 to 5"],
            ),
            // Defaults: a required field is always sent.
            (
                Input,
                true,
                json!({"type": "integer", "default": 1}),
                json!({"type": "integer", "default": 2}),
                &["docs: default changed from 1 to 2"],
            ),
            (
                Input,
                false,
                json!({"type": "integer", "default": 1}),
                json!({"type": "integer", "default": 2}),
                &["compatible: default changed from 1 to 2"],
            ),
            // Rules.
            (
                Input,
                false,
                json!({"type": "string"}),
                json!({"type": "string", "not": {"enum": ["x"]}}),
                &["breaking: rule `not` added"],
            ),
            // Outputs: the client reads them.
            (
                Output,
                false,
                json!({"type": "string"}),
                json!({"type": ["string", "null"]}),
                &["compatible: now accepts null"],
            ),
            (
                Output,
                true,
                json!({"type": "string"}),
                json!({"type": ["string", "null"]}),
                &["breaking: now nullable: its Rust type becomes an `Option`"],
            ),
        ];
        for (role, required, old, new, want) in cases {
            let got = field(role, required, old.clone(), new.clone());
            assert_eq!(got, want, "{role:?} required={required}: {old} -> {new}");
        }
    }

    #[test]
    fn refs_compare_by_what_they_point_to() {
        let inline = json!({"type": "object", "properties": {
            "size": {"type": "string", "enum": ["s", "m"], "description": "Size."}}});
        let by_ref = json!({"type": "object", "properties": {"size": {"$ref": "#/$defs/Size"}},
            "$defs": {"Size": {"type": "string", "enum": ["s", "m"], "description": "Size."}}});
        let renamed = json!({"type": "object", "properties": {"size": {"$ref": "#/definitions/Dim"}},
            "definitions": {"Dim": {"type": "string", "enum": ["s", "m", "l"], "description": "Size."}}});
        let run = |a: &Value, b: &Value| {
            compare(
                &[files("a/b", a.clone(), None)],
                &[files("a/b", b.clone(), None)],
            )
            .expect("normalizes")
        };
        assert!(run(&inline, &by_ref).is_empty());
        let report = run(&by_ref, &renamed);
        let what: Vec<&str> = report.models[0]
            .changes
            .iter()
            .map(|c| c.what.as_str())
            .collect();
        assert_eq!(
            what,
            [
                "definition `Size` replaced by `Dim`: the Rust type's name changes",
                "enum value \"l\" added"
            ]
        );
    }

    #[test]
    fn summary_lines() {
        let cases = [
            (Summary::default(), "summary: 0 breaking, 0 compatible, 0 docs only, 0 removed (0 models changed, 0 unchanged)"),
            (
                Summary { breaking: 2, compatible: 3, docs: 1, removed: 1, added: 2, changed: 1, unchanged: 40 },
                "summary: 2 breaking, 3 compatible, 1 docs only, 1 removed (2 added, 1 removed, 1 model changed, 40 unchanged)",
            ),
        ];
        for (s, want) in cases {
            assert_eq!(s.line(), want);
        }
    }
}
