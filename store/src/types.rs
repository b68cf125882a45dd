//! The values the store takes and returns: keys, states, records, claims, totals.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The store's id of one job: a single submit or one row of a batch.
///
/// Keys are made by the store ([`JobStore::record_intent`](crate::JobStore::record_intent),
/// [`JobStore::create_or_open_batch`](crate::JobStore::create_or_open_batch)) and are stable
/// for the life of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobKey(pub i64);

impl fmt::Display for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job {}", self.0)
    }
}

/// The store's id of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BatchId(pub i64);

/// Where a job stands.
///
/// Single jobs go `Submitting` → `Submitted` → (`Saving` →) an end state, or to `Uncertain` /
/// `Refused`. Batch rows start `Queued` and are `Claimed` by a worker before `Submitting`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum State {
    /// A batch row nobody works on yet.
    Queued,
    /// A batch row a worker took; it was not sent.
    Claimed,
    /// The submit is about to be sent, or was sent and no answer was recorded yet.
    Submitting,
    /// The server returned a request id; the job was not seen ending.
    Submitted,
    /// The job succeeded and some of its wanted outputs are not saved yet.
    Saving,
    /// The job succeeded and every wanted output is saved.
    Succeeded,
    /// The job ended failed.
    Failed,
    /// The job was cancelled.
    Cancelled,
    /// The server no longer knows the job (its result expired).
    Expired,
    /// The submit may or may not have reached the server: never re-sent automatically.
    Uncertain,
    /// The server refused the submit: no job exists.
    Refused,
}

impl State {
    /// Every state, in lifecycle order.
    pub const ALL: [State; 11] = [
        State::Queued,
        State::Claimed,
        State::Submitting,
        State::Submitted,
        State::Saving,
        State::Succeeded,
        State::Failed,
        State::Cancelled,
        State::Expired,
        State::Uncertain,
        State::Refused,
    ];

    /// The word stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Claimed => "claimed",
            State::Submitting => "submitting",
            State::Submitted => "submitted",
            State::Saving => "saving",
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Cancelled => "cancelled",
            State::Expired => "expired",
            State::Uncertain => "uncertain",
            State::Refused => "refused",
        }
    }

    /// True when nothing more will happen to the job without a person deciding
    /// (`Uncertain` counts as settled: it waits for [`resubmit_uncertain`](crate::JobStore::resubmit_uncertain)).
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            State::Succeeded
                | State::Failed
                | State::Cancelled
                | State::Expired
                | State::Uncertain
                | State::Refused
        )
    }

    /// True when the job is known to have a request id on the server that is still being
    /// followed (polled or its outputs downloaded).
    pub fn is_attached(self) -> bool {
        matches!(self, State::Submitted | State::Saving)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown job state {s:?}"))
    }
}

/// How a job ended, as [`JobStore::record_finished`](crate::JobStore::record_finished) is told.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Outcome {
    /// The job succeeded with this output.
    Succeeded(Value),
    /// The job failed with this error (the server's `error` value).
    Failed(Value),
    /// The job was cancelled.
    Cancelled,
    /// The server no longer knows the job; the value says what it answered.
    Expired(Value),
}

/// Everything recorded when a job ends.
///
/// ```
/// use runcomfy_store::Finish;
/// let finish = Finish::succeeded(serde_json::json!({"video": "https://cdn/v.mp4"}))
///     .cost_usd(0.35)
///     .wanting(["https://cdn/v.mp4"])
///     .run_time(std::time::Duration::from_secs(61));
/// assert_eq!(finish.wanted_outputs.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Finish {
    /// How the job ended.
    pub outcome: Outcome,
    /// What the job cost, from the result's cost field, when known.
    pub cost_usd: Option<f64>,
    /// Output URLs that must be saved before the job counts as done (empty: none).
    pub wanted_outputs: Vec<String>,
    /// How long the job took from submit to end, when it was watched live
    /// (it feeds [`JobStore::duration_stats`](crate::JobStore::duration_stats)).
    pub run_time: Option<Duration>,
}

