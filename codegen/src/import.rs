//! Import, beside the pipeline: a RunComfy model API page (saved as text or HTML, in any
//! language) becomes the `input.json` and `output.json` of a schema folder.
//!
//! Nothing here depends on the page's language: the model id is the `/v1/models/<id>` URL of
//! the curl example (or a line that is just `vendor/model/variant`), and the schemas are
//! found by shape, in page order: the first JSON object with `properties` is the input
//! schema; the output schema is the first `{"output": {...}}` object, else the next object
//! with `properties`. Pure functions: the binary reads the page and writes the files.
//!
//! ```
//! let page = r#"
//! acme/echo/text-to-image
//! curl --url https://model-api.runcomfy.net/v1/models/acme/echo/text-to-image --data '{"prompt": "x"}'
//! Input schema
//! {"type": "object", "properties": {"prompt": {"type": "string"}}}
//! Output schema
//! {"output": {"type": "object", "properties": {"image": {"type": "string"}}}}
//! "#;
//! let imported = runcomfy_codegen::import::import_page(page)?;
//! assert_eq!(imported.model_id, "acme/echo/text-to-image");
//! assert!(imported.input["properties"]["prompt"].is_object());
//! assert!(imported.output.is_some());
//! # Ok::<(), runcomfy_codegen::import::ImportError>(())
//! ```

use std::fmt;

use serde_json::Value;

/// What a page yielded.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedPage {
    /// The model id.
    pub model_id: String,
    /// The input schema, as written on the page.
    pub input: Value,
    /// The output schema (wrapped as on the page), when the page has one.
    pub output: Option<Value>,
}

impl ImportedPage {
    /// `input.json`, pretty-printed with the page's key order and a final newline.
    pub fn input_text(&self) -> String {
        pretty(&self.input)
    }

    /// `output.json`, pretty-printed, when the page has an output schema.
    pub fn output_text(&self) -> Option<String> {
        self.output.as_ref().map(pretty)
    }
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

/// Why a page could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportError {
    /// No model id was found.
    NoModelId,
    /// No JSON object with `properties` was found.
    NoInputSchema,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::NoModelId => f.write_str(
                "no model id found (expected a `/v1/models/<id>` url or a line like `vendor/model/variant`)",
            ),
            ImportError::NoInputSchema => {
                f.write_str("no input schema found (a json object with `properties`)")
            }
        }
    }
}

impl std::error::Error for ImportError {}

/// Reads a page saved as text or HTML.
pub fn import_page(page: &str) -> Result<ImportedPage, ImportError> {
    let text = if looks_like_html(page) {
        html_to_text(page)
    } else {
        page.to_owned()
    };
    let model_id = find_model_id(&text).ok_or(ImportError::NoModelId)?;
    let blocks = json_objects(&text);
    let input_at = blocks
        .iter()
        .position(is_input_schema)
        .ok_or(ImportError::NoInputSchema)?;
    let output = blocks
        .iter()
        .find(|b| is_wrapped_output(b))
        .or_else(|| blocks[input_at + 1..].iter().find(|b| is_input_schema(b)))
        .cloned();
    Ok(ImportedPage {
        model_id,
        input: blocks[input_at].clone(),
        output,
    })
}

fn is_wrapped_output(v: &Value) -> bool {
    match v.as_object() {
        Some(o) if o.len() == 1 => o.get("output").is_some_and(Value::is_object),
        _ => false,
    }
}

fn is_input_schema(v: &Value) -> bool {
    !is_wrapped_output(v) && v.get("properties").is_some_and(Value::is_object)
}

/// Checks a candidate model id: 2 to 5 segments of `[A-Za-z0-9_.-]`, no dot segments, and at
/// least one letter (so a date or a version number is not taken for an id).
fn valid_model_id(id: &str) -> bool {
    let segments: Vec<&str> = id.split('/').collect();
    (2..=5).contains(&segments.len())
        && segments.iter().all(|s| {
            !s.is_empty()
                && *s != "."
                && *s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        })
        && id.bytes().any(|b| b.is_ascii_alphabetic())
}

