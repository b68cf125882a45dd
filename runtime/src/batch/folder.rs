//! Which batch an outputs folder belongs to: the marker `DIR/.runcomfy-batch.json`, written
//! atomically before the batch's first submit, naming the batch, its model and its store.
//!
//! The engine takes a complete file already published in `DIR/<line>/` as that row's output
//! ([`Folder::Own`](crate::download::Folder::Own)); that is only true when the folder holds
//! this batch's files and no other's. So a folder belongs to one batch: another batch (another
//! name, model or store) is refused before it records or submits anything, and the same
//! batch continues in it (a run killed at any point included).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use runcomfy_store::Location;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The marker's file name in the outputs folder.
pub const MARKER: &str = ".runcomfy-batch.json";

/// The batch a folder belongs to, as its marker records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The batch's name.
    pub batch: String,
    /// The model every row runs.
    pub model_id: String,
    /// The store the batch lives in (an absolute SQLite path, or a URL without password).
    pub store: String,
}

impl Owner {
    /// The owner a batch named `batch` of `model_id` in the store at `location` would be.
    pub fn new(batch: &str, model_id: &str, location: &Location) -> Owner {
        let store = match location {
            Location::Sqlite(path) => {
                let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                format!("sqlite://{}", path.display())
            }
            other => other.to_string(),
        };
        Owner {
            batch: batch.to_owned(),
            model_id: model_id.to_owned(),
            store,
        }
    }

    fn describe(&self) -> String {
        format!(
            "batch {:?} (model {}, store {})",
            self.batch, self.model_id, self.store
        )
    }
}

/// Checks that `dir` may hold this batch's files, before the batch is created or opened:
/// refused when its marker names another batch, or names this one while the store does not
/// hold it (`existed` false: the files are an earlier batch's), or when it has no marker but
/// row folders and the batch is new. True when the marker is still to be written
/// ([`mark`], once the batch is in the store). Blocking: call it off the async threads.
pub fn check(dir: &Path, owner: &Owner, existed: bool) -> Result<bool, Error> {
    match read(&dir.join(MARKER))? {
        Some(found) if found == *owner && existed => Ok(false),
        Some(found) if found == *owner => Err(taken(
            dir,
            format!(
                "it holds the files of an earlier {} that the store no longer has; they are not this run's: give this batch another folder",
                found.describe()
            ),
        )),
        Some(found) => Err(owned_by(dir, &found)),
        None if existed => Ok(true),
        None => match first_line_folder(dir) {
            // A batch made before markers existed has row folders and no marker: only a
            // batch the store already held takes them as its own.
            Some(line) => Err(taken(
                dir,
                format!(
                    "it holds row folders ({}) of a batch it does not name; give this batch another folder",
                    line.display()
                ),
            )),
            None => Ok(true),
        },
    }
}

/// Writes the marker naming `owner` (after [`check`] said so and the batch is in the store),
/// unless another process wrote one first: then it must name the same batch.
pub fn mark(dir: &Path, owner: &Owner) -> Result<(), Error> {
    let marker = dir.join(MARKER);
    if write(dir, &marker, owner)? {
        return Ok(());
    }
    match read(&marker)? {
        Some(found) if found == *owner => Ok(()),
        Some(found) => Err(owned_by(dir, &found)),
        None => Err(taken(
            dir,
            format!("its marker {} appeared and vanished", marker.display()),
        )),
    }
}

fn owned_by(dir: &Path, found: &Owner) -> Error {
    taken(
        dir,
        format!(
            "it belongs to {}; give this batch another folder, or run batch {:?} to continue that one",
            found.describe(),
            found.batch
        ),
    )
}

fn taken(dir: &Path, reason: String) -> Error {
    Error::FolderTaken {
        dir: dir.to_owned(),
        reason,
    }
}

fn io_error(action: &str, path: &Path, e: io::Error) -> Error {
    Error::InvalidArgument {
        name: "outputs_dir",
        reason: format!("cannot {action} {}: {e}", path.display()),
    }
}

