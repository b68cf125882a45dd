//! The one error type of the client.
//!
//! No variant ever holds the API token: the token lives only inside the transport, and
//! response bodies are scrubbed of it before they are kept.
//!
//! A variant with a cause returns it from [`std::error::Error::source`] and does not repeat it
//! in its message, so a report that prints the chain (`anyhow`'s `{:#}`) shows each cause once.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::types::{CancelAttempt, JobState};
use crate::validate::ValidationErrors;

/// Everything that can go wrong when talking to RunComfy.
///
/// Every error that happens after the server returned a `request_id` carries it (see
/// [`Error::request_id`]), so a paid job is never lost.
///
/// ```
/// let err = runcomfy::Error::Cancelled { request_id: "abc".into() };
/// assert_eq!(err.to_string(), "job abc was cancelled");
/// assert_eq!(err.request_id(), Some("abc"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No token was configured and the environment variable is not set.
    #[error(
        "no api token: set the {var} environment variable or pass one to ClientBuilder::token"
    )]
    MissingToken {
        /// The environment variable that was read.
        var: &'static str,
    },

    /// The token cannot be sent as an HTTP header (it contains control characters).
    #[error("the api token is not a valid http header value")]
    InvalidToken,

    /// The base URL is malformed, or not HTTPS on a non-loopback host.
    #[error("invalid base url {url:?}: {reason}")]
    InvalidBaseUrl {
        /// The URL as given (without any credentials).
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The HTTP client could not be built (for example, no TLS backend).
    #[error("could not build the http client")]
    HttpClient(#[source] reqwest::Error),

    /// A model id or request id does not match its documented character set; nothing was sent.
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidId {
        /// Which id.
        kind: IdKind,
        /// The rejected value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// An argument is out of its documented range; nothing was sent.
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// The input broke its schema's constraints; nothing was sent.
    #[error("input for {model_id} is invalid: {errors}")]
    Validation {
        /// The model the input was meant for.
        model_id: String,
        /// Every violation found.
        errors: ValidationErrors,
    },

    /// The input could not be serialized to JSON; nothing was sent.
    #[error("could not serialize the input for {model_id}")]
    Encode {
        /// The model the input was meant for.
        model_id: String,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },

    /// The API answered with an error (an HTTP error status, or an `error_code` body).
    #[error("{0}")]
    Api(Box<ApiError>),

    /// The API kept answering 429 until the retry policy gave up.
    #[error("rate limited by the api{}{}", fmt_retry_after(*.retry_after), fmt_req(.request_id))]
    RateLimited {
        /// The last `Retry-After` the server sent, if any.
        retry_after: Option<Duration>,
        /// The job concerned, when known.
        request_id: Option<String>,
    },

    /// An HTTP request timed out (after any retries the policy allowed).
    #[error("request to the api timed out{}", fmt_req(.request_id))]
    Timeout {
        /// The job concerned, when known.
        request_id: Option<String>,
    },

    /// The overall wait deadline passed; a best-effort cancel may have been sent (see `cancel`).
    #[error(
        "deadline passed after {waited:?} waiting for job {request_id} (last state: {}; {})",
        .last_state.as_ref().map_or("none seen", |s| s.as_str()),
        fmt_cancel(.cancel)
    )]
    Deadline {
        /// The job, which may still run and be paid: keep this id.
        request_id: String,
        /// The last state the server reported.
        last_state: Option<JobState>,
        /// How long the wait lasted.
        waited: Duration,
        /// What became of the best-effort cancel.
        cancel: CancelAttempt,
    },

    /// The job ended in `failed`.
    #[error("job {request_id} failed: {}", failure_message(.error))]
    JobFailed {
        /// The job.
        request_id: String,
        /// The server's `error` value, as sent (`null` when it sent none).
        error: Value,
    },

    /// The job ended in `cancelled`.
    #[error("job {request_id} was cancelled")]
    Cancelled {
        /// The job.
        request_id: String,
    },

    /// The server kept reporting states this client does not know, past the poll policy's bound.
    #[error(
        "job {request_id} reported unknown states for {polls} polls in a row (last: {state:?})"
    )]
    UnknownState {
        /// The job, which may still run: keep this id.
        request_id: String,
        /// The last unknown state.
        state: String,
        /// How many polls in a row answered unknown states.
        polls: u32,
    },

    /// A response body could not be decoded; the raw body is kept.
    #[error("could not decode the {what}{}", fmt_req(.request_id))]
    Decode {
        /// What was being decoded (`submit response`, `result`, `output`, ...).
        what: &'static str,
        /// The job concerned, when known.
        request_id: Option<String>,
        /// The raw body (lossily converted to UTF-8).
        body: String,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },

    /// The connection failed (refused, reset, closed early, DNS, TLS).
    #[error("the connection to the api failed{}", fmt_req(.request_id))]
    Transport {
        /// The job concerned, when known.
        request_id: Option<String>,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },

    /// A submit failed in a way that does not prove the server refused it: a paid job may exist.
    ///
    /// The client never retries such a submit. Look for the job before submitting again.
    /// `source` tells what is known (a timeout, a reset, a 5xx, an unreadable answer that may
    /// hold the request id).
    #[error("submit to {model_id} may have created a job (not retried, to avoid paying twice)")]
    SubmitUncertain {
        /// The model submitted to.
        model_id: String,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },

    /// The job store (see [`ClientBuilder::store`](crate::ClientBuilder::store)) failed.
    ///
    /// Before a submit (`step` is `"the intent"`) nothing was sent. After it the job exists
    /// and `request_id` holds its id: keep it, the store may not.
    #[cfg(feature = "store")]
    #[error("could not record {step} in the job store{}", fmt_req(.request_id))]
    Store {
        /// What was being recorded: `the intent`, `the request id`, `the outcome`, ...
        step: &'static str,
        /// The job concerned, when known.
        request_id: Option<String>,
        /// The store's error.
        #[source]
        source: runcomfy_store::StoreError,
    },

    /// A batch's outputs folder belongs to another batch (its marker names it), or holds
    /// files this batch cannot prove are its own; nothing of the batch was sent.
    #[cfg(feature = "store")]
    #[error("the outputs folder {} is not this batch's: {reason}", dir.display())]
    FolderTaken {
        /// The folder.
        dir: std::path::PathBuf,
        /// Whose it is and what to do.
        reason: String,
    },

    /// A row of a batch is invalid; nothing of the batch was recorded or sent.
    #[cfg(feature = "store")]
    #[error("row {line} of the batch is invalid")]
    InvalidRow {
        /// The row's line.
        line: u64,
        /// What is wrong with it.
        #[source]
        source: Box<Error>,
    },
}

