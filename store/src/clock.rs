//! The time the store stamps records and leases with.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use crate::types::{duration_millis, from_millis, to_millis};

/// Where the store reads the time: leases, throttles and timestamps.
///
/// Workers of one PostgreSQL store compare times written by each other, so their machines'
/// clocks must agree to well under a lease (NTP does this).
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system clock (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told: for tests of lease expiry without waiting.
///
/// ```
/// use runcomfy_store::{Clock, ManualClock};
/// use std::time::{Duration, UNIX_EPOCH};
/// let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000));
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_030));
/// ```
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `start` (millisecond precision).
    pub fn new(start: SystemTime) -> Self {
        ManualClock {
            millis: AtomicI64::new(to_millis(start)),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.millis.fetch_add(duration_millis(by), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        from_millis(self.millis.load(Ordering::SeqCst))
    }
}
