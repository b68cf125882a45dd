//! The per-model flags of `runcomfy run`: a static table written by `build.rs` from the
//! schemas, turned into clap arguments for the one model named on the command line.

use clap::builder::{PossibleValuesParser, ValueParser};
use clap::{Arg, ArgAction, ArgMatches};
use serde_json::{Map, Value};

/// The JSON type a flag's values are read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// `true` or `false`; the flag alone means `true`.
    Bool,
    /// An integer.
    Int,
    /// A number.
    Number,
    /// A string.
    Str,
    /// Any JSON (objects, lists of objects, unions); a value that is not JSON is a string.
    Json,
}

/// One flag of a model: one top-level field of its input schema.
#[derive(Debug)]
pub struct FlagSpec {
    /// The long flag name, without `--` (`image-url`).
    pub name: &'static str,
    /// The JSON key (`image_url`).
    pub wire: &'static str,
    /// How values are read.
    pub kind: ValueKind,
    /// The field is a list: the flag takes several values and may be repeated.
    pub list: bool,
    /// The allowed values of an enum, as typed on the command line.
    pub choices: &'static [&'static str],
    /// `minimum`.
    pub min: Option<f64>,
    /// `maximum`.
    pub max: Option<f64>,
    /// `exclusiveMinimum`.
    pub exclusive_min: Option<f64>,
    /// `exclusiveMaximum`.
    pub exclusive_max: Option<f64>,
    /// The schema's default of an optional field, as JSON text (shown in help, never sent);
    /// `None` on required fields.
    pub default: Option<&'static str>,
    /// The only value of a required single-value enum, as JSON text: filled in when absent.
    pub fixed: Option<&'static str>,
    /// The help line, from the schema's description.
    pub help: &'static str,
    /// Listed in `required`.
    pub required: bool,
    /// The field takes a file (`image`, `video`, `audio` or `file`): a local path is sent
    /// as a `data:` URI.
    pub file: Option<&'static str>,
    /// The schema's `file_size_mb<` limit.
    pub max_file_mb: Option<f64>,
    /// The schema's message for that limit.
    pub file_rule_error: Option<&'static str>,
}

/// The flags of one model.
#[derive(Debug)]
pub struct ModelFlags {
    /// The model id.
    pub id: &'static str,
    /// The first line of the model's description.
    pub summary: &'static str,
    /// One flag per top-level input field, in schema order.
    pub flags: &'static [FlagSpec],
}

/// Every generated model, sorted by id.
pub static MODELS: &[ModelFlags] = include!(concat!(env!("OUT_DIR"), "/flags.rs"));

/// The model of this id, when it was generated.
pub fn model(id: &str) -> Option<&'static ModelFlags> {
    MODELS.iter().find(|m| m.id == id)
}

/// The arg id of a flag in clap's matches.
fn arg_id(spec: &FlagSpec) -> String {
    format!("field:{}", spec.wire)
}

/// The clap arguments of a model's flags.
pub fn args(model: &'static ModelFlags) -> Vec<Arg> {
    model.flags.iter().map(arg).collect()
}

