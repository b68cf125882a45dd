//! `runcomfy models`: the catalog (`*` marks the models built into the binary), or with
//! `--local` the built-in models, offline.

use serde_json::json;

use runcomfy::ListModels;

use crate::flags;
use crate::ui::{out, Mode};

use super::Ctx;

/// List the models of the catalog.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Free-text search.
    #[arg(long)]
    search: Option<String>,
    /// Only this category (`video`, `image`, `audio`, ...).
    #[arg(long)]
    category: Option<String>,
    /// How many models (1 to 100).
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// How many models to skip.
    #[arg(long, default_value_t = 0)]
    offset: u32,
    /// List the models built into this binary instead (no network, no token).
    #[arg(long)]
    local: bool,
}

pub async fn exec(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    if args.local {
        local(ctx);
        return Ok(());
    }
    let ui = &ctx.ui;
    let mut query = ListModels::new().limit(args.limit).offset(args.offset);
    if let Some(s) = args.search {
        query = query.search(s);
    }
    if let Some(c) = args.category {
        query = query.category(c);
    }
    let list = ctx.client(false)?.list_models(&query).await?;
    if ui.mode() == Mode::Json {
        for m in &list.models {
            out(&serde_json::to_string(m)?);
        }
        return Ok(());
    }
    for m in &list.models {
        let price = match (m.base_price_usd, &m.price_unit) {
            (Some(p), Some(unit)) => format!(
                "${p}/{}",
                serde_json::to_value(unit)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
            (Some(p), None) => format!("${p}"),
            _ => "-".to_owned(),
        };
        let built_in = if flags::model(&m.model_id).is_some() {
            "*"
        } else {
            " "
        };
        out(&format!(
            "{built_in} {:<48} {:<14} {:<12} {}",
            m.model_id,
            m.categories.join(","),
            price,
            m.display_name.as_deref().unwrap_or("")
        ));
    }
    let total = list.total.map_or_else(|| "?".to_owned(), |t| t.to_string());
    ui.note(&format!(
        "{} of {total} models (* built in: typed flags with `runcomfy run MODEL --help`)",
        list.models.len()
    ));
    Ok(())
}

/// The built-in models, offline.
fn local(ctx: &Ctx) {
    for m in flags::MODELS {
        if ctx.ui.mode() == Mode::Json {
            out(&json!({"model_id": m.id, "summary": m.summary}).to_string());
        } else {
            out(&format!("{:<48} {}", m.id, m.summary));
        }
    }
}
