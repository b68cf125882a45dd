//! The end of `run` and `resume`: wait for a job of the store, then print its outputs or save
//! them (`--out`). The wanted folder is recorded in the store before the wait, so the client
//! records a success wanting every output file, each saved file is recorded as it is
//! published, and the job becomes `succeeded` only once the last one is: an interrupted or
//! failed download leaves the job unfinished for `resume`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;
use url::Url;

use runcomfy::{Client, RequestHandle};
use runcomfy_store::{JobKey, SharedStore};

use crate::commands::{Ctx, Phase};
use crate::download;
use crate::ui::{out, Mode};

/// Where outputs go.
#[derive(clap::Args, Debug, Clone)]
pub struct OutArgs {
    /// Download every output into DIR and print the files' paths (`resume`: by default, the
    /// folder the job's `run --out` wanted them in).
    #[arg(long, value_name = "DIR", value_parser = absolute_dir)]
    pub out: Option<PathBuf>,
    /// The largest output file accepted, in MB.
    #[arg(long, value_name = "MB", default_value_t = 4096)]
    pub max_download_mb: u64,
}

/// `--out` as an absolute path: the store records it, and `resume` may run from another
/// working directory.
fn absolute_dir(text: &str) -> Result<PathBuf, String> {
    std::path::absolute(text).map_err(|e| format!("cannot resolve the folder {text:?}: {e}"))
}

/// A job of the store to finish.
pub struct Target<'a> {
    /// The job's key in the store.
    pub key: JobKey,
    /// The job (from the submit, or attached by its request id).
    pub handle: &'a RequestHandle,
    /// When this command submitted it (its wait then starts as a run's does and records
    /// the run time); `None` for a job re-attached.
    pub submitted: Option<Instant>,
    /// Where to save the outputs; `None` prints them.
    pub out: Option<&'a Path>,
}

/// Records that `key`'s outputs are wanted in `dir` (before the wait: from then on the job is
/// done only once they are saved).
pub async fn want_outputs(store: &SharedStore, key: JobKey, dir: &Path) -> anyhow::Result<()> {
    store
        .record_outputs_wanted(key, dir)
        .await
        .with_context(|| format!("cannot record the output folder {}", dir.display()))
}

/// Waits for a job of the store (the client records its end), then prints or saves its
/// outputs.
pub async fn finish(
    ctx: &Ctx,
    client: &Client,
    store: &SharedStore,
    target: Target<'_>,
    max_download_mb: u64,
) -> anyhow::Result<()> {
    let ui = &ctx.ui;
    let Target {
        key,
        handle,
        submitted,
        out: out_dir,
    } = target;
    let request_id = handle.request_id();
    if let Some(dir) = out_dir {
        want_outputs(store, key, dir).await?;
    }
    ctx.set_phase(Phase::Waiting {
        request_id: request_id.to_owned(),
    });
    let waited = match submitted {
        Some(at) => handle.wait_submitted(client, at, |p| ui.progress(p)).await,
        None => handle.wait_with_progress(client, |p| ui.progress(p)).await,
    };
    let output = match waited {
        Ok(r) => {
            ui.finish_wait(r.state.as_str());
            r.output.unwrap_or_else(|| json!({}))
        }
        Err(e) => {
            ui.finish_wait("failed");
            match recorded_output(store, key, &e, out_dir).await {
                Some(output) => {
                    ui.note(&format!(
                        "job {request_id}: the server no longer has its result ({}); saving the outputs recorded when it succeeded",
                        e
                    ));
                    output
                }
                None => return Err(e.into()),
            }
        }
    };
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
    // What the store knows: wanted outputs (no path yet) and files an earlier run saved.
    let known = store
        .outputs(key)
        .await
        .context("cannot read the job's outputs from the store")?;
    let recorded: Vec<PathBuf> = known.iter().filter_map(|o| o.path.clone()).collect();
    let mut paths: Vec<(usize, PathBuf)> = Vec::new();
    let mut missing: Vec<(usize, Url, String)> = Vec::new();
    for (i, url) in urls.into_iter().enumerate() {
        // Signed URLs change their query between answers: the URL without it names the file,
        // and the store's own spelling of it is the one recorded.
        let stored = known
            .iter()
            .find(|o| Url::parse(&o.url).is_ok_and(|u| download::same_file_url(&u, &url)));
        match stored.and_then(|o| o.path.clone()).filter(|p| p.is_file()) {
            Some(path) => {
                ui.note(&format!("already saved: {}", path.display()));
                paths.push((i, path));
            }
            None => {
                let as_recorded = stored.map_or_else(|| url.to_string(), |o| o.url.clone());
                missing.push((i, url, as_recorded));
            }
        }
    }
    let mut downloader = download::Downloader::new(download::Options {
        max_bytes: max_download_mb.saturating_mul(1024 * 1024),
        retries: 4,
        stall: Duration::from_secs(60),
    })?;
    let fetch: Vec<(Url, String)> = missing
        .iter()
        .map(|(_, u, r)| (u.clone(), r.clone()))
        .collect();
    let fetched = downloader
        .download_all(&fetch, dir, &recorded, ui, |recorded_url, path| async move {
            store
                .record_output_saved(key, &recorded_url, &path)
                .await
                .with_context(|| format!("{} was saved but not recorded", path.display()))
                .map(|_| ())
        })
        .await
        .with_context(|| {
            format!(
                "job {request_id} succeeded but not all of its outputs are saved in {}; `runcomfy resume {request_id}` saves them",
                dir.display()
            )
        })?;
    paths.extend(missing.into_iter().map(|(i, _, _)| i).zip(fetched));
    paths.sort_by_key(|(i, _)| *i);
    ctx.set_phase(Phase::Idle);
    if ui.mode() != Mode::Json {
        for (_, p) in &paths {
            out(&p.display().to_string());
        }
    }
    Ok(())
}

/// The output the store recorded for a job that succeeded and still has outputs to save,
/// when the server no longer knows the job (`404001`): its recorded file URLs may still
/// work. `None` for any other error or job.
async fn recorded_output(
    store: &SharedStore,
    key: JobKey,
    error: &runcomfy::Error,
    out_dir: Option<&Path>,
) -> Option<serde_json::Value> {
    let expired = matches!(error, runcomfy::Error::Api(api) if api.code == Some(runcomfy::ApiErrorCode::ResourceNotFound));
    if !expired || out_dir.is_none() {
        return None;
    }
    let job = store.job(key).await.ok()??;
    (job.state == runcomfy_store::State::Saving)
        .then_some(job.output)
        .flatten()
}
