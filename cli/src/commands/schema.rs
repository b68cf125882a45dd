//! `runcomfy schema MODEL`: the model's input schema, built in when the model is, else from
//! the catalog.

use anyhow::{bail, Context as _};
use serde_json::Value;

use crate::body::UsageError;

use super::Ctx;

/// Print a model's input schema.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model id.
    model: String,
    /// How failed requests are retried.
    #[command(flatten)]
    pub retry: crate::cli::RetryArgs,
}

pub async fn exec(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    let model = &args.model;
    runcomfy::check_model_id(model).map_err(|e| UsageError(e.to_string()))?;
    if let Some(text) = runcomfy::SchemaText::find(runcomfy::models::SCHEMAS, model) {
        let v: Value =
            serde_json::from_str(text.input).context("the built-in schema is not JSON")?;
        ctx.print_value(&v);
        return Ok(());
    }
    let entry = ctx.client(false)?.get_model(model).await?;
    match entry.input_schema {
        Some(s) => {
            ctx.print_value(&s);
            Ok(())
        }
        None => bail!("the catalog has no input schema for {model}"),
    }
}
