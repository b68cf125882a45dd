//! Which job store a command opens: `--store`, else `RUNCOMFY_STORE`, else the SQLite file
//! `jobs.db` in the CLI's data folder. Locations print without their password.

use std::path::PathBuf;

use anyhow::Context as _;
use runcomfy_store::{Location, STORE_ENV};

/// The file name of the default store in the data folder.
pub const DEFAULT_FILE: &str = "jobs.db";

/// The CLI's data folder: `$RUNCOMFY_JOURNAL_DIR`, else `<user data folder>/runcomfy`.
pub fn data_dir() -> anyhow::Result<PathBuf> {
    runcomfy::journal::Journal::default_dir()
        .context("no data folder for the job store: set RUNCOMFY_STORE or RUNCOMFY_JOURNAL_DIR")
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
    Ok(dir.join(DEFAULT_FILE).display().to_string())
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
    }
}
