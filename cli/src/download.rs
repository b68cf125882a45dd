//! `--out DIR`: every output URL saved into DIR by the library's
//! [`runcomfy::download::Downloader::save_once`] (a folder shared with other jobs; a `.part` file unique per download, published under a
//! name claimed atomically without ever replacing a file, resumed with `Range`, size-capped,
//! its own token-less HTTP client), with the CLI's progress bars, notes and events.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use runcomfy::download::{DownloadError, Event, Folder};
use serde_json::json;
use url::Url;

use crate::ui::Ui;

pub use runcomfy::download::output_urls;

/// Whether two output URLs name the same file: equal without their query and fragment.
pub fn same_file_url(a: &Url, b: &Url) -> bool {
    let strip = |u: &Url| {
        let mut u = u.clone();
        u.set_query(None);
        u.set_fragment(None);
        u
    };
    strip(a) == strip(b)
}

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

/// Downloads files, one at a time, showing each.
pub struct Downloader {
    inner: runcomfy::download::Downloader,
}

impl Downloader {
    /// A downloader with the library's own HTTP client: no token, no default headers.
    pub fn new(options: Options) -> anyhow::Result<Downloader> {
        let inner = runcomfy::download::Downloader::builder()
            .max_bytes(options.max_bytes)
            .retries(options.retries)
            .stall_timeout(options.stall)
            .build()?;
        Ok(Downloader { inner })
    }

    /// Downloads every URL into `dir` (a folder other jobs may share), awaiting
    /// `on_saved(recorded_url, path)` as each file is published; returns the final paths, in
    /// order. Each `(url, recorded_url)` pair is fetched from `url` and recorded under
    /// `recorded_url`. `recorded`: the paths the store holds for the job's outputs; a file an
    /// earlier run of the job published without recording it is kept instead of a second copy.
    pub async fn download_all<F, Fut>(
        &mut self,
        urls: &[(Url, String)],
        dir: &Path,
        recorded: &[PathBuf],
        ui: &Ui,
        mut on_saved: F,
    ) -> anyhow::Result<Vec<PathBuf>>
    where
        F: FnMut(String, PathBuf) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the output folder", dir.display()))?;
        let mut recorded = recorded.to_vec();
        let mut paths = Vec::new();
        for (url, recorded_url) in urls {
            let mut bar = None;
            let saved = self
                .inner
                .save_once_with(url, dir, &recorded, Folder::Shared, |event| match event {
                    Event::Started { name, total, from } => {
                        if bar.is_none() {
                            bar = ui.download_bar(name, total);
                        }
                        if let Some(b) = &bar {
                            b.set_position(from);
                        }
                    }
                    Event::Progress { bytes } => {
                        if let Some(b) = &bar {
                            b.set_position(bytes);
                        }
                    }
                    Event::Retrying { name, from, error } => {
                        ui.note(&format!("retrying {name} from byte {from} ({error})"));
                    }
                    Event::Failed => {
                        if let Some(b) = &bar {
                            b.abandon();
                        }
                    }
                    Event::Saved(_) => {
                        if let Some(b) = &bar {
                            b.finish_and_clear();
                        }
                    }
                    _ => {}
                })
                .await;
            let saved = match saved {
                Ok(saved) => saved,
                Err(e @ DownloadError::TooLarge { .. }) => {
                    return Err(
                        anyhow::Error::from(e).context("download failed (--max-download-mb)")
                    )
                }
                Err(e) => return Err(anyhow::Error::from(e).context("download failed")),
            };
            let (dest, bytes) = (saved.path, saved.bytes);
            on_saved(recorded_url.clone(), dest.clone()).await?;
            recorded.push(dest.clone());
            ui.event(
                json!({"event": "downloaded", "url": url.as_str(), "path": dest, "bytes": bytes}),
            );
            ui.note(&format!("downloaded {} ({bytes} bytes)", dest.display()));
            paths.push(dest);
        }
        Ok(paths)
    }
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
}
