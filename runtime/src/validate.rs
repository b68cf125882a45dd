//! Client-side validation: the checks the generated `validate()` methods run.
//!
//! Generated code calls the small helpers on [`Validator`]; each failed check becomes a
//! [`Violation`] that names the JSON path, the rule and the offending value.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// A type whose values can be checked against the constraints of the schema it came from.
pub trait Validate {
    /// Checks `self`, pushing every violation into `v` under `v`'s current path.
    fn validate_into(&self, v: &mut Validator);

    /// Checks every constraint the schema states and returns all violations at once.
    fn validate(&self) -> Result<(), ValidationErrors> {
        let mut v = Validator::default();
        self.validate_into(&mut v);
        v.finish()
    }
}

impl<T: Validate> Validate for Option<T> {
    fn validate_into(&self, v: &mut Validator) {
        if let Some(x) = self {
            x.validate_into(v);
        }
    }
}

impl<T: Validate> Validate for Vec<T> {
    fn validate_into(&self, v: &mut Validator) {
        for (i, x) in self.iter().enumerate() {
            v.push_index(i);
            x.validate_into(v);
            v.pop();
        }
    }
}

impl<T: Validate> Validate for Box<T> {
    fn validate_into(&self, v: &mut Validator) {
        (**self).validate_into(v);
    }
}

impl<K, T: Validate> Validate for std::collections::BTreeMap<K, T>
where
    K: AsRef<str>,
{
    fn validate_into(&self, v: &mut Validator) {
        for (k, x) in self {
            v.push_key(k.as_ref());
            x.validate_into(v);
            v.pop();
        }
    }
}

/// Leaf types that carry no constraints of their own.
macro_rules! no_constraints {
    ($($t:ty),*) => {$(
        impl Validate for $t {
            fn validate_into(&self, _: &mut Validator) {}
        }
    )*};
}
no_constraints!(
    bool,
    String,
    f64,
    f32,
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
    serde_json::Value,
    url::Url
);

/// The rule a value broke.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "rule", content = "limit", rename_all = "camelCase")]
#[non_exhaustive]
pub enum Rule {
    /// `minimum`: the value must be at least the limit.
    Minimum(f64),
    /// `exclusiveMinimum`: the value must be greater than the limit.
    ExclusiveMinimum(f64),
    /// `maximum`: the value must be at most the limit.
    Maximum(f64),
    /// `exclusiveMaximum`: the value must be less than the limit.
    ExclusiveMaximum(f64),
    /// `minLength`, counted in characters.
    MinLength(u64),
    /// `maxLength`, counted in characters.
    MaxLength(u64),
    /// `minItems`.
    MinItems(u64),
    /// `maxItems`.
    MaxItems(u64),
    /// `uniqueItems`: no two items may be equal.
    UniqueItems,
    /// `pattern`: the string must match this regular expression.
    Pattern(String),
    /// `minProperties`.
    MinProperties(u64),
    /// `maxProperties`.
    MaxProperties(u64),
    /// `multipleOf`.
    MultipleOf(f64),
    /// `patternProperties` with `additionalProperties: false`: every key must match this
    /// pattern (the violation's value is the key).
    KeyPattern(String),
    /// `not`: the value must not match the `not` schema.
    Not,
    /// `if`/`then`: the value matches the `if` schema, so it must match `then`.
    Then,
    /// `if`/`else`: the value does not match the `if` schema, so it must match `else`.
    Else,
    /// A file's `file_size_mb<` rule: the file must be smaller than this many MiB (the
    /// violation's value is its size in MiB).
    FileSizeBelow(f64),
    /// A file must be at most this many MiB (`file_size_mb<=`, or the limit of its kind).
    FileSizeAtMost(f64),
    /// The files sent inline in one request must total at most this many MiB.
    RequestFileSize(f64),
    /// A local file must be readable (the limit is why it is not; the value is the path).
    ReadableFile(String),
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Minimum(n) => write!(f, "must be >= {n}"),
            Rule::ExclusiveMinimum(n) => write!(f, "must be > {n}"),
            Rule::Maximum(n) => write!(f, "must be <= {n}"),
            Rule::ExclusiveMaximum(n) => write!(f, "must be < {n}"),
            Rule::MinLength(n) => write!(f, "must have at least {n} characters"),
            Rule::MaxLength(n) => write!(f, "must have at most {n} characters"),
            Rule::MinItems(n) => write!(f, "must have at least {n} items"),
            Rule::MaxItems(n) => write!(f, "must have at most {n} items"),
            Rule::UniqueItems => write!(f, "items must be unique"),
            Rule::Pattern(p) => write!(f, "must match the pattern {p:?}"),
            Rule::MinProperties(n) => write!(f, "must have at least {n} entries"),
            Rule::MaxProperties(n) => write!(f, "must have at most {n} entries"),
            Rule::MultipleOf(n) => write!(f, "must be a multiple of {n}"),
            Rule::KeyPattern(p) => write!(f, "keys must match the pattern {p:?}"),
            Rule::Not => write!(f, "must not match the schema's `not`"),
            Rule::Then => write!(f, "must match the schema's `then` (it matches `if`)"),
            Rule::Else => write!(f, "must match the schema's `else` (it does not match `if`)"),
            Rule::FileSizeBelow(n) => write!(f, "the file must be smaller than {n} MB"),
            Rule::FileSizeAtMost(n) => write!(f, "the file must be at most {n} MB"),
            Rule::RequestFileSize(n) => {
                write!(f, "the files sent inline must total at most {n} MB")
            }
            Rule::ReadableFile(why) => write!(f, "must be a readable file ({why})"),
        }
    }
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// Where, as a JSON pointer into the request body (`/loras/0/scale`).
    pub path: String,
    /// The rule that failed.
    #[serde(flatten)]
    pub rule: Rule,
    /// The value that failed it (for strings and lists, a summary: length or count).
    pub value: Value,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{path}: {} (got {})", self.rule, self.value)
    }
}

