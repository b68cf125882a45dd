//! What `runcomfy batch` leaves in its output folder besides the files: `manifest.jsonl` (one
//! JSON line per row) and `index.html`, a self-contained gallery page (inline CSS, one inline
//! JSON blob of the rows and one inline script; no network).
//!
//! The page's script renders only the cards in view (a virtualized grid, so 10,000 rows open
//! fast), with filters by state, sorting, a search over the inputs, a detail view per row and
//! keyboard navigation; it reloads itself every few seconds while the batch is not done. Every
//! text from inputs, servers and file names reaches the DOM through `textContent` or
//! attributes; input files sent inline (`data:` URIs) are never embedded, only described.
//!
//! Both files are rebuilt from the job store (plus the rows refused before sending) and
//! replaced atomically, so a reader never sees half a file.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

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
    /// When the row was recorded.
    pub created_at: Option<SystemTime>,
    /// When its request id was recorded.
    pub submitted_at: Option<SystemTime>,
    /// When its end was recorded.
    pub finished_at: Option<SystemTime>,
    /// How long it ran, when watched live.
    pub run_time: Option<Duration>,
    /// Input fields sent inline from local files: name and absolute path.
    pub local_files: Vec<(String, PathBuf)>,
}

/// What the batch command read of a row that the store does not keep (`batch report` has
/// none of it): a refused row's line as written, and the local files a row sent inline.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowSource {
    /// The line's JSON, for a row refused before sending.
    pub written: Option<Value>,
    /// Input fields read from local files: name and path as written.
    pub local_files: Vec<(String, PathBuf)>,
}

/// Each row's [`RowSource`] by line.
pub type Sources = HashMap<u64, RowSource>;

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
    sources: &Sources,
) -> Result<Vec<ReportRow>, runcomfy_store::StoreError> {
    // Paths as written are relative to this process's folder, as the command read them.
    let local_files = |line: u64| -> Vec<(String, PathBuf)> {
        sources.get(&line).map_or_else(Vec::new, |s| {
            s.local_files
                .iter()
                .map(|(k, p)| (k.clone(), absolute(p)))
                .collect()
        })
    };
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
            let line = job.batch.map_or(0, |(_, line)| line);
            rows.push(ReportRow {
                line,
                local_files: local_files(line),
                input: Some(job.input),
                input_sha256: Some(job.input_sha256),
                request_id: job.request_id,
                state: job.state.as_str().to_owned(),
                files,
                unsaved,
                cost_usd: job.cost_usd,
                estimated_cost_usd: job.estimated_cost_usd,
                error: job.error,
                created_at: Some(job.created_at),
                submitted_at: job.submitted_at,
                finished_at: job.finished_at,
                run_time: job.run_time,
            });
        }
        if after == u64::MAX {
            break;
        }
    }
    for (line, error) in refused {
        rows.push(ReportRow {
            line: *line,
            input: sources.get(line).and_then(|s| s.written.clone()),
            local_files: Vec::new(),
            input_sha256: None,
            request_id: None,
            state: "invalid".to_owned(),
            files: Vec::new(),
            unsaved: Vec::new(),
            cost_usd: None,
            estimated_cost_usd: None,
            error: Some(Value::String(error.clone())),
            created_at: None,
            submitted_at: None,
            finished_at: None,
            run_time: None,
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

/// The kind of media element for a file, from its extension: `img`, `video`, `audio`, or
/// `None` for a file shown by its name.
fn media_kind(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    match ext.as_str() {
        "png" | "jpg" | "jpeg" | "webp" | "gif" | "bmp" | "avif" | "svg" => Some("img"),
        "mp4" | "m4v" | "webm" | "mov" | "ogv" | "mkv" => Some("video"),
        "mp3" | "wav" | "flac" | "ogg" | "oga" | "m4a" | "aac" | "opus" => Some("audio"),
        _ => None,
    }
}

/// A `data:` URI described without its payload: its media type and decoded size in bytes.
fn data_uri(s: &str) -> Option<(String, u64)> {
    let rest = s.strip_prefix("data:")?;
    let (head, payload) = rest.split_once(',')?;
    let media_type = head.split(';').next().filter(|t| !t.is_empty());
    let bytes = if head.ends_with(";base64") {
        let padding = payload.bytes().rev().take_while(|b| *b == b'=').count();
        (payload.len() / 4 * 3).saturating_sub(padding) as u64
    } else {
        payload.len() as u64
    };
    Some((media_type.unwrap_or("text/plain").to_owned(), bytes))
}

/// The last path segment of an `http(s)` URL, without query and fragment; `None` for any
/// other string (only web URLs become links or thumbnails on the page).
fn url_file_name(s: &str) -> Option<&str> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))?;
    if rest.contains(char::is_whitespace) {
        return None;
    }
    let path = rest.split(['?', '#']).next().unwrap_or(rest);
    let (_, path) = path.split_once('/')?;
    path.rsplit('/').next().filter(|n| !n.is_empty())
}

