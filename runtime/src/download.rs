//! Saving a job's output files into a folder.
//!
//! A job's result holds URLs of its files on a CDN. [`Downloader`] saves them:
//!
//! - **Streamed** into a hidden temporary file of its own (`.NAME.PID-N.part`, created with
//!   `create_new`): two downloads, in one process or in two, never share a temporary file.
//! - **Atomic and never overwriting**: the complete file is flushed to disk, then published
//!   under its final name in one step that fails if the name exists (a hard link, or where
//!   the file system has none, an exclusive create followed by a rename over our own claim).
//!   When `clip.mp4` is taken the file becomes `clip-1.mp4`, `clip-2.mp4`, ...;
//!   [`SavedFile::path`] is always the true final path.
//! - **Resumable**: a transfer that breaks is retried with `Range: bytes=N-` from where its
//!   temporary file stopped; when the host answers `206` with that start the file goes on,
//!   anything else (`200`, another range, `416`) starts it over.
//! - **Size-capped**: [`DEFAULT_MAX_BYTES`] (4 GiB) unless [`DownloaderBuilder::max_bytes`]
//!   says otherwise; a file over the cap (by its announced length or by the bytes received)
//!   is [`DownloadError::TooLarge`] and leaves no file behind.
//! - **Safe names**: a file's name is the URL's last path segment, percent-decoded and reduced
//!   to `[A-Za-z0-9._-]`, without leading dots, at most 120 characters; a name that ends up
//!   empty becomes `output`. No name the server chooses can leave the folder.
//! - **No token**: the downloader's HTTP client is its own, with no `Authorization` header
//!   and no default headers; the API token never reaches the file host. (A client handed to
//!   [`DownloaderBuilder::http_client`] must not carry it either.)
//! - **No secrets in errors**: errors name the URL without its query string or fragment
//!   (signed CDN URLs carry their signature there) and the path concerned.
//!
//! A download stopped by the caller (its future dropped) or failed removes its temporary
//! file; a killed process leaves its hidden `.part` file, which no later download reuses.
//!
//! ```no_run
//! use runcomfy::download::Downloader;
//!
//! # async fn demo(result: runcomfy::JobResult) -> Result<(), Box<dyn std::error::Error>> {
//! let downloader = Downloader::builder().max_bytes(512 * 1024 * 1024).build()?;
//! let output = result.output.unwrap_or_default();
//! for file in downloader.save_all(&output, "outputs".as_ref()).await? {
//!     println!("{} -> {}", file.url, file.path.display());
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

/// The default size cap of one file: 4 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// How many names are tried for one file before giving up (`clip-1.mp4` ... `clip-9999.mp4`).
const MAX_NAMES: u32 = 10_000;

/// The longest file name kept from a URL, in characters.
const MAX_NAME_CHARS: usize = 120;

/// Every `http(s)` URL among a result's output values (strings anywhere in it, arrays and
/// objects walked in order), without repeats.
///
/// ```
/// let output = serde_json::json!({
///     "video": "https://cdn.example/x.mp4",
///     "frames": ["https://cdn.example/a.png", "https://cdn.example/x.mp4"],
///     "seed": 3,
///     "note": "not a url",
/// });
/// let urls = runcomfy::download::output_urls(&output);
/// assert_eq!(urls.len(), 2);
/// assert_eq!(urls[1].as_str(), "https://cdn.example/a.png");
/// ```
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

/// A URL as errors show it: without its query string and fragment, which may carry a
/// signature.
#[derive(Clone, PartialEq, Eq)]
pub struct ShownUrl(String);

impl ShownUrl {
    /// The URL without query and fragment.
    pub fn new(url: &Url) -> ShownUrl {
        let mut u = url.clone();
        u.set_query(None);
        u.set_fragment(None);
        // No user-info either: a password in a URL is a secret too.
        let _ = u.set_password(None);
        let _ = u.set_username("");
        ShownUrl(u.into())
    }

