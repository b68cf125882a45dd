//! Naming: every Rust name the generator emits comes from here, derived from the model id
//! and the property path, never from `title` and never from a counter over the whole schema.
//!
//! Rules (documented in ARCHITECTURE.md):
//! - non-ASCII characters become `u{hex}` pieces, other punctuation separates words;
//! - a leading digit gets the prefix `v` (`3d_mode` → `v3d_mode`, `4K` → `V4k`);
//! - keywords become raw identifiers (`r#type`), or get a `_value` suffix where Rust allows
//!   no raw form (`self`, `Self`, `crate`, `super`);
//! - names that collide after conversion are told apart by [`dedupe`].

use std::collections::BTreeMap;

use heck::{ToSnakeCase, ToUpperCamelCase};

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];
const NO_RAW: &[&str] = &["self", "Self", "crate", "super", "_"];

/// Splits a wire name into ASCII words: non-ASCII characters become `u{hex}` words.
fn ascii_words(wire: &str) -> String {
    let mut out = String::new();
    for c in wire.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if c.is_ascii() {
            out.push(' ');
        } else {
            out.push_str(&format!(" u{:x} ", c as u32));
        }
    }
    out
}

/// A snake_case identifier (fields, modules, methods), before keyword handling.
pub fn snake(wire: &str) -> String {
    let s = ascii_words(wire).to_snake_case();
    if s.is_empty() {
        return "empty".to_owned();
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("v{s}")
    } else {
        s
    }
}

/// An UpperCamelCase identifier (types), before keyword handling.
pub fn camel(wire: &str) -> String {
    let s = ascii_words(wire).to_upper_camel_case();
    if s.is_empty() {
        return "Empty".to_owned();
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("V{s}")
    } else {
        s
    }
}

/// The identifier as it is written in code: `r#type` for keywords, `self_value` where no raw
/// form exists.
pub fn ident_text(name: &str) -> String {
    if NO_RAW.contains(&name) {
        format!("{name}_value")
    } else if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_owned()
    }
}

/// The enum variant for a string value, one scheme for every model:
/// `"16:9"` → `Ratio16x9`, `"720P"` → `P720`, `"2k"` → `K2`, `"5"` → `V5`,
/// `"square_hd"` → `SquareHd`, `""` → `Empty`.
pub fn variant(value: &str) -> String {
    let bytes = value.as_bytes();
    if let Some((a, b)) = value.split_once(':') {
        if is_digits(a) && is_digits(b) {
            return format!("Ratio{a}x{b}");
        }
    }
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > 0 && digits < bytes.len() && bytes[digits..].iter().all(u8::is_ascii_alphabetic) {
        return format!("{}{}", camel(&value[digits..]), &value[..digits]);
    }
    if let Some(n) = number_variant(value) {
        return n;
    }
    let name = camel(value);
    if name == "Self" {
        "SelfValue".to_owned()
    } else {
        name
    }
}

/// The enum variant for an integer value: `5` → `V5`, `-1` → `Minus1`.
pub fn int_variant(value: i64) -> String {
    if value < 0 {
        format!("Minus{}", value.unsigned_abs())
    } else {
        format!("V{value}")
    }
}

fn number_variant(value: &str) -> Option<String> {
    let (neg, rest) = match value.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, value),
    };
    let (int, frac) = rest.split_once('.').unwrap_or((rest, ""));
    if !is_digits(int) || !(frac.is_empty() || is_digits(frac)) {
        return None;
    }
    let sign = if neg { "Minus" } else { "V" };
    Some(if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}p{frac}")
    })
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The fallback variant used when two values collide: every character kept, case included,
/// punctuation spelled out (`"720p"` → `V720p`, `"16-9"` → `V16Dash9`).
pub fn spelled_variant(value: &str) -> String {
    let mut out = String::from("V");
    for c in value.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => out.push(c),
            ':' => out.push_str("Colon"),
            '-' => out.push_str("Dash"),
            '.' => out.push_str("Dot"),
            '_' => out.push_str("Underscore"),
            ' ' => out.push_str("Space"),
            '/' => out.push_str("Slash"),
            '+' => out.push_str("Plus"),
            other => out.push_str(&format!("U{:X}", other as u32)),
        }
    }
    out
}

