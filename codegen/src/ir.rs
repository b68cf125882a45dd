//! The IR: what the generator will emit, as plain data with final names.
//!
//! [`crate::catalog`] builds it from normalized schemas; [`crate::emit`] turns it into
//! tokens without deciding anything. Every name in it comes from [`crate::names`]; there are
//! no tokens and no `serde_json::Value` trees here, only small values (defaults for docs).

use serde_json::Value;

use crate::diag::Location;
pub use crate::normalize::{Bounds, Role};

/// Every generated model, sorted by id.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    /// One entry per model.
    pub models: Vec<ModelModule>,
    /// What was typed loosely or left unchecked (graceful mode), sorted; empty in strict
    /// mode, where each of them is an error.
    pub warnings: Vec<crate::diag::Diagnostic>,
}

/// One model's module.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelModule {
    /// The model id.
    pub id: String,
    /// Module path below `models` (`["happyhorse", "happyhorse_1_0", "image_to_video"]`).
    pub path: Vec<String>,
    /// The name of the model's method on the endpoint extension trait (when the options ask
    /// for one).
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

impl ModelModule {
    /// The generated type with this name.
    pub fn type_named(&self, name: &str) -> Option<&TypeDef> {
        self.types.iter().find(|t| t.name == name)
    }

    /// The fields of `Input`.
    pub fn input_fields(&self) -> &[Field] {
        self.types
            .iter()
            .find_map(|t| match &t.body {
                Body::Struct(s) if s.is_input => Some(&s.fields[..]),
                _ => None,
            })
            .unwrap_or(&[])
    }
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
    /// It implements `Validate` (it has something to check, or it is `Input`).
    pub validates: bool,
}

/// The shape of a generated type.
// Plain data read once by `emit`: boxing the struct variant would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A struct.
    Struct(Struct),
    /// A string enum.
    StrEnum {
        /// Variants in schema order.
        variants: Vec<StrVariant>,
        /// The default variant's index.
        default: Option<usize>,
    },
    /// An integer enum, sent as a number.
    IntEnum {
        /// Variants in schema order.
        variants: Vec<IntVariant>,
        /// The default variant's index.
        default: Option<usize>,
    },
    /// A union of alternative shapes (`anyOf`/`oneOf`).
    Union {
        /// Variants in the order serde tries them (untagged), or in schema order (tagged).
        variants: Vec<Variant>,
        /// Internally tagged by this property (`#[serde(tag = "...")]`): every variant is
        /// an object whose value there is a distinct string; untagged when `None`.
        tag: Option<String>,
    },
}

/// A struct's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Struct {
    /// Fields in schema order.
    pub fields: Vec<Field>,
    /// A flattened catch-all for unknown keys.
    pub extra: Option<Extra>,
    /// This is the model's `Input`: it gets a constructor and setters.
    pub is_input: bool,
    /// `additionalProperties: false`: unknown keys are refused when deserializing.
    pub deny_unknown: bool,
    /// Keys of `extra` must match this pattern.
    pub key_pattern: Option<String>,
    /// Validation-only rules of the whole object (`not`, `if`/`then`/`else`).
    pub rules: Vec<RuleCheck>,
}

/// The flattened map of keys a struct's schema does not name.
#[derive(Debug, Clone, PartialEq)]
pub struct Extra {
    /// The field's Rust name.
    pub ident: String,
    /// The type of each value.
    pub ty: Ty,
    /// The constraints of each value.
    pub checks: Checks,
}

/// A variant of a string enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrVariant {
    /// The Rust name.
    pub name: String,
    /// The value on the wire.
    pub wire: String,
}

/// A variant of an integer enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntVariant {
    /// The Rust name.
    pub name: String,
    /// The value on the wire.
    pub value: i64,
}

/// A variant of a union: one alternative shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The Rust name.
    pub name: String,
    /// The discriminator's value of this variant, in a tagged union.
    pub tag_value: Option<String>,
    /// The type it holds.
    pub ty: Ty,
    /// The constraints of the value it holds.
    pub checks: Checks,
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

    /// The identifier without its `r#`.
    pub fn bare_ident(&self) -> &str {
        self.ident.trim_start_matches("r#")
    }
}

