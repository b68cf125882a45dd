//! `--out DIR`: every output URL downloaded to DIR. Each file streams into a hidden `.part`
//! file of its own (unique per download, so runs sharing DIR never write into each other's),
//! is flushed to disk and published under its final name only when complete, without ever
//! replacing a file (`clip.mp4`, else `clip-1.mp4`, ...: claimed atomically, so two runs
//! saving outputs of the same name each keep their own). A broken transfer is retried with
//! `Range` from where it stopped; a size cap bounds every file. The HTTP client here is
//! separate from the API client: it has no token, so no `Authorization` header ever reaches a
//! file host.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use url::Url;

use crate::ui::Ui;

/// How downloads behave.
#[derive(Debug, Clone)]
pub struct Options {
    /// The largest file accepted, in bytes.
    pub max_bytes: u64,
    /// Retries after the first attempt.
    pub retries: u32,
    /// How long a read may stall before the attempt is retried.
    pub stall: Duration,
}

/// Every http(s) URL among the output's values, in order, without repeats.
pub fn output_urls(output: &Value) -> Vec<Url> {
    fn walk(v: &Value, out: &mut Vec<Url>) {
        match v {
            Value::String(s) => {
                if let Ok(u) = Url::parse(s) {
                    if matches!(u.scheme(), "http" | "https") && !out.contains(&u) {
                        out.push(u);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(map) => map.values().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(output, &mut out);
    out
}

/// Downloads files; one per call.
pub struct Downloader {
    http: reqwest::Client,
    options: Options,
}

/// How many names are tried for one file before giving up (`clip-1.mp4` ... `clip-9999.mp4`).
const MAX_NAMES: u32 = 10_000;

/// A temporary file of one download, removed when dropped unless published: an interrupted
/// or failed download leaves nothing behind (a killed process leaves its hidden `.part`).
struct PartFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Creates a `.part` file in `dir` that no other download uses: the process id and a
/// counter make the name, and `create_new` proves it is ours.
fn create_part(dir: &Path, name: &str) -> anyhow::Result<(PartFile, File)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{name}.{}-{n}.part", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((PartFile { path, keep: false }, file)),
            // A leftover of a killed process that had the same id.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < u64::from(MAX_NAMES) => {}
            Err(e) => return Err(anyhow!(e).context(format!("{}: cannot create", path.display()))),
        }
    }
}

/// Publishes the complete `part` in `dir` under `name`, or `name-1`, `name-2`, ...: the
/// first that does not exist, claimed atomically so no file is ever replaced. Returns the
/// final path.
fn publish(part: &mut PartFile, dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    for n in 0..MAX_NAMES {
        let candidate = match n {
            0 => dir.join(name),
            n => dir.join(with_suffix(name, n)),
        };
        // A hard link fails when the name exists: the claim and the publication are one
        // atomic step.
        match std::fs::hard_link(&part.path, &candidate) {
            // The `.part` name goes when `part` is dropped.
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(_) => {}
        }
        // A file system without hard links: claim the name with an empty file, then move
        // the complete file over our own claim.
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(_) => {
                if let Err(e) = std::fs::rename(&part.path, &candidate) {
                    let _ = std::fs::remove_file(&candidate);
                    return Err(anyhow!(e).context(format!(
                        "cannot rename {} to {}",
                        part.path.display(),
                        candidate.display()
                    )));
                }
                part.keep = true;
                return Ok(candidate);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(anyhow!(e).context(format!("{}: cannot create", candidate.display())))
            }
        }
    }
    bail!(
        "{}: no free name for {name} after {MAX_NAMES} tries",
        dir.display()
    )
}

/// A file name from the URL's last path segment, reduced to `[A-Za-z0-9._-]`.
fn file_name(url: &Url, index: usize) -> String {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("");
    let decoded = percent_decode(last);
    let clean: String = decoded
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.').to_owned();
    if clean.is_empty() || clean.chars().all(|c| c == '_') {
        format!("output-{}", index + 1)
    } else {
        clean.chars().take(120).collect()
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn with_suffix(name: &str, n: u32) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{n}.{ext}"),
        _ => format!("{name}-{n}"),
    }
}

impl Downloader {
    /// A downloader with its own HTTP client: no token, no default headers.
    pub fn new(options: Options) -> anyhow::Result<Downloader> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("runcomfy-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .context("could not build the download client")?;
        Ok(Downloader { http, options })
    }

    /// Downloads every URL into `dir`, calling `on_saved` as each file is published; returns
    /// the final paths, in order.
    pub async fn download_all(
        &mut self,
        urls: &[Url],
        dir: &Path,
        ui: &Ui,
        mut on_saved: impl FnMut(&Url, &Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the output folder", dir.display()))?;
        let mut paths = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let name = file_name(url, i);
            let (dest, bytes) = self
                .download(url, dir, &name, ui)
                .await
                .with_context(|| format!("download of {url} failed"))?;
            on_saved(url, &dest)?;
            ui.event(
                json!({"event": "downloaded", "url": url.as_str(), "path": dest, "bytes": bytes}),
            );
            ui.note(&format!("downloaded {} ({bytes} bytes)", dest.display()));
            paths.push(dest);
        }
        Ok(paths)
    }

    /// Downloads `url` into `dir` through a `.part` file of its own, then publishes it as
    /// `name` (or the first free variant); returns the final path and the size.
    async fn download(
        &self,
        url: &Url,
        dir: &Path,
        name: &str,
        ui: &Ui,
    ) -> anyhow::Result<(PathBuf, u64)> {
        let (mut part, mut file) = create_part(dir, name)?;
        let size = self.transfer(url, &part.path, &mut file, name, ui).await?;
        file.sync_all()
            .with_context(|| format!("{}: cannot flush", part.path.display()))?;
        drop(file);
        let dest = publish(&mut part, dir, name)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok((dest, size))
    }

    async fn transfer(
        &self,
        url: &Url,
        part: &Path,
        file: &mut File,
        name: &str,
        ui: &Ui,
    ) -> anyhow::Result<u64> {
        let cap = self.options.max_bytes;
        let mut have: u64 = 0;
        let mut last_error = anyhow!("no attempt made");
        let mut bar = None;
        for attempt in 0..=self.options.retries {
            if attempt > 0 {
                let backoff = Duration::from_millis(200u64.saturating_mul(1 << attempt.min(5)));
                tokio::time::sleep(backoff.min(Duration::from_secs(5))).await;
                ui.note(&format!("retrying {name} from byte {have} ({last_error})"));
            }
            let mut request = self.http.get(url.clone());
            if have > 0 {
                request = request.header(RANGE, format!("bytes={have}-"));
            }
            let mut response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    last_error = anyhow!(e);
                    continue;
                }
            };
            let status = response.status();
            let total = match status {
                StatusCode::OK => {
                    if have > 0 {
                        // The host ignored the range: start over.
                        restart(file, part)?;
                        have = 0;
                    }
                    response.content_length()
                }
                StatusCode::PARTIAL_CONTENT => match content_range(&response) {
                    Some((start, total)) if start == have => total,
                    _ => {
                        restart(file, part)?;
                        have = 0;
                        last_error = anyhow!("the host answered another range");
                        continue;
                    }
                },
                StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => {
                    restart(file, part)?;
                    have = 0;
                    last_error = anyhow!("the host refused the range");
                    continue;
                }
                s if s.is_server_error()
                    || s == StatusCode::TOO_MANY_REQUESTS
                    || s == StatusCode::REQUEST_TIMEOUT =>
                {
                    last_error = anyhow!("the file host answered {s}");
                    continue;
                }
                s => bail!("the file host answered {s}"),
            };
            if let Some(total) = total {
                if total > cap {
                    bail!(
                        "the file is {total} bytes, over the cap of {cap} bytes (--max-download-mb)"
                    );
                }
            }
            if bar.is_none() {
                bar = ui.download_bar(name, total);
            }
            if let Some(b) = &bar {
                b.set_position(have);
            }
            let mut complete = true;
            loop {
                let chunk = match tokio::time::timeout(self.options.stall, response.chunk()).await {
                    Ok(Ok(Some(chunk))) => chunk,
                    Ok(Ok(None)) => break,
                    Ok(Err(e)) => {
                        last_error = anyhow!(e);
                        complete = false;
                        break;
                    }
                    Err(_) => {
                        last_error = anyhow!("no data for {:?}", self.options.stall);
                        complete = false;
                        break;
                    }
                };
                have = have.saturating_add(chunk.len() as u64);
                if have > cap {
                    bail!("the file is over the cap of {cap} bytes (--max-download-mb)");
                }
                file.write_all(&chunk)
                    .with_context(|| format!("{}: cannot write", part.display()))?;
                if let Some(b) = &bar {
                    b.set_position(have);
                }
            }
            if complete && total.is_some_and(|t| have < t) {
                last_error = anyhow!("the transfer stopped at byte {have}");
                complete = false;
            }
            if complete {
                if let Some(b) = &bar {
                    b.finish_and_clear();
                }
                return Ok(have);
            }
        }
        if let Some(b) = &bar {
            b.abandon();
        }
        Err(last_error.context(format!(
            "gave up after {} attempts",
            self.options.retries + 1
        )))
    }
}

