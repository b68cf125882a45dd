//! Which job store a command opens: `--store`, else `RUNCOMFY_STORE`, else the SQLite file
//! `jobs.db` in the CLI's data folder. Locations print without their password. Every store a
//! command opens is kept in its `Ctx` and closed when the command ends (so the SQLite file
//! alone holds every job). The single-job commands import an old journal's unfinished jobs on
//! first use (`journal`).

use std::path::PathBuf;

use anyhow::Context as _;
use runcomfy_store::{Location, SharedStore, StoreError, STORE_ENV};

use crate::commands::Ctx;
use crate::journal;

/// The file name of the default store in the data folder.
pub const DEFAULT_FILE: &str = "jobs.db";

/// The environment variable naming the data folder (the default store's, the old journal's).
pub const DATA_DIR_ENV: &str = "RUNCOMFY_DATA_DIR";
/// Its name before 0.2, still read (with a notice) when the new one is not set.
pub const OLD_DATA_DIR_ENV: &str = "RUNCOMFY_JOURNAL_DIR";

/// The CLI's data folder: `$RUNCOMFY_DATA_DIR` (or the old `$RUNCOMFY_JOURNAL_DIR`), else
/// `<user data folder>/runcomfy` (`~/.local/share/runcomfy` on Linux).
pub fn data_dir() -> anyhow::Result<PathBuf> {
    let set = |name: &str| std::env::var_os(name).filter(|d| !d.is_empty());
    if let Some(dir) = set(DATA_DIR_ENV) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = set(OLD_DATA_DIR_ENV) {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            crate::ui::err(&format!(
                "note: {OLD_DATA_DIR_ENV} is now called {DATA_DIR_ENV}; the old name is still read"
            ));
        });
        return Ok(PathBuf::from(dir));
    }
    dirs::data_dir()
        .map(|d| d.join("runcomfy"))
        .context("no data folder for the job store: set RUNCOMFY_STORE or RUNCOMFY_DATA_DIR")
}

/// Opens the store of the single-job commands (`run`, `resume`, `jobs`, `cancel`): the
/// location as [`location`] says, then, once, the unfinished jobs of an old journal in the
/// data folder imported into it.
pub async fn open_jobs(ctx: &Ctx, flag: Option<&str>) -> anyhow::Result<SharedStore> {
    let store = open(ctx, &location(flag)?).await?;
    if let Ok(dir) = data_dir() {
        journal::import_once(&ctx.ui, store.as_ref(), &dir).await?;
    }
    Ok(store)
}

/// Opens the store at `location` and keeps it in `ctx`, to be closed when the command ends; a
/// damaged store's refusal says how to examine it.
pub async fn open(ctx: &Ctx, location: &str) -> anyhow::Result<SharedStore> {
    let shown = shown(location);
    match runcomfy_store::open(location).await {
        Ok(store) => {
            ctx.keep_store(store.clone());
            Ok(store)
        }
        Err(e @ StoreError::Damaged { .. }) => Err(anyhow::Error::new(e).context(format!(
            "cannot open the job store {shown} (`runcomfy store check` examines it)"
        ))),
        Err(e) => Err(e).with_context(|| format!("cannot open the job store {shown}")),
    }
}

/// The store location a command uses: `--store`, else `RUNCOMFY_STORE`, else the default file.
pub fn location(flag: Option<&str>) -> anyhow::Result<String> {
    if let Some(s) = flag.filter(|s| !s.trim().is_empty()) {
        return Ok(s.to_owned());
    }
    if let Some(s) = std::env::var(STORE_ENV)
        .ok()
        .filter(|s| !s.trim().is_empty())
    {
        return Ok(s);
    }
    let dir = data_dir()?;
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the data folder {}", dir.display()))?;
    // Named as a SQLite file outright: a data folder such as `a=b` is no connection string.
    Ok(format!("sqlite:{}", dir.join(DEFAULT_FILE).display()))
}

/// The location as it may be shown (no password).
pub fn shown(location: &str) -> String {
    match Location::parse(location) {
        Ok(l) => l.to_string(),
        Err(_) => runcomfy_store::redact(location),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_never_shown() {
        let shown = shown("postgres://batch:s3cret@db.local:5432/jobs");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.local"), "{shown}");
        assert_eq!(
            super::shown("/tmp/jobs.db"),
            "sqlite:///tmp/jobs.db".to_owned()
        );
        let libpq = super::shown("host=db.local password='s3 cret' dbname=jobs");
        assert!(
            !libpq.contains("s3") && libpq.contains("db.local"),
            "{libpq}"
        );
    }
}
