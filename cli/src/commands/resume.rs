//! `runcomfy resume [REQUEST_ID]`: re-attach to the journal's unfinished jobs (or to one job),
//! wait, and deliver their outputs. Never submits.

use std::path::PathBuf;

use serde_json::json;

use runcomfy::journal::JournalEntry;

use crate::body::UsageError;
use crate::deliver::{self, OutArgs, Target};
use crate::exit::{self, Reported};

use super::Ctx;

/// Re-attach to unfinished jobs and fetch or download their results.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A request id or local job id; without it, every unfinished job of the journal.
    request_id: Option<String>,
    #[command(flatten)]
    out: OutArgs,
}

/// A job to resume, from the journal.
struct Resumable {
    job: String,
    request_id: String,
    model_id: String,
    out_dir: Option<PathBuf>,
    saved: Vec<(String, PathBuf)>,
}

impl Resumable {
    fn of(entry: JournalEntry, request_id: String) -> Resumable {
        Resumable {
            job: entry.job_id,
            request_id,
            model_id: entry.model_id,
            out_dir: entry.out_dir,
            saved: entry.saved,
        }
    }
}

pub async fn exec(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let ui = &ctx.ui;
    let journal = ctx.journal()?;
    let targets: Vec<Resumable> = match args.request_id {
        Some(key) => match journal.find(&key)? {
            Some(entry) => match entry.request_id.clone() {
                Some(r) => vec![Resumable::of(entry, r)],
                None => {
                    return Err(UsageError(format!(
                        "job {} ({}) has no request id: its submit was never answered ({}); look for it in your RunComfy account before submitting again",
                        entry.job_id, entry.model_id, entry.state
                    ))
                    .into())
                }
            },
            None => {
                runcomfy::check_request_id(&key).map_err(|e| UsageError(e.to_string()))?;
                let job = journal.adopt("unknown", &key)?;
                vec![Resumable {
                    job,
                    request_id: key,
                    model_id: "unknown".to_owned(),
                    out_dir: None,
                    saved: Vec::new(),
                }]
            }
        },
        None => journal
            .unfinished()?
            .into_iter()
            .filter_map(|e| {
                let r = e.request_id.clone()?;
                Some(Resumable::of(e, r))
            })
            .collect(),
    };
    if targets.is_empty() {
        ui.note("no unfinished jobs in the journal");
        ui.event(json!({"event": "nothing_to_resume"}));
        return Ok(());
    }
    let client = ctx.client(false)?;
    let mut first_failure = None;
    let count = targets.len();
    for t in targets {
        let model = if t.model_id.is_empty() {
            "unknown model"
        } else {
            &t.model_id
        };
        ui.submitted(&t.request_id, &t.job, model, true);
        // `--out` wins; else the folder the outputs were wanted in when the job ran.
        let out = args.out.out.as_deref().or(t.out_dir.as_deref());
        let target = Target {
            job: &t.job,
            request_id: &t.request_id,
            out,
            saved: &t.saved,
        };
        let done = deliver::finish(ctx, &client, &journal, target, args.out.max_download_mb).await;
        if let Err(e) = done {
            let code = exit::code_of(&e);
            if count == 1 {
                return Err(e);
            }
            exit::report(ui, &e, code);
            first_failure.get_or_insert(code);
        }
    }
    match first_failure {
        Some(code) => Err(Reported(code).into()),
        None => Ok(()),
    }
}