    /// The shown text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShownUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ShownUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// The downloader's HTTP client could not be built.
    #[error("could not build the download client")]
    Client(#[source] reqwest::Error),
    /// The URL is not `http` or `https`.
    #[error("{url}: not an http(s) url")]
    UnsupportedUrl {
        /// The URL, without query.
        url: ShownUrl,
    },
    /// The file host refused the file with a status that retrying does not change (404, 403, ...).
    #[error("{url}: the file host answered {status}")]
    Status {
        /// The URL, without query.
        url: ShownUrl,
        /// The HTTP status.
        status: u16,
    },
    /// The file is larger than the cap; nothing is left on disk.
    #[error("{url}: the file is {} bytes, over the cap of {max_bytes} bytes", size.map_or_else(|| "more than that".to_owned(), |s| s.to_string()))]
    TooLarge {
        /// The URL, without query.
        url: ShownUrl,
        /// The size the host announced, when it did.
        size: Option<u64>,
        /// The cap.
        max_bytes: u64,
    },
    /// Every attempt broke (connection lost, stalled, cut short, 5xx); `source` is the last.
    #[error("{url}: gave up after {attempts} attempts")]
    Transfer {
        /// The URL, without query.
        url: ShownUrl,
        /// How many attempts were made.
        attempts: u32,
        /// What broke the last attempt.
        #[source]
        source: Broken,
    },
    /// A file operation failed.
    #[error("{url}: cannot {action} {}", path.display())]
    Io {
        /// The URL, without query.
        url: ShownUrl,
        /// What was being done (`create`, `write`, `flush`, ...).
        action: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Every candidate name for the file exists already.
    #[error("{url}: no free name for {name} in {} after {MAX_NAMES} tries", dir.display())]
    NoFreeName {
        /// The URL, without query.
        url: ShownUrl,
        /// The folder.
        dir: PathBuf,
        /// The file's name.
        name: String,
    },
    /// [`Downloader::save_all`]: some files could not be saved. Those that were are on disk and
    /// listed in `saved`.
    #[error("{} of {} output files could not be saved", errors.len(), errors.len() + saved.len())]
    Incomplete {
        /// The files that were saved.
        saved: Vec<SavedFile>,
        /// Why each of the others failed, in the output's order.
        errors: Vec<DownloadError>,
    },
}

/// Why an output could not be saved, in the terms a person acts on
/// ([`DownloadError::fault`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaveFault {
    /// The file host refused the file (404: gone or not yet there; 403: the link expired).
    Refused {
        /// The HTTP status.
        status: u16,
    },
    /// The file host could not be reached, or every transfer broke.
    Unreachable,
    /// The file could not be written: `full` when the disk or quota is full (or the file
    /// system read-only), else the folder is not writable (a file where a folder should be,
    /// permissions).
    Folder {
        /// The file or folder concerned.
        path: PathBuf,
        /// True when the disk is full or read-only: no other output can be saved there either.
        full: bool,
    },
    /// Anything else (over the size cap, no free name, not an http(s) URL).
    Other,
}

impl DownloadError {
    /// Why the file was not saved: the host, the connection or the folder.
    pub fn fault(&self) -> SaveFault {
        match self {
            DownloadError::Status { status, .. } => SaveFault::Refused { status: *status },
            DownloadError::Transfer { .. } => SaveFault::Unreachable,
            DownloadError::Io { path, source, .. } => SaveFault::Folder {
                path: path.clone(),
                full: matches!(
                    source.kind(),
                    io::ErrorKind::StorageFull
                        | io::ErrorKind::QuotaExceeded
                        | io::ErrorKind::FileTooLarge
                        | io::ErrorKind::ReadOnlyFilesystem
                ),
            },
            DownloadError::Incomplete { errors, .. } => errors
                .first()
                .map_or(SaveFault::Other, DownloadError::fault),
            _ => SaveFault::Other,
        }
    }
}

/// What broke one attempt of a transfer (retried until the attempts run out).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Broken {
    /// The request or the body failed (the error carries no URL).
    #[error("http error")]
    Http(#[source] reqwest::Error),
    /// No data arrived for this long.
    #[error("no data for {0:?}")]
    Stalled(Duration),
    /// The body ended before its announced length.
    #[error("the transfer stopped at byte {have} of {total}")]
    Short {
        /// Bytes received.
        have: u64,
        /// Bytes announced.
        total: u64,
    },
    /// The host answered a retryable status (5xx, 408, 429).
    #[error("the file host answered {0}")]
    Status(u16),
    /// The host answered a range other than the one asked for.
    #[error("the file host answered another range")]
    OtherRange,
    /// The host refused the range (416).
    #[error("the file host refused the range")]
    RangeRefused,
}

/// A file saved by a [`Downloader`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedFile {
    /// The URL it was downloaded from (with its query: keep it private if it is signed).
    pub url: Url,
    /// Its final path: the folder joined with the name it was published under.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What a download is doing, for progress displays ([`Downloader::save_with`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// An attempt got its answer: `total` is the file's size when the host told it, `from`
    /// the byte it resumes from (0 for a fresh start).
    Started {
        /// The file's name before publication.
        name: &'a str,
        /// The announced size.
        total: Option<u64>,
        /// The first byte of this attempt.
        from: u64,
    },
    /// Bytes of the file received so far.
    Progress {
        /// Bytes on disk.
        bytes: u64,
    },
    /// An attempt broke and another follows, resuming from byte `from`.
    Retrying {
        /// The file's name before publication.
        name: &'a str,
        /// The byte the next attempt asks for.
        from: u64,
        /// What broke.
        error: &'a Broken,
    },
    /// An attempt failed for good (the error follows).
    Failed,
    /// The file is published.
    Saved(&'a SavedFile),
}

/// Saves output files; see the [module docs](self). Cheap to clone (the HTTP client is shared).
#[derive(Debug, Clone)]
pub struct Downloader {
    http: reqwest::Client,
    max_bytes: u64,
    retries: u32,
    stall: Duration,
    concurrency: usize,
}

/// Builds a [`Downloader`].
#[derive(Debug)]
pub struct DownloaderBuilder {
    http: Option<reqwest::Client>,
    max_bytes: u64,
    retries: u32,
    stall: Duration,
    concurrency: usize,
}

impl Default for DownloaderBuilder {
    fn default() -> Self {
        DownloaderBuilder {
            http: None,
            max_bytes: DEFAULT_MAX_BYTES,
            retries: 4,
            stall: Duration::from_secs(60),
            concurrency: 4,
        }
    }
}

impl DownloaderBuilder {
    /// The largest file accepted, in bytes ([`DEFAULT_MAX_BYTES`] by default).
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Attempts after the first one when a transfer breaks (4 by default); each resumes
    /// where the previous stopped.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// How long a transfer may receive nothing before the attempt is abandoned (60 s by
    /// default).
    pub fn stall_timeout(mut self, stall: Duration) -> Self {
        self.stall = stall;
        self
    }