/// Every violation found in one value; never empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationErrors {
    /// The violations, in the order of the schema's properties.
    pub violations: Vec<Violation>,
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Collects violations while generated code walks a value.
#[derive(Debug, Default)]
pub struct Validator {
    path: Vec<String>,
    violations: Vec<Violation>,
    /// Bytes of the files sent inline so far.
    file_bytes: u64,
}

const MIB: u64 = 1024 * 1024;

/// Bytes in MiB, rounded to 0.1.
fn mib(bytes: u64) -> f64 {
    (bytes as f64 / MIB as f64 * 10.0).round() / 10.0
}

fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

impl Validator {
    /// A file input ([`FileInput`](crate::FileInput)): a local file must exist, and a file
    /// sent inline (path, bytes, `data:` URI) must be within the schema's `file_size_mb`
    /// rule and the limit of its kind; its size counts towards the request's total
    /// ([`MAX_REQUEST_FILE_BYTES`](crate::file::MAX_REQUEST_FILE_BYTES), checked by
    /// [`finish`](Self::finish)). A remote URL is not fetched.
    pub fn file(&mut self, value: &crate::file::FileInput, rule: crate::file::FileRule) {
        let size = match value.inline_size() {
            Ok(Some(size)) => size,
            Ok(None) => return,
            Err(e) => {
                let shown = value
                    .as_path()
                    .map_or(Value::Null, |p| Value::from(p.display().to_string()));
                let why = match std::error::Error::source(&e) {
                    Some(cause) => format!("{e}: {cause}"),
                    None => e.to_string(),
                };
                self.fail(Rule::ReadableFile(why), shown);
                return;
            }
        };
        self.file_bytes = self.file_bytes.saturating_add(size);
        let got = || Value::from(mib(size));
        if let Some(max) = rule.max_mb {
            let limit = max * MIB as f64;
            let over = if rule.inclusive {
                size as f64 > limit
            } else {
                size as f64 >= limit
            };
            if over {
                let r = if rule.inclusive {
                    Rule::FileSizeAtMost(max)
                } else {
                    Rule::FileSizeBelow(max)
                };
                self.fail(r, got());
                return;
            }
        }
        let kind_max = rule.kind.max_bytes();
        if size > kind_max {
            self.fail(Rule::FileSizeAtMost(mib(kind_max)), got());
        }
    }

    /// Enters the object member `key`.
    pub fn push_key(&mut self, key: &str) {
        self.path.push(escape_pointer(key));
    }

    /// Enters the array item `index`.
    pub fn push_index(&mut self, index: usize) {
        self.path.push(index.to_string());
    }

    /// Leaves the last entered member or item.
    pub fn pop(&mut self) {
        self.path.pop();
    }

    /// Runs `f` inside the member `key`.
    pub fn at(&mut self, key: &str, f: impl FnOnce(&mut Self)) {
        self.push_key(key);
        f(self);
        self.pop();
    }