/// Makes names unique within one scope, deterministically.
///
/// `candidates` are `(wire, preferred name)` in schema order. A name that only one wire value
/// wants is kept. When several want it, `fallback(wire)` is tried for each of them; if that
/// still collides, the members get `_2`, `_3`, … (or `2`, `3` in camel case) in the byte order
/// of their wire names, the first keeping the bare name. Names in `reserved` are never given.
pub fn dedupe(
    candidates: &[(String, String)],
    reserved: &[&str],
    fallback: impl Fn(&str) -> String,
    camel_case: bool,
) -> Vec<String> {
    let mut wanted: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, name) in candidates {
        *wanted.entry(name.as_str()).or_default() += 1;
    }
    let mut names: Vec<String> = candidates
        .iter()
        .map(|(wire, name)| {
            if wanted[name.as_str()] > 1 || reserved.contains(&name.as_str()) {
                fallback(wire)
            } else {
                name.clone()
            }
        })
        .collect();
    // Resolve whatever still collides (including with reserved names).
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| candidates[a].0.cmp(&candidates[b].0));
    let mut taken: BTreeMap<String, usize> = reserved.iter().map(|r| (r.to_string(), 0)).collect();
    for i in order {
        let base = names[i].clone();
        let mut name = base.clone();
        let mut n = 1;
        while taken.contains_key(&name) {
            n += 1;
            name = if camel_case {
                format!("{base}{n}")
            } else {
                format!("{base}_{n}")
            };
        }
        taken.insert(name.clone(), i);
        names[i] = name;
    }
    names
}

/// Names a generated type may never take, whatever the schema says: the module's own
/// items, and the std and prelude names generated code and its users write unqualified.
/// A type whose name would be one of them gets its full path name instead, as for any
/// taken name (`duration` → `InputDuration`), see [`type_names`].
pub const RESERVED_TYPES: &[&str] = &[
    // The model module's own items.
    "Input",
    "Output",
    "Model",
    "INFO",
    "Endpoint",
    // The prelude and the std types users import beside generated ones.
    "Option",
    "Some",
    "None",
    "Result",
    "Ok",
    "Err",
    "Box",
    "Vec",
    "String",
    "ToString",
    "ToOwned",
    "Clone",
    "Copy",
    "Send",
    "Sync",
    "Sized",
    "Unpin",
    "Drop",
    "Fn",
    "FnMut",
    "FnOnce",
    "Iterator",
    "IntoIterator",
    "Extend",
    "Default",
    "Debug",
    "Display",
    "Eq",
    "PartialEq",
    "Ord",
    "PartialOrd",
    "Hash",
    "AsRef",
    "AsMut",
    "Into",
    "From",
    "TryFrom",
    "TryInto",
    "FromIterator",
    "Duration",
    "Instant",
    "SystemTime",
    "HashMap",
    "HashSet",
    "BTreeMap",
    "BTreeSet",
    "Path",
    "PathBuf",
    "Cow",
    "Rc",
    "Arc",
    "Mutex",
    "RwLock",
    "Error",
    "Ordering",
    "Range",
    "Formatter",
    "Url",
    "Value",
    "Map",
    "Regex",
    "Client",
    "Validate",
    "Validator",
];

/// Setter names an `Input` field cannot have: the inherent and trait methods of `Input`.
/// Such a field's setter gets `set_` in front (`new` → `set_new`).
pub const RESERVED_SETTERS: &[&str] = &["new", "validate", "validate_into", "clone", "into", "fmt"];

/// Module names a model path segment cannot take at the top of `models`.
pub const RESERVED_MODULES: &[&str] = &["models", "__rt"];