/// One input field as the page shows it (`k` its name): an image URL (`t: img`, a thumbnail),
/// another URL (`t: url`, its file name `n`), a file sent inline (`t: data`, media type `m`
/// and size `b`, never its bytes), text (`t: text`) or any other JSON value (`t: json`, with
/// inline files described).
fn input_field(key: String, v: &Value, fields: &mut Vec<Value>) {
    match v {
        Value::String(s) => fields.push(if let Some((media_type, bytes)) = data_uri(s) {
            json!({"k": key, "t": "data", "m": media_type, "b": bytes})
        } else if let Some(name) = url_file_name(s) {
            let kind = if media_kind(name) == Some("img") {
                "img"
            } else {
                "url"
            };
            json!({"k": key, "t": kind, "v": s, "n": name})
        } else {
            json!({"k": key, "t": "text", "v": s})
        }),
        Value::Array(items) if items.iter().all(Value::is_string) && !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                input_field(format!("{key}[{i}]"), item, fields);
            }
        }
        other => fields.push(json!({"k": key, "t": "json", "v": described(other).to_string()})),
    }
}

/// `v` with every `data:` URI replaced by its description.
fn described(v: &Value) -> Value {
    match v {
        Value::String(s) => match data_uri(s) {
            Some((media_type, bytes)) => {
                Value::String(format!("({media_type}, {} inline)", size(bytes)))
            }
            None => v.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(described).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), described(v))).collect())
        }
        other => other.clone(),
    }
}

/// A byte count for people.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 10 << 20 => format!("{} MB", b >> 20),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{} KB", b >> 10),
        b => format!("{b} B"),
    }
}