/// Which kind of identifier [`Error::InvalidId`] rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdKind {
    /// A model id such as `happyhorse/happyhorse-1.0/image-to-video`.
    Model,
    /// A request id returned by a submit.
    Request,
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdKind::Model => "model id",
            IdKind::Request => "request id",
        })
    }
}

impl Error {
    /// The request id of the job this error concerns, when one is known.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::Api(e) => e.request_id.as_deref(),
            Error::RateLimited { request_id, .. }
            | Error::Timeout { request_id }
            | Error::Decode { request_id, .. }
            | Error::Transport { request_id, .. } => request_id.as_deref(),
            #[cfg(feature = "store")]
            Error::Store { request_id, .. } => request_id.as_deref(),
            Error::Deadline { request_id, .. }
            | Error::JobFailed { request_id, .. }
            | Error::Cancelled { request_id }
            | Error::UnknownState { request_id, .. } => Some(request_id),
            Error::InvalidId {
                kind: IdKind::Request,
                value,
                ..
            } => Some(value),
            Error::SubmitUncertain { source, .. } => source.request_id(),
            _ => None,
        }
    }

    /// The API error, when the server answered with one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            Error::SubmitUncertain { source, .. } => source.api_error(),
            _ => None,
        }
    }

    /// True when a submit may have created a paid job whose request id is not known for sure.
    pub fn may_have_submitted(&self) -> bool {
        matches!(self, Error::SubmitUncertain { .. })
    }

    /// Attaches `request_id` to an error that does not carry one yet.
    pub(crate) fn with_request_id(mut self, id: &str) -> Self {
        match &mut self {
            Error::Api(e) if e.request_id.is_none() => e.request_id = Some(id.to_owned()),
            Error::RateLimited { request_id, .. }
            | Error::Timeout { request_id }
            | Error::Decode { request_id, .. }
            | Error::Transport { request_id, .. }
                if request_id.is_none() =>
            {
                *request_id = Some(id.to_owned())
            }
            #[cfg(feature = "store")]
            Error::Store { request_id, .. } if request_id.is_none() => {
                *request_id = Some(id.to_owned())
            }
            _ => {}
        }
        self
    }
}