fn find_model_id(text: &str) -> Option<String> {
    // The curl example's URL names the id exactly as the API takes it.
    const MARK: &str = "/v1/models/";
    let mut rest = text;
    while let Some(i) = rest.find(MARK) {
        let after = &rest[i + MARK.len()..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
            .unwrap_or(after.len());
        let candidate = after[..end].trim_end_matches(['/', '.']);
        if valid_model_id(candidate) {
            return Some(candidate.to_owned());
        }
        rest = after;
    }
    // Else a line that is only an id; ids of three or more segments first.
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let standalone = |min: usize| {
        lines
            .iter()
            .find(|l| l.split('/').count() >= min && valid_model_id(l))
            .map(|l| l.to_string())
    };
    standalone(3).or_else(|| standalone(2))
}

/// Every JSON object of the text that parses, outermost only, in order.
fn json_objects(text: &str) -> Vec<Value> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' {
            if let Some(end) = balanced_end(bytes, i) {
                if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(&text[i..end]) {
                    out.push(v);
                    i = end;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

/// The end (exclusive) of the brace-balanced block starting at `start`, strings respected.
fn balanced_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (k, &b) in bytes.iter().enumerate().skip(start) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(k + 1);
                }
            }
            _ => {}
        }
    }
    None
}

fn looks_like_html(page: &str) -> bool {
    let head: String = page.chars().take(4096).collect::<String>().to_lowercase();
    head.contains("<!doctype html")
        || head.contains("<html")
        || head.contains("<body")
        || head.contains("<div")
        || head.contains("<pre")
        || head.contains("<p>")
}

/// HTML to plain text: scripts and styles dropped, block ends become line breaks, tags are
/// removed, then entities decoded (so an escaped `&lt;` in a schema stays text).
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    while i < html.len() {
        let Some(rel) = html[i..].find('<') else {
            out.push_str(&decode_entities(&html[i..]));
            break;
        };
        out.push_str(&decode_entities(&html[i..i + rel]));
        let tag_start = i + rel;
        let Some(tag_len) = html[tag_start..].find('>') else {
            out.push_str(&decode_entities(&html[tag_start..]));
            break;
        };
        let tag_end = tag_start + tag_len + 1;
        let name: String = lower[tag_start + 1..tag_end - 1]
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let closing = lower[tag_start + 1..].starts_with('/');
        if !closing && (name == "script" || name == "style") {
            let close = format!("</{name}");
            i = match lower[tag_end..].find(&close) {
                Some(k) => {
                    let after = tag_end + k;
                    html[after..]
                        .find('>')
                        .map_or(html.len(), |g| after + g + 1)
                }
                None => html.len(),
            };
            continue;
        }
        if matches!(
            name.as_str(),
            "br" | "p"
                | "div"
                | "pre"
                | "li"
                | "tr"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "section"
                | "article"
                | "table"
                | "ul"
                | "ol"
        ) {
            out.push('\n');
        }
        i = tag_end;
    }
    out
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let end = after.find(';').filter(|e| *e <= 12);
        let decoded = end.and_then(|e| entity(&after[1..e]));
        match (end, decoded) {
            (Some(e), Some(c)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            _ => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    let named = match name {
        "quot" => Some('"'),
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => None,
    };
    if named.is_some() {
        return named;
    }
    let num = name.strip_prefix('#')?;
    let code = match num.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
        None => num.parse().ok()?,
    };
    char::from_u32(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_flattened_and_decoded() {
        let t = html_to_text(
            "<p>a&amp;b</p><script>var x = {\"a\": 1};</script><pre><span>{&quot;k&quot;: &#34;v&#x22;}</span></pre>",
        );
        assert_eq!(t, "\na&b\n\n{\"k\": \"v\"}\n");
    }

    #[test]
    fn ids() {
        assert_eq!(
            find_model_id(
                "see https://x/v1/models/{model_id}\nkling/kling-3.0/standard/text-to-video\n"
            ),
            Some("kling/kling-3.0/standard/text-to-video".to_owned())
        );
        assert_eq!(
            find_model_id("--url https://model-api.runcomfy.net/v1/models/a/b-1.0/c \\"),
            Some("a/b-1.0/c".to_owned())
        );
        assert_eq!(find_model_id("2024/10\n1.0/2.0\n"), None);
    }

    #[test]
    fn blocks_skip_non_json_braces() {
        let b = json_objects("x {request_id} y {\"a\": {\"b\": \"}\"}}{\"c\": 1}");
        assert_eq!(b.len(), 2);
        assert_eq!(b[0]["a"]["b"], "}");
    }

    #[test]
    fn unwrapped_output_is_the_second_schema() {
        let p = import_page(
            "a/b\n{\"properties\": {\"x\": {\"type\": \"string\"}}}\n{\"properties\": {\"image\": {\"type\": \"string\"}}}",
        )
        .unwrap();
        assert!(p.output.unwrap()["properties"]["image"].is_object());
        assert_eq!(import_page("a/b\n{}"), Err(ImportError::NoInputSchema));
        assert_eq!(
            import_page("{\"properties\": {}}"),
            Err(ImportError::NoModelId)
        );
    }
}
