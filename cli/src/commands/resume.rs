//! `runcomfy resume [ID]`: re-attach to the store's unfinished single jobs (or to one job),
//! wait, and deliver their outputs. Never submits: an uncertain job is listed, not sent.

use std::path::PathBuf;

use serde_json::json;

use runcomfy_store::{JobKey, JobRecord, SharedStore, State};

use crate::body::UsageError;
use crate::deliver::{self, OutArgs, Target};
use crate::exit::{self, Reported};

use super::Ctx;

/// Re-attach to unfinished jobs and fetch or download their results.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A request id or the store's job number (`runcomfy jobs`); without it, every
    /// unfinished job of the store.
    request_id: Option<String>,
    /// The job store: a postgres:// URL or a SQLite file (default: RUNCOMFY_STORE, else
    /// jobs.db in the data folder).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    #[command(flatten)]
    out: OutArgs,
    /// How the job is polled.
    #[command(flatten)]
    pub wait: crate::cli::WaitArgs,
    /// How failed requests are retried.
    #[command(flatten)]
    pub retry: crate::cli::RetryArgs,
}

/// A job to resume, from the store.
struct Resumable {
    key: JobKey,
    request_id: String,
    model_id: String,
    out_dir: Option<PathBuf>,
}

impl Resumable {
    fn of(record: JobRecord) -> Option<Resumable> {
        Some(Resumable {
            key: record.key,
            request_id: record.request_id?,
            model_id: record.model_id,
            out_dir: record.outputs_dir,
        })
    }
}

/// The job `id` names: a request id, else a job number of the store.
async fn find(store: &SharedStore, id: &str) -> anyhow::Result<Option<JobRecord>> {
    if let Some(record) = store.job_by_request_id(id).await? {
        return Ok(Some(record));
    }
    match id.trim_start_matches("job").trim().parse::<i64>() {
        Ok(n) => Ok(store.job(JobKey(n)).await?),
        Err(_) => Ok(None),
    }
}

pub async fn exec(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let ui = &ctx.ui;
    let store = crate::store::open_jobs(ctx, args.store.as_deref()).await?;
    let targets: Vec<Resumable> = match args.request_id.as_deref() {
        Some(id) => match find(&store, id).await? {
            Some(record) => match record.state {
                State::Submitting | State::Uncertain | State::Refused => {
                    return Err(UsageError(format!(
                        "job {} ({}) has no request id: its submit was never answered ({}); look for it in your RunComfy account before submitting again",
                        record.key.0, record.model_id, record.state
                    ))
                    .into())
                }
                _ => Resumable::of(record).into_iter().collect(),
            },
            None => {
                // A job this store never saw: recorded now, so its end and files are too.
                runcomfy::check_request_id(id).map_err(|e| UsageError(e.to_string()))?;
                let key = store
                    .record_intent("unknown", &json!({"resumed_by_request_id": id}))
                    .await?;
                store.record_submitted(key, id).await?;
                vec![Resumable {
                    key,
                    request_id: id.to_owned(),
                    model_id: "unknown".to_owned(),
                    out_dir: None,
                }]
            }
        },
        None => {
            let uncertain = store.uncertain().await?;
            if !uncertain.is_empty() {
                let listed: Vec<String> = uncertain
                    .iter()
                    .map(|r| format!("{} ({})", r.key.0, r.model_id))
                    .collect();
                ui.warn(&format!(
                    "{} job(s) may have been submitted without a recorded answer and are not resumed: {}; check your RunComfy account (`runcomfy jobs` lists them)",
                    uncertain.len(),
                    listed.join(", ")
                ));
            }
            store
                .unfinished()
                .await?
                .into_iter()
                .filter_map(Resumable::of)
                .collect()
        }
    };
    if targets.is_empty() {
        ui.note("no unfinished jobs in the job store");
        ui.event(json!({"event": "nothing_to_resume"}));
        return Ok(());
    }
    let client = ctx.client_with(Some(store.clone()), false)?;
    let mut first_failure = None;
    let count = targets.len();
    for t in targets {
        let model = if t.model_id.is_empty() {
            "unknown model"
        } else {
            &t.model_id
        };
        ui.submitted(&t.request_id, &t.key.0.to_string(), model, true);
        // `--out` wins; else the folder the outputs were wanted in when the job ran.
        let out = args.out.out.as_deref().or(t.out_dir.as_deref());
        let handle = runcomfy::RequestHandle::attach(&t.request_id)?;
        let target = Target {
            key: t.key,
            handle: &handle,
            submitted: None,
            out,
        };
        let done = deliver::finish(ctx, &client, &store, target, args.out.max_download_mb).await;
        if let Err(e) = done {
            let code = exit::code_of(&e);
            if count == 1 {
                return Err(e);
            }
            exit::report(ui, &e, code, false);
            first_failure.get_or_insert(code);
        }
    }
    match first_failure {
        Some(code) => Err(Reported(code).into()),
        None => Ok(()),
    }
}