impl Finish {
    /// The end of a job in this outcome, with nothing else known.
    pub fn new(outcome: Outcome) -> Self {
        Finish {
            outcome,
            cost_usd: None,
            wanted_outputs: Vec::new(),
            run_time: None,
        }
    }

    /// A job that succeeded with this output.
    pub fn succeeded(output: Value) -> Self {
        Finish::new(Outcome::Succeeded(output))
    }

    /// A job that failed with this error.
    pub fn failed(error: Value) -> Self {
        Finish::new(Outcome::Failed(error))
    }

    /// Sets the cost.
    pub fn cost_usd(mut self, cost: f64) -> Self {
        self.cost_usd = Some(cost);
        self
    }

    /// Sets the output URLs that must be saved before the job is done.
    pub fn wanting<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.wanted_outputs = urls.into_iter().map(Into::into).collect();
        self
    }

    /// Sets how long the job ran.
    pub fn run_time(mut self, run_time: Duration) -> Self {
        self.run_time = Some(run_time);
        self
    }
}

/// One job as the store knows it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobRecord {
    /// The store's key.
    pub key: JobKey,
    /// The batch and line, for a batch row.
    pub batch: Option<(BatchId, u64)>,
    /// The model the job runs.
    pub model_id: String,
    /// The input as recorded (JSON).
    pub input: Value,
    /// The SHA-256 of the input's canonical JSON (keys sorted), in hex.
    pub input_sha256: String,
    /// Where the job stands.
    pub state: State,
    /// The server's request id, once known.
    pub request_id: Option<String>,
    /// The worker holding a batch row.
    pub worker: Option<String>,
    /// The output of a job that succeeded.
    pub output: Option<Value>,
    /// The error: the server's error value, or the submit error's message as a string.
    pub error: Option<Value>,
    /// What the job cost, when known.
    pub cost_usd: Option<f64>,
    /// What the job was estimated to cost before it was sent.
    pub estimated_cost_usd: Option<f64>,
    /// When the job was recorded.
    pub created_at: SystemTime,
    /// When its request id was recorded.
    pub submitted_at: Option<SystemTime>,
    /// When its end was recorded.
    pub finished_at: Option<SystemTime>,
    /// How long it ran, when watched live.
    pub run_time: Option<Duration>,
    /// The folder its outputs are wanted in
    /// ([`record_outputs_wanted`](crate::JobStore::record_outputs_wanted)), for a single job.
    pub outputs_dir: Option<PathBuf>,
}

/// One output of a job and where it was saved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SavedOutput {
    /// The output's URL.
    pub url: String,
    /// The file it was saved to; `None` while it is wanted and not saved.
    pub path: Option<PathBuf>,
}

/// One input row of a batch.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewRow {
    /// The row's line number in its source (1-based for files); part of its identity.
    pub line: u64,
    /// The input.
    pub input: Value,
    /// What the row is estimated to cost (for budgets), when known.
    pub estimated_cost_usd: Option<f64>,
}

impl NewRow {
    /// A row with no cost estimate.
    pub fn new(line: u64, input: Value) -> Self {
        NewRow {
            line,
            input,
            estimated_cost_usd: None,
        }
    }

    /// Sets the estimated cost.
    pub fn estimated_cost_usd(mut self, cost: f64) -> Self {
        self.estimated_cost_usd = Some(cost);
        self
    }
}

/// A batch as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchInfo {
    /// The store's id.
    pub id: BatchId,
    /// The batch's name (unique in the store).
    pub name: String,
    /// The model every row runs.
    pub model_id: String,
    /// The number of rows.
    pub rows: u64,
    /// True when this call created the batch, false when it continued an existing one.
    pub created: bool,
}