    /// Validates a nested value that has its own constraints.
    pub fn nested<T: Validate + ?Sized>(&mut self, key: &str, value: &T) {
        self.push_key(key);
        value.validate_into(self);
        self.pop();
    }

    fn pointer(&self) -> String {
        let mut s = String::new();
        for seg in &self.path {
            s.push('/');
            s.push_str(seg);
        }
        s
    }

    /// Records a violation at the current path.
    pub fn fail(&mut self, rule: Rule, value: Value) {
        let path = self.pointer();
        self.violations.push(Violation { path, rule, value });
    }

    /// Records a violation at member `key` of the current path.
    pub fn fail_at(&mut self, key: &str, rule: Rule, value: Value) {
        self.push_key(key);
        self.fail(rule, value);
        self.pop();
    }

    /// Integer bounds, checked at the current path.
    pub fn int(&mut self, value: i128, bounds: IntBounds) {
        let num = || {
            i64::try_from(value)
                .map(Value::from)
                .or_else(|_| u64::try_from(value).map(Value::from))
                .unwrap_or(Value::Null)
        };
        if let Some(m) = bounds.min {
            if value < m {
                self.fail(Rule::Minimum(m as f64), num());
            }
        }
        if let Some(m) = bounds.exclusive_min {
            if value <= m {
                self.fail(Rule::ExclusiveMinimum(m as f64), num());
            }
        }
        if let Some(m) = bounds.max {
            if value > m {
                self.fail(Rule::Maximum(m as f64), num());
            }
        }
        if let Some(m) = bounds.exclusive_max {
            if value >= m {
                self.fail(Rule::ExclusiveMaximum(m as f64), num());
            }
        }
        if let Some(m) = bounds.multiple_of {
            if m != 0 && value % m != 0 {
                self.fail(Rule::MultipleOf(m as f64), num());
            }
        }
    }

    /// Number bounds.
    pub fn num(&mut self, value: f64, bounds: NumBounds) {
        let val = || Value::from(value);
        if !value.is_finite() {
            // JSON cannot carry NaN or infinities: report them against the nearest bound.
            self.fail(Rule::Maximum(f64::MAX), Value::String(value.to_string()));
            return;
        }
        if let Some(m) = bounds.min {
            if value < m {
                self.fail(Rule::Minimum(m), val());
            }
        }
        if let Some(m) = bounds.exclusive_min {
            if value <= m {
                self.fail(Rule::ExclusiveMinimum(m), val());
            }
        }
        if let Some(m) = bounds.max {
            if value > m {
                self.fail(Rule::Maximum(m), val());
            }
        }
        if let Some(m) = bounds.exclusive_max {
            if value >= m {
                self.fail(Rule::ExclusiveMaximum(m), val());
            }
        }
        if let Some(m) = bounds.multiple_of {
            if m > 0.0 {
                let q = value / m;
                if (q - q.round()).abs() > 1e-9 {
                    self.fail(Rule::MultipleOf(m), val());
                }
            }
        }
    }

    /// String length bounds, counted in characters (Unicode scalar values).
    pub fn len(&mut self, value: &str, min: Option<u64>, max: Option<u64>) {
        let n = value.chars().count() as u64;
        if let Some(m) = min {
            if n < m {
                self.fail(Rule::MinLength(m), Value::from(n));
            }
        }
        if let Some(m) = max {
            if n > m {
                self.fail(Rule::MaxLength(m), Value::from(n));
            }
        }
    }

    /// `pattern`: `re` is the compiled regular expression, `source` its text.
    pub fn pattern(&mut self, value: &str, re: &regex::Regex) {
        if !re.is_match(value) {
            self.fail(
                Rule::Pattern(re.as_str().to_owned()),
                Value::String(value.to_owned()),
            );
        }
    }

    /// Item count bounds.
    pub fn items(&mut self, count: usize, min: Option<u64>, max: Option<u64>) {
        let n = count as u64;
        if let Some(m) = min {
            if n < m {
                self.fail(Rule::MinItems(m), Value::from(n));
            }
        }
        if let Some(m) = max {
            if n > m {
                self.fail(Rule::MaxItems(m), Value::from(n));
            }
        }
    }

    /// Entry count bounds of a map.
    pub fn entries(&mut self, count: usize, min: Option<u64>, max: Option<u64>) {
        let n = count as u64;
        if let Some(m) = min {
            if n < m {
                self.fail(Rule::MinProperties(m), Value::from(n));
            }
        }
        if let Some(m) = max {
            if n > m {
                self.fail(Rule::MaxProperties(m), Value::from(n));
            }
        }
    }

