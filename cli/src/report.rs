//! What `runcomfy batch` leaves in its output folder besides the files: `manifest.jsonl` (one
//! JSON line per row) and `index.html`, a self-contained page (inline CSS and script, no
//! network) with the totals on top and each row's inputs, outputs, state, cost and error.
//!
//! Both are rebuilt from the job store (plus the rows refused before sending) and replaced
//! atomically, so a reader never sees half a file.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};

use runcomfy_store::{BatchInfo, BatchStatus, JobKey, JobStore, RowFilter, SavedOutput, State};

/// The manifest's file name in the output folder.
pub const MANIFEST: &str = "manifest.jsonl";
/// The page's file name in the output folder.
pub const INDEX: &str = "index.html";

/// One row as the report shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    /// The line of the input file.
    pub line: u64,
    /// The input as sent (or as read, for a refused row).
    pub input: Option<Value>,
    /// The SHA-256 of the input's canonical JSON.
    pub input_sha256: Option<String>,
    /// The request id, once known.
    pub request_id: Option<String>,
    /// The store's state, or `invalid` for a row refused before sending.
    pub state: String,
    /// Saved output files, relative to the output folder when inside it.
    pub files: Vec<PathBuf>,
    /// Output URLs not saved (yet).
    pub unsaved: Vec<String>,
    /// The actual cost.
    pub cost_usd: Option<f64>,
    /// The estimate the budget counted.
    pub estimated_cost_usd: Option<f64>,
    /// The error, as recorded.
    pub error: Option<Value>,
}

/// The totals on top of the page.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Totals {
    /// The store's totals.
    pub status: BatchStatus,
    /// Rows refused before sending (not in the store).
    pub invalid: u64,
}

/// Every row of the batch from the store (outputs of the rows that succeeded included), in
/// line order, with `refused` rows (refused before sending) merged in.
pub async fn collect(
    store: &dyn JobStore,
    batch: &BatchInfo,
    dir: &Path,
    refused: &[(u64, String)],
) -> Result<Vec<ReportRow>, runcomfy_store::StoreError> {
    let dir = absolute(dir);
    let mut rows = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .batch_rows(batch.id, &RowFilter::page(after, 1000))
            .await?;
        let Some(last) = page.last() else { break };
        after = last.batch.map_or(u64::MAX, |(_, line)| line);
        // The outputs of the page's finished rows in one query, not one per row: every worker
        // rewrites the report of the whole batch.
        let finished: Vec<JobKey> = page
            .iter()
            .filter(|job| matches!(job.state, State::Saving | State::Succeeded))
            .map(|job| job.key)
            .collect();
        let mut outputs: HashMap<JobKey, Vec<SavedOutput>> = HashMap::new();
        for (key, out) in store.outputs_of(&finished).await? {
            outputs.entry(key).or_default().push(out);
        }
        for job in page {
            let mut files = Vec::new();
            let mut unsaved = Vec::new();
            for out in outputs.remove(&job.key).unwrap_or_default() {
                match out.path {
                    Some(p) => files.push(relative_to(&dir, &p)),
                    None => unsaved.push(out.url),
                }
            }
            rows.push(ReportRow {
                line: job.batch.map_or(0, |(_, line)| line),
                input: Some(job.input),
                input_sha256: Some(job.input_sha256),
                request_id: job.request_id,
                state: job.state.as_str().to_owned(),
                files,
                unsaved,
                cost_usd: job.cost_usd,
                estimated_cost_usd: job.estimated_cost_usd,
                error: job.error,
            });
        }
        if after == u64::MAX {
            break;
        }
    }
    for (line, error) in refused {
        rows.push(ReportRow {
            line: *line,
            input: None,
            input_sha256: None,
            request_id: None,
            state: "invalid".to_owned(),
            files: Vec::new(),
            unsaved: Vec::new(),
            cost_usd: None,
            estimated_cost_usd: None,
            error: Some(Value::String(error.clone())),
        });
    }
    rows.sort_by_key(|r| r.line);
    Ok(rows)
}

/// `path` made absolute against the current folder (without touching the file system).
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// `path` relative to `dir` when it lies inside it, else absolute.
fn relative_to(dir: &Path, path: &Path) -> PathBuf {
    let path = absolute(path);
    match path.strip_prefix(dir) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_path_buf(),
        _ => path,
    }
}

/// The manifest's line for a row.
pub fn manifest_line(row: &ReportRow) -> Value {
    json!({
        "row": row.line,
        "request_id": row.request_id,
        "state": row.state,
        "outputs": row.files.iter().map(|p| p.to_string_lossy()).collect::<Vec<_>>(),
        "unsaved_outputs": row.unsaved,
        "cost_usd": row.cost_usd,
        "estimated_cost_usd": row.estimated_cost_usd,
        "error": row.error,
        "input_sha256": row.input_sha256,
    })
}

