//! Layer 2: one request, retried. [`send_with_retry`] is the only retry loop; what may be
//! retried is decided by a classifier, a pure function of what an attempt came to:
//! [`idempotent`] for reads and cancels, [`submit`] for the paid submit (the money rule).
//! Every error of an attempt (an [`ApiError`], a timeout, a broken connection) is built here,
//! once, with the request id the caller knows.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::time::Instant;

use crate::error::{ApiError, Error};
use crate::http::transport::{Incoming, Outgoing, SendError, Transport};

/// How single requests are retried: full-jitter exponential backoff within a time budget,
/// a server's `Retry-After` honoured up to a cap.
///
/// Which failures may be retried depends on the request: reads and cancels retry transport
/// failures, timeouts, 408, 429, 5xx and unreadable answers; a submit retries only a
/// connection that was never made and 429, because any other failure may have created a
/// paid job.
///
/// Every value has one setter, which keeps it in range:
///
/// ```
/// use std::time::Duration;
/// let p = runcomfy::RetryPolicy::default()
///     .max_attempts(0) // read as 1: the first attempt always happens
///     .delays(Duration::from_millis(500), Duration::from_millis(100)) // the cap is raised to 500 ms
///     .budget(Duration::from_secs(20))
///     .max_retry_after(Duration::from_secs(10));
/// assert_eq!(p, runcomfy::RetryPolicy::never()
///     .delays(Duration::from_millis(500), Duration::from_millis(500))
///     .budget(Duration::from_secs(20))
///     .max_retry_after(Duration::from_secs(10)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    max_attempts: u32,
    /// The backoff ceiling of the first retry; it doubles at each retry.
    base_delay: Duration,
    /// The largest backoff ceiling.
    max_delay: Duration,
    /// The total time one request may spend retrying; a retry that would end past it is not made.
    budget: Duration,
    /// The longest `Retry-After` honoured; longer ones are shortened to this.
    max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, backoff from 250 ms up to 8 s, 60 s in all, `Retry-After` up to 30 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            budget: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn never() -> Self {
        Self::default().max_attempts(1)
    }

    /// Sets the number of attempts in all, the first included (at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Sets the backoff ceiling of the first retry (it doubles at each retry) and the largest
    /// ceiling (at least `base`). Each wait is a random point below its ceiling.
    pub fn delays(mut self, base: Duration, max: Duration) -> Self {
        self.base_delay = base;
        self.max_delay = max.max(base);
        self
    }

    /// Sets the total time one request may spend retrying; a retry that would end past it is
    /// not made.
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Sets the longest `Retry-After` honoured; longer ones are shortened to it.
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.max_retry_after = cap;
        self
    }

    /// The wait before retry number `retry` (0 for the first retry), given a uniform random
    /// `unit` in `[0, 1)`: `unit * min(max_delay, base_delay * 2^retry)`.
    pub(crate) fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        scale(ceiling, unit)
    }

    /// The wait before retry number `retry` when the server sent `retry_after`: the server's
    /// wish (capped at `max_retry_after`) wins over the backoff.
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        match retry_after {
            Some(ra) => ra.min(self.max_retry_after),
            None => self.backoff(retry, unit),
        }
    }

    /// The wait before retry number `retry`, or `None` when the policy gives up: out of
    /// attempts, or the wait would end past the budget (`spent` is the time used so far).
    fn next_wait(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        spent: Duration,
    ) -> Option<Duration> {
        if retry.saturating_add(1) >= self.max_attempts {
            return None;
        }
        let delay = self.delay(retry, retry_after, rand::random());
        (spent.saturating_add(delay) <= self.budget).then_some(delay)
    }
}

/// `x` clamped to `[0, 1]`, with NaN read as 0 (so `Duration::mul_f64` cannot panic).
pub(crate) fn unit_interval(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

/// `d * factor` for `factor` in `[0, 1]`, without the panics of `Duration::mul_f64` near
/// `Duration::MAX`.
pub(crate) fn scale(d: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * unit_interval(factor))
        .map_or(d, |scaled| scaled.min(d))
}

