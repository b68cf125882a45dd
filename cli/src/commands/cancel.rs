//! `runcomfy cancel REQUEST_ID`: cancel a queued job and print the outcome; a confirmed
//! cancel is recorded in the journal, so `resume` skips the job.

use serde_json::json;

use runcomfy::journal::Journal;

use super::Ctx;

/// Cancel a queued job.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The request id.
    request_id: String,
}

pub async fn exec(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let request_id = &args.request_id;
    let cancellation = ctx.client(false)?.cancel(request_id).await?;
    if cancellation.outcome == runcomfy::CancelOutcome::Cancelled {
        // Best effort: the journal learns the job ended, so `resume` skips it.
        if let Ok(journal) = Journal::open_default() {
            if let Ok(Some(entry)) = journal.find(request_id) {
                let _ = journal.record_outcome(
                    &entry.job_id,
                    &Err(runcomfy::Error::Cancelled {
                        request_id: request_id.to_owned(),
                    }),
                );
            }
        }
    }
    ctx.print_value(&json!({
        "request_id": cancellation.request_id,
        "status": cancellation.state.as_ref().map(|s| s.as_str().to_owned()),
        "outcome": cancellation.outcome.as_str(),
    }));
    Ok(())
}
