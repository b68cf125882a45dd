//! The API's answers, as plain data.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A job state as `/status` or `/result` reports it.
///
/// The documented values, plus `canceled` read as [`JobState::Cancelled`]; anything else is
/// kept in [`JobState::Unknown`], which is neither an error nor terminal.
///
/// ```
/// use runcomfy::JobState;
/// assert_eq!(JobState::parse("in_queue"), JobState::InQueue);
/// assert_eq!(JobState::parse("canceled"), JobState::Cancelled);
/// assert_eq!(JobState::parse("starting"), JobState::Unknown("starting".into()));
/// assert!(!JobState::parse("starting").is_terminal());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobState {
    /// `in_queue`: waiting for a worker.
    InQueue,
    /// `in_progress`: running.
    InProgress,
    /// `completed` (from `/status`): finished, successfully or not; read `/result` to know.
    Completed,
    /// `succeeded` (from `/result`).
    Succeeded,
    /// `failed` (from `/result`).
    Failed,
    /// `cancelled` or `canceled`.
    Cancelled,
    /// A state this client does not know (`starting`, `pending`, ...), as sent.
    Unknown(String),
}

impl JobState {
    /// Reads a wire state, ignoring ASCII case and surrounding space.
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "in_queue" => JobState::InQueue,
            "in_progress" => JobState::InProgress,
            "completed" => JobState::Completed,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" | "canceled" => JobState::Cancelled,
            _ => JobState::Unknown(s.to_owned()),
        }
    }

    /// The wire form.
    pub fn as_str(&self) -> &str {
        match self {
            JobState::InQueue => "in_queue",
            JobState::InProgress => "in_progress",
            JobState::Completed => "completed",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Unknown(s) => s,
        }
    }

    /// True for states after which the job will not change.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for JobState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for JobState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(JobState::parse(&s))
    }
}

/// The answer of `GET /v1/requests/{request_id}/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StatusInfo {
    /// The job.
    #[serde(default)]
    pub request_id: String,
    /// The state.
    #[serde(rename = "status")]
    pub state: JobState,
    /// The position in the queue, only while queued.
    #[serde(
        default,
        deserialize_with = "lenient_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub queue_position: Option<u64>,
    /// Where to poll the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_url: Option<String>,
    /// Where to read the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_url: Option<String>,
}

/// The answer of `GET /v1/requests/{request_id}/result`.
///
/// While the job runs, only `state` (and maybe `queue_position`) is meaningful.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobResult {
    /// The job.
    #[serde(default)]
    pub request_id: String,
    /// The state.
    #[serde(rename = "status")]
    pub state: JobState,
    /// The outputs, present only on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// The server's error, with a failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// When the job was created, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Value>,
    /// When the job finished, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Value>,
    /// The model that ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// The cost in USD, when asked for with `include_cost`.
    #[serde(
        default,
        deserialize_with = "lenient_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub cost: Option<f64>,
    /// The queue position, if the server sends one while queued.
    #[serde(
        default,
        deserialize_with = "lenient_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub queue_position: Option<u64>,
    /// Every other key (the result may echo the inputs).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What a cancel achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelOutcome {
    /// The job was cancelled.
    Cancelled,
    /// The job is running or done and cannot be cancelled.
    NotCancellable,
    /// Another outcome, as sent.
    Other(String),
}

impl CancelOutcome {
    /// Reads a wire outcome.
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "cancelled" | "canceled" => CancelOutcome::Cancelled,
            "not_cancellable" | "not_cancelable" => CancelOutcome::NotCancellable,
            _ => CancelOutcome::Other(s.to_owned()),
        }
    }

    /// The wire form.
    pub fn as_str(&self) -> &str {
        match self {
            CancelOutcome::Cancelled => "cancelled",
            CancelOutcome::NotCancellable => "not_cancellable",
            CancelOutcome::Other(s) => s,
        }
    }
}

impl fmt::Display for CancelOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of the cancel a passed deadline may send (see `Error::Deadline`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelAttempt {
    /// No cancel was sent (the poll policy's `cancel_on_deadline` is off).
    NotSent,
    /// A cancel was sent, and failed or had no answer in time: the job may run on.
    NotConfirmed,
    /// The server answered the cancel.
    Answered(CancelOutcome),
}

/// The answer of `POST /v1/requests/{request_id}/cancel`.
///
/// Branch on `outcome`: the documented example pairs `status: "completed"` with
/// `outcome: "cancelled"`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Cancellation {
    /// The job.
    pub request_id: String,
    /// The state the server reported alongside, if any.
    pub state: Option<JobState>,
    /// What the cancel achieved. Without an `outcome` key, a `cancelled` state counts as
    /// cancelled and anything else as [`CancelOutcome::Other`].
    pub outcome: CancelOutcome,
}

#[derive(Deserialize)]
pub(crate) struct CancelWire {
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    status: Option<JobState>,
    #[serde(default)]
    outcome: Option<String>,
}

impl CancelWire {
    pub(crate) fn into_cancellation(self, request_id: &str) -> Cancellation {
        let outcome = match (&self.outcome, &self.status) {
            (Some(o), _) => CancelOutcome::parse(o),
            (None, Some(JobState::Cancelled)) => CancelOutcome::Cancelled,
            (None, s) => CancelOutcome::Other(
                s.as_ref()
                    .map_or_else(|| "no outcome".to_owned(), |s| s.as_str().to_owned()),
            ),
        };
        Cancellation {
            request_id: self.request_id.unwrap_or_else(|| request_id.to_owned()),
            state: self.status,
            outcome,
        }
    }
}