/// A Rust type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    /// `bool`
    Bool,
    /// An integer type.
    Int(IntWidth),
    /// `f64`
    F64,
    /// `String`
    String,
    /// `Url`
    Url,
    /// `FileInput`: an input field the schema marks as a file (`image_uri`, ...): a URL, a
    /// local path or bytes, sent as the URL or a `data:` URI.
    File,
    /// `serde_json::Value`, where the schema allows any JSON.
    Value,
    /// A generated type of this module.
    Named {
        /// Its name.
        name: String,
        /// It implements `Validate` with checks.
        validates: bool,
    },
    /// `Vec<T>`
    Vec(Box<Ty>),
    /// `BTreeMap<String, T>`
    Map(Box<Ty>),
    /// `Box<T>`
    Box(Box<Ty>),
    /// `Option<T>`
    Option(Box<Ty>),
}

impl Ty {
    /// The type inside any `Box`.
    pub fn unboxed(&self) -> &Ty {
        match self {
            Ty::Box(inner) => inner.unboxed(),
            other => other,
        }
    }
}

/// The integer types a schema's bounds can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IntWidth {
    /// `u8`
    U8,
    /// `u16`
    U16,
    /// `u32`
    U32,
    /// `u64`
    U64,
    /// `i8`
    I8,
    /// `i16`
    I16,
    /// `i32`
    I32,
    /// `i64`
    I64,
}

impl IntWidth {
    /// The Rust type's name.
    pub fn as_str(self) -> &'static str {
        match self {
            IntWidth::U8 => "u8",
            IntWidth::U16 => "u16",
            IntWidth::U32 => "u32",
            IntWidth::U64 => "u64",
            IntWidth::I8 => "i8",
            IntWidth::I16 => "i16",
            IntWidth::I32 => "i32",
            IntWidth::I64 => "i64",
        }
    }

    /// The narrowest type that holds both bounds: unsigned when the lower bound is not
    /// negative, `i64` (or `u64` from a non-negative lower bound) when a bound is missing.
    pub fn for_bounds(b: &Bounds) -> IntWidth {
        let lo = b.min.or(b.exclusive_min.map(|x| x + 1.0));
        let hi = b.max.or(b.exclusive_max.map(|x| x - 1.0));
        match (lo, hi) {
            (Some(lo), Some(hi)) if lo >= 0.0 => {
                if hi <= f64::from(u8::MAX) {
                    IntWidth::U8
                } else if hi <= f64::from(u16::MAX) {
                    IntWidth::U16
                } else if hi <= f64::from(u32::MAX) {
                    IntWidth::U32
                } else {
                    IntWidth::U64
                }
            }
            (Some(lo), Some(hi)) => {
                if lo >= f64::from(i8::MIN) && hi <= f64::from(i8::MAX) {
                    IntWidth::I8
                } else if lo >= f64::from(i16::MIN) && hi <= f64::from(i16::MAX) {
                    IntWidth::I16
                } else if lo >= f64::from(i32::MIN) && hi <= f64::from(i32::MAX) {
                    IntWidth::I32
                } else {
                    IntWidth::I64
                }
            }
            (Some(lo), None) if lo >= 0.0 => IntWidth::U64,
            _ => IntWidth::I64,
        }
    }
}

/// A lower and an upper limit on a count (characters, items, entries).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// At least this many.
    pub min: Option<u64>,
    /// At most this many.
    pub max: Option<u64>,
}

impl Limits {
    /// Neither limit is set.
    pub fn is_empty(&self) -> bool {
        self.min.is_none() && self.max.is_none()
    }
}

