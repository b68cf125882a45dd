//! The run of `runcomfy batch`: the batch opened in the store, its rows run through the
//! library's batch engine, the progress shown, and the report rewritten.

use super::batch::{open_store, write_report, Plan};
use super::Ctx;

pub async fn exec(ctx: &Ctx, plan: Plan) -> anyhow::Result<()> {
    let store = open_store(ctx, plan.args.store.as_deref()).await?;
    let batch = store
        .create_or_open_batch(&plan.name, &plan.model, plan.rows)
        .await?;
    write_report(&*store, &batch.name, &plan.out, &plan.refused).await?;
    anyhow::bail!("running a batch needs the batch engine of the runcomfy library, not built yet")
}
