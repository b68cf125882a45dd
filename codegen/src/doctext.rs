//! Doc text: schema titles, descriptions, constraints and defaults as rustdoc lines.
//! Schema text is data: it is escaped here so it never becomes a link, HTML or code.

use serde_json::Value;

use crate::normalize::{Kind, Schema};

/// The doc lines of a node: its title (bold) and its description.
pub fn of_schema(s: &Schema) -> Vec<String> {
    lines(s.title.as_deref(), s.description.as_deref())
}

/// Doc lines from a title and a description: the title first, as documentation only.
pub fn lines(title: Option<&str>, description: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = title.filter(|t| !t.trim().is_empty()) {
        out.push(format!("**{}**", escape(t.trim())));
    }
    if let Some(d) = description {
        if !out.is_empty() {
            out.push(String::new());
        }
        out.extend(d.trim().lines().map(|l| escape(l.trim_end())));
    }
    out
}

/// Keeps schema text from being read as rustdoc links or HTML.
pub fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('[', "\\[")
        .replace(']', "\\]")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "'")
}

/// Text inside a code span: backticks cannot appear in it.
pub fn code(s: &str) -> String {
    s.replace('`', "'")
}

/// Types without a description still say where they come from.
pub fn fallback(docs: &mut Vec<String>, s: &Schema) {
    if docs.is_empty() {
        let pointer = if s.loc.pointer.is_empty() {
            "/"
        } else {
            &s.loc.pointer
        };
        docs.push(format!("The schema at `{}`.", code(pointer)));
    }
}

/// `Default: ...` under the other lines.
pub fn push_default(docs: &mut Vec<String>, default: Option<&Value>) {
    if let Some(d) = default {
        if !docs.is_empty() {
            docs.push(String::new());
        }
        docs.push(format!("Default: `{}`.", code(&d.to_string())));
    }
}

/// A field's presence and default: `Required.` for a required field (a schema default
/// there is no fallback: the value must be sent, so it is not shown), else the default the
/// server applies when the field is not sent.
pub fn push_field_default(docs: &mut Vec<String>, required: bool, default: Option<&Value>) {
    let line = match (required, default) {
        (true, _) => "Required.".to_owned(),
        (false, Some(d)) => format!(
            "Default: `{}` (the server's, when the field is not sent).",
            code(&d.to_string())
        ),
        (false, None) => return,
    };
    if !docs.is_empty() {
        docs.push(String::new());
    }
    docs.push(line);
}

/// `Constraints: ...`: every limit the schema states, in words.
pub fn push_constraints(docs: &mut Vec<String>, s: &Schema) {
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
                rules.push(format!("matches `{}`", code(p)));
            }
            if let Some(f) = format {
                rules.push(format!("format `{}`", code(f)));
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
                rules.push(format!("format `{}`", code(f)));
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
