//! A crash-safe local journal of submitted jobs (feature `journal`): no paid job is lost.
//!
//! Every submit is recorded *before* it is sent (model, SHA-256 of the body, time, a local
//! job id), and the `request_id` is recorded the moment the server returns it, before
//! anything else happens. A program that dies at any point can list the jobs it left behind
//! ([`Journal::unfinished`]) and re-attach to them by their request id.
//!
//! A job whose outputs are wanted on disk ([`Journal::record_outputs_wanted`]) stays
//! unfinished until [`Journal::record_downloaded`] says every one is saved, so a failed or
//! interrupted download never hides a paid output from [`Journal::unfinished`]. A job the
//! server no longer knows (`404001`) is recorded as [`EntryState::Expired`].
//!
//! The store is one append-only file of JSON lines (`journal.jsonl`). Each record is written
//! with a single append and flushed to disk (`fsync`) before the call returns, so after a
//! crash a record is either complete or a torn last line, which readers ignore and the next
//! writer fences off with a newline. Reading recovers every intact record: a damaged line
//! costs only itself (a record glued behind garbage on one line is found too, and the later
//! records of a job whose first record was damaged still make an entry). There is no C
//! dependency and nothing to migrate: the state of a job is the fold of its records, in file
//! order.
//!
//! ```no_run
//! # async fn demo(client: &runcomfy::Client) -> Result<(), runcomfy::journal::JournalError> {
//! use runcomfy::journal::Journal;
//! let journal = Journal::open_default()?;
//! let body = serde_json::json!({"prompt": "a cat"});
//! let (job, handle) = journal.submit_json(client, "acme/echo/text-to-image", &body).await?;
//! // The request id is already on disk: even if this program dies now, the job is found again.
//! let result = journal.wait(client, &job, handle.request_id(), |_| {}).await?;
//! println!("{:?}", result.output);
//! for entry in journal.unfinished()? {
//!     println!("still running: {:?}", entry.request_id);
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::client::Client;
use crate::error::{ApiErrorCode, Error};
use crate::job::RequestHandle;
use crate::types::{JobResult, JobState};
use crate::wait::Progress;

/// The environment variable that overrides the journal's folder.
pub const JOURNAL_DIR_ENV: &str = "RUNCOMFY_JOURNAL_DIR";

/// The journal's file name inside its folder.
pub const FILE_NAME: &str = "journal.jsonl";

/// The format version written in every record.
const VERSION: u32 = 1;

