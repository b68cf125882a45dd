//! Rows read from either backend, turned into [`JobRecord`]s, and the rules both backends
//! share (argument checks, the batch digest).

use std::time::Duration;

use serde_json::Value;

use crate::error::StoreError;
use crate::hash::{input_sha256, sha256_hex};
use crate::types::{
    from_millis, BatchId, BatchInfo, BatchStatus, JobKey, JobRecord, NewRow, State,
};

/// The columns every job query selects, in [`RawJob`]'s order.
pub(crate) const JOB_COLUMNS: &str = "id, batch_id, line, model_id, input, input_sha256, state, \
     request_id, worker_id, output, error, cost_usd, estimated_cost_usd, created_at, \
     submitted_at, finished_at, run_ms, outputs_dir";

/// How many columns [`JOB_COLUMNS`] has.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) const JOB_COLUMN_COUNT: usize = 18;

/// [`JOB_COLUMNS`] as typed NULLs (PostgreSQL), for a `UNION` row that carries no job.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) const NULL_COLUMNS: &str = "NULL::bigint, NULL::bigint, NULL::bigint, NULL::text, \
     NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, \
     NULL::float8, NULL::float8, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::text";

/// One job row as the database returns it.
pub(crate) struct RawJob {
    pub id: i64,
    pub batch_id: Option<i64>,
    pub line: Option<i64>,
    pub model_id: String,
    pub input: String,
    pub input_sha256: String,
    pub state: String,
    pub request_id: Option<String>,
    pub worker_id: Option<String>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cost_usd: Option<f64>,
    pub estimated_cost_usd: Option<f64>,
    pub created_at: i64,
    pub submitted_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub run_ms: Option<i64>,
    pub outputs_dir: Option<String>,
}

impl RawJob {
    /// The record, or [`StoreError::Corrupt`] naming what could not be read.
    pub(crate) fn into_record(self, location: &str) -> Result<JobRecord, StoreError> {
        let key = JobKey(self.id);
        let corrupt = |what: &'static str, detail: String| StoreError::Corrupt {
            location: location.to_owned(),
            key,
            what,
            detail,
        };
        let json = |what: &'static str, text: &str| {
            serde_json::from_str::<Value>(text).map_err(|e| corrupt(what, e.to_string()))
        };
        let state = self
            .state
            .parse::<State>()
            .map_err(|e| corrupt("state", e))?;
        let batch = match (self.batch_id, self.line) {
            (Some(batch), Some(line)) => Some((
                BatchId(batch),
                u64::try_from(line).map_err(|e| corrupt("line", e.to_string()))?,
            )),
            _ => None,
        };
        Ok(JobRecord {
            key,
            batch,
            model_id: self.model_id,
            input: json("input", &self.input)?,
            input_sha256: self.input_sha256,
            state,
            request_id: self.request_id,
            worker: self.worker_id,
            output: self
                .output
                .as_deref()
                .map(|t| json("output", t))
                .transpose()?,
            error: self
                .error
                .as_deref()
                .map(|t| json("error", t))
                .transpose()?,
            cost_usd: self.cost_usd,
            estimated_cost_usd: self.estimated_cost_usd,
            created_at: from_millis(self.created_at),
            submitted_at: self.submitted_at.map(from_millis),
            finished_at: self.finished_at.map(from_millis),
            run_time: self
                .run_ms
                .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
            outputs_dir: self.outputs_dir.map(std::path::PathBuf::from),
        })
    }
}

/// A submit error message as stored (a JSON string).
pub(crate) fn error_text(message: &str) -> String {
    Value::String(message.to_owned()).to_string()
}

/// Refuses an amount of money that is negative or not finite.
pub(crate) fn check_usd(what: &str, usd: Option<f64>) -> Result<(), StoreError> {
    match usd {
        Some(v) if !v.is_finite() || v < 0.0 => Err(StoreError::InvalidArgument(format!(
            "{what} must be a finite amount of at least 0, got {v}"
        ))),
        _ => Ok(()),
    }
}

/// A batch's rows made ready to store: sorted by line, hashed, checked.
pub(crate) struct PreparedRows {
    /// `(line, input JSON, input hash, estimated cost)` in line order.
    pub rows: Vec<(i64, String, String, Option<f64>)>,
    /// The digest of every `(line, input hash)`: the batch's identity.
    pub digest: String,
}

impl PreparedRows {
    pub(crate) fn new(rows: Vec<NewRow>) -> Result<Self, StoreError> {
        let mut prepared = Vec::with_capacity(rows.len());
        for row in rows {
            check_usd("an estimated cost", row.estimated_cost_usd)?;
            let line = i64::try_from(row.line).map_err(|_| {
                StoreError::InvalidArgument(format!("line {} is too large", row.line))
            })?;
            let hash = input_sha256(&row.input);
            prepared.push((line, row.input.to_string(), hash, row.estimated_cost_usd));
        }
        prepared.sort_by_key(|row| row.0);
        if let Some(pair) = prepared.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(StoreError::InvalidArgument(format!(
                "line {} appears twice in the batch's rows",
                pair[0].0
            )));
        }
        let mut listing = String::with_capacity(prepared.len() * 72);
        for (line, _, hash, _) in &prepared {
            listing.push_str(&format!("{line} {hash}\n"));
        }
        Ok(PreparedRows {
            digest: sha256_hex(listing.as_bytes()),
            rows: prepared,
        })
    }

    /// What differs between these rows and the stored `(line, input hash)` list (in line
    /// order), for the refusal message.
    pub(crate) fn difference(&self, stored: &[(i64, String)]) -> String {
        for (ours, theirs) in self.rows.iter().zip(stored) {
            if ours.0 != theirs.0 {
                let first = ours.0.min(theirs.0);
                return format!("line {first} is in only one of them");
            }
            if ours.2 != theirs.1 {
                return format!("line {} has a different input", ours.0);
            }
        }
        format!(
            "the stored batch has {} rows, these are {}",
            stored.len(),
            self.rows.len()
        )
    }
}

/// The message a row gets when its worker died while sending it.
pub(crate) const DIED_SUBMITTING: &str =
    "the worker stopped while sending this row: the job may exist on the server";

/// The batch totals from `(state, count, spent)` groups.
pub(crate) fn status_from_counts(
    info: BatchInfo,
    committed: f64,
    counts: Vec<(String, i64, f64)>,
) -> BatchStatus {
    let mut status = BatchStatus {
        name: info.name,
        model_id: info.model_id,
        committed_usd: committed,
        ..BatchStatus::default()
    };
    for (state, count, spent) in counts {
        let count = u64::try_from(count).unwrap_or(0);
        status.total += count;
        status.spent_usd += spent;
        let slot = match state.parse::<State>() {
            Ok(State::Queued) => &mut status.queued,
            Ok(State::Claimed) => &mut status.claimed,
            Ok(State::Submitting) => &mut status.submitting,
            Ok(State::Submitted) => &mut status.running,
            Ok(State::Saving) => &mut status.saving,
            Ok(State::Succeeded) => &mut status.succeeded,
            Ok(State::Failed | State::Refused | State::Expired) => &mut status.failed,
            Ok(State::Cancelled) => &mut status.cancelled,
            Ok(State::Uncertain) | Err(_) => &mut status.uncertain,
        };
        *slot += count;
    }
    status
}