    /// How many files [`Downloader::save_all`] fetches at once (4 by default, at least 1).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// The HTTP client to download with, instead of the downloader's own. It must not carry
    /// the API token (no default `Authorization` header): output files are on another host.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The downloader.
    pub fn build(self) -> Result<Downloader, DownloadError> {
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .user_agent(concat!("runcomfy-rs/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(15))
                .redirect(reqwest::redirect::Policy::limited(5))
                .build()
                .map_err(DownloadError::Client)?,
        };
        Ok(Downloader {
            http,
            max_bytes: self.max_bytes,
            retries: self.retries,
            stall: self.stall,
            concurrency: self.concurrency,
        })
    }
}

impl Downloader {
    /// A builder with the defaults: 4 GiB cap, 4 retries, 60 s stall timeout, 4 at once.
    pub fn builder() -> DownloaderBuilder {
        DownloaderBuilder::default()
    }

    /// A downloader with the defaults.
    pub fn new() -> Result<Downloader, DownloadError> {
        Downloader::builder().build()
    }

    /// The size cap in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Saves `url` into the folder `dir` (created when missing); returns where it went.
    pub async fn save(&self, url: &Url, dir: &Path) -> Result<SavedFile, DownloadError> {
        self.save_with(url, dir, |_| {}).await
    }

    /// [`save`](Self::save), telling `on_event` what the download does (for progress bars).
    pub async fn save_with(
        &self,
        url: &Url,
        dir: &Path,
        mut on_event: impl FnMut(Event<'_>) + Send,
    ) -> Result<SavedFile, DownloadError> {
        let result = self.save_inner(url, dir, &mut on_event).await;
        match &result {
            Ok(saved) => on_event(Event::Saved(saved)),
            Err(_) => on_event(Event::Failed),
        }
        result
    }

    /// Saves every file URL of a result's output ([`output_urls`]) into `dir`, up to the
    /// builder's concurrency at once; returns them in the output's order.
    ///
    /// Every URL is tried even when one fails; then the error is
    /// [`DownloadError::Incomplete`], which lists the files that were saved.
    pub async fn save_all(
        &self,
        output: &Value,
        dir: &Path,
    ) -> Result<Vec<SavedFile>, DownloadError> {
        let urls = output_urls(output);
        let results: Vec<Result<SavedFile, DownloadError>> = stream::iter(urls.iter())
            .map(|u| self.save(u, dir))
            .buffered(self.concurrency)
            .collect()
            .await;
        let mut saved = Vec::new();
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok(s) => saved.push(s),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(saved)
        } else {
            Err(DownloadError::Incomplete { saved, errors })
        }
    }

