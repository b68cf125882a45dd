//! Which model ids `run` accepts: a built-in model (checked against its schema), or, with
//! `--unchecked`, a model of the live catalog the binary has no schema for. Anything else is
//! refused before a request is sent, with the closest known ids.

use runcomfy::{ApiErrorCode, Client, Error, ListModels};

use crate::body::UsageError;
use crate::commands::Ctx;
use crate::flags::{self, ModelFlags};

/// How many catalog pages (of 100) are read for suggestions, at most.
const MAX_PAGES: u32 = 50;

/// A model `run` may send to.
pub enum Known {
    /// Built in: flags and the typed check.
    BuiltIn(&'static ModelFlags),
    /// Sent as given (`--unchecked`); the server checks it.
    Unchecked,
}

/// Decides whether `run` may send to `id`: a built-in model at once, any other after asking
/// the live catalog (when a token is set).
pub async fn resolve(ctx: &Ctx, id: &str, unchecked: bool) -> anyhow::Result<Known> {
    if let Some(m) = flags::model(id) {
        return Ok(Known::BuiltIn(m));
    }
    let Some(client) = ctx.client_if_token(false)? else {
        if unchecked {
            return Ok(Known::Unchecked);
        }
        let hint = did_you_mean(id, builtin_ids());
        return Err(UsageError(format!(
            "{id} is not built into this runcomfy{hint}; without RUNCOMFY_TOKEN the live catalog cannot be checked (`runcomfy models --local` lists the built-in models); to send the input as given, unchecked, pass --unchecked"
        ))
        .into());
    };
    match client.get_model(id).await {
        Ok(_) if unchecked => Ok(Known::Unchecked),
        Ok(_) => Err(UsageError(format!(
            "{id} is in the catalog but this runcomfy has no schema for it: pass --unchecked to send the input as given (the server checks it); `runcomfy schema {id}` shows its fields"
        ))
        .into()),
        Err(e) if is_unknown_model(&e) => {
            let mut ids = builtin_ids();
            ids.extend(catalog_ids(&client).await);
            let hint = did_you_mean(id, ids);
            Err(UsageError(format!(
                "unknown model id {id}: neither built in nor in the catalog{hint} (`runcomfy models --search TEXT` searches the catalog)"
            ))
            .into())
        }
        Err(e) => Err(e.into()),
    }
}

/// The catalog's answer for an id it does not have.
fn is_unknown_model(e: &Error) -> bool {
    match e {
        Error::Api(a) => {
            matches!(
                a.code,
                Some(ApiErrorCode::InvalidResourceIdentifier | ApiErrorCode::ResourceNotFound)
            ) || a.status == 404
        }
        _ => false,
    }
}

pub fn builtin_ids() -> Vec<String> {
    flags::MODELS.iter().map(|m| m.id.to_owned()).collect()
}

/// Every model id of the catalog, page by page; what could be read when a page fails
/// (suggestions are a courtesy, not worth an error of their own).
async fn catalog_ids(client: &Client) -> Vec<String> {
    let mut ids = Vec::new();
    for page in 0..MAX_PAGES {
        let query = ListModels::new().limit(100).offset(page * 100);
        let Ok(list) = client.list_models(&query).await else {
            break;
        };
        let n = list.models.len();
        ids.extend(list.models.into_iter().map(|m| m.model_id));
        if n < 100 || list.total.is_some_and(|t| ids.len() as u64 >= t) {
            break;
        }
    }
    ids
}

/// `: did you mean A or B?` with the (at most three) ids closest to `id`, or nothing when
/// none is close.
pub fn did_you_mean(id: &str, mut candidates: Vec<String>) -> String {
    candidates.sort();
    candidates.dedup();
    let close = closest(id, &candidates);
    match close.as_slice() {
        [] => String::new(),
        [one] => format!("; did you mean {one}?"),
        [init @ .., last] => format!("; did you mean {} or {last}?", init.join(", ")),
    }
}

/// The ids closest to `id` by normalized Damerau-Levenshtein similarity (at least 0.7),
/// best first, at most three.
fn closest(id: &str, candidates: &[String]) -> Vec<String> {
    let mut scored: Vec<(f64, &String)> = candidates
        .iter()
        .map(|c| (strsim::normalized_damerau_levenshtein(id, c), c))
        .filter(|(score, _)| *score >= 0.7)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().take(3).map(|(_, c)| c.clone()).collect()
}

/// The one candidate closest to a short word (a command's name): at most one edit, a
/// transposition counting as one, or a third of the word's length for longer words.
pub fn closest_word(word: &str, candidates: &[String]) -> Option<String> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
        .map(|(_, c)| c.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_the_closest_ids() {
        let ids = builtin_ids();
        let i2v = "happyhorse/happyhorse-1.0/image-to-video";
        assert_eq!(
            closest("happyhorse/happyhorse-1.0/image-to-vide", &ids)[0],
            i2v
        );
        assert_eq!(
            closest("happyhorse/happyhorse-1.0/imagetovideo", &ids)[0],
            i2v
        );
        assert!(closest("acme/nothing/here", &ids).is_empty());
        assert_eq!(did_you_mean("zz/zz", ids.clone()), "");
        let hint = did_you_mean("wan-ai/wan-2.7/text-to-imag", ids);
        assert!(
            hint.starts_with("; did you mean wan-ai/wan-2.7/text-to-image"),
            "{hint}"
        );
    }

    #[test]
    fn close_command_names() {
        let names: Vec<String> = ["run", "resume", "jobs", "batch", "models"]
            .map(String::from)
            .to_vec();
        assert_eq!(closest_word("rnu", &names).as_deref(), Some("run"));
        assert_eq!(closest_word("jbos", &names).as_deref(), Some("jobs"));
        assert_eq!(closest_word("modles", &names).as_deref(), Some("models"));
        assert_eq!(closest_word("deploy", &names), None);
    }
}
