//! The end of `run` and `resume`: wait for a recorded job, record how it ended, then print
//! its outputs or save them (`--out`). Saving is journaled: the wanted folder before the
//! wait, each file as it is published, and the end only once every file is saved, so an
//! interrupted or failed download leaves the job unfinished for `resume`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::json;
use url::Url;

use runcomfy::journal::Journal;
use runcomfy::Client;

use crate::commands::{Ctx, Phase};
use crate::download;
use crate::ui::{out, Mode};

/// Where outputs go.
#[derive(clap::Args, Debug, Clone)]
pub struct OutArgs {
    /// Download every output into DIR and print the files' paths (`resume`: by default, the
    /// folder the job's `run --out` wanted them in).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The largest output file accepted, in MB.
    #[arg(long, value_name = "MB", default_value_t = 4096)]
    pub max_download_mb: u64,
}

/// A recorded job to finish.
pub struct Target<'a> {
    /// The local job id.
    pub job: &'a str,
    /// The request id.
    pub request_id: &'a str,
    /// Where to save the outputs; `None` prints them.
    pub out: Option<&'a Path>,
    /// Outputs already saved by an earlier run: `(url, path)`.
    pub saved: &'a [(String, PathBuf)],
}

/// Waits for a recorded job, records its end, then prints or saves its outputs.
pub async fn finish(
    ctx: &Ctx,
    client: &Client,
    journal: &Journal,
    target: Target<'_>,
    max_download_mb: u64,
) -> anyhow::Result<()> {
    let ui = &ctx.ui;
    let Target {
        job,
        request_id,
        out: out_dir,
        saved,
    } = target;
    if let Some(dir) = out_dir {
        // Before the wait: from now on the job is done only once its outputs are saved.
        journal.record_outputs_wanted(job, dir)?;
    }
    ctx.set_phase(Phase::Waiting {
        request_id: request_id.to_owned(),
    });
    let waited = journal
        .wait(client, job, request_id, |p| ui.progress(p))
        .await;
    let result = match waited {
        Ok(r) => {
            ui.finish_wait(r.state.as_str());
            r
        }
        Err(e) => {
            ui.finish_wait("failed");
            return Err(e.into());
        }
    };
    let output = result.output.unwrap_or_else(|| json!({}));
    ui.event(json!({"event": "output", "request_id": request_id, "output": output}));
    let urls = download::output_urls(&output);
    let Some(dir) = out_dir else {
        if ui.mode() != Mode::Json {
            if urls.is_empty() {
                ctx.print_value(&output);
            } else {
                for u in &urls {
                    out(u.as_str());
                }
            }
        }
        return Ok(());
    };
    ctx.set_phase(Phase::Saving {
        request_id: request_id.to_owned(),
    });
    if urls.is_empty() && ui.mode() != Mode::Json {
        ui.note("the output holds no file URL; nothing to download");
        ctx.print_value(&output);
    }
    // Files an earlier run saved are kept, not fetched again.
    let mut paths: Vec<(usize, PathBuf)> = Vec::new();
    let mut missing: Vec<(usize, Url)> = Vec::new();
    for (i, url) in urls.into_iter().enumerate() {
        match already_saved(saved, &url) {
            Some(path) => {
                ui.note(&format!("already saved: {}", path.display()));
                paths.push((i, path));
            }
            None => missing.push((i, url)),
        }
    }
    let mut downloader = download::Downloader::new(download::Options {
        max_bytes: max_download_mb.saturating_mul(1024 * 1024),
        retries: 4,
        stall: Duration::from_secs(60),
    })?;
    let fetch: Vec<Url> = missing.iter().map(|(_, u)| u.clone()).collect();
    let fetched = downloader
        .download_all(&fetch, dir, ui, |url, path| {
            journal
                .record_saved(job, url.as_str(), path)
                .with_context(|| format!("{} was saved but not recorded", path.display()))
        })
        .await
        .with_context(|| {
            format!(
                "job {request_id} succeeded but not all of its outputs are saved in {}; `runcomfy resume {request_id}` saves them",
                dir.display()
            )
        })?;
    paths.extend(missing.into_iter().map(|(i, _)| i).zip(fetched));
    paths.sort_by_key(|(i, _)| *i);
    let paths: Vec<PathBuf> = paths.into_iter().map(|(_, p)| p).collect();
    journal.record_downloaded(job, &paths)?;
    ctx.set_phase(Phase::Idle);
    if ui.mode() != Mode::Json {
        for p in &paths {
            out(&p.display().to_string());
        }
    }
    Ok(())
}

/// The file an earlier run saved `url` to, when it is still there. Signed URLs change their
/// query between answers: the URL without its query names the file.
fn already_saved(saved: &[(String, PathBuf)], url: &Url) -> Option<PathBuf> {
    let key = |u: &Url| {
        let mut u = u.clone();
        u.set_query(None);
        u.set_fragment(None);
        u
    };
    let wanted = key(url);
    saved
        .iter()
        .rev()
        .filter(|(u, _)| Url::parse(u).is_ok_and(|u| key(&u) == wanted))
        .map(|(_, p)| p)
        .find(|p| p.is_file())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_files_are_found_by_url_without_query() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("a.mp4");
        std::fs::write(&kept, b"x").unwrap();
        let saved = vec![
            ("https://cdn/a.mp4?sig=old".to_owned(), kept.clone()),
            ("https://cdn/b.mp4".to_owned(), dir.path().join("gone.mp4")),
        ];
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            already_saved(&saved, &u("https://cdn/a.mp4?sig=new")),
            Some(kept)
        );
        // Recorded, but the file is gone: fetched again.
        assert_eq!(already_saved(&saved, &u("https://cdn/b.mp4")), None);
        assert_eq!(already_saved(&saved, &u("https://cdn/c.mp4")), None);
    }
}