/// What a worker asks of [`JobStore::claim`](crate::JobStore::claim).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClaimRequest {
    /// The batch to work on.
    pub batch: BatchId,
    /// The worker's id (unique per running worker).
    pub worker: String,
    /// How long the worker's lease lasts without a heartbeat.
    pub lease: Duration,
    /// How many rows the worker can take now (its free slots).
    pub want: usize,
    /// The concurrency cap across all workers of the store: rows claimed, submitting or
    /// submitted and not ended, of every batch. `None`: no cap.
    pub max_in_flight: Option<u64>,
    /// The batch's budget: the sum of actual costs, and of estimates where no actual cost is
    /// known, over rows that left the queue never exceeds it. `None`: no budget.
    pub budget_usd: Option<f64>,
    /// Rows this worker let go of ([`JobStore::let_go`](crate::JobStore::let_go)) in this
    /// run: never re-attached to it again, so a run tries each such row once.
    pub skip: Vec<JobKey>,
}

impl ClaimRequest {
    /// A request for up to `want` rows, with no cap and no budget.
    pub fn new(batch: BatchId, worker: impl Into<String>, lease: Duration, want: usize) -> Self {
        ClaimRequest {
            batch,
            worker: worker.into(),
            lease,
            want,
            max_in_flight: None,
            budget_usd: None,
            skip: Vec::new(),
        }
    }

    /// Sets the concurrency cap.
    pub fn max_in_flight(mut self, cap: u64) -> Self {
        self.max_in_flight = Some(cap);
        self
    }

    /// Sets the budget.
    pub fn budget_usd(mut self, budget: f64) -> Self {
        self.budget_usd = Some(budget);
        self
    }

    /// Sets the rows never to re-attach to this worker.
    pub fn skip(mut self, keys: Vec<JobKey>) -> Self {
        self.skip = keys;
        self
    }
}

/// What a claim hands the worker.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Claim {
    /// Rows to submit: `Claimed` by this worker. Each must go through
    /// [`mark_submitting`](crate::JobStore::mark_submitting) before its POST.
    pub submit: Vec<JobRecord>,
    /// Rows to re-attach (`Submitted` or `Saving`) whose worker died: poll, fetch, download;
    /// never submit.
    pub reattach: Vec<JobRecord>,
    /// Rows of dead workers that this claim turned `Uncertain` (they were `Submitting`).
    pub newly_uncertain: u64,
    /// Rows claimed, submitting or submitted of every batch after this claim.
    pub in_flight: u64,
    /// True when fewer rows were claimed than wanted because of the concurrency cap.
    pub capped: bool,
    /// True when the next queued row would pass the budget.
    pub over_budget: bool,
    /// True when queued rows remain in the batch.
    pub more_queued: bool,
    /// The shared throttle: no submit before this time.
    pub throttle_until: Option<SystemTime>,
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lease {
    /// The lease was renewed; the worker still holds its rows.
    Renewed,
    /// The worker's lease had expired and another worker took its rows back (claimed rows
    /// to the queue, submitting rows to uncertain, submitted rows to re-attach). A new lease
    /// was started; the worker must drop the rows it held.
    Lost,
}

/// The totals of one batch, read from the store alone.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct BatchStatus {
    /// The batch's name.
    pub name: String,
    /// The model every row runs.
    pub model_id: String,
    /// Rows in the batch.
    pub total: u64,
    /// Rows nobody took yet.
    pub queued: u64,
    /// Rows a worker holds and has not sent.
    pub claimed: u64,
    /// Rows being sent (no answer recorded yet).
    pub submitting: u64,
    /// Rows with a request id, not seen ending.
    pub running: u64,
    /// Rows that succeeded with outputs still to save.
    pub saving: u64,
    /// Rows that succeeded with every output saved.
    pub succeeded: u64,
    /// Rows that failed, were refused or expired.
    pub failed: u64,
    /// Rows cancelled.
    pub cancelled: u64,
    /// Rows whose submit outcome is unknown.
    pub uncertain: u64,
    /// The sum of actual costs recorded.
    pub spent_usd: f64,
    /// What the budget counts: actual costs, plus estimates of rows out of the queue without one.
    pub committed_usd: f64,
}

impl BatchStatus {
    /// True when no row is queued or in flight: every row ended or is uncertain.
    pub fn is_done(&self) -> bool {
        self.unended() == 0
    }