/// The unit of a catalog price.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PriceUnit {
    /// Per second of output.
    Second,
    /// Per output.
    Output,
    /// Another unit, as sent.
    Other(String),
}

impl<'de> Deserialize<'de> for PriceUnit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "second" => PriceUnit::Second,
            "output" => PriceUnit::Output,
            _ => PriceUnit::Other(s),
        })
    }
}

impl Serialize for PriceUnit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            PriceUnit::Second => "second",
            PriceUnit::Output => "output",
            PriceUnit::Other(o) => o,
        })
    }
}

/// One catalog entry, from `GET /v1/models` or `GET /v1/models/{model_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CatalogModel {
    /// The model id.
    pub model_id: String,
    /// The name shown on the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Categories such as `video` or `image`.
    #[serde(default)]
    pub categories: Vec<String>,
    /// The kind of model, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The base price in USD per `price_unit`.
    #[serde(
        default,
        deserialize_with = "lenient_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub base_price_usd: Option<f64>,
    /// What the price is counted in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_unit: Option<PriceUnit>,
    /// Free-text pricing notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_note: Option<String>,
    /// The input JSON Schema (always on a single model; on a list only with `include_schema`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// Every other key.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One page of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelList {
    /// The models of this page.
    #[serde(default)]
    pub models: Vec<CatalogModel>,
    /// How many models match in all.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub total: Option<u64>,
}

/// The query of `GET /v1/models`.
///
/// ```
/// let q = runcomfy::ListModels::new().search("kling").category("video").limit(50);
/// assert_eq!(q.limit, Some(50));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListModels {
    /// Free-text search.
    pub search: Option<String>,
    /// Only this category.
    pub category: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Include every model's input schema.
    pub include_schema: bool,
    /// Page size, 1 to 100 (the server's default is 20).
    pub limit: Option<u32>,
    /// How many models to skip.
    pub offset: Option<u32>,
}

impl ListModels {
    /// The first page, unfiltered.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets `search`.
    pub fn search(mut self, s: impl Into<String>) -> Self {
        self.search = Some(s.into());
        self
    }
    /// Sets `category`.
    pub fn category(mut self, s: impl Into<String>) -> Self {
        self.category = Some(s.into());
        self
    }
    /// Sets `kind`.
    pub fn kind(mut self, s: impl Into<String>) -> Self {
        self.kind = Some(s.into());
        self
    }
    /// Sets `include_schema`.
    pub fn include_schema(mut self, yes: bool) -> Self {
        self.include_schema = yes;
        self
    }
    /// Sets `limit`; the client refuses values outside 1..=100 before sending.
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }
    /// Sets `offset`.
    pub fn offset(mut self, n: u32) -> Self {
        self.offset = Some(n);
        self
    }

    pub(crate) fn query_pairs(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(s) = &self.search {
            q.push(("search", s.clone()));
        }
        if let Some(s) = &self.category {
            q.push(("category", s.clone()));
        }
        if let Some(s) = &self.kind {
            q.push(("kind", s.clone()));
        }
        if self.include_schema {
            q.push(("include_schema", "true".to_owned()));
        }
        if let Some(n) = self.limit {
            q.push(("limit", n.to_string()));
        }
        if let Some(n) = self.offset {
            q.push(("offset", n.to_string()));
        }
        q
    }
}

/// Accepts a number, a numeric string or null.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// Accepts a number, a numeric string or null.
fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for s in [
            "in_queue",
            "in_progress",
            "completed",
            "succeeded",
            "failed",
            "cancelled",
        ] {
            assert_eq!(JobState::parse(s).as_str(), s);
        }
        assert_eq!(JobState::parse("CANCELED"), JobState::Cancelled);
        assert_eq!(
            JobState::parse("pending"),
            JobState::Unknown("pending".into())
        );
    }

    #[test]
    fn status_decodes_leniently() {
        let s: StatusInfo =
            serde_json::from_str(r#"{"request_id":"r","status":"in_queue","queue_position":"3"}"#)
                .unwrap();
        assert_eq!(s.queue_position, Some(3));
        let r: JobResult = serde_json::from_str(
            r#"{"request_id":"r","status":"succeeded","output":{"video":"https://x/y.mp4"},"cost":"0.5","prompt":"echo"}"#,
        )
        .unwrap();
        assert_eq!(r.cost, Some(0.5));
        assert_eq!(r.extra.get("prompt"), Some(&Value::from("echo")));
    }

    #[test]
    fn cancel_outcome_wins_over_status() {
        let w: CancelWire = serde_json::from_str(
            r#"{"request_id":"r","status":"completed","outcome":"cancelled"}"#,
        )
        .unwrap();
        let c = w.into_cancellation("r");
        assert_eq!(c.outcome, CancelOutcome::Cancelled);
        assert_eq!(c.state, Some(JobState::Completed));
        let w: CancelWire = serde_json::from_str(r#"{"status":"canceled"}"#).unwrap();
        assert_eq!(w.into_cancellation("r").outcome, CancelOutcome::Cancelled);
    }
}