    /// `uniqueItems`: compares the items' JSON forms.
    pub fn unique<T: Serialize>(&mut self, items: &[T]) {
        let values: Vec<Value> = items
            .iter()
            .map(|x| serde_json::to_value(x).unwrap_or(Value::Null))
            .collect();
        for i in 0..values.len() {
            if values[..i].contains(&values[i]) {
                self.push_index(i);
                self.fail(Rule::UniqueItems, values[i].clone());
                self.pop();
            }
        }
    }

    /// `patternProperties` with `additionalProperties: false`: `key` must match `re`.
    pub fn key_pattern(&mut self, key: &str, re: &regex::Regex) {
        if !re.is_match(key) {
            self.push_key(key);
            self.fail(
                Rule::KeyPattern(re.as_str().to_owned()),
                Value::String(key.to_owned()),
            );
            self.pop();
        }
    }

    /// Ends the walk.
    pub fn finish(mut self) -> Result<(), ValidationErrors> {
        let cap = crate::file::MAX_REQUEST_FILE_BYTES;
        if self.file_bytes > cap {
            self.violations.push(Violation {
                path: String::new(),
                rule: Rule::RequestFileSize(mib(cap)),
                value: Value::from(mib(self.file_bytes)),
            });
        }
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors {
                violations: self.violations,
            })
        }
    }
}

impl IntBounds {
    /// No limit at all: the base of generated struct-update expressions.
    pub const NONE: IntBounds = IntBounds {
        min: None,
        max: None,
        exclusive_min: None,
        exclusive_max: None,
        multiple_of: None,
    };
}

impl NumBounds {
    /// Whether `value` is within these limits (as [`Validator::num`] checks them).
    pub fn admits(&self, value: f64) -> bool {
        let mut v = Validator::default();
        v.num(value, *self);
        v.violations.is_empty()
    }

    /// No limit at all: the base of generated struct-update expressions.
    pub const NONE: NumBounds = NumBounds {
        min: None,
        max: None,
        exclusive_min: None,
        exclusive_max: None,
        multiple_of: None,
    };
}

/// Integer limits of one field.
#[derive(Debug, Clone, Copy, Default)]
pub struct IntBounds {
    /// `minimum`
    pub min: Option<i128>,
    /// `maximum`
    pub max: Option<i128>,
    /// `exclusiveMinimum`
    pub exclusive_min: Option<i128>,
    /// `exclusiveMaximum`
    pub exclusive_max: Option<i128>,
    /// `multipleOf`
    pub multiple_of: Option<i128>,
}

/// Number limits of one field.
#[derive(Debug, Clone, Copy, Default)]
pub struct NumBounds {
    /// `minimum`
    pub min: Option<f64>,
    /// `maximum`
    pub max: Option<f64>,
    /// `exclusiveMinimum`
    pub exclusive_min: Option<f64>,
    /// `exclusiveMaximum`
    pub exclusive_max: Option<f64>,
    /// `multipleOf`
    pub multiple_of: Option<f64>,
}

/// The error of converting a number or string that is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariant {
    /// The enum's Rust name.
    pub type_name: &'static str,
    /// What was given.
    pub got: String,
    /// What is allowed, comma-separated.
    pub allowed: String,
}

impl UnknownVariant {
    /// Finds the variant of an integer enum whose value is `n`, for generated `TryFrom<i64>`.
    pub fn find_int<T: Copy + Into<i64>>(
        type_name: &'static str,
        n: i64,
        all: &[T],
    ) -> Result<T, UnknownVariant> {
        all.iter()
            .copied()
            .find(|v| (*v).into() == n)
            .ok_or_else(|| UnknownVariant {
                type_name,
                got: n.to_string(),
                allowed: all
                    .iter()
                    .map(|v| (*v).into().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is not a valid {}; expected one of {}",
            self.got, self.type_name, self.allowed
        )
    }
}

impl std::error::Error for UnknownVariant {}

/// The JSON Schema of a generated integer enum: `{"type": "integer", "enum": [...]}`.
#[cfg(feature = "schemars")]
pub fn int_enum_schema<T: Copy + Into<i64>>(all: &[T]) -> schemars::Schema {
    let values: Vec<i64> = all.iter().map(|v| (*v).into()).collect();
    schemars::json_schema!({ "type": "integer", "enum": values })
}