/// An error answer of the API.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status (200 for an `error_code` body sent with success).
    pub status: u16,
    /// The `error_code` of the body, when it had one.
    pub code: Option<ApiErrorCode>,
    /// `error_message` or `message` of the body.
    pub message: Option<String>,
    /// `detail` of the body: a string or a list of field errors.
    pub detail: Option<Value>,
    /// The job concerned, when known.
    pub request_id: Option<String>,
    /// The raw body (lossily UTF-8, scrubbed of the token).
    pub body: String,
}

impl ApiError {
    /// Reads an error body. Any body is accepted; what is not understood stays in `body`.
    pub(crate) fn from_body(status: u16, body: String) -> Self {
        let json: Option<Value> = serde_json::from_str(&body).ok();
        let obj = json.as_ref().and_then(Value::as_object);
        let code = obj
            .and_then(|o| o.get("error_code"))
            .and_then(|c| match c {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .map(ApiErrorCode::from_code);
        let message = obj.and_then(|o| {
            ["error_message", "message", "error"]
                .iter()
                .find_map(|k| o.get(*k).and_then(Value::as_str))
                .map(str::to_owned)
        });
        let detail = obj.and_then(|o| o.get("detail")).cloned();
        let request_id = obj
            .and_then(|o| o.get("request_id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        ApiError {
            status,
            code,
            message,
            detail,
            request_id,
            body,
        }
    }

    /// The field errors of a schema mismatch (400/422), when `detail` is a list of them.
    ///
    /// Each item is rendered as `location: message`, whatever shape the server used.
    pub fn field_errors(&self) -> Vec<String> {
        let Some(Value::Array(items)) = &self.detail else {
            return Vec::new();
        };
        items
            .iter()
            .map(|item| {
                let loc = item
                    .get("loc")
                    .or_else(|| item.get("path"))
                    .map(|l| match l {
                        Value::String(s) => s.clone(),
                        Value::Array(parts) => parts
                            .iter()
                            .map(|p| match p {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            })
                            .collect::<Vec<_>>()
                            .join("/"),
                        other => other.to_string(),
                    });
                let msg = item
                    .get("msg")
                    .or_else(|| item.get("message"))
                    .and_then(Value::as_str);
                match (loc, msg) {
                    (Some(l), Some(m)) => format!("{l}: {m}"),
                    (None, Some(m)) => m.to_owned(),
                    _ => item.to_string(),
                }
            })
            .collect()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "api error (http {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, ", code {} {}", code.code(), code.name())?;
        }
        f.write_str(")")?;
        match (&self.message, &self.detail) {
            (Some(m), _) => write!(f, ": {m}")?,
            (None, Some(Value::String(d))) => write!(f, ": {d}")?,
            (None, _) if self.code.is_none() && !self.body.is_empty() => {
                write!(f, ": {}", truncate(&self.body, 200))?
            }
            _ => {}
        }
        let fields = self.field_errors();
        if !fields.is_empty() {
            write!(f, " [{}]", fields.join("; "))?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request {id})")?;
        }
        Ok(())
    }
}

/// The documented `error_code` values of the Model API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiErrorCode {
    /// 400001: a malformed or unknown id, such as a wrong `model_id`.
    InvalidResourceIdentifier,
    /// 403001: the request belongs to another account.
    PermissionDenied,
    /// 404001: an unknown, deleted or expired `request_id`.
    ResourceNotFound,
    /// 400002: no balance left.
    InsufficientResources,
    /// 400004: a missing, expired or revoked token.
    UserAccount,
    /// Any other code.
    Other(i64),
}

impl ApiErrorCode {
    /// The code for a numeric `error_code`.
    pub fn from_code(code: i64) -> Self {
        match code {
            400001 => Self::InvalidResourceIdentifier,
            403001 => Self::PermissionDenied,
            404001 => Self::ResourceNotFound,
            400002 => Self::InsufficientResources,
            400004 => Self::UserAccount,
            other => Self::Other(other),
        }
    }

