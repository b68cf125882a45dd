//! `runcomfy status REQUEST_ID`: the job's status, as JSON.

use super::Ctx;

/// Print a job's status.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The request id.
    request_id: String,
    /// How failed requests are retried.
    #[command(flatten)]
    pub retry: crate::cli::RetryArgs,
}

pub async fn exec(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let status = ctx.client(false)?.status(&args.request_id).await?;
    ctx.print_value(&serde_json::to_value(status)?);
    Ok(())
}