/// The marker's owner; `None` when there is no marker.
fn read(marker: &Path) -> Result<Option<Owner>, Error> {
    let text = match std::fs::read(marker) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("read", marker, e)),
    };
    match serde_json::from_slice(&text) {
        Ok(owner) => Ok(Some(owner)),
        Err(e) => Err(taken(
            marker.parent().unwrap_or(marker),
            format!(
                "its marker {} is unreadable ({e}), so which batch owns it is unknown; give this batch another folder",
                marker.display()
            ),
        )),
    }
}

/// A row folder (`DIR/<digits>/`), when `dir` has one.
fn first_line_folder(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_digit())
                && e.file_type().is_ok_and(|t| t.is_dir())
        })
        .map(|e| e.path())
}

/// Publishes the marker: written whole and flushed under a name of its own, then linked to
/// `MARKER`, which fails if it exists (so it is never replaced and never seen half written).
/// False when another marker appeared first.
fn write(dir: &Path, marker: &Path, owner: &Owner) -> Result<bool, Error> {
    std::fs::create_dir_all(dir).map_err(|e| io_error("create", dir, e))?;
    let text = serde_json::to_vec_pretty(owner).map_err(|e| Error::InvalidArgument {
        name: "outputs_dir",
        reason: format!("cannot encode the folder's marker: {e}"),
    })?;
    let tmp = dir.join(format!(
        "{MARKER}.{}-{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(&text)?;
        file.write_all(b"\n")?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error("write", &tmp, e));
    }
    let linked = std::fs::hard_link(&tmp, marker);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            // The new name is durable once the folder is.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io_error("publish", marker, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(batch: &str) -> Owner {
        Owner::new(
            batch,
            "acme/pics/text-to-image",
            &Location::Sqlite("/tmp/jobs.db".into()),
        )
    }

    fn tempdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "runcomfy-folder-{tag}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        dir
    }

    #[test]
    fn a_folder_belongs_to_the_first_batch_that_claims_it() {
        let dir = tempdir("claim").join("out");
        assert!(check(&dir, &owner("a"), false).expect("a new folder is free"));
        mark(&dir, &owner("a")).expect("a new folder is claimed");
        mark(&dir, &owner("a")).expect("marked twice by the same batch");
        assert!(!check(&dir, &owner("a"), true).expect("the same batch continues"));
        let other = check(&dir, &owner("b"), false).expect_err("another batch is refused");
        let text = other.to_string();
        assert!(text.contains("\"a\""), "{text}");
        assert!(text.contains("another folder"), "{text}");
        // The same name in another store is another batch.
        let elsewhere = Owner::new(
            "a",
            "acme/pics/text-to-image",
            &Location::Sqlite("/tmp/other.db".into()),
        );
        assert!(check(&dir, &elsewhere, true).is_err());
        assert!(mark(&dir, &elsewhere).is_err());
        // A batch the store just created cannot own files made before it.
        assert!(check(&dir, &owner("a"), false).is_err());
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(&dir)
            .expect("read")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![MARKER.to_owned()]);
    }

    #[test]
    fn row_folders_without_a_marker_are_only_taken_by_a_batch_that_existed() {
        let dir = tempdir("legacy");
        std::fs::create_dir_all(dir.join("3")).expect("a row folder");
        assert!(check(&dir, &owner("new"), false).is_err());
        assert!(!dir.join(MARKER).exists());
        assert!(check(&dir, &owner("old"), true).expect("adopted"));
        mark(&dir, &owner("old")).expect("marked");
        assert!(check(&dir, &owner("new"), false).is_err());
    }

    #[test]
    fn an_unreadable_marker_is_refused() {
        let dir = tempdir("torn");
        std::fs::write(dir.join(MARKER), b"{\"batch\":").expect("write");
        assert!(check(&dir, &owner("a"), true).is_err());
    }
}