fn restart(file: &mut File, part: &Path) -> anyhow::Result<()> {
    file.set_len(0)
        .and_then(|_| std::io::Seek::rewind(file))
        .with_context(|| format!("{}: cannot truncate", part.display()))
}

/// `Content-Range: bytes START-END/TOTAL` as `(START, TOTAL)` (`TOTAL` may be `*`).
fn content_range(response: &reqwest::Response) -> Option<(u64, Option<u64>)> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let rest = value.trim().strip_prefix("bytes")?.trim();
    let (range, total) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let total = total.trim().parse().ok();
    Some((start, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_collected_in_order() {
        let out = json!({"video": "https://cdn/x.mp4", "images": ["https://cdn/a.png", "https://cdn/x.mp4"], "seed": 3, "note": "not a url"});
        let urls: Vec<String> = output_urls(&out).iter().map(|u| u.to_string()).collect();
        assert_eq!(urls, ["https://cdn/x.mp4", "https://cdn/a.png"]);
    }

    #[test]
    fn names_are_safe() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            file_name(&u("https://h/a/b/clip%20one.mp4?sig=1"), 0),
            "clip_one.mp4"
        );
        assert_eq!(file_name(&u("https://h/"), 2), "output-3");
        assert_eq!(file_name(&u("https://h/..%2F..%2Fetc"), 0), "_.._etc");
        assert_eq!(with_suffix("a.mp4", 2), "a-2.mp4");
        assert_eq!(with_suffix("noext", 1), "noext-1");
    }
}