/// What one attempt came to, as a classifier sees it: plain data, so the rules are tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The connection was never made: the request provably did not reach the server.
    NotSent,
    /// No answer in time: the request may have been received.
    TimedOut,
    /// The connection broke after it was made: the request may have been received.
    Broken,
    /// An answer with this HTTP status and this kind of body.
    Answer(u16, Body),
}

/// The kind of an answer's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// JSON without an `error_code`.
    Json,
    /// JSON with a non-null `error_code` (the API sends some refusals with HTTP 200).
    ErrorCode,
    /// Not JSON.
    NotJson,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// A usable answer: hand its JSON to the caller.
    Accept,
    /// Ask again, if the policy allows another attempt.
    Retry,
    /// Give up: a final error (the server refused, or nothing more can be learnt).
    Fail,
    /// Give up, and say so loudly: a submit that may have created a paid job.
    Uncertain,
}

/// A classifier: what to do after an attempt.
pub(crate) type Classifier = fn(Attempt) -> Action;

/// The rule for reads (`status`, `result`, the catalog) and `cancel`: asking again changes
/// nothing on the server, so every transient failure is retried, an unreadable 2xx included.
pub(crate) fn idempotent(attempt: Attempt) -> Action {
    match attempt {
        Attempt::NotSent | Attempt::TimedOut | Attempt::Broken => Action::Retry,
        Attempt::Answer(408 | 429, _) => Action::Retry,
        Attempt::Answer(s, _) if s >= 500 => Action::Retry,
        Attempt::Answer(s, _) if !(200..300).contains(&s) => Action::Fail,
        Attempt::Answer(_, Body::Json) => Action::Accept,
        Attempt::Answer(_, Body::ErrorCode) => Action::Fail,
        // A garbled answer (a proxy's page, a cut body) says nothing about the job: ask again.
        Attempt::Answer(_, Body::NotJson) => Action::Retry,
    }
}

/// The money rule, for the submit: retried only when it provably did not reach the server
/// (the connection was never made) or was refused with 429. Anything that may have created
/// a job (a timeout, a broken connection, a 5xx, an unreadable 2xx) is never repeated.
pub(crate) fn submit(attempt: Attempt) -> Action {
    match attempt {
        Attempt::NotSent | Attempt::Answer(429, _) => Action::Retry,
        Attempt::TimedOut | Attempt::Broken => Action::Uncertain,
        Attempt::Answer(s, _) if s >= 500 => Action::Uncertain,
        Attempt::Answer(s, _) if !(200..300).contains(&s) => Action::Fail,
        Attempt::Answer(_, Body::Json) => Action::Accept,
        Attempt::Answer(_, Body::ErrorCode) => Action::Fail,
        Attempt::Answer(_, Body::NotJson) => Action::Uncertain,
    }
}

/// A request given up on.
#[derive(Debug)]
pub(crate) struct Stop {
    /// The last attempt's error.
    pub error: Error,
    /// The classifier said [`Action::Uncertain`].
    pub uncertain: bool,
}

/// One attempt's outcome, kept whole until it is turned into JSON or an error.
enum Outcome {
    NotSent(reqwest::Error),
    TimedOut,
    Broken(reqwest::Error),
    Answer {
        resp: Incoming,
        json: Result<Value, serde_json::Error>,
    },
}

impl Outcome {
    fn read(sent: Result<Incoming, SendError>) -> Result<Outcome, Error> {
        Ok(match sent {
            Ok(resp) => {
                let json = serde_json::from_str(&resp.body);
                Outcome::Answer { resp, json }
            }
            Err(SendError::Refused(e)) => return Err(e),
            Err(SendError::NotSent(e)) => Outcome::NotSent(e),
            Err(SendError::TimedOut) => Outcome::TimedOut,
            Err(SendError::Failed(e)) => Outcome::Broken(e),
        })
    }