    /// Saves `url` into `dir` once, given the paths already recorded for the job's other
    /// outputs (`recorded`): a process killed between publishing a file and recording it,
    /// or two savers racing on one job, never leave a second copy (`clip-1.mp4`) behind.
    ///
    /// - [`Folder::Own`] (the folder holds only this job's outputs): a complete file already
    ///   published under a name a save of `url` takes ([`published_candidates`]) and not in
    ///   `recorded` is this job's, left by a saver that did not record it: it is returned
    ///   without fetching anything (and no event is reported).
    /// - Either folder, after a fetch: when an earlier name a save of `url` takes holds the
    ///   same bytes and is not in `recorded`, the new copy is removed and that one returned.
    ///   The lowest such name is kept (never removed by anyone), so two savers racing end
    ///   with one file between them and never with none.
    ///
    /// ```no_run
    /// use runcomfy::download::{Downloader, Folder};
    /// # async fn demo(url: runcomfy::Url) -> Result<(), runcomfy::download::DownloadError> {
    /// let recorded = Vec::new(); // the paths your store holds for the job's outputs
    /// let saved = Downloader::new()?
    ///     .save_once(&url, "out".as_ref(), &recorded, Folder::Shared)
    ///     .await?;
    /// println!("{}", saved.path.display()); // record it now
    /// # Ok(()) }
    /// ```
    pub async fn save_once(
        &self,
        url: &Url,
        dir: &Path,
        recorded: &[PathBuf],
        folder: Folder,
    ) -> Result<SavedFile, DownloadError> {
        self.save_once_with(url, dir, recorded, folder, |_| {})
            .await
    }

