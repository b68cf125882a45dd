//! `runcomfy cancel REQUEST_ID`: cancel a queued job and print the outcome; a confirmed
//! cancel is recorded in the job store, so `resume` skips the job.

use serde_json::json;

use runcomfy_store::{Finish, Outcome};

use super::Ctx;

/// Cancel a queued job.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The request id.
    request_id: String,
    /// The job store: a postgres:// URL or a SQLite file (default: RUNCOMFY_STORE, else
    /// jobs.db in the data folder).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// How failed requests are retried.
    #[command(flatten)]
    pub retry: crate::cli::RetryArgs,
}

pub async fn exec(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let request_id = &args.request_id;
    let cancellation = ctx.client(false)?.cancel(request_id).await?;
    if cancellation.outcome == runcomfy::CancelOutcome::Cancelled {
        // The store learns the job ended, so `resume` skips it. The cancel happened: a store
        // that cannot say so is a warning, not a failure.
        let recorded = async {
            let store = crate::store::open_jobs(ctx, args.store.as_deref()).await?;
            if let Some(job) = store.job_by_request_id(request_id).await? {
                store
                    .record_finished(job.key, &Finish::new(Outcome::Cancelled))
                    .await?;
            }
            anyhow::Ok(())
        };
        if let Err(e) = recorded.await {
            ctx.ui.warn(&format!(
                "job {request_id} is cancelled, but the job store could not record it: {}",
                crate::exit::message(&e)
            ));
        }
    }
    ctx.print_value(&json!({
        "request_id": cancellation.request_id,
        "status": cancellation.state.as_ref().map(|s| s.as_str().to_owned()),
        "outcome": cancellation.outcome.as_str(),
    }));
    Ok(())
}