    fn attempt(&self) -> Attempt {
        match self {
            Outcome::NotSent(_) => Attempt::NotSent,
            Outcome::TimedOut => Attempt::TimedOut,
            Outcome::Broken(_) => Attempt::Broken,
            Outcome::Answer { resp, json } => Attempt::Answer(
                resp.status,
                match json {
                    Ok(v) if has_error_code(v) => Body::ErrorCode,
                    Ok(_) => Body::Json,
                    Err(_) => Body::NotJson,
                },
            ),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Outcome::Answer { resp, .. } => resp.retry_after,
            _ => None,
        }
    }

    /// The error this outcome stands for: the one place attempt errors are built.
    fn into_error(self, request_id: Option<&str>) -> Error {
        let request_id = request_id.map(str::to_owned);
        match self {
            Outcome::NotSent(source) | Outcome::Broken(source) => {
                Error::Transport { request_id, source }
            }
            Outcome::TimedOut => Error::Timeout { request_id },
            Outcome::Answer { resp, .. } if resp.status == 429 => Error::RateLimited {
                retry_after: resp.retry_after,
                request_id,
            },
            Outcome::Answer {
                resp,
                json: Err(source),
            } if resp.is_success() => Error::Decode {
                what: "answer",
                request_id,
                body: resp.body,
                source,
            },
            Outcome::Answer { resp, .. } => {
                let mut api = ApiError::from_body(resp.status, resp.body);
                if api.request_id.is_none() {
                    api.request_id = request_id;
                }
                Error::Api(Box::new(api))
            }
        }
    }
}

fn has_error_code(v: &Value) -> bool {
    v.get("error_code").is_some_and(|c| !c.is_null())
}

/// Sends `req` until `classify` accepts an answer or gives up, or `policy` runs out.
/// `request_id` (the job the request concerns, when known) goes into every error.
pub(crate) async fn send_with_retry(
    transport: &Transport,
    policy: &RetryPolicy,
    req: &Outgoing<'_>,
    classify: Classifier,
    request_id: Option<&str>,
) -> Result<Value, Stop> {
    let start = Instant::now();
    let mut retry = 0u32;
    loop {
        let sent = transport.send(req).await;
        let outcome = Outcome::read(sent).map_err(|error| Stop {
            error,
            uncertain: false,
        })?;
        let action = classify(outcome.attempt());
        let wait = match action {
            Action::Accept => {
                if let Outcome::Answer { json: Ok(v), .. } = outcome {
                    return Ok(v);
                }
                // A classifier accepts only JSON; anything else fails like any other answer.
                None
            }
            Action::Retry => policy.next_wait(retry, outcome.retry_after(), start.elapsed()),
            Action::Fail | Action::Uncertain => None,
        };
        let Some(wait) = wait else {
            return Err(Stop {
                error: outcome.into_error(request_id),
                uncertain: action == Action::Uncertain,
            });
        };
        let asked = outcome.retry_after();
        let error = outcome.into_error(request_id);
        log_wait(req.path, retry, wait, asked, &error);
        tokio::time::sleep(wait).await;
        retry += 1;
    }
}

/// Says why and how long a retry waits; a wait the server asked for that lasts a second or
/// more is logged at `info`, with the wall-clock time it ends.
fn log_wait(path: &str, retry: u32, wait: Duration, asked: Option<Duration>, error: &Error) {
    match asked {
        Some(asked) if wait >= Duration::from_secs(1) => {
            let until = httpdate::fmt_http_date(SystemTime::now() + wait);
            tracing::info!(
                path,
                retry,
                wait = %Secs(wait),
                asked = %Secs(asked),
                until = %until,
                error = %error,
                "the server asked to wait before retrying (Retry-After); waiting"
            );
        }
        _ => tracing::debug!(path, retry, wait = ?wait, error = %error, "retrying"),
    }
}

