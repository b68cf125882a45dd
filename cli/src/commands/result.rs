//! `runcomfy result REQUEST_ID [--cost]`: the job's result (its state while it runs), as JSON.

use super::Ctx;

/// Print a job's result.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The request id.
    request_id: String,
    /// Ask for the cost too.
    #[arg(long)]
    cost: bool,
    /// How failed requests are retried.
    #[command(flatten)]
    pub retry: crate::cli::RetryArgs,
}

pub async fn exec(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let result = ctx
        .client(false)?
        .result(&args.request_id, args.cost)
        .await?;
    ctx.print_value(&serde_json::to_value(result)?);
    Ok(())
}