/// Method names of `Client` an endpoint trait method cannot take.
pub const RESERVED_METHODS: &[&str] = &[
    "new", "builder", "from_env", "submit", "run", "status", "result", "cancel", "endpoint",
];

/// The setter of an optional `Input` field whose (bare) identifier is `ident`, as written.
pub fn setter(ident: &str) -> String {
    if RESERVED_SETTERS.contains(&ident) {
        ident_text(&format!("set_{ident}"))
    } else {
        ident_text(ident)
    }
}

/// A field, module or method identifier as written, from a wire name.
pub fn field(wire: &str) -> String {
    ident_text(&snake(wire))
}

/// An UpperCamelCase type name as written: [`camel`], with `Self` (the one keyword camel case
/// can produce) spelled `SelfValue`.
pub fn type_ident(candidate: &str) -> String {
    if candidate == "Self" {
        "SelfValue".to_owned()
    } else {
        candidate.to_owned()
    }
}

/// Chooses a type name for each `(short, full)` candidate, in order: the short name when it
/// is free, else the full path name; a name still taken gets `2`, `3`, ... The names in
/// [`RESERVED_TYPES`] are taken from the start.
pub fn type_names(candidates: &[(String, String)]) -> Vec<String> {
    let taken: std::collections::BTreeSet<String> =
        RESERVED_TYPES.iter().map(|r| r.to_string()).collect();
    type_names_after(&taken, candidates)
}

/// [`type_names`] when the names in `taken` are already handed out.
pub fn type_names_after(
    taken: &std::collections::BTreeSet<String>,
    candidates: &[(String, String)],
) -> Vec<String> {
    let mut taken = taken.clone();
    let mut out = Vec::with_capacity(candidates.len());
    for (short, full) in candidates {
        let (short, full) = (type_ident(short), type_ident(full));
        let base = if taken.contains(&short) { full } else { short };
        let mut name = base.clone();
        let mut n = 1;
        while taken.contains(&name) {
            n += 1;
            name = format!("{base}{n}");
        }
        taken.insert(name.clone());
        out.push(name);
    }
    out
}

/// The module path of each model id: one snake_case module per id segment; siblings that
/// collide after conversion are told apart by [`dedupe`].
pub fn module_paths(ids: &[String]) -> Vec<Vec<String>> {
    let split: Vec<Vec<&str>> = ids.iter().map(|id| id.split('/').collect()).collect();
    let max_depth = split.iter().map(Vec::len).max().unwrap_or(0);
    let mut paths: Vec<Vec<String>> = vec![Vec::new(); ids.len()];
    for depth in 0..max_depth {
        // The distinct segments at this depth, grouped by their parent path.
        let mut by_parent: BTreeMap<&[&str], std::collections::BTreeSet<&str>> = BTreeMap::new();
        for segs in &split {
            if depth < segs.len() {
                by_parent
                    .entry(&segs[..depth])
                    .or_default()
                    .insert(segs[depth]);
            }
        }
        let mut chosen: BTreeMap<(&[&str], &str), String> = BTreeMap::new();
        for (parent, segs) in by_parent {
            let candidates: Vec<(String, String)> =
                segs.iter().map(|s| (s.to_string(), snake(s))).collect();
            let names = dedupe(&candidates, RESERVED_MODULES, snake, false);
            for (seg, name) in segs.into_iter().zip(names) {
                chosen.insert((parent, seg), name);
            }
        }
        for (i, segs) in split.iter().enumerate() {
            if let Some(name) = segs
                .get(depth)
                .and_then(|s| chosen.get(&(&segs[..depth], *s)))
            {
                paths[i].push(ident_text(name));
            }
        }
    }
    paths
}