/// What can go wrong with the journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The journal file could not be read or written.
    #[error("journal {}: {source}", .path.display())]
    Io {
        /// The journal file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// No folder was given and the platform has no user data folder.
    #[error("no user data folder found: set {JOURNAL_DIR_ENV}")]
    NoDataDir,
    /// An API call failed; the journal recorded what is known.
    #[error(transparent)]
    Api(#[from] Error),
    /// The server accepted a paid job but its request id could not be written down:
    /// keep `request_id` by other means.
    #[error("job {request_id} was submitted but could not be recorded in {}: {source}", .path.display())]
    Unrecorded {
        /// The job's request id.
        request_id: String,
        /// The journal file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

impl JournalError {
    /// The API error, when an API call failed.
    pub fn api(&self) -> Option<&Error> {
        match self {
            JournalError::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The request id of the job concerned, when known.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            JournalError::Api(e) => e.request_id(),
            JournalError::Unrecorded { request_id, .. } => Some(request_id),
            _ => None,
        }
    }
}

/// Where a recorded job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryState {
    /// Recorded before sending; no answer was recorded. The process may have died while the
    /// submit was in flight: a paid job may exist without a known request id.
    Submitting,
    /// The server returned a request id; the job has not been seen ending.
    Submitted,
    /// The server refused the submit: no job exists.
    Refused,
    /// The submit failed in a way that does not prove the server refused it.
    Uncertain,
    /// The job ended in this state (`succeeded`, `completed`, `failed`, `cancelled`).
    Ended(JobState),
    /// The job ended in this state and its outputs are wanted on disk, but not all are saved
    /// yet (a download failed or was interrupted): unfinished until they are.
    Unsaved(JobState),
    /// The server no longer knows the job (`404001`: deleted or expired): nothing more can
    /// be fetched.
    Expired,
}

impl EntryState {
    /// A short word for listings.
    pub fn as_str(&self) -> &str {
        match self {
            EntryState::Submitting => "submitting",
            EntryState::Submitted => "submitted",
            EntryState::Refused => "refused",
            EntryState::Uncertain => "uncertain",
            EntryState::Ended(s) => s.as_str(),
            EntryState::Unsaved(_) => "unsaved",
            EntryState::Expired => "expired",
        }
    }
}

impl fmt::Display for EntryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything the journal knows of one job: the fold of its records.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JournalEntry {
    /// The local job id, made when the submit was recorded.
    pub job_id: String,
    /// The model submitted to (empty when the submit's record was damaged).
    pub model_id: String,
    /// The SHA-256 of the request body as sent, in hex (empty when unknown).
    pub input_sha256: String,
    /// When the submit was recorded (`YYYY-MM-DDTHH:MM:SSZ`).
    pub created_at: String,
    /// When the last record was written.
    pub updated_at: String,
    /// The request id, once the server returned it.
    pub request_id: Option<String>,
    /// Where the job stands.
    pub state: EntryState,
    /// The output, once the job succeeded.
    pub output: Option<Value>,
    /// The error: the server's `error` value of a failed job, or the submit's error message.
    pub error: Option<Value>,
    /// Files the job's outputs were saved to.
    pub paths: Vec<PathBuf>,
    /// The folder the outputs were last wanted in, if they were.
    pub out_dir: Option<PathBuf>,
    /// The outputs saved so far: `(url, path)`, in order.
    pub saved: Vec<(String, PathBuf)>,
}

impl JournalEntry {
    /// True when the job has a request id and is not done: it was not seen ending, or its
    /// wanted outputs are not all saved. It can be re-attached.
    pub fn is_unfinished(&self) -> bool {
        self.request_id.is_some()
            && matches!(self.state, EntryState::Submitted | EntryState::Unsaved(_))
    }

    fn new(job_id: String, model_id: String, input_sha256: String, at: String) -> JournalEntry {
        JournalEntry {
            job_id,
            model_id,
            input_sha256,
            created_at: at.clone(),
            updated_at: at,
            request_id: None,
            state: EntryState::Submitting,
            output: None,
            error: None,
            paths: Vec::new(),
            out_dir: None,
            saved: Vec::new(),
        }
    }
}

/// One line of the file.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    v: u32,
    at: String,
    job: String,
    #[serde(flatten)]
    event: Event,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event {
    Submitting {
        model_id: String,
        input_sha256: String,
    },
    Submitted {
        request_id: String,
    },
    SubmitFailed {
        may_exist: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        error: String,
    },
    Ended {
        state: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<Value>,
    },
    /// The server no longer knows the job (404001).
    Expired {
        error: String,
    },
    /// The outputs are wanted in `dir`: the job is done only once `Downloaded` follows.
    OutputsWanted {
        dir: PathBuf,
    },
    /// One output saved.
    Saved {
        url: String,
        path: PathBuf,
    },
    /// Every wanted output is saved.
    Downloaded {
        paths: Vec<PathBuf>,
    },
}

/// An append-only, fsync'd journal of jobs. Cheap to share between tasks (`&Journal` is enough);
/// several processes may append to the same file.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// The default folder: `$RUNCOMFY_JOURNAL_DIR`, else `<user data folder>/runcomfy`
    /// (`~/.local/share/runcomfy` on Linux).
    pub fn default_dir() -> Result<PathBuf, JournalError> {
        match std::env::var_os(JOURNAL_DIR_ENV) {
            Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
            _ => dirs::data_dir()
                .map(|d| d.join("runcomfy"))
                .ok_or(JournalError::NoDataDir),
        }
    }

    /// Opens (creating it if needed) the journal in [`Journal::default_dir`].
    pub fn open_default() -> Result<Journal, JournalError> {
        Journal::open_dir(&Journal::default_dir()?)
    }

    /// Opens (creating them if needed) the folder `dir` and its `journal.jsonl`.
    pub fn open_dir(dir: &Path) -> Result<Journal, JournalError> {
        std::fs::create_dir_all(dir).map_err(|source| JournalError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Journal::open(&dir.join(FILE_NAME))
    }

    /// Opens (creating it if needed) the journal file `path`; its folder must exist.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let io_err = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_err)?;
        if !existed {
            // Make the new file's name durable too, not only its content.
            sync_parent(path).map_err(io_err)?;
        }
        Ok(Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io_err(&self, source: io::Error) -> JournalError {
        JournalError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends one record and flushes it to disk before returning.
    fn append(&self, job: &str, event: Event) -> io::Result<()> {
        let record = Record {
            v: VERSION,
            at: now_rfc3339(),
            job: job.to_owned(),
            event,
        };
        let mut line = serde_json::to_vec(&record).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        // A writer that died mid-record left a torn line: fence it off so this record
        // starts on a line of its own.
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                line.insert(0, b'\n');
            }
        }
        // One append of the whole line, then fsync: the record is complete or torn, never mixed.
        file.write_all(&line)?;
        file.sync_data()
    }

    /// Records a submit about to be sent; returns the new local job id.
    ///
    /// Call it before sending `body` (the exact bytes), then [`record_submitted`] or
    /// [`record_submit_failed`] with its outcome. [`Journal::submit_json`] does all three.
    ///
    /// [`record_submitted`]: Journal::record_submitted
    /// [`record_submit_failed`]: Journal::record_submit_failed
    pub fn begin(&self, model_id: &str, body: &[u8]) -> Result<String, JournalError> {
        let job = new_job_id();
        self.append(
            &job,
            Event::Submitting {
                model_id: model_id.to_owned(),
                input_sha256: sha256_hex(body),
            },
        )
        .map_err(|e| self.io_err(e))?;
        Ok(job)
    }

    /// Records the request id the server returned for `job`. Call it before anything else.
    pub fn record_submitted(&self, job: &str, request_id: &str) -> Result<(), JournalError> {
        self.append(
            job,
            Event::Submitted {
                request_id: request_id.to_owned(),
            },
        )
        .map_err(|source| JournalError::Unrecorded {
            request_id: request_id.to_owned(),
            path: self.path.clone(),
            source,
        })
    }

    /// Records that the submit of `job` failed with `error`.
    pub fn record_submit_failed(&self, job: &str, error: &Error) -> Result<(), JournalError> {
        self.append(
            job,
            Event::SubmitFailed {
                may_exist: error.may_have_submitted(),
                request_id: error.request_id().map(str::to_owned),
                error: error.to_string(),
            },
        )
        .map_err(|e| self.io_err(e))
    }

    /// Records how a job ended: its result, or the error that ended the wait (a failed or
    /// cancelled job, or one the server no longer knows: `404001`). Errors that do not end
    /// the job (a deadline, a lost connection) are not recorded: the job stays unfinished,
    /// to be re-attached.
    pub fn record_outcome(
        &self,
        job: &str,
        outcome: &Result<JobResult, Error>,
    ) -> Result<(), JournalError> {
        let event = match outcome {
            Ok(result) => Event::Ended {
                state: result.state.as_str().to_owned(),
                output: result.output.clone(),
                error: result.error.clone(),
            },
            Err(Error::JobFailed { error, .. }) => Event::Ended {
                state: JobState::Failed.as_str().to_owned(),
                output: None,
                error: Some(error.clone()),
            },
            Err(Error::Cancelled { .. }) => Event::Ended {
                state: JobState::Cancelled.as_str().to_owned(),
                output: None,
                error: None,
            },
            Err(e @ Error::Api(api)) if api.code == Some(ApiErrorCode::ResourceNotFound) => {
                Event::Expired {
                    error: e.to_string(),
                }
            }
            Err(_) => return Ok(()),
        };
        self.append(job, event).map_err(|e| self.io_err(e))
    }

    /// Records that `job`'s outputs are wanted in `dir`. Call it before the wait: until
    /// [`Journal::record_downloaded`], the job stays unfinished even once it succeeded.
    pub fn record_outputs_wanted(&self, job: &str, dir: &Path) -> Result<(), JournalError> {
        self.append(
            job,
            Event::OutputsWanted {
                dir: dir.to_path_buf(),
            },
        )
        .map_err(|e| self.io_err(e))
    }

    /// Records one output of `job` saved: `url` is in `path`.
    pub fn record_saved(&self, job: &str, url: &str, path: &Path) -> Result<(), JournalError> {
        self.append(
            job,
            Event::Saved {
                url: url.to_owned(),
                path: path.to_path_buf(),
            },
        )
        .map_err(|e| self.io_err(e))
    }

    /// Records that every wanted output of `job` is saved, in `paths`: the job is done.
    pub fn record_downloaded(&self, job: &str, paths: &[PathBuf]) -> Result<(), JournalError> {
        self.append(
            job,
            Event::Downloaded {
                paths: paths.to_vec(),
            },
        )
        .map_err(|e| self.io_err(e))
    }

    /// Records a job submitted elsewhere (known only by its request id), so it can be
    /// tracked like the others; returns its new local job id.
    pub fn adopt(&self, model_id: &str, request_id: &str) -> Result<String, JournalError> {
        let job = new_job_id();
        self.append(
            &job,
            Event::Submitting {
                model_id: model_id.to_owned(),
                input_sha256: String::new(),
            },
        )
        .map_err(|e| self.io_err(e))?;
        self.record_submitted(&job, request_id)?;
        Ok(job)
    }

    /// Records, submits `input` to `model_id`, and records the request id; returns the local
    /// job id and the handle. On failure the outcome is recorded too.
    pub async fn submit_json(
        &self,
        client: &Client,
        model_id: &str,
        input: &Value,
    ) -> Result<(String, RequestHandle), JournalError> {
        let body = serde_json::to_vec(input).map_err(|source| {
            JournalError::Api(Error::Encode {
                model_id: model_id.to_owned(),
                source,
            })
        })?;
        let job = self.begin(model_id, &body)?;
        match client.submit_json(model_id, input).await {
            Ok(handle) => {
                self.record_submitted(&job, handle.request_id())?;
                Ok((job, handle))
            }
            Err(e) => {
                // The submit's error matters more than a failure to record it.
                let _ = self.record_submit_failed(&job, &e);
                Err(JournalError::Api(e))
            }
        }
    }

    /// Waits for `job` (request id `request_id`), calling `on_progress` at every change, and
    /// records how it ended.
    pub async fn wait(
        &self,
        client: &Client,
        job: &str,
        request_id: &str,
        on_progress: impl FnMut(&Progress) + Send,
    ) -> Result<JobResult, JournalError> {
        let handle = RequestHandle::attach(request_id)?;
        let outcome = handle.wait_with_progress(client, on_progress).await;
        self.record_outcome(job, &outcome)?;
        outcome.map_err(JournalError::Api)
    }

    /// Every recorded job, oldest first.
    pub fn entries(&self) -> Result<Vec<JournalEntry>, JournalError> {
        let bytes = std::fs::read(&self.path).map_err(|e| self.io_err(e))?;
        Ok(fold(&bytes))
    }

    /// The jobs that have a request id and were not seen ending, oldest first.
    pub fn unfinished(&self) -> Result<Vec<JournalEntry>, JournalError> {
        Ok(self
            .entries()?
            .into_iter()
            .filter(JournalEntry::is_unfinished)
            .collect())
    }

    /// The last job whose local id or request id is `key`.
    pub fn find(&self, key: &str) -> Result<Option<JournalEntry>, JournalError> {
        Ok(self
            .entries()?
            .into_iter()
            .rev()
            .find(|e| e.job_id == key || e.request_id.as_deref() == Some(key)))
    }
}

/// Folds the records of a journal file into entries. Damaged lines are skipped, but never
/// hide an intact record: see [`records`].
fn fold(bytes: &[u8]) -> Vec<JournalEntry> {
    let mut entries: Vec<JournalEntry> = Vec::new();
    // Whether each entry's outputs are wanted and not yet all saved.
    let mut pending: Vec<bool> = Vec::new();
    for record in records(bytes) {
        let at = record.at;
        if let Event::Submitting {
            model_id,
            input_sha256,
        } = record.event
        {
            entries.push(JournalEntry::new(record.job, model_id, input_sha256, at));
            pending.push(false);
            continue;
        }
        let index = match entries.iter().rposition(|e| e.job_id == record.job) {
            Some(i) => i,
            None => {
                // The job's first record was lost: its later records still make an entry.
                entries.push(JournalEntry::new(
                    record.job,
                    String::new(),
                    String::new(),
                    at.clone(),
                ));
                pending.push(false);
                entries.len() - 1
            }
        };
        let entry = &mut entries[index];
        entry.updated_at = at;
        match record.event {
            Event::Submitting { .. } => {}
            Event::Submitted { request_id } => {
                entry.request_id = Some(request_id);
                entry.state = EntryState::Submitted;
            }
            Event::SubmitFailed {
                may_exist,
                request_id,
                error,
            } => {
                if request_id.is_some() {
                    entry.request_id = request_id;
                }
                entry.error = Some(Value::String(error));
                entry.state = if may_exist {
                    EntryState::Uncertain
                } else {
                    EntryState::Refused
                };
            }
            Event::Ended {
                state,
                output,
                error,
            } => {
                entry.state = EntryState::Ended(JobState::parse(&state));
                entry.output = output;
                entry.error = error;
            }
            Event::Expired { error } => {
                entry.state = EntryState::Expired;
                entry.error = Some(Value::String(error));
            }
            Event::OutputsWanted { dir } => {
                entry.out_dir = Some(dir);
                pending[index] = true;
            }
            Event::Saved { url, path } => {
                if !entry.paths.contains(&path) {
                    entry.paths.push(path.clone());
                }
                entry.saved.push((url, path));
            }
            Event::Downloaded { paths } => {
                for path in paths {
                    if !entry.paths.contains(&path) {
                        entry.paths.push(path);
                    }
                }
                pending[index] = false;
            }
        }
    }
    for (entry, pending) in entries.iter_mut().zip(pending) {
        if let (EntryState::Ended(state), true) = (&entry.state, pending) {
            if matches!(state, JobState::Succeeded | JobState::Completed) {
                entry.state = EntryState::Unsaved(state.clone());
            }
        }
    }
    entries
}

/// Every intact record of a journal file, in order. A line that does not parse is searched
/// for a record glued behind the damage (a torn write that a later append was not fenced
/// from); a last line without its newline is a torn write and skipped.
fn records(bytes: &[u8]) -> impl Iterator<Item = Record> + '_ {
    const START: &[u8] = b"{\"v\":";
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(i) => &bytes[..=i],
        None => &[][..],
    };
    complete.split(|b| *b == b'\n').filter_map(|line| {
        if let Ok(record) = serde_json::from_slice::<Record>(line) {
            return Some(record);
        }
        // Each later start of a record on the line, tried once: linear in the line's length
        // times the number of starts, which damage makes few.
        (1..line.len())
            .filter(|&i| line[i..].starts_with(START))
            .find_map(|i| serde_json::from_slice::<Record>(&line[i..]).ok())
    })
}