    /// [`save_once`](Self::save_once), telling `on_event` what the download does.
    pub async fn save_once_with(
        &self,
        url: &Url,
        dir: &Path,
        recorded: &[PathBuf],
        folder: Folder,
        mut on_event: impl FnMut(Event<'_>) + Send,
    ) -> Result<SavedFile, DownloadError> {
        if folder == Folder::Own {
            let found = {
                let (url, dir, recorded) = (url.clone(), dir.to_owned(), recorded.to_vec());
                tokio::task::spawn_blocking(move || {
                    published_candidates(&url, &dir)
                        .into_iter()
                        .find(|p| !recorded.contains(p))
                        .and_then(|p| {
                            let bytes = std::fs::metadata(&p).ok()?.len();
                            Some((p, bytes))
                        })
                })
                .await
                .ok()
                .flatten()
            };
            if let Some((path, bytes)) = found {
                return Ok(SavedFile {
                    url: url.clone(),
                    path,
                    bytes,
                });
            }
        }
        let saved = match self.save_inner(url, dir, &mut on_event).await {
            Ok(saved) => saved,
            Err(e) => {
                on_event(Event::Failed);
                return Err(e);
            }
        };
        let saved = keep_one_copy(saved, dir, recorded).await;
        on_event(Event::Saved(&saved));
        Ok(saved)
    }

    async fn save_inner(
        &self,
        url: &Url,
        dir: &Path,
        on_event: &mut (dyn FnMut(Event<'_>) + Send),
    ) -> Result<SavedFile, DownloadError> {
        let shown = ShownUrl::new(url);
        if !matches!(url.scheme(), "http" | "https") {
            return Err(DownloadError::UnsupportedUrl { url: shown });
        }
        let io_err = |action, path: &Path| {
            let shown = shown.clone();
            let path = path.to_owned();
            move |source| DownloadError::Io {
                url: shown,
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(dir).map_err(io_err("create the folder", dir))?;
        let name = file_name(url);
        let (mut part, mut file) =
            create_part(dir, &name).map_err(|(p, e)| io_err("create", &p)(e))?;
        let bytes = self
            .transfer(url, &shown, &part.path, &mut file, &name, on_event)
            .await?;
        file.sync_all().map_err(io_err("flush", &part.path))?;
        drop(file);
        let path = publish(&mut part, dir, &name, &shown)?;
        if let Ok(d) = File::open(dir) {
            // The new directory entry is durable too (where the platform allows it).
            let _ = d.sync_all();
        }
        Ok(SavedFile {
            url: url.clone(),
            path,
            bytes,
        })
    }

    async fn transfer(
        &self,
        url: &Url,
        shown: &ShownUrl,
        part: &Path,
        file: &mut File,
        name: &str,
        on_event: &mut (dyn FnMut(Event<'_>) + Send),
    ) -> Result<u64, DownloadError> {
        let cap = self.max_bytes;
        let too_large = |size| DownloadError::TooLarge {
            url: shown.clone(),
            size,
            max_bytes: cap,
        };
        let io_err = |action| {
            move |source| DownloadError::Io {
                url: shown.clone(),
                action,
                path: part.to_owned(),
                source,
            }
        };
        let mut have: u64 = 0;
        let mut last: Option<Broken> = None;
        for attempt in 0..=self.retries {
            if let Some(error) = &last {
                on_event(Event::Retrying {
                    name,
                    from: have,
                    error,
                });
                let backoff = Duration::from_millis(200u64.saturating_mul(1 << attempt.min(5)));
                tokio::time::sleep(backoff.min(Duration::from_secs(5))).await;
            }
            let mut request = self.http.get(url.clone());
            if have > 0 {
                request = request.header(RANGE, format!("bytes={have}-"));
            }
            let mut response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = Some(Broken::Http(e.without_url()));
                    continue;
                }
            };
            let status = response.status();
            let total = match status {
                StatusCode::OK => {
                    if have > 0 {
                        // The host ignored the range: start over.
                        restart(file).map_err(io_err("truncate"))?;
                        have = 0;
                    }
                    response.content_length()
                }
                StatusCode::PARTIAL_CONTENT => match content_range(&response) {
                    Some((start, total)) if start == have => total,
                    _ => {
                        restart(file).map_err(io_err("truncate"))?;
                        have = 0;
                        last = Some(Broken::OtherRange);
                        continue;
                    }
                },
                StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => {
                    restart(file).map_err(io_err("truncate"))?;
                    have = 0;
                    last = Some(Broken::RangeRefused);
                    continue;
                }
                s if s.is_server_error()
                    || s == StatusCode::TOO_MANY_REQUESTS
                    || s == StatusCode::REQUEST_TIMEOUT =>
                {
                    last = Some(Broken::Status(s.as_u16()));
                    continue;
                }
                s => {
                    return Err(DownloadError::Status {
                        url: shown.clone(),
                        status: s.as_u16(),
                    })
                }
            };
            if let Some(total) = total {
                if total > cap {
                    return Err(too_large(Some(total)));
                }
            }
            on_event(Event::Started {
                name,
                total,
                from: have,
            });
            let mut broken = None;
            loop {
                let chunk = match tokio::time::timeout(self.stall, response.chunk()).await {
                    Ok(Ok(Some(chunk))) => chunk,
                    Ok(Ok(None)) => break,
                    Ok(Err(e)) => {
                        broken = Some(Broken::Http(e.without_url()));
                        break;
                    }
                    Err(_) => {
                        broken = Some(Broken::Stalled(self.stall));
                        break;
                    }
                };
                have = have.saturating_add(chunk.len() as u64);
                if have > cap {
                    return Err(too_large(total));
                }
                file.write_all(&chunk).map_err(io_err("write"))?;
                on_event(Event::Progress { bytes: have });
            }
            if broken.is_none() {
                if let Some(total) = total.filter(|t| have < *t) {
                    broken = Some(Broken::Short { have, total });
                }
            }
            match broken {
                None => return Ok(have),
                Some(b) => last = Some(b),
            }
        }
        Err(DownloadError::Transfer {
            url: shown.clone(),
            attempts: self.retries.saturating_add(1),
            source: last.unwrap_or(Broken::Status(0)),
        })
    }
}

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
fn create_part(dir: &Path, name: &str) -> Result<(PartFile, File), (PathBuf, io::Error)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{name}.{}-{n}.part", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((PartFile { path, keep: false }, file)),
            // A leftover of a killed process that had the same id: the counter moves on.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < u64::from(MAX_NAMES) => {}
            Err(e) => return Err((path, e)),
        }
    }
}

/// Whose files a folder holds, for [`Downloader::save_once`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Folder {
    /// Only one job's outputs (a batch row's `DIR/<line>/`): a complete file published
    /// under a name a save of the URL takes, and not recorded, is that job's.
    Own,
    /// Outputs of many jobs (`runcomfy run --out DIR`): a file is never taken without
    /// fetching the URL; a fetched copy identical to an earlier unrecorded one is dropped.
    Shared,
}

/// After `saved` was published: when another saver (a killed process of the same job, or a
/// racing one) published the same bytes under an earlier name a save of the URL takes, and
/// that name is not in `recorded`, removes the new copy and returns the earlier one.
async fn keep_one_copy(saved: SavedFile, dir: &Path, recorded: &[PathBuf]) -> SavedFile {
    let (dir, recorded) = (dir.to_owned(), recorded.to_vec());
    let fallback = saved.clone();
    tokio::task::spawn_blocking(move || {
        let candidates = published_candidates(&saved.url, &dir);
        let Some(own) = candidates.iter().position(|c| *c == saved.path) else {
            return saved;
        };
        for other in &candidates[..own] {
            if !recorded.contains(other) && same_bytes(other, &saved.path) {
                if std::fs::remove_file(&saved.path).is_ok() {
                    return SavedFile {
                        path: other.clone(),
                        ..saved
                    };
                }
                break;
            }
        }
        saved
    })
    .await
    .unwrap_or(fallback)
}

/// Whether two files hold the same bytes (false when either cannot be read).
fn same_bytes(a: &Path, b: &Path) -> bool {
    fn compare(a: &Path, b: &Path) -> io::Result<bool> {
        use std::io::Read;
        if std::fs::metadata(a)?.len() != std::fs::metadata(b)?.len() {
            return Ok(false);
        }
        let mut fa = io::BufReader::new(File::open(a)?);
        let mut fb = io::BufReader::new(File::open(b)?);
        let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
        loop {
            let n = fa.read(&mut ba)?;
            if n == 0 {
                return Ok(fb.read(&mut bb[..1])? == 0);
            }
            fb.read_exact(&mut bb[..n])?;
            if ba[..n] != bb[..n] {
                return Ok(false);
            }
        }
    }
    compare(a, b).unwrap_or(false)
}

/// The files a save of `url` into `dir` may already have published: `NAME`, `NAME-1`,
/// `NAME-2`, ... up to the first name that does not exist, leaving out empty files (a
/// claim that was never filled).
///
/// A file is published only once complete, so a process killed after publishing a file and
/// before recording it finds the file here and can record it instead of saving it again
/// ([`Downloader::save_once`] does this).
pub fn published_candidates(url: &Url, dir: &Path) -> Vec<PathBuf> {
    let name = file_name(url);
    let mut found = Vec::new();
    for n in 0..MAX_NAMES {
        let candidate = match n {
            0 => dir.join(&name),
            n => dir.join(with_suffix(&name, n)),
        };
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.is_file() && meta.len() > 0 => found.push(candidate),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    found
}

/// Publishes the complete `part` in `dir` under `name`, or `name-1`, `name-2`, ...: the
/// first that does not exist, claimed atomically so no file is ever replaced. Returns the
/// final path.
fn publish(
    part: &mut PartFile,
    dir: &Path,
    name: &str,
    shown: &ShownUrl,
) -> Result<PathBuf, DownloadError> {
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
                if let Err(source) = std::fs::rename(&part.path, &candidate) {
                    let _ = std::fs::remove_file(&candidate);
                    return Err(DownloadError::Io {
                        url: shown.clone(),
                        action: "publish",
                        path: candidate,
                        source,
                    });
                }
                part.keep = true;
                return Ok(candidate);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(DownloadError::Io {
                    url: shown.clone(),
                    action: "create",
                    path: candidate,
                    source,
                })
            }
        }
    }
    Err(DownloadError::NoFreeName {
        url: shown.clone(),
        dir: dir.to_owned(),
        name: name.to_owned(),
    })
}

/// The file name a URL is saved under: its last path segment, percent-decoded, reduced to
/// `[A-Za-z0-9._-]` (anything else becomes `_`), without leading dots, at most 120
/// characters (the extension kept); `output` when nothing is left.
///
/// ```
/// use runcomfy::download::file_name;
/// let name = |s: &str| file_name(&s.parse().unwrap());
/// assert_eq!(name("https://cdn.example/a/clip%20one.mp4?sig=1"), "clip_one.mp4");
/// assert_eq!(name("https://cdn.example/..%2F..%2Fetc%2Fpasswd"), "_.._etc_passwd");
/// assert_eq!(name("https://cdn.example/"), "output");
/// ```
pub fn file_name(url: &Url) -> String {
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
    let clean = clean.trim_start_matches('.');
    if clean.is_empty() || clean.chars().all(|c| matches!(c, '_' | '.')) {
        return "output".to_owned();
    }
    if clean.len() <= MAX_NAME_CHARS {
        return clean.to_owned();
    }
    // Too long: keep a short extension, cut the stem (all ASCII here, so bytes are chars).
    match clean.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.len() <= 16 => {
            let keep = MAX_NAME_CHARS - ext.len() - 1;
            format!("{}.{ext}", &stem[..keep.min(stem.len())])
        }
        _ => clean[..MAX_NAME_CHARS].to_owned(),
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

/// `clip.mp4` → `clip-N.mp4`, `noext` → `noext-N`.
fn with_suffix(name: &str, n: u32) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{n}.{ext}"),
        _ => format!("{name}-{n}"),
    }
}

