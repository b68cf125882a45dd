//! Retries of single HTTP requests: full-jitter exponential backoff within a time budget.
//!
//! Which failures may be retried depends on the request (see [`crate::Client`]): GETs and
//! cancel retry transport failures, 429 and 5xx; a submit retries only a refused connection
//! and 429, because any other failure may have created a paid job.

use std::time::{Duration, SystemTime};

/// How single requests are retried.
///
/// ```
/// use std::time::Duration;
/// let p = runcomfy::RetryPolicy::default();
/// // Full jitter: a random point between zero and the exponential ceiling.
/// assert_eq!(p.backoff(0, 0.0), Duration::ZERO);
/// assert!(p.backoff(3, 0.999) <= p.max_delay);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The backoff ceiling of the first retry; it doubles at each retry.
    pub base_delay: Duration,
    /// The largest backoff ceiling.
    pub max_delay: Duration,
    /// The total time one request may spend retrying; a retry that would end past it is not made.
    pub budget: Duration,
    /// The longest `Retry-After` honoured; longer ones are shortened to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
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
        RetryPolicy {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Sets `max_attempts` (at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Sets `base_delay` and `max_delay`.
    pub fn delays(mut self, base: Duration, max: Duration) -> Self {
        self.base_delay = base;
        self.max_delay = max.max(base);
        self
    }

    /// Sets `budget`.
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Sets `max_retry_after`.
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.max_retry_after = cap;
        self
    }

    /// The wait before retry number `retry` (0 for the first retry), given a uniform random
    /// `unit` in `[0, 1)`: `unit * min(max_delay, base_delay * 2^retry)`.
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .min(self.max_delay);
        crate::poll::scale(ceiling, unit)
    }

    /// The wait before retry number `retry` when the server sent `retry_after`: the server's
    /// wish (capped at `max_retry_after`) wins over the backoff.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        match retry_after {
            Some(ra) => ra.min(self.max_retry_after),
            None => self.backoff(retry, unit),
        }
    }
}

/// Reads a `Retry-After` header: delay seconds or an HTTP date (relative to `now`).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// assert_eq!(runcomfy::parse_retry_after("3", SystemTime::now()), Some(Duration::from_secs(3)));
/// assert_eq!(runcomfy::parse_retry_after("soon", SystemTime::now()), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        if (0.0..1e9).contains(&secs) {
            return Some(Duration::from_secs_f64(secs));
        }
        return None;
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_and_capped() {
        let p = RetryPolicy::default().delays(Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(p.backoff(0, 0.5), Duration::from_millis(50));
        assert_eq!(p.backoff(1, 0.5), Duration::from_millis(100));
        assert_eq!(p.backoff(2, 1.0), Duration::from_millis(400));
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
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("0.5", now),
            Some(Duration::from_millis(500))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(12));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(12))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(12));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }
}