/// A duration shown in seconds with milliseconds, for log lines.
struct Secs(Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.0.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Every attempt shape the classifiers can see, with the action of each rule.
    const TABLE: &[(Attempt, Action, Action)] = {
        use Action::*;
        use Attempt::*;
        use Body::*;
        &[
            // (attempt,                  idempotent, submit)
            (NotSent, Retry, Retry),
            (TimedOut, Retry, Uncertain),
            (Broken, Retry, Uncertain),
            (Answer(200, Json), Accept, Accept),
            (Answer(201, Json), Accept, Accept),
            (Answer(200, ErrorCode), Fail, Fail),
            // A garbled answer to a read is retried: the job it concerns is paid for.
            (Answer(200, NotJson), Retry, Uncertain),
            (Answer(400, Json), Fail, Fail),
            (Answer(400, ErrorCode), Fail, Fail),
            (Answer(401, NotJson), Fail, Fail),
            (Answer(403, ErrorCode), Fail, Fail),
            (Answer(404, ErrorCode), Fail, Fail),
            (Answer(408, NotJson), Retry, Fail),
            (Answer(422, Json), Fail, Fail),
            (Answer(429, Json), Retry, Retry),
            (Answer(429, NotJson), Retry, Retry),
            (Answer(500, Json), Retry, Uncertain),
            (Answer(502, NotJson), Retry, Uncertain),
            (Answer(503, ErrorCode), Retry, Uncertain),
            (Answer(504, NotJson), Retry, Uncertain),
            (Answer(301, NotJson), Fail, Fail),
            (Answer(100, NotJson), Fail, Fail),
        ]
    };

    #[test]
    fn classifiers_follow_their_tables() {
        for &(attempt, reads, submits) in TABLE {
            assert_eq!(idempotent(attempt), reads, "idempotent {attempt:?}");
            assert_eq!(submit(attempt), submits, "submit {attempt:?}");
        }
    }

    #[test]
    fn a_submit_that_may_have_reached_the_server_is_never_retried() {
        // The money rule, stated over every status: a submit is retried only when nothing
        // was received, or the server said 429.
        let bodies = [Body::Json, Body::ErrorCode, Body::NotJson];
        for status in 100..600 {
            for body in bodies {
                let a = Attempt::Answer(status, body);
                if submit(a) == Action::Retry {
                    assert_eq!(status, 429, "{a:?}");
                }
            }
        }
        assert_eq!(submit(Attempt::TimedOut), Action::Uncertain);
        assert_eq!(submit(Attempt::Broken), Action::Uncertain);
    }

    #[test]
    fn backoff_is_full_jitter_and_capped() {
        let p = RetryPolicy::default().delays(ms(100), Duration::from_secs(1));
        assert_eq!(p.backoff(0, 0.5), ms(50));
        assert_eq!(p.backoff(1, 0.5), ms(100));
        assert_eq!(p.backoff(2, 1.0), ms(400));
        assert_eq!(p.backoff(10, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(200, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(3, -4.0), Duration::ZERO);
        assert_eq!(p.backoff(3, f64::NAN), Duration::ZERO);
        let huge = RetryPolicy::default().delays(Duration::MAX, Duration::MAX);
        assert_eq!(huge.backoff(3, 1.0), Duration::MAX);
    }

    #[test]
    fn retry_after_wins_and_is_capped() {
        let p = RetryPolicy::default().max_retry_after(Duration::from_secs(2));
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(1)), 0.9),
            Duration::from_secs(1)
        );
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(100)), 0.9),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn the_policy_gives_up_on_attempts_and_budget() {
        let p = RetryPolicy::default()
            .max_attempts(3)
            .budget(Duration::from_secs(10))
            .max_retry_after(Duration::from_secs(60));
        let ra = Some(Duration::from_secs(4));
        assert_eq!(p.next_wait(0, ra, Duration::ZERO), ra);
        assert_eq!(p.next_wait(1, ra, Duration::from_secs(4)), ra);
        assert_eq!(p.next_wait(2, ra, Duration::ZERO), None, "3 attempts made");
        assert_eq!(
            p.next_wait(0, ra, Duration::from_secs(7)),
            None,
            "past the budget"
        );
        assert_eq!(
            RetryPolicy::never().next_wait(0, None, Duration::ZERO),
            None
        );
    }

    #[test]
    fn setters_keep_values_in_range() {
        let p = RetryPolicy::default()
            .max_attempts(0)
            .delays(ms(300), ms(10));
        assert_eq!(p.max_attempts, 1);
        assert_eq!((p.base_delay, p.max_delay), (ms(300), ms(300)));
    }
}