    /// The numeric code.
    pub fn code(&self) -> i64 {
        match self {
            Self::InvalidResourceIdentifier => 400001,
            Self::PermissionDenied => 403001,
            Self::ResourceNotFound => 404001,
            Self::InsufficientResources => 400002,
            Self::UserAccount => 400004,
            Self::Other(c) => *c,
        }
    }

    /// The documented name, in lowercase words.
    pub fn name(&self) -> &'static str {
        match self {
            Self::InvalidResourceIdentifier => "invalid resource identifier",
            Self::PermissionDenied => "permission denied",
            Self::ResourceNotFound => "resource not found",
            Self::InsufficientResources => "insufficient resources",
            Self::UserAccount => "user account error",
            Self::Other(_) => "unknown code",
        }
    }
}

fn fmt_req(id: &Option<String>) -> String {
    id.as_ref()
        .map(|id| format!(" (request {id})"))
        .unwrap_or_default()
}

fn fmt_retry_after(d: Option<Duration>) -> String {
    d.map(|d| format!(" (retry after {d:?})"))
        .unwrap_or_default()
}

fn fmt_cancel(c: &CancelAttempt) -> String {
    match c {
        CancelAttempt::NotSent => "no cancel sent, the job may run on".to_owned(),
        CancelAttempt::NotConfirmed => "cancel not confirmed, the job may run on".to_owned(),
        CancelAttempt::Answered(o) => format!("cancel: {}", o.as_str()),
    }
}

/// The readable part of a job's `error` value.
fn failure_message(error: &Value) -> String {
    match error {
        Value::Null => "no error details".to_owned(),
        Value::String(s) => s.clone(),
        Value::Object(o) => ["message", "error_message", "error", "detail"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
            .unwrap_or_else(|| truncate(&error.to_string(), 500)),
        other => truncate(&other.to_string(), 500),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::types::CancelOutcome;

    fn json_error() -> serde_json::Error {
        serde_json::from_str::<Value>("{oops").unwrap_err()
    }

    /// Each message leaves its cause to `source()`: a printed chain shows every cause once.
    #[test]
    fn no_message_repeats_its_cause() {
        let errors = [
            Error::Encode {
                model_id: "a/b".into(),
                source: json_error(),
            },
            Error::Decode {
                what: "answer",
                request_id: Some("r".into()),
                body: "{oops".into(),
                source: json_error(),
            },
            Error::SubmitUncertain {
                model_id: "a/b".into(),
                source: Box::new(Error::Timeout { request_id: None }),
            },
            Error::SubmitUncertain {
                model_id: "a/b".into(),
                source: Box::new(Error::Decode {
                    what: "submit answer",
                    request_id: None,
                    body: "{oops".into(),
                    source: json_error(),
                }),
            },
        ];
        for e in &errors {
            let mut current: &dyn std::error::Error = e;
            let mut depth = 0;
            while let Some(cause) = current.source() {
                let (outer, inner) = (current.to_string(), cause.to_string());
                assert!(!outer.contains(&inner), "{outer} / {inner}");
                current = cause;
                depth += 1;
            }
            assert!(depth >= 1, "{e:?} has a cause");
        }
        assert_eq!(
            errors[2].to_string(),
            "submit to a/b may have created a job (not retried, to avoid paying twice)"
        );
    }

    #[test]
    fn a_deadline_says_what_became_of_the_cancel() {
        let deadline = |cancel| Error::Deadline {
            request_id: "r".into(),
            last_state: Some(JobState::InQueue),
            waited: Duration::from_secs(2),
            cancel,
        };
        let text = |c| deadline(c).to_string();
        assert_eq!(
            text(CancelAttempt::Answered(CancelOutcome::Cancelled)),
            "deadline passed after 2s waiting for job r (last state: in_queue; cancel: cancelled)"
        );
        assert!(text(CancelAttempt::NotConfirmed).contains("cancel not confirmed"));
        let not_sent = text(CancelAttempt::NotSent);
        assert!(not_sent.contains("no cancel sent"), "{not_sent}");
        assert!(!not_sent.contains("confirmed"), "{not_sent}");
    }
}