fn arg(spec: &'static FlagSpec) -> Arg {
    let mut help = spec.help.to_owned();
    if spec.required {
        help.push_str(if help.is_empty() {
            "(required)"
        } else {
            " (required)"
        });
    }
    if let Some(kind) = spec.file {
        help.push_str(&format!(" [{kind}: URL or local file]"));
    }
    // The server's fallback for an optional field; a required field has none to show.
    if let (Some(d), false) = (spec.default, spec.required) {
        help.push_str(&format!(" [default: {}]", display_json(d)));
    }
    let bounds = bounds_text(spec);
    if !bounds.is_empty() {
        help.push_str(&format!(" [{bounds}]"));
    }
    let mut arg = Arg::new(arg_id(spec))
        .long(spec.name)
        .help(help)
        .value_name(spec.wire.to_ascii_uppercase())
        .help_heading("Model inputs")
        .required(false);
    if spec.required && spec.fixed.is_none() {
        // `--input` and `--set` may supply it instead; the body is checked again after merging.
        arg = arg.required_unless_present_any(["input", "set"]);
    }
    arg = match spec.kind {
        ValueKind::Bool => arg
            .num_args(0..=1)
            .require_equals(false)
            .default_missing_value("true")
            .value_parser(clap::value_parser!(bool)),
        _ if !spec.choices.is_empty() => {
            arg.value_parser(PossibleValuesParser::new(spec.choices.iter().copied()))
        }
        ValueKind::Int | ValueKind::Number => arg
            .allow_negative_numbers(true)
            .value_parser(ValueParser::new(move |s: &str| parse_scalar(spec, s))),
        _ => arg.value_parser(ValueParser::new(move |s: &str| parse_scalar(spec, s))),
    };
    if spec.list {
        arg = arg.action(ArgAction::Append).num_args(1..);
    } else {
        arg = arg.action(ArgAction::Set);
    }
    arg
}

fn display_json(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::String(s)) if s.is_empty() => "\"\"".to_owned(),
        Ok(Value::String(s)) => s,
        _ => text.to_owned(),
    }
}

/// The bounds of a flag, as `>= 0, <= 10`.
pub fn bounds_text(spec: &FlagSpec) -> String {
    let mut parts = Vec::new();
    if let Some(v) = spec.min {
        parts.push(format!(">= {v}"));
    }
    if let Some(v) = spec.exclusive_min {
        parts.push(format!("> {v}"));
    }
    if let Some(v) = spec.max {
        parts.push(format!("<= {v}"));
    }
    if let Some(v) = spec.exclusive_max {
        parts.push(format!("< {v}"));
    }
    parts.join(", ")
}

/// Checks a number against the flag's bounds.
fn check_bounds(spec: &FlagSpec, x: f64) -> Result<(), String> {
    let fails = spec.min.is_some_and(|m| x < m)
        || spec.max.is_some_and(|m| x > m)
        || spec.exclusive_min.is_some_and(|m| x <= m)
        || spec.exclusive_max.is_some_and(|m| x >= m);
    if fails {
        Err(format!("must be {}", bounds_text(spec)))
    } else {
        Ok(())
    }
}

/// Parses one command-line value of a non-enum flag into the JSON text it stands for.
fn parse_scalar(spec: &FlagSpec, s: &str) -> Result<String, String> {
    match spec.kind {
        ValueKind::Int => {
            let n: i64 = s
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not an integer"))?;
            check_bounds(spec, n as f64)?;
            Ok(n.to_string())
        }
        ValueKind::Number => {
            let x: f64 = s
                .trim()
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite())
                .ok_or_else(|| format!("{s:?} is not a number"))?;
            check_bounds(spec, x)?;
            let n = serde_json::Number::from_f64(x).ok_or("not a finite number")?;
            Ok(n.to_string())
        }
        _ => Ok(s.to_owned()),
    }
}

/// One value as JSON.
fn to_json(spec: &FlagSpec, text: &str) -> Value {
    match spec.kind {
        ValueKind::Str => Value::String(text.to_owned()),
        // Already checked by the parser; integers and numbers are valid JSON.
        ValueKind::Int | ValueKind::Number | ValueKind::Bool => {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
        }
        ValueKind::Json => json_or_string(text),
    }
}