/// The endpoint trait's method of each model id:
/// `happyhorse/happyhorse-1.0/image-to-video` → `happyhorse_1_0_image_to_video`, the id's
/// segments joined, without the vendor when the next segment repeats it. Ids whose short
/// names collide keep their vendor.
pub fn trait_methods(ids: &[String]) -> Vec<String> {
    let full: Vec<String> = ids.iter().map(|id| snake(&id.replace('/', " "))).collect();
    let short: Vec<String> = ids
        .iter()
        .zip(&full)
        .map(|(id, full)| {
            let mut segs = id.split('/');
            let vendor = snake(segs.next().unwrap_or(""));
            let rest = snake(&segs.collect::<Vec<_>>().join(" "));
            if rest.starts_with(&vendor) {
                rest
            } else {
                full.clone()
            }
        })
        .collect();
    let candidates: Vec<(String, String)> = full.iter().cloned().zip(short).collect();
    dedupe(&candidates, RESERVED_METHODS, |full| full.to_owned(), false)
        .into_iter()
        .map(|n| ident_text(&n))
        .collect()
}

/// The hidden per-vendor macro behind the model macro `name`: `__for_each_model_wan_ai`.
pub fn vendor_macro(name: &str, vendor: &str) -> String {
    format!("__{}_{}", snake(name), snake(vendor))
}

/// The shape of a union alternative: it orders the variants (serde tries them in this order,
/// narrowest first) and names them when nothing better does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Shape {
    /// A string enum.
    Preset,
    /// An integer enum.
    Choice,
    /// A boolean.
    Bool,
    /// An integer.
    Integer,
    /// A number.
    Number,
    /// A URL string.
    Url,
    /// Any other string.
    Text,
    /// An object (or a definition, named by its key).
    Object,
    /// A map.
    Map,
    /// An array.
    List,
    /// A nested union.
    Union,
    /// Any JSON value.
    Any,
}

impl Shape {
    /// The variant's name.
    pub fn variant(self) -> &'static str {
        match self {
            Shape::Preset => "Preset",
            Shape::Choice => "Choice",
            Shape::Bool => "Bool",
            Shape::Integer => "Integer",
            Shape::Number => "Number",
            Shape::Url => "Url",
            Shape::Text => "Text",
            Shape::Object => "Object",
            Shape::Map => "Map",
            Shape::List => "List",
            Shape::Union => "Union",
            Shape::Any => "Any",
        }
    }

    /// The word added to the union's type name to name the alternative's own type
    /// (`ImageSize` + `Preset`).
    pub fn type_word(self) -> &'static str {
        match self {
            Shape::Preset | Shape::Choice | Shape::Object | Shape::Union => self.variant(),
            _ => "Value",
        }
    }
}

/// The variant of an object alternative among several in an untagged union, named by the
/// property that tells it apart: `mask` → `WithMask`.
pub fn union_object_variant(property: &str) -> String {
    let c = camel(property);
    // A leading digit needs no `V` after `With`.
    let c = match c.strip_prefix('V') {
        Some(rest) if rest.starts_with(|ch: char| ch.is_ascii_digit()) => rest.to_owned(),
        _ => c,
    };
    format!("With{c}")
}

/// The longest nested type name made by prefixing parents (file names of rustdoc pages
/// must stay short); past it a nested type starts over from its own word.
pub const MAX_NESTED_NAME: usize = 48;

/// A nested type's name: its parent's name and its own word (`Camera` + `Lens`), or the
/// word alone when that would be longer than [`MAX_NESTED_NAME`].
pub fn nested_type(parent: &str, word: &str) -> String {
    if parent.len() + word.len() > MAX_NESTED_NAME {
        word.to_owned()
    } else {
        format!("{parent}{word}")
    }
}

/// The word added to an array's type name to name its item type (`Loras` → `LorasItem`).
pub const ITEM_WORD: &str = "Item";
/// The word added to a map's type name to name its value type (`Refs` → `RefsValue`).
pub const MAP_VALUE_WORD: &str = "Value";
/// The word added to an object's type name to name the type of its unknown keys' values.
pub const EXTRA_WORD: &str = "Extra";
/// The field of an output struct holding the keys its schema does not name.
pub const EXTRA_FIELD: &str = "extra";

