//! The end of `run` and `resume`: wait for a recorded job, record how it ended, then print
//! its outputs or download them (`--out`).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use runcomfy::journal::Journal;
use runcomfy::Client;

use crate::commands::Ctx;
use crate::download;
use crate::ui::{out, Mode};

/// Where outputs go.
#[derive(clap::Args, Debug, Clone)]
pub struct OutArgs {
    /// Download every output into DIR and print the files' paths.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The largest output file accepted, in MB.
    #[arg(long, value_name = "MB", default_value_t = 4096)]
    pub max_download_mb: u64,
}

/// Waits for a recorded job, records its end, then prints or downloads its outputs.
pub async fn finish(
    ctx: &Ctx,
    client: &Client,
    journal: &Journal,
    job: &str,
    request_id: &str,
    out_args: &OutArgs,
) -> anyhow::Result<()> {
    let ui = &ctx.ui;
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
    match &out_args.out {
        Some(dir) => {
            let mut downloader = download::Downloader::new(download::Options {
                max_bytes: out_args.max_download_mb.saturating_mul(1024 * 1024),
                retries: 4,
                stall: Duration::from_secs(60),
            })?;
            if urls.is_empty() && ui.mode() != Mode::Json {
                ui.note("the output holds no file URL; nothing to download");
                ctx.print_value(&output);
            }
            let paths = downloader.download_all(&urls, dir, ui).await?;
            journal.record_downloaded(job, &paths)?;
            if ui.mode() != Mode::Json {
                for p in &paths {
                    out(&p.display().to_string());
                }
            }
        }
        None if ui.mode() != Mode::Json => {
            if urls.is_empty() {
                ctx.print_value(&output);
            } else {
                for u in &urls {
                    out(u.as_str());
                }
            }
        }
        None => {}
    }
    Ok(())
}
