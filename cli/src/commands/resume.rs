//! `runcomfy resume [REQUEST_ID]`: re-attach to the journal's unfinished jobs (or to one job),
//! wait, and deliver their outputs. Never submits.

use serde_json::json;

use crate::body::UsageError;
use crate::deliver::{self, OutArgs};
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

pub async fn exec(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let ui = &ctx.ui;
    let journal = ctx.journal()?;
    let targets: Vec<(String, String, String)> = match args.request_id {
        Some(key) => match journal.find(&key)? {
            Some(entry) => match entry.request_id {
                Some(r) => vec![(entry.job_id, r, entry.model_id)],
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
                vec![(job, key, "unknown".to_owned())]
            }
        },
        None => journal
            .unfinished()?
            .into_iter()
            .filter_map(|e| e.request_id.map(|r| (e.job_id, r, e.model_id)))
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
    for (job, request_id, model_id) in targets {
        ui.submitted(&request_id, &job, &model_id, true);
        if let Err(e) = deliver::finish(ctx, &client, &journal, &job, &request_id, &args.out).await
        {
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
