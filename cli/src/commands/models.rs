//! `runcomfy models`: the catalog (`*` marks the models built into the binary), or with
//! `--local` the built-in models, offline. `--search` and `--category` match here, the same
//! way for both: every word of the search, in any case, in the id, name, categories or
//! summary (`image to video` finds `.../image-to-video`); the category in any case.

use serde_json::json;

use runcomfy::ListModels;

use crate::flags;
use crate::ui::{out, Mode};

use super::Ctx;

/// List the models of the catalog.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only models whose id, name, categories or summary hold every word of SEARCH (any
    /// case; `image to video` finds `.../image-to-video`).
    #[arg(long)]
    search: Option<String>,
    /// Only this category, in any case (`video`, `image`, `audio`, ...).
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
    /// How failed requests are retried.
    #[command(flatten)]
    pub retry: crate::cli::RetryArgs,
}

pub async fn exec(ctx: &Ctx, args: Args) -> anyhow::Result<()> {
    if args.local {
        local(
            ctx,
            &Filter::new(args.search.as_deref(), args.category.as_deref()),
        );
        return Ok(());
    }
    let ui = &ctx.ui;
    let client = ctx.client(false)?;
    let filter = Filter::new(args.search.as_deref(), args.category.as_deref());
    let (models, total) = if filter.is_empty() {
        let page = client
            .list_models(&ListModels::new().limit(args.limit).offset(args.offset))
            .await?;
        (page.models, page.total)
    } else {
        // The catalog's own search is not specified (and finds whole phrases only): every
        // page is read and matched here.
        let mut all = Vec::new();
        let mut offset = 0u32;
        for _ in 0..MAX_PAGES {
            let page = client
                .list_models(&ListModels::new().limit(100).offset(offset))
                .await?;
            let read = page.models.len();
            all.extend(page.models);
            offset = offset.saturating_add(read as u32);
            if read == 0 || page.total.is_some_and(|t| u64::from(offset) >= t) {
                break;
            }
        }
        let models: Vec<_> = all
            .into_iter()
            .filter(|m| {
                let summary = flags::model(&m.model_id).map_or("", |f| f.summary);
                filter.matches(
                    &m.model_id,
                    &[m.display_name.as_deref().unwrap_or(""), summary],
                    &m.categories,
                )
            })
            .collect();
        let total = models.len() as u64;
        let page = models
            .into_iter()
            .skip(args.offset as usize)
            .take(args.limit as usize)
            .collect();
        (page, Some(total))
    };
    if ui.mode() == Mode::Json {
        for m in &models {
            out(&serde_json::to_string(m)?);
        }
        return Ok(());
    }
    for m in &models {
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
    let total = total.map_or_else(|| "?".to_owned(), |t| t.to_string());
    ui.note(&format!(
        "{} of {total} models (* built in: typed flags with `runcomfy run MODEL --help`)",
        models.len()
    ));
    Ok(())
}

/// How many catalog pages of 100 a search reads at most.
const MAX_PAGES: usize = 100;

/// What `--search` and `--category` ask for, in lower case.
struct Filter {
    words: Vec<String>,
    category: Option<String>,
}

impl Filter {
    fn new(search: Option<&str>, category: Option<&str>) -> Filter {
        Filter {
            words: search.map(words).unwrap_or_default(),
            category: category
                .map(|c| c.trim().to_lowercase())
                .filter(|c| !c.is_empty()),
        }
    }

    fn is_empty(&self) -> bool {
        self.words.is_empty() && self.category.is_none()
    }

    /// Every word in the id, the texts or the categories, and the category among them.
    fn matches(&self, id: &str, texts: &[&str], categories: &[String]) -> bool {
        let category_ok = self
            .category
            .as_ref()
            .is_none_or(|c| categories.iter().any(|k| k.to_lowercase() == *c));
        let mut haystack = words(id);
        for t in texts {
            haystack.extend(words(t));
        }
        for c in categories {
            haystack.extend(words(c));
        }
        category_ok && self.words.iter().all(|w| haystack.iter().any(|h| h == w))
    }
}

/// The lower-case words of a text or id (split at anything not a letter, digit or dot).
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '.'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The built-in models, offline.
fn local(ctx: &Ctx, filter: &Filter) {
    let built_in = flags::MODELS
        .iter()
        .filter(|m| filter.matches(m.id, &[m.summary], &[]) && filter.category.is_none());
    for m in built_in {
        if ctx.ui.mode() == Mode::Json {
            out(&json!({"model_id": m.id, "summary": m.summary}).to_string());
        } else {
            out(&format!("{:<48} {}", m.id, m.summary));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Filter;

    #[test]
    fn search_matches_words_in_any_case_and_categories_in_any_case() {
        let cats = ["Video".to_owned()];
        let id = "happyhorse/happyhorse-1.0/image-to-video";
        let f = |s: &str, c: Option<&str>| Filter::new(Some(s), c);
        assert!(f("image to video", None).matches(id, &[], &cats));
        assert!(f("Image-To-Video", None).matches(id, &[], &cats));
        assert!(f("happyhorse 1.0", None).matches(id, &[], &cats));
        assert!(f("horse", Some("video")).matches(id, &["HappyHorse 1.0 horse"], &cats));
        assert!(!f("image to audio", None).matches(id, &[], &cats));
        assert!(!f("", Some("image")).matches(id, &[], &cats));
        assert!(Filter::new(None, Some("VIDEO")).matches(id, &[], &cats));
        assert!(Filter::new(None, None).is_empty());
    }
}