#[cfg(unix)]
fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}

#[cfg(not(unix))]
fn sync_parent(_: &Path) -> io::Result<()> {
    Ok(())
}

/// The SHA-256 of `bytes`, in lowercase hex: the journal's input digest.
///
/// ```
/// assert_eq!(
///     runcomfy::journal::sha256_hex(b"abc"),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// ```
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_job_id() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("j{ms:x}-{:08x}", rand::random::<u32>())
}

fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch.
fn rfc3339(secs: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "runcomfy-journal-{name}-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn records_fold_into_entries() {
        let dir = temp_dir("fold");
        let j = Journal::open_dir(&dir).unwrap();
        let a = j.begin("acme/a", b"{}").unwrap();
        let b = j.begin("acme/b", b"{\"x\":1}").unwrap();
        j.record_submitted(&a, "req-a").unwrap();
        j.record_submitted(&b, "req-b").unwrap();
        let ok = JobResult {
            request_id: "req-a".into(),
            state: JobState::Succeeded,
            output: Some(serde_json::json!({"image": "https://x/y.png"})),
            error: None,
            created_at: None,
            finished_at: None,
            model_id: None,
            cost: None,
            queue_position: None,
            extra: Default::default(),
        };
        j.record_outcome(&a, &Ok(ok)).unwrap();
        j.record_downloaded(&a, &[PathBuf::from("/tmp/y.png")])
            .unwrap();
        let c = j.begin("acme/c", b"").unwrap();
        let entries = j.entries().unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].state, EntryState::Ended(JobState::Succeeded));
        assert_eq!(entries[0].paths, [PathBuf::from("/tmp/y.png")]);
        assert_eq!(entries[1].state, EntryState::Submitted);
        assert_eq!(entries[1].input_sha256, sha256_hex(b"{\"x\":1}"));
        assert_eq!(entries[2].job_id, c);
        assert_eq!(entries[2].state, EntryState::Submitting);
        let unfinished = j.unfinished().unwrap();
        assert_eq!(unfinished.len(), 1);
        assert_eq!(unfinished[0].request_id.as_deref(), Some("req-b"));
        assert_eq!(j.find("req-b").unwrap().unwrap().job_id, b);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn torn_last_line_is_ignored_and_fenced_off() {
        let dir = temp_dir("torn");
        let j = Journal::open_dir(&dir).unwrap();
        let a = j.begin("acme/a", b"{}").unwrap();
        drop(j);
        // A writer died in the middle of a record.
        let path = dir.join(FILE_NAME);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"v":1,"at":"x","job":""#).unwrap();
        drop(f);
        let j = Journal::open_dir(&dir).unwrap();
        assert_eq!(j.entries().unwrap().len(), 1);
        j.record_submitted(&a, "req-a").unwrap();
        let entries = j.entries().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].request_id.as_deref(), Some("req-a"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        let _ = std::fs::remove_dir_all(dir);
    }

    fn succeeded(request_id: &str) -> JobResult {
        JobResult {
            request_id: request_id.into(),
            state: JobState::Succeeded,
            output: Some(serde_json::json!({"video": "https://x/v.mp4"})),
            error: None,
            created_at: None,
            finished_at: None,
            model_id: None,
            cost: None,
            queue_position: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn wanted_outputs_keep_a_job_unfinished_until_all_are_saved() {
        let dir = temp_dir("wanted");
        let j = Journal::open_dir(&dir).unwrap();
        let a = j.begin("acme/a", b"{}").unwrap();
        j.record_submitted(&a, "req-a").unwrap();
        j.record_outputs_wanted(&a, Path::new("out")).unwrap();
        j.record_outcome(&a, &Ok(succeeded("req-a"))).unwrap();
        let e = j.find(&a).unwrap().unwrap();
        assert_eq!(e.state, EntryState::Unsaved(JobState::Succeeded));
        assert!(e.is_unfinished());
        assert_eq!(e.out_dir.as_deref(), Some(Path::new("out")));
        j.record_saved(&a, "https://x/v.mp4", Path::new("out/v.mp4"))
            .unwrap();
        assert!(j.find(&a).unwrap().unwrap().is_unfinished());
        assert_eq!(j.unfinished().unwrap().len(), 1);
        j.record_downloaded(&a, &[PathBuf::from("out/v.mp4")])
            .unwrap();
        let e = j.find(&a).unwrap().unwrap();
        assert_eq!(e.state, EntryState::Ended(JobState::Succeeded));
        assert_eq!(e.paths, [PathBuf::from("out/v.mp4")]);
        assert_eq!(
            e.saved,
            [("https://x/v.mp4".to_owned(), PathBuf::from("out/v.mp4"))]
        );
        assert!(j.unfinished().unwrap().is_empty());
        // A failed job has nothing to save: it is done.
        let b = j.begin("acme/b", b"{}").unwrap();
        j.record_submitted(&b, "req-b").unwrap();
        j.record_outputs_wanted(&b, Path::new("out")).unwrap();
        let failed = Err(Error::JobFailed {
            request_id: "req-b".into(),
            error: Value::Null,
        });
        j.record_outcome(&b, &failed).unwrap();
        assert_eq!(
            j.find(&b).unwrap().unwrap().state,
            EntryState::Ended(JobState::Failed)
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_expired_job_ends() {
        let dir = temp_dir("expired");
        let j = Journal::open_dir(&dir).unwrap();
        let a = j.begin("acme/a", b"{}").unwrap();
        j.record_submitted(&a, "req-a").unwrap();
        let body = r#"{"error_code": 404001, "error_message": "request not found"}"#;
        let gone = Err(Error::Api(Box::new(ApiError::from_body(404, body.into()))));
        j.record_outcome(&a, &gone).unwrap();
        let e = j.find("req-a").unwrap().unwrap();
        assert_eq!(e.state, EntryState::Expired);
        assert!(!e.is_unfinished());
        assert!(e.error.unwrap().to_string().contains("404001"));
        // Other API errors leave the job to be re-attached.
        let b = j.begin("acme/b", b"{}").unwrap();
        j.record_submitted(&b, "req-b").unwrap();
        let busy = Err(Error::Api(Box::new(ApiError::from_body(503, "{}".into()))));
        j.record_outcome(&b, &busy).unwrap();
        assert!(j.find("req-b").unwrap().unwrap().is_unfinished());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_damaged_middle_line_hides_no_intact_record() {
        let dir = temp_dir("damaged");
        let j = Journal::open_dir(&dir).unwrap();
        let a = j.begin("acme/a", b"{}").unwrap();
        let b = j.begin("acme/b", b"{}").unwrap();
        j.record_submitted(&a, "req-a").unwrap();
        j.record_submitted(&b, "req-b").unwrap();
        drop(j);
        let path = dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        // The first record of job a is garbled in the middle; job b's submit record gets
        // glued behind garbage (a torn write without its fence).
        lines[0] = lines[0].replace("\"job\"", "\"jo\u{0}b");
        lines[1] = format!("{{\"v\":1,\"at\":\"torn{}", lines[1]);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let j = Journal::open_dir(&dir).unwrap();
        let entries = j.entries().unwrap();
        let ids: Vec<Option<&str>> = entries.iter().map(|e| e.request_id.as_deref()).collect();
        assert_eq!(ids, [Some("req-b"), Some("req-a")], "{entries:?}");
        let a_entry = j.find("req-a").unwrap().unwrap();
        assert_eq!(a_entry.job_id, a);
        assert_eq!(a_entry.model_id, "");
        assert_eq!(a_entry.state, EntryState::Submitted);
        let b_entry = j.find("req-b").unwrap().unwrap();
        assert_eq!(
            (b_entry.job_id.as_str(), b_entry.model_id.as_str()),
            (b.as_str(), "acme/b")
        );
        assert_eq!(j.unfinished().unwrap().len(), 2);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_709_210_096), "2024-02-29T12:34:56Z");
    }
}