/// The name of the field that holds the row's prompt: `prompt`, else the first text field
/// whose name contains `prompt` or `text`.
fn prompt_key(fields: &[Value]) -> Option<String> {
    let texts = || {
        fields
            .iter()
            .filter(|f| f["t"] == "text")
            .filter_map(|f| f["k"].as_str())
    };
    texts()
        .find(|k| *k == "prompt")
        .or_else(|| texts().find(|k| k.contains("prompt") || k.contains("text")))
        .map(str::to_owned)
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

/// What a person can do about a row that did not succeed (`None` for the others).
fn advice(state: &str, line: u64, name: &str) -> Option<String> {
    Some(match state {
        "failed" | "refused" | "expired" => format!(
            "RunComfy ended this job without outputs. Running this batch again skips it (finished rows are never sent twice): to try again, fix line {line} and run it in a new input file."
        ),
        "cancelled" => format!(
            "This job was cancelled. Running this batch again skips it: to run it, put line {line} in a new input file."
        ),
        "uncertain" => format!(
            "The submit may have reached RunComfy (and be paid) without its answer being recorded: look for it in your RunComfy account. `runcomfy batch status {name}` lists it; the batch command with --resubmit-uncertain sends it again (paid twice if the first reached RunComfy)."
        ),
        "invalid" => format!(
            "Refused before sending, nothing paid: fix line {line} of the input file and run the batch again."
        ),
        "saving" => "Succeeded; some outputs are not saved yet: running this batch again saves them.".to_owned(),
        _ => return None,
    })
}

fn usd(x: f64) -> String {
    format!("${x:.3}")
}

/// Milliseconds since the Unix epoch (for the page's script).
fn millis(t: Option<SystemTime>) -> Option<u64> {
    let t = t?.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    u64::try_from(t.as_millis()).ok()
}

/// How long a row ran: as watched live, else from its request id to its end.
fn run_seconds(row: &ReportRow) -> Option<f64> {
    let run = row
        .run_time
        .or_else(|| row.finished_at?.duration_since(row.submitted_at?).ok())?;
    Some((run.as_secs_f64() * 10.0).round() / 10.0)
}

/// One row as the page's script reads it (short keys: 10,000 rows are one blob): line `l`,
/// state `s`, request id `id`, cost `c`, estimate `e`, run time in seconds `rt`, times in
/// milliseconds `t0` (recorded) `t1` (submitted) `t2` (ended), input fields `in`, the prompt's
/// field `p`, the input's hash `h` (uncertain rows), outputs `o` (name `n`, URL reference `h`
/// when it differs from the name, kind `k`), URLs not saved `u`, error `x`, advice `a`.
fn row_data(row: &ReportRow, name: &str) -> Value {
    let mut fields = Vec::new();
    if let Some(Value::Object(map)) = &row.input {
        for (k, v) in map {
            input_field(k.clone(), v, &mut fields);
        }
    } else if let Some(other) = &row.input {
        input_field("input".to_owned(), other, &mut fields);
    }
    // An inline file read from a local one links its original.
    for (key, path) in &row.local_files {
        if let Some(f) = fields
            .iter_mut()
            .find(|f| f["k"] == *key && f["t"] == "data")
        {
            f["f"] = json!(href(path));
            f["n"] = json!(path.file_name().map(|n| n.to_string_lossy()));
        }
    }
    let outputs: Vec<Value> = row
        .files
        .iter()
        .map(|f| {
            let shown = f.to_string_lossy();
            let kind = media_kind(&shown).unwrap_or("file");
            match href(f) {
                h if h == shown => json!({"n": shown, "k": kind}),
                h => json!({"n": shown, "h": h, "k": kind}),
            }
        })
        .collect();
    let prompt = prompt_key(&fields);
    let mut v = json!({"l": row.line, "s": row.state, "in": fields, "o": outputs});
    let mut put = |key: &str, value: Value| {
        if !value.is_null() {
            v[key] = value;
        }
    };
    put("p", json!(prompt));
    put("id", json!(row.request_id));
    put("c", json!(row.cost_usd));
    put("e", json!(row.estimated_cost_usd));
    put("rt", json!(run_seconds(row)));
    put("t0", json!(millis(row.created_at)));
    put("t1", json!(millis(row.submitted_at)));
    put("t2", json!(millis(row.finished_at)));
    // The input's hash names an uncertain row in `batch status`; elsewhere it is only size.
    if row.state == "uncertain" {
        put("h", json!(row.input_sha256));
    }
    if !row.unsaved.is_empty() {
        put("u", json!(row.unsaved));
    }
    put("x", json!(row.error.as_ref().map(error_text)));
    put("a", json!(advice(&row.state, row.line, name)));
    v
}

/// The page's data: the batch (`name`, `model`, `done` when no row is queued or in flight, the
/// time it was `written` in milliseconds) and its `rows`.
pub fn page_data(name: &str, model_id: &str, totals: &Totals, rows: &[ReportRow]) -> Value {
    json!({
        "name": name,
        "model": model_id,
        "done": totals.status.is_done(),
        "written": millis(Some(SystemTime::now())),
        "rows": rows.iter().map(|r| row_data(r, name)).collect::<Vec<_>>(),
    })
}

/// JSON made safe inside a `<script>` element: `<`, `>` and `&` (which JSON only has inside
/// strings) written as `\u` escapes, so no `</script>` or `<!--` can appear.
fn script_json(v: &Value) -> String {
    let text = v.to_string();
    let mut out = String::with_capacity(text.len() + 64);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The page's style and script (`report/`), inlined.
const STYLE: &str = include_str!("report/gallery.css");
const SCRIPT: &str = include_str!("report/gallery.js");

/// The page: the totals as HTML, the rows as one JSON blob the script renders.
pub fn html(name: &str, model_id: &str, totals: &Totals, rows: &[ReportRow]) -> String {
    let s = &totals.status;
    let data = script_json(&page_data(name, model_id, totals, rows));
    let mut h = String::with_capacity(8192 + data.len());
    let title = format!("batch {name} ({model_id})");
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head><body>\n<header><div class=\"head\"><h1>batch <span>{}</span> <small>{}</small></h1><p id=\"live\"></p></div>\n",
        escape(&title),
        escape(name),
        escape(model_id)
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
    h.push_str("</ul>\n<nav class=\"bar\"><div id=\"filters\" role=\"group\" aria-label=\"state\"></div><input id=\"search\" type=\"search\" placeholder=\"search inputs  ( / )\" aria-label=\"search inputs\"><select id=\"sort\" aria-label=\"sort\"><option value=\"row\">row</option><option value=\"-row\">row, last first</option><option value=\"-cost\">cost, highest first</option><option value=\"cost\">cost, lowest first</option><option value=\"-time\">run time, longest first</option><option value=\"time\">run time, shortest first</option></select><span id=\"count\"></span></nav></header>\n<main><div id=\"spacer\"><div id=\"grid\"></div></div><p id=\"empty\" hidden>No row matches.</p>\n<noscript><p>This page needs JavaScript to show its rows; manifest.jsonl beside it has them all.</p></noscript></main>\n<div id=\"detail\" hidden role=\"dialog\" aria-modal=\"true\"></div>\n<script type=\"application/json\" id=\"data\">");
    h.push_str(&data);
    let _ = write!(h, "</script>\n<script>{SCRIPT}</script>\n</body></html>\n");
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

    fn row(input: Value) -> ReportRow {
        ReportRow {
            line: 7,
            input: Some(input),
            input_sha256: None,
            request_id: Some("req-7".to_owned()),
            state: "failed".to_owned(),
            files: vec![PathBuf::from("7/a b.mp4"), PathBuf::from("7/notes.txt")],
            unsaved: Vec::new(),
            cost_usd: None,
            estimated_cost_usd: Some(0.5),
            error: Some(json!({"message": "</script><b>x</b>"})),
            created_at: None,
            submitted_at: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(100)),
            finished_at: Some(SystemTime::UNIX_EPOCH + Duration::from_millis(112_340)),
            run_time: None,
            local_files: vec![("image".to_owned(), PathBuf::from("/in/my cat.png"))],
        }
    }

    #[test]
    fn inputs_are_shown_as_what_they_are() {
        let data = format!("data:image/png;base64,{}==", "A".repeat(4094));
        let v = row_data(
            &row(json!({
                "image": data,
                "image_url": "https://example.test/in/cat.PNG?sig=1",
                "audio_url": "https://example.test/a.wav",
                "prompt": "a cat",
                "refs": ["https://example.test/1.jpg", "javascript:alert(1)"],
                "seed": 3,
                "extra": {"mask": data},
            })),
            "b",
        );
        let text = v.to_string();
        assert!(!text.contains("AAAA"), "an inline file is embedded: {text}");
        let fields = v["in"].as_array().unwrap();
        assert_eq!(
            fields[0],
            json!({"k": "image", "t": "data", "m": "image/png", "b": 3070,
                   "f": "file:///in/my%20cat.png", "n": "my cat.png"})
        );
        assert_eq!(fields[1]["t"], "img");
        assert_eq!(fields[1]["n"], "cat.PNG");
        assert_eq!(fields[2]["t"], "url");
        assert_eq!(fields[3], json!({"k": "prompt", "t": "text", "v": "a cat"}));
        assert_eq!(fields[4]["k"], "refs[0]");
        assert_eq!(fields[4]["t"], "img");
        // Only http(s) URLs become links.
        assert_eq!(fields[5]["t"], "text");
        assert_eq!(fields[6], json!({"k": "seed", "t": "json", "v": "3"}));
        assert_eq!(fields[7]["v"], "{\"mask\":\"(image/png, 2 KB inline)\"}");
        assert_eq!(v["p"], "prompt");
        assert_eq!(v["rt"], 12.3);
        assert_eq!(
            v["o"][0],
            json!({"n": "7/a b.mp4", "h": "7/a%20b.mp4", "k": "video"})
        );
        assert_eq!(v["o"][1], json!({"n": "7/notes.txt", "k": "file"}));
        assert_eq!(v["x"], "</script><b>x</b>");
        assert!(v["a"].as_str().unwrap().contains("line 7"));
    }

    #[test]
    fn the_data_blob_cannot_end_its_script() {
        let rows = [row(
            json!({"prompt": "<!-- </script><script>alert(1)</script> & \u{2028}"}),
        )];
        let page = html("b</title>", "m", &Totals::default(), &rows);
        assert_eq!(page.matches("<script").count(), 2);
        assert_eq!(page.matches("</script>").count(), 2);
        assert!(!page.contains("<!--"));
        assert!(page.contains("<title>batch b&lt;/title&gt; (m)</title>"));
        let start = page.find("id=\"data\">").unwrap() + "id=\"data\">".len();
        let end = start + page[start..].find("</script>").unwrap();
        let back: Value = serde_json::from_str(&page[start..end]).unwrap();
        assert_eq!(
            back["rows"][0]["in"][0]["v"],
            "<!-- </script><script>alert(1)</script> & \u{2028}"
        );
        assert_eq!(back["rows"][0]["x"], "</script><b>x</b>");
        assert_eq!(back["done"], true);
    }

    #[test]
    fn sizes_and_data_uris() {
        assert_eq!(data_uri("data:,hello"), Some(("text/plain".to_owned(), 5)));
        assert_eq!(
            data_uri("data:audio/wav;base64,AAAA"),
            Some(("audio/wav".to_owned(), 3))
        );
        assert_eq!(data_uri("https://x/y.png"), None);
        assert_eq!(url_file_name("https://x.test/a/b.png#f"), Some("b.png"));
        assert_eq!(url_file_name("https://x.test/"), None);
        assert_eq!(url_file_name("file:///etc/passwd"), None);
        assert_eq!(size(3 << 20), "3.0 MB");
        assert_eq!(size(2048), "2 KB");
    }
}