fn restart(file: &mut File) -> io::Result<()> {
    file.set_len(0)?;
    io::Seek::rewind(file)
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
    fn published_candidates_are_the_complete_files_a_save_could_have_made() {
        let dir = std::env::temp_dir().join(format!("runcomfy-published-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let url = Url::parse("https://cdn.example/a/clip.mp4?sig=x").expect("a test url");
        assert!(published_candidates(&url, &dir).is_empty());
        std::fs::write(dir.join("clip.mp4"), b"one").expect("write");
        std::fs::write(dir.join("clip-1.mp4"), b"").expect("write"); // an unfilled claim
        std::fs::write(dir.join("clip-2.mp4"), b"two").expect("write");
        std::fs::write(dir.join("clip-4.mp4"), b"after a gap").expect("write");
        let found = published_candidates(&url, &dir);
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(found, vec![dir.join("clip.mp4"), dir.join("clip-2.mp4")]);
    }

    fn name(s: &str) -> String {
        file_name(&Url::parse(s).expect("a test url"))
    }

    #[test]
    fn hostile_names_stay_in_the_folder() {
        let cases = [
            ("https://h/a/b/clip%20one.mp4?sig=1", "clip_one.mp4"),
            ("https://h/", "output"),
            ("https://h/..%2F..%2Fetc", "_.._etc"),
            ("https://h/..", "output"),
            ("https://h/%2E%2E", "output"),
            ("https://h/%2Fetc%2Fpasswd", "_etc_passwd"),
            ("https://h/C:%5Cwin.ini", "C__win.ini"),
            ("https://h/a%00b%0A%1B%5B31m.png", "a_b___31m.png"),
            ("https://h/.hidden", "hidden"),
            ("https://h/%E2%80%AEgnp.exe", "_gnp.exe"),
        ];
        for (url, want) in cases {
            assert_eq!(name(url), want, "{url}");
        }
        let long = format!("https://h/{}.mp4", "a".repeat(500));
        let n = name(&long);
        assert_eq!(n.len(), MAX_NAME_CHARS);
        assert!(n.ends_with(".mp4"));
        let long = format!("https://h/{}", "b".repeat(500));
        assert_eq!(name(&long).len(), MAX_NAME_CHARS);
    }

    #[test]
    fn suffixes() {
        assert_eq!(with_suffix("a.mp4", 2), "a-2.mp4");
        assert_eq!(with_suffix("noext", 1), "noext-1");
    }

    #[test]
    fn shown_urls_hide_queries_and_credentials() {
        let u = Url::parse("https://user:pw@cdn.example/a.mp4?X-Amz-Signature=s3cret#frag")
            .expect("a test url");
        assert_eq!(ShownUrl::new(&u).as_str(), "https://cdn.example/a.mp4");
    }
}