/// The `(short, full)` type name candidates of a definition: its key in camel case, or with
/// `Def` (`OutputDef` in the output file) in front when the key is taken.
pub fn def_type(key: &str, output: bool) -> (String, String) {
    let short = camel(key);
    let prefix = if output { "OutputDef" } else { "Def" };
    let full = format!("{prefix}{short}");
    (short, full)
}

/// Whether `s` is a valid Rust identifier as written (`r#type` included).
pub fn is_ident(s: &str) -> bool {
    syn::parse_str::<syn::Ident>(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(f: fn(&str) -> String, cases: &[(&str, &str)]) {
        for (input, want) in cases {
            assert_eq!(f(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn snake_names() {
        check(
            snake,
            &[
                ("image_url", "image_url"),
                ("seedValue", "seed_value"),
                ("negative-prompt", "negative_prompt"),
                ("guidance scale", "guidance_scale"),
                ("3d_mode", "v3d_mode"),
                ("happyhorse-1.0", "happyhorse_1_0"),
                ("解像度", "u89e3_u50cf_u5ea6"),
                ("", "empty"),
                ("Prompt", "prompt"),
            ],
        );
    }

    #[test]
    fn camel_names() {
        check(
            camel,
            &[
                ("image_size", "ImageSize"),
                ("aspect_ratio", "AspectRatio"),
                ("3d", "V3d"),
                ("プロンプト", "U30d7U30edU30f3U30d7U30c8"),
            ],
        );
    }

    #[test]
    fn variants() {
        check(
            variant,
            &[
                ("16:9", "Ratio16x9"),
                ("720P", "P720"),
                ("1080p", "P1080"),
                ("2k", "K2"),
                ("4K", "K4"),
                ("5", "V5"),
                ("-1", "Minus1"),
                ("0.5", "V0p5"),
                ("auto", "Auto"),
                ("square_hd", "SquareHd"),
                ("landscape_16_9", "Landscape169"),
                ("", "Empty"),
                ("Self", "SelfValue"),
                ("K_EULER", "KEuler"),
            ],
        );
        check(
            spelled_variant,
            &[
                ("720p", "V720p"),
                ("720P", "V720P"),
                ("16:9", "V16Colon9"),
                ("16-9", "V16Dash9"),
            ],
        );
        assert_eq!(int_variant(3), "V3");
        assert_eq!(int_variant(-1), "Minus1");
    }

    #[test]
    fn keywords() {
        check(
            ident_text_owned,
            &[
                ("type", "r#type"),
                ("self", "self_value"),
                ("Self", "Self_value"),
                ("prompt", "prompt"),
            ],
        );
    }

    fn ident_text_owned(s: &str) -> String {
        ident_text(s)
    }

    #[test]
    fn collisions_are_deterministic() {
        let c = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        // Case-only collisions fall back to the spelled form.
        let names = dedupe(
            &c(&[("720P", "P720"), ("720p", "P720")]),
            &[],
            spelled_variant,
            true,
        );
        assert_eq!(names, ["V720P", "V720p"]);
        let names = dedupe(
            &c(&[("16:9", "Ratio16x9"), ("16-9", "Ratio16x9")]),
            &[],
            spelled_variant,
            true,
        );
        assert_eq!(names, ["V16Colon9", "V16Dash9"]);
        // Fields: the fallback is the same snake name, so numbering by wire order decides.
        let names = dedupe(
            &c(&[("prompt", "prompt"), ("Prompt", "prompt")]),
            &[],
            snake,
            false,
        );
        assert_eq!(names, ["prompt_2", "prompt"]);
        // Order of appearance does not matter.
        let names = dedupe(
            &c(&[("Prompt", "prompt"), ("prompt", "prompt")]),
            &[],
            snake,
            false,
        );
        assert_eq!(names, ["prompt", "prompt_2"]);
        // Reserved names are never handed out.
        let names = dedupe(
            &c(&[("extra", "extra")]),
            &["extra"],
            |w| format!("{w}_field"),
            false,
        );
        assert_eq!(names, ["extra_field"]);
    }
}
