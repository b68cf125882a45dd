//! Exit codes: which kind of failure ended the command.

use std::fmt;

use runcomfy::{ApiError, ApiErrorCode, Error};

use serde_json::json;

use crate::body::UsageError;
use crate::ui::{err, Ui};

/// Success.
pub const OK: u8 = 0;
/// Anything not listed below (network, file system, downloads).
pub const OTHER: u8 = 1;
/// Bad input or usage: nothing was sent.
pub const USAGE: u8 = 2;
/// Authentication: no token, or the API rejected it.
pub const AUTH: u8 = 3;
/// The API refused a request or answered something unreadable.
pub const API: u8 = 4;
/// The job failed or was cancelled.
pub const JOB: u8 = 5;
/// A request timed out or the wait's deadline passed (the job may still run).
pub const TIMEOUT: u8 = 6;
/// A batch is not finished: rows are uncertain, still queued (budget, job cap) or running.
pub const INCOMPLETE: u8 = 7;
/// A batch run ended with rows whose outputs could not be saved (the file host refused them
/// or could not be reached, or the disk is full): they stay recorded with their URLs.
pub const UNSAVED: u8 = 8;

/// Interrupted (Ctrl-C), as shells report SIGINT.
pub const INTERRUPTED: u8 = 130;

/// The table printed by `runcomfy --help` and repeated in `cli/README.md`.
pub const TABLE: &str = "\
Exit codes:
    0  success
    1  anything else (network, file system, download)
    2  bad input or usage; nothing was sent
    3  authentication: no token, or the API rejected it
    4  API error: the API refused the request or answered something unreadable
    5  the job failed or was cancelled (batch: every row ended, some not succeeded)
    6  timeout or deadline; the job may still run (`runcomfy resume`)
    7  batch not finished: rows uncertain, still queued (budget, --max-jobs) or running
    8  batch ended with outputs not saved (404, host unreachable, disk full); they are
       recorded: the same command again saves them without submitting anything
  130  interrupted (Ctrl-C); the message says what is left to `runcomfy resume`";

/// An error with its exit code, worded for the person at the command line.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// What to show.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// No token is set: what to do about it, in the CLI's terms (the library's message speaks of
/// `ClientBuilder::token`, which a shell user has no use for).
pub fn missing_token() -> Failure {
    Failure {
        code: AUTH,
        message: "no api token: set RUNCOMFY_TOKEN to the token of your RunComfy account (offline, `runcomfy models --local` lists the built-in models and `runcomfy run MODEL --dry-run` checks an input)".to_owned(),
    }
}

/// An error already shown to the user; only its exit code is left to return.
#[derive(Debug)]
pub struct Reported(pub u8);

impl fmt::Display for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed with exit code {}", self.0)
    }
}

impl std::error::Error for Reported {}

/// The exit code of an error.
pub fn code_of(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(r) = cause.downcast_ref::<Reported>() {
            return r.0;
        }
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.code;
        }
        if cause.is::<UsageError>() || cause.is::<clap::Error>() {
            return USAGE;
        }
        if let Some(x) = cause.downcast_ref::<Error>() {
            return api_code(x);
        }
    }
    OTHER
}

/// Shows an error: on standard error, and as an event in JSON mode.
/// `in_batch`: the error ended a batch (its rows are re-attached by the same command, not by
/// `resume`, which serves single jobs).
pub fn report(ui: &Ui, e: &anyhow::Error, code: u8, in_batch: bool) {
    ui.finish_wait(if code == INTERRUPTED {
        "interrupted"
    } else {
        "failed"
    });
    let request_id = request_id_of(e);
    let message = message(e);
    ui.event(
        json!({"event": "error", "exit_code": code, "message": message, "request_id": request_id}),
    );
    err(&format!("error: {message}"));
    if let Some(id) = request_id {
        if in_batch {
            err(&format!(
                "keep the id {id}: `runcomfy result {id}` shows its outputs; the same batch command re-attaches every row the store recorded"
            ));
        } else if matches!(code, TIMEOUT | OTHER) && !e.is::<Failure>() {
            err(&format!(
                "the job may still run; `runcomfy resume {id}` re-attaches to it"
            ));
        }
    }
}

/// An error and its causes on one line, each cause once: errors that already show their
/// source in their own text (`store x: disk full` with the source `disk full`) do not
/// repeat it.
pub fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if part.is_empty() || text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// The request id an error concerns, when it names one.
fn request_id_of(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|c| {
        c.downcast_ref::<Error>()
            .and_then(|x| x.request_id())
            .map(str::to_owned)
    })
}

/// The exit code of a client error.
pub fn api_code(e: &Error) -> u8 {
    match e {
        Error::MissingToken { .. } | Error::InvalidToken => AUTH,
        Error::InvalidBaseUrl { .. }
        | Error::InvalidId { .. }
        | Error::InvalidArgument { .. }
        | Error::Validation { .. }
        | Error::Encode { .. } => USAGE,
        Error::Api(a) if is_auth(a) => AUTH,
        Error::Api(_) | Error::RateLimited { .. } | Error::Decode { .. } => API,
        Error::Timeout { .. } | Error::Deadline { .. } => TIMEOUT,
        Error::JobFailed { .. } | Error::Cancelled { .. } => JOB,
        Error::SubmitUncertain { source, .. } => api_code(source),
        Error::InvalidRow { .. } | Error::FolderTaken { .. } => USAGE,
        Error::Store {
            source: runcomfy_store::StoreError::BatchMismatch { .. },
            ..
        } => USAGE,
        _ => OTHER,
    }
}

fn is_auth(a: &ApiError) -> bool {
    matches!(
        a.code,
        Some(ApiErrorCode::UserAccount | ApiErrorCode::PermissionDenied)
    ) || a.status == 401
        || (a.status == 403 && a.code.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let e = |x: Error| code_of(&anyhow::Error::from(x));
        assert_eq!(e(Error::MissingToken { var: "X" }), AUTH);
        assert_eq!(
            e(Error::Cancelled {
                request_id: "r".into()
            }),
            JOB
        );
        assert_eq!(e(Error::Timeout { request_id: None }), TIMEOUT);
        assert_eq!(
            code_of(&anyhow::Error::from(UsageError("x".into())).context("while reading")),
            USAGE
        );
        assert_eq!(code_of(&anyhow::anyhow!("disk full")), OTHER);
        assert_eq!(code_of(&anyhow::Error::from(missing_token())), AUTH);
        let j = anyhow::Error::from(Error::JobFailed {
            request_id: "r".into(),
            error: serde_json::Value::Null,
        })
        .context("while waiting");
        assert_eq!(code_of(&j), JOB);
    }

    #[test]
    fn messages_name_each_cause_once() {
        let e = anyhow::anyhow!("no space left on device")
            .context("store /j/jobs.db: no space left on device")
            .context("cannot record the job");
        assert_eq!(
            message(&e),
            "cannot record the job: store /j/jobs.db: no space left on device"
        );
        let e = anyhow::anyhow!("the file host answered 404").context("download of x failed");
        assert_eq!(
            message(&e),
            "download of x failed: the file host answered 404"
        );
    }
}
