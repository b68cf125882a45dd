//! What can go wrong with a store.

use crate::types::{JobKey, State};

/// A boxed error from a database driver.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong with a store. No variant ever shows a password: locations are printed
/// redacted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store location could not be understood.
    #[error("bad store location {location:?}: {reason}")]
    BadLocation {
        /// The location as given (redacted).
        location: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The location names a backend this build does not include.
    #[error("store {location}: {backend} support is not compiled in (enable the `{backend}` feature of runcomfy-store)")]
    BackendDisabled {
        /// The location (redacted).
        location: String,
        /// The backend's feature name.
        backend: &'static str,
    },
    /// The database could not be reached, at start or mid-run. Nothing that needed it was
    /// recorded: a caller must not send a submit whose intent this error refused.
    #[error("store {location} is unavailable")]
    Unavailable {
        /// The location (redacted).
        location: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// The store's file is damaged or missing (empty, not a database, a `-wal` without its
    /// database, pages that fail SQLite's check). It was left as it was found and nothing was
    /// recorded: restore a backup of it, or move it away to start an empty store.
    #[error("store {location} is damaged: {problem}; the file was left as it is: restore it from a backup, or move it away to start an empty store")]
    Damaged {
        /// The location (redacted).
        location: String,
        /// What is wrong.
        problem: String,
    },
    /// The backend cannot do this; the message says what to use instead.
    #[error("store {location}: {what}")]
    Unsupported {
        /// The location (redacted).
        location: String,
        /// What cannot be done, and what to use instead.
        what: &'static str,
    },
    /// A database operation failed.
    #[error("store {location}: a database operation failed")]
    Database {
        /// The location (redacted).
        location: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// The database was made by a newer version of this crate.
    #[error("store {location} has schema version {found}, newer than the {known} this program knows: upgrade it")]
    SchemaTooNew {
        /// The location (redacted).
        location: String,
        /// The version found in the database.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// A value in the database could not be read back.
    #[error("store {location}: unreadable {what} of {key}: {detail}")]
    Corrupt {
        /// The location (redacted).
        location: String,
        /// The job concerned.
        key: JobKey,
        /// Which value.
        what: &'static str,
        /// Why it could not be read.
        detail: String,
    },
    /// A batch of this name exists with other inputs or another model.
    #[error("batch {name:?} already exists with different inputs ({detail}): pick another name or use the same rows")]
    BatchMismatch {
        /// The batch's name.
        name: String,
        /// What differs, with the first differing line when there is one.
        detail: String,
    },
    /// No batch has this name (or id).
    #[error("no batch named {0:?} in the store")]
    UnknownBatch(String),
    /// No job has this key.
    #[error("{0} is not in the store")]
    UnknownJob(JobKey),
    /// The job is not in a state that allows this step.
    #[error("{key} is {state}: cannot {action}")]
    InvalidState {
        /// The job.
        key: JobKey,
        /// Where it stands.
        state: State,
        /// What was asked.
        action: &'static str,
    },
    /// The worker no longer holds this batch row: its lease expired and another worker took
    /// the row back. The worker must not send it.
    #[error("{key} is no longer held by worker {worker:?}: its lease expired and the row was taken back")]
    LeaseLost {
        /// The row.
        key: JobKey,
        /// The worker that asked.
        worker: String,
    },
    /// An argument was out of range (a duplicate line, a negative or non-finite amount).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl StoreError {
    /// True when the database could not be reached (the caller should stop submitting).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

/// An error that is only a message (for failures reported by the store's own machinery).
#[derive(Debug)]
pub(crate) struct Message(pub String);

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}