    /// Rows queued or in flight (claimed, submitting, running or saving): neither ended nor
    /// uncertain.
    pub fn unended(&self) -> u64 {
        self.queued + self.claimed + self.submitting + self.running + self.saving
    }
}

/// Which rows [`JobStore::batch_rows`](crate::JobStore::batch_rows) lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RowFilter {
    /// Only rows in this state.
    pub state: Option<State>,
    /// Only rows after this line (for paging).
    pub after_line: Option<u64>,
    /// At most this many rows (`None`: all).
    pub limit: Option<usize>,
}

impl RowFilter {
    /// Every row.
    pub fn all() -> Self {
        RowFilter::default()
    }

    /// Rows in one state.
    pub fn in_state(state: State) -> Self {
        RowFilter {
            state: Some(state),
            ..RowFilter::default()
        }
    }

    /// Rows after `line`, at most `limit` of them.
    pub fn page(after_line: u64, limit: usize) -> Self {
        RowFilter {
            state: None,
            after_line: Some(after_line),
            limit: Some(limit),
        }
    }
}

/// How long a model's completed jobs took, from the store's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DurationStats {
    /// The number of jobs measured (the most recent ones, at most [`DURATION_SAMPLE`]).
    pub samples: u64,
    /// The median run time.
    pub p50: Duration,
    /// The 90th percentile run time.
    pub p90: Duration,
}

/// How many of a model's most recent completed jobs [`DurationStats`] is computed over.
pub const DURATION_SAMPLE: usize = 200;

impl DurationStats {
    /// The stats of these run times (milliseconds), or `None` when there are none.
    pub(crate) fn from_millis(mut millis: Vec<i64>) -> Option<Self> {
        if millis.is_empty() {
            return None;
        }
        millis.sort_unstable();
        let at = |q: f64| {
            // Nearest rank: the smallest value with at least q of the samples at or below it.
            let rank = (q * millis.len() as f64).ceil() as usize;
            let index = rank.clamp(1, millis.len()) - 1;
            Duration::from_millis(u64::try_from(millis[index]).unwrap_or(0))
        };
        Some(DurationStats {
            samples: millis.len() as u64,
            p50: at(0.5),
            p90: at(0.9),
        })
    }
}

/// Milliseconds since the Unix epoch (what the database stores).
pub(crate) fn to_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// The time at `millis` since the Unix epoch.
pub(crate) fn from_millis(millis: i64) -> SystemTime {
    if millis >= 0 {
        UNIX_EPOCH + Duration::from_millis(millis.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(millis.unsigned_abs())
    }
}

/// A duration in whole milliseconds, saturated.
pub(crate) fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_words() {
        for state in State::ALL {
            assert_eq!(state.as_str().parse::<State>(), Ok(state));
        }
        assert!("running".parse::<State>().is_err());
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let stats = DurationStats::from_millis((1..=10).map(|s| s * 1000).collect()).unwrap();
        assert_eq!(stats.samples, 10);
        assert_eq!(stats.p50, Duration::from_secs(5));
        assert_eq!(stats.p90, Duration::from_secs(9));
        let one = DurationStats::from_millis(vec![1500]).unwrap();
        assert_eq!(
            (one.p50, one.p90),
            (Duration::from_millis(1500), Duration::from_millis(1500))
        );
        assert_eq!(DurationStats::from_millis(Vec::new()), None);
    }

    #[test]
    fn times_round_trip_through_millis() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(from_millis(to_millis(t)), t);
        let before = UNIX_EPOCH - Duration::from_millis(5);
        assert_eq!(from_millis(to_millis(before)), before);
    }
}

/// What a check of a store found ([`check`](crate::check)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// What is wrong with the store, in SQLite's words where it found it; empty when whole.
    pub problems: Vec<String>,
    /// How many jobs (single jobs and batch rows) are in each state, by the state's word;
    /// empty when the jobs could not be counted.
    pub jobs: std::collections::BTreeMap<String, u64>,
}

impl CheckReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}