/// The constraints of one value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checks {
    /// Integer bounds.
    pub int: Option<Bounds>,
    /// Number bounds.
    pub num: Option<Bounds>,
    /// `minLength`, `maxLength`, in characters.
    pub len: Limits,
    /// `pattern`.
    pub pattern: Option<String>,
    /// `minItems`/`maxItems` (arrays).
    pub count: Limits,
    /// `minProperties`/`maxProperties` (maps, and any JSON value's objects).
    pub props: Limits,
    /// `uniqueItems`.
    pub unique: bool,
    /// Map keys must match this pattern (`patternProperties` with
    /// `additionalProperties: false`).
    pub key_pattern: Option<String>,
    /// Checks of each item or map value.
    pub each: Option<Box<Checks>>,
    /// The value is a generated type with checks of its own.
    pub nested: bool,
    /// Validation-only rules (`not`, `if`/`then`/`else`), on the value as JSON.
    pub rules: Vec<RuleCheck>,
    /// A file input's size rule (every `Ty::File` value has one).
    pub file: Option<FileCheck>,
}

/// The size rule of a file input.
#[derive(Debug, Clone, PartialEq)]
pub struct FileCheck {
    /// The kind from the schema's `format`: `Image`, `Video`, `Audio` or `Any` (the
    /// runtime's `FileKind` variant).
    pub kind: &'static str,
    /// The schema's `file_size_mb` limit.
    pub max_mb: Option<f64>,
    /// `file_size_mb<=` rather than `<`.
    pub inclusive: bool,
}

impl Checks {
    /// No check at all.
    pub fn is_empty(&self) -> bool {
        self.int.is_none()
            && self.num.is_none()
            && self.len.is_empty()
            && self.pattern.is_none()
            && self.count.is_empty()
            && self.props.is_empty()
            && !self.unique
            && self.key_pattern.is_none()
            && self.each.is_none()
            && !self.nested
            && self.rules.is_empty()
            && self.file.is_none()
    }
}

/// A validation-only rule, checked on the value serialized as JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleCheck {
    /// `not`: the value must not match.
    Not(Pred),
    /// `if`/`then`/`else`: a value matching `test` must match `then`, any other `otherwise`.
    Condition {
        /// `if`
        test: Pred,
        /// `then` (`Pred::True` when absent)
        then: Pred,
        /// `else` (`Pred::True` when absent)
        otherwise: Pred,
    },
}

/// Whether a JSON value matches a schema, as a predicate the generated code evaluates on
/// `serde_json::Value`: the subset of JSON Schema that `not` and `if`/`then`/`else` use.
#[derive(Debug, Clone, PartialEq)]
pub enum Pred {
    /// Always.
    True,
    /// Never.
    False,
    /// All of these.
    All(Vec<Pred>),
    /// At least one of these.
    Any(Vec<Pred>),
    /// Not this.
    Not(Box<Pred>),
    /// Of this JSON type.
    Type(JsonType),
    /// Equal to one of these literals.
    OneOf(Vec<Literal>),
    /// A number within these bounds (true for other types).
    Bounds(Bounds),
    /// A string of this many characters (true for other types).
    Len(Limits),
    /// A string matching this pattern (true for other types).
    Pattern(String),
    /// An array of this many items (true for other types).
    Items(Limits),
    /// An object with this many properties (true for other types).
    Props(Limits),
    /// An object that has this key (true for other types).
    Has(String),
    /// An object whose value at this key, when present, matches (true for other types).
    Prop(String, Box<Pred>),
    /// An array each of whose items matches (true for other types).
    Each(Box<Pred>),
    /// An array whose items are pairwise distinct (true for other types).
    Unique,
    /// An object each of whose keys outside `known` matches `pattern` (when there is one)
    /// and holds a value matching `each` (true for other types).
    Others {
        /// The keys named by `properties`.
        known: Vec<String>,
        /// The pattern other keys must match.
        pattern: Option<String>,
        /// What other keys' values must match (`False`: no other key).
        each: Box<Pred>,
    },
}

/// A JSON type, as `type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonType {
    /// `null`
    Null,
    /// `boolean`
    Bool,
    /// `integer`
    Integer,
    /// `number`
    Number,
    /// `string`
    String,
    /// `array`
    Array,
    /// `object`
    Object,
}

/// A literal of `const`/`enum`.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `null`
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
}