/// A value given as text: JSON when it parses as JSON, else the string itself.
pub fn json_or_string(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// Writes the flags given on the command line into `body`.
pub fn apply(model: &ModelFlags, matches: &ArgMatches, body: &mut Map<String, Value>) {
    for spec in model.flags {
        let id = arg_id(spec);
        if spec.kind == ValueKind::Bool {
            if let Some(b) = matches.get_one::<bool>(&id) {
                body.insert(spec.wire.to_owned(), Value::Bool(*b));
            }
            continue;
        }
        let Some(values) = matches.get_many::<String>(&id) else {
            continue;
        };
        let values: Vec<Value> = values.map(|v| to_json(spec, v)).collect();
        let value = if spec.list {
            Value::Array(values)
        } else {
            match values.into_iter().last() {
                Some(v) => v,
                None => continue,
            }
        };
        body.insert(spec.wire.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_generated_models() {
        let ids: Vec<&str> = MODELS.iter().map(|m| m.id).collect();
        let generated: Vec<&str> = runcomfy::models::ALL.iter().map(|m| m.id).collect();
        assert_eq!(ids, generated);
        for m in MODELS {
            let mut names: Vec<&str> = m.flags.iter().map(|f| f.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), m.flags.len(), "{}", m.id);
            for f in m.flags {
                assert!(!crate::reserved::RESERVED.contains(&f.name), "{}", f.name);
            }
        }
    }

    #[test]
    fn required_flags_show_no_default() {
        let help_of = |spec: &'static FlagSpec| {
            arg(spec)
                .get_help()
                .map(ToString::to_string)
                .unwrap_or_default()
        };
        for m in MODELS {
            for spec in m.flags {
                let help = help_of(spec);
                if spec.required {
                    assert!(
                        !help.contains("[default:"),
                        "{} --{}: {help}",
                        m.id,
                        spec.name
                    );
                    assert!(
                        help.contains("(required)"),
                        "{} --{}: {help}",
                        m.id,
                        spec.name
                    );
                }
                assert!(
                    !help.contains("[default: ]"),
                    "{} --{}: {help}",
                    m.id,
                    spec.name
                );
            }
        }
        // Not vacuous: this schema gives its required `prompt` a default.
        let id = "happyhorse/happyhorse-1.0/image-to-video";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/");
        let text = std::fs::read_to_string(format!("{path}{id}/input.json")).unwrap();
        let schema: Value = serde_json::from_str(&text).unwrap();
        assert!(schema.pointer("/properties/prompt/default").is_some());
        let prompt = model(id).unwrap().flags.iter().find(|f| f.wire == "prompt");
        let prompt = prompt.unwrap();
        assert!(prompt.required);
        assert_eq!(prompt.default, None);
        assert!(
            help_of(prompt).ends_with("(required)"),
            "{}",
            help_of(prompt)
        );
        assert_eq!(display_json("\"\""), "\"\"");
        assert_eq!(display_json("\"1080P\""), "1080P");
    }

    #[test]
    fn happyhorse_flags() {
        let m = model("happyhorse/happyhorse-1.0/image-to-video").unwrap();
        let flag = |n: &str| m.flags.iter().find(|f| f.name == n).unwrap();
        assert_eq!(flag("image-url").file, Some("image"));
        assert!(flag("image-url").required);
        assert_eq!(flag("resolution").choices, ["720P", "1080P"]);
        assert_eq!(flag("duration").kind, ValueKind::Int);
        assert_eq!(flag("duration").choices.len(), 13);
        assert_eq!(flag("seed").max, Some(2147483647.0));
        assert_eq!(flag("watermark").kind, ValueKind::Bool);
        assert_eq!(flag("resolution").default, Some("\"1080P\""));
    }

    #[test]
    fn file_rules_come_from_the_schema() {
        let m = model("runwayml/runway-aleph-2/video-to-video").unwrap();
        let f = m.flags.iter().find(|f| f.wire == "video_url").unwrap();
        assert_eq!(f.file, Some("video"));
        assert_eq!(f.max_file_mb, Some(16.0));
        let m = model("wan-ai/wan-2.7/edit").unwrap();
        let f = m.flags.iter().find(|f| f.wire == "image_urls").unwrap();
        assert!(f.list);
        assert_eq!(f.file, Some("image"));
    }
}
