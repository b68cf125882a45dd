//! Doc text: schema titles, descriptions, constraints and defaults as rustdoc lines.
//! Schema text is data: it is escaped here so it never becomes a link, HTML or code.

use serde_json::Value;

use crate::normalize::{Kind, Schema};

/// The doc lines of a node: its title (bold) and its description.
pub fn of_schema(s: &Schema) -> Vec<String> {
    let mut out = lines(s.title.as_deref(), s.description.as_deref());
    // What graceful mode did not type or check here, and why.
    for note in &s.notes {
        if !out.is_empty() {
            out.push(String::new());
        }
        out.push(render(&one_line(note)));
    }
    out
}

/// Doc lines from a title and a description: the title first, as documentation only.
pub fn lines(title: Option<&str>, description: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = title.map(one_line).filter(|t| !t.is_empty()) {
        out.push(format!("**{}**", render(&t)));
    }
    if let Some(d) = description {
        if !out.is_empty() {
            out.push(String::new());
        }
        let d = newlines(d);
        out.extend(d.trim().lines().map(|l| render(l.trim())));
    }
    out
}

/// Line breaks of any kind (`\r\n`, a lone `\r`) as `\n`: rustc refuses a bare CR in a doc
/// comment.
fn newlines(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

/// Text on one line: line breaks and tabs become spaces, other control characters go.
fn one_line(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .filter(|c| !c.is_control())
        .collect();
    s.trim().to_owned()
}

/// One line of schema text as markdown that rustdoc shows as written: `[text](url)` links
/// are kept, bare URLs become autolinks (`<url>`), other brackets, HTML and backticks are
/// escaped, control characters dropped. Indentation is gone already (an indented line would
/// be a code block, and rustdoc would compile it as a doctest).
pub fn render(line: &str) -> String {
    let line: String = line
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .filter(|c| !c.is_control())
        .collect();
    let mut out = String::with_capacity(line.len());
    let mut rest = line.as_str();
    while let Some(c) = rest.chars().next() {
        if c == '[' {
            if let Some((text, url, len)) = markdown_link(rest) {
                out.push('[');
                out.push_str(&escape(text));
                out.push_str("](");
                out.push_str(url);
                out.push(')');
                rest = &rest[len..];
                continue;
            }
        }
        if c == '<' {
            if let Some(end) = rest.find('>') {
                let inner = &rest[1..end];
                if is_url_start(inner) && url_len(inner) == inner.len() {
                    out.push_str(&rest[..=end]);
                    rest = &rest[end + 1..];
                    continue;
                }
            }
        }
        let at_word_start = !out.ends_with(|p: char| p.is_alphanumeric());
        if at_word_start && is_url_start(rest) {
            let len = url_len(rest);
            out.push('<');
            out.push_str(&rest[..len]);
            out.push('>');
            rest = &rest[len..];
            continue;
        }
        out.push_str(&escape(&c.to_string()));
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn is_url_start(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://")
}

/// The length of the URL at the start of `s`: up to a space, a quote or an angle bracket,
/// without trailing punctuation (a `)` only when it closes a `(` of the URL).
fn url_len(s: &str) -> usize {
    let mut end = s
        .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | '`'))
        .unwrap_or(s.len());
    loop {
        let url = &s[..end];
        let Some(last) = url.chars().last() else {
            break;
        };
        let unbalanced = last == ')' && url.matches('(').count() < url.matches(')').count();
        let unbalanced_sq = last == ']' && url.matches('[').count() < url.matches(']').count();
        if matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '*') || unbalanced || unbalanced_sq {
            end -= last.len_utf8();
        } else {
            break;
        }
    }
    end
}

/// `[text](url)` at the start of `s`, with an http(s) URL: `(text, url, length)`.
fn markdown_link(s: &str) -> Option<(&str, &str, usize)> {
    let close = s.find(']')?;
    let text = &s[1..close];
    if text.contains('[') || text.is_empty() {
        return None;
    }
    let after = &s[close + 1..];
    let url_part = after.strip_prefix('(')?;
    let end = url_part.find(')')?;
    let url = &url_part[..end];
    if !is_url_start(url) || url.contains(char::is_whitespace) || url.contains(['<', '>', '(']) {
        return None;
    }
    Some((text, url, close + 2 + end + 1))
}

/// The first line of a description, for one-line listings.
pub fn summary(description: Option<&str>) -> String {
    description
        .map(newlines)
        .and_then(|d| d.lines().next().map(one_line))
        .unwrap_or_default()
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

/// Text inside a code span: on one line, backticks cannot appear in it.
pub fn code(s: &str) -> String {
    one_line(s).replace('`', "'")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_text_renders_as_written() {
        let cases = [
            (
                "see [the docs](https://example.com/a_b) now",
                "see [the docs](https://example.com/a_b) now",
            ),
            ("see https://example.com/x.", "see <https://example.com/x>."),
            ("(https://example.com/x)", "(<https://example.com/x>)"),
            ("<https://example.com/x>", "<https://example.com/x>"),
            ("[instrumental] <b>", "\\[instrumental\\] &lt;b&gt;"),
            ("a `b` c", "a 'b' c"),
            ("[x](javascript:alert)", "\\[x\\](javascript:alert)"),
            ("xhttps://a.b", "xhttps://a.b"),
        ];
        for (input, want) in cases {
            assert_eq!(render(input), want, "{input:?}");
        }
        assert_eq!(
            lines(Some("a\rb"), Some("one\rtwo\r\n    three")),
            ["**a b**", "", "one", "two", "three"]
        );
        assert_eq!(code("a\r`b`"), "a 'b'");
        assert_eq!(summary(Some("first\rsecond")), "first");
    }
}