/// Writes `manifest.jsonl` and `index.html` into `dir`, each replaced atomically.
pub fn write(
    dir: &Path,
    name: &str,
    model_id: &str,
    totals: &Totals,
    rows: &[ReportRow],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut manifest = String::new();
    for row in rows {
        manifest.push_str(&manifest_line(row).to_string());
        manifest.push('\n');
    }
    replace(dir, MANIFEST, manifest.as_bytes())?;
    replace(dir, INDEX, html(name, model_id, totals, rows).as_bytes())
}

/// Writes `bytes` to `dir/name` through a temporary file of this process and a rename.
fn replace(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(name)).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Text made safe for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A relative path as a URL reference: each segment percent-encoded; an absolute path as a
/// `file://` URL.
fn href(path: &Path) -> String {
    let mut out = String::new();
    if path.is_absolute() {
        out.push_str("file://");
    }
    let mut first = true;
    for c in path.components() {
        let segment = match c {
            Component::Normal(s) => s.to_string_lossy(),
            Component::RootDir | Component::Prefix(_) => continue,
            Component::CurDir => continue,
            Component::ParentDir => "..".into(),
        };
        if !first || path.is_absolute() {
            out.push('/');
        }
        first = false;
        for b in segment.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(b as char);
            } else {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// The kind of media element for a file, from its extension.
fn media_kind(path: &Path) -> Option<&'static str> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)?;
    match ext.as_str() {
        "png" | "jpg" | "jpeg" | "webp" | "gif" | "bmp" | "avif" | "svg" => Some("img"),
        "mp4" | "m4v" | "webm" | "mov" | "ogv" | "mkv" => Some("video"),
        "mp3" | "wav" | "flac" | "ogg" | "oga" | "m4a" | "aac" | "opus" => Some("audio"),
        _ => None,
    }
}

/// The input as shown: `data:` URIs and other long strings shortened.
fn shown_input(v: &Value) -> Value {
    match v {
        Value::String(s) if s.len() > 300 => {
            let head: String = s.chars().take(60).collect();
            Value::String(format!("{head}… ({} KB)", s.len() / 1024))
        }
        Value::Array(items) => Value::Array(items.iter().map(shown_input).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), shown_input(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn error_text(e: &Value) -> String {
    match e {
        Value::String(s) => s.clone(),
        Value::Object(m) => ["message", "error_message", "detail"]
            .iter()
            .find_map(|k| m.get(*k).and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| e.to_string()),
        other => other.to_string(),
    }
}

fn usd(x: f64) -> String {
    format!("${x:.3}")
}

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .3em}
.totals{display:flex;flex-wrap:wrap;gap:.5em;margin:.8em 0 1.2em;padding:0;list-style:none}
.totals li{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.4em .8em}
.totals b{display:block;font-size:1.3em}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #ddd;padding:.4em;vertical-align:top;text-align:left}
pre{margin:0;white-space:pre-wrap;word-break:break-all;max-width:32em;font-size:12px}
.media{display:flex;flex-wrap:wrap;gap:.4em}
.media img,.media video{max-width:320px;max-height:240px}
.state-succeeded{color:#176f2c}.state-failed,.state-refused,.state-expired,.state-invalid{color:#b3261e}
.state-uncertain{color:#a15c00;font-weight:bold}
.err{color:#b3261e}
";

/// Counts media that loaded or failed into `data-media-loaded` / `data-media-failed` on the
/// root element, and per kind into `data-{img,video,audio}-{total,loaded}` (a headless browser
/// reads them back); installed before any element exists. A video counts as loaded only once
/// its metadata is in and it has a picture size (`videoWidth` > 0), an audio once it has a
/// duration.
const SCRIPT: &str = "
(function(){
var d=document.documentElement,seen=new WeakSet(),loaded=0,failed=0,kinds={IMG:0,VIDEO:0,AUDIO:0};
function put(){d.setAttribute('data-media-loaded',loaded);d.setAttribute('data-media-failed',failed);
for(var k in kinds)d.setAttribute('data-'+k.toLowerCase()+'-loaded',kinds[k])}
function count(e,ok){var t=e.target;if(!t||!t.tagName)return;var n=t.tagName;
if(n==='SOURCE'){t=t.parentElement;n=t?t.tagName:''}
if(!Object.prototype.hasOwnProperty.call(kinds,n))return;if(seen.has(t))return;seen.add(t);
if(ok&&n==='VIDEO'&&!(t.readyState>=1&&t.videoWidth>0))ok=false;
if(ok&&n==='AUDIO'&&!(t.readyState>=1&&t.duration>0))ok=false;
if(ok){loaded++;kinds[n]++}else failed++;put()}
document.addEventListener('load',function(e){count(e,true)},true);
document.addEventListener('loadedmetadata',function(e){count(e,true)},true);
document.addEventListener('error',function(e){count(e,false)},true);
document.addEventListener('DOMContentLoaded',function(){
var all=0;for(var k in kinds){var n=document.querySelectorAll('.media '+k.toLowerCase()).length;all+=n;
d.setAttribute('data-'+k.toLowerCase()+'-total',n)}
d.setAttribute('data-media-total',all);put();d.setAttribute('data-rendered','1')});
})();
";

/// The page.
pub fn html(name: &str, model_id: &str, totals: &Totals, rows: &[ReportRow]) -> String {
    let s = &totals.status;
    let mut h = String::with_capacity(4096 + rows.len() * 512);
    let title = format!("batch {name} ({model_id})");
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n<script>{SCRIPT}</script>\n</head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let in_flight = s.claimed + s.submitting + s.running + s.saving;
    let boxes: [(&str, String); 9] = [
        ("rows", (s.total + totals.invalid).to_string()),
        ("succeeded", s.succeeded.to_string()),
        ("failed", s.failed.to_string()),
        ("cancelled", s.cancelled.to_string()),
        ("uncertain", s.uncertain.to_string()),
        ("in flight", in_flight.to_string()),
        ("queued", s.queued.to_string()),
        ("invalid", totals.invalid.to_string()),
        ("spent", usd(s.spent_usd)),
    ];
    h.push_str("<ul class=\"totals\" id=\"totals\">\n");
    for (label, value) in boxes {
        let _ = writeln!(
            h,
            "<li data-total=\"{}\"><b>{}</b>{}</li>",
            escape(label),
            escape(&value),
            escape(label)
        );
    }
    h.push_str("</ul>\n");
    let lazy = rows.len() > 100;
    h.push_str("<table><thead><tr><th>row</th><th>input</th><th>outputs</th><th>state</th><th>cost</th><th>error</th></tr></thead><tbody>\n");
    for row in rows {
        let _ = write!(
            h,
            "<tr id=\"row-{}\" data-state=\"{}\"><td>{}",
            row.line,
            escape(&row.state),
            row.line
        );
        if let Some(id) = &row.request_id {
            let _ = write!(h, "<br><small>{}</small>", escape(id));
        }
        h.push_str("</td><td>");
        if let Some(input) = &row.input {
            let text = serde_json::to_string_pretty(&shown_input(input)).unwrap_or_default();
            let _ = write!(h, "<pre>{}</pre>", escape(&text));
        }
        h.push_str("</td><td><div class=\"media\">");
        for file in &row.files {
            let src = escape(&href(file));
            let name = escape(&file.to_string_lossy());
            match media_kind(file) {
                Some("img") => {
                    let loading = if lazy { " loading=\"lazy\"" } else { "" };
                    let _ = write!(
                        h,
                        "<a href=\"{src}\"><img src=\"{src}\" alt=\"{name}\"{loading}></a>"
                    );
                }
                Some(kind) => {
                    let _ = write!(
                        h,
                        "<{kind} controls preload=\"metadata\" src=\"{src}\" title=\"{name}\"></{kind}>"
                    );
                }
                None => {
                    let _ = write!(h, "<a href=\"{src}\">{name}</a>");
                }
            }
        }
        h.push_str("</div>");
        for url in &row.unsaved {
            let _ = write!(h, "<div class=\"err\">not saved: {}</div>", escape(url));
        }
        let cost = match (row.cost_usd, row.estimated_cost_usd) {
            (Some(c), _) => usd(c),
            (None, Some(e)) => format!("~{}", usd(e)),
            (None, None) => String::new(),
        };
        let error = row.error.as_ref().map(error_text).unwrap_or_default();
        let _ = writeln!(
            h,
            "</td><td class=\"state-{0}\">{0}</td><td>{1}</td><td class=\"err\">{2}</td></tr>",
            escape(&row.state),
            escape(&cost),
            escape(&error)
        );
    }
    h.push_str("</tbody></table>\n</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn hrefs_encode_each_segment() {
        assert_eq!(href(Path::new("12/a b\".png")), "12/a%20b%22.png");
        assert_eq!(href(Path::new("/tmp/x/é.wav")), "file:///tmp/x/%C3%A9.wav");
        assert_eq!(
            relative_to(Path::new("/out"), Path::new("/out/3/v.mp4")),
            PathBuf::from("3/v.mp4")
        );
        assert_eq!(
            relative_to(Path::new("/out"), Path::new("/elsewhere/v.mp4")),
            PathBuf::from("/elsewhere/v.mp4")
        );
    }

    #[test]
    fn long_inputs_are_shortened() {
        let data = format!("data:image/png;base64,{}", "A".repeat(4096));
        let shown = shown_input(&json!({"image_url": data, "prompt": "p"}));
        let text = shown["image_url"].as_str().unwrap();
        assert!(text.starts_with("data:image/png;base64,AAA"), "{text}");
        assert!(text.ends_with("(4 KB)"), "{text}");
        assert_eq!(shown["prompt"], "p");
    }
}
