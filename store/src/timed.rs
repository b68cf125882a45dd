//! [`TimedStore`]: a [`JobStore`] that wraps another and measures what it costs: the wall
//! time and the number of calls of each operation, and how much of each batch row's life was
//! spent waiting on the store.
//!
//! A row's life, as the wrapper sees it, starts when the claim that handed it out was asked
//! for and ends at the call that settled it for this worker (an end state, `uncertain`,
//! `refused`, or `release` back to the queue); the calls naming the row, and the claim it
//! came in (each row of a claim waited for all of it), are its store time. Rows still open
//! when [`TimedStore::timings`] is read count up to that moment.
//!
//! The measuring costs two clock reads and a few atomic additions per call, and a map entry
//! per row in flight: nothing next to a database round trip.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde_json::Value;

use crate::types::{
    BatchId, BatchInfo, BatchStatus, Claim, ClaimRequest, DurationStats, Finish, JobKey, JobRecord,
    Lease, NewRow, RowFilter, SavedOutput, State,
};
use crate::{JobStore, Location, SharedStore, StoreError};

/// The operations of [`JobStore`], in trait order (the index of each counter).
const OPS: [&str; 29] = [
    "record_intent",
    "record_submitted",
    "record_uncertain",
    "record_refused",
    "record_finished",
    "record_outputs_wanted",
    "record_output_saved",
    "job",
    "job_by_request_id",
    "outputs",
    "outputs_of",
    "unfinished",
    "uncertain",
    "recent_jobs",
    "duration_stats",
    "create_or_open_batch",
    "batch",
    "claim",
    "heartbeat",
    "end_lease",
    "mark_submitting",
    "release",
    "let_go",
    "resubmit_uncertain",
    "set_throttle_until",
    "throttle_until",
    "batch_status",
    "batch_rows",
    // Not an operation: the slot past the last one, so the array length is checked.
    "",
];

fn op(name: &str) -> usize {
    OPS.iter().position(|o| *o == name).unwrap_or(OPS.len() - 1)
}

/// A [`JobStore`] that forwards every call to another store and measures it.
///
/// ```no_run
/// # async fn demo() -> Result<(), runcomfy_store::StoreError> {
/// use std::sync::Arc;
/// use runcomfy_store::{JobStore, TimedStore};
/// let timed = Arc::new(TimedStore::new(runcomfy_store::open("/tmp/jobs.db").await?));
/// let store: runcomfy_store::SharedStore = timed.clone(); // hand this one to the client
/// store.unfinished().await?;
/// let t = timed.timings();
/// println!("{} calls, {:.3} s in the store", t.calls, t.store_seconds);
/// # Ok(()) }
/// ```
pub struct TimedStore {
    inner: SharedStore,
    started: Instant,
    counts: [AtomicU64; OPS.len()],
    nanos: [AtomicU64; OPS.len()],
    rows: Mutex<Rows>,
}

/// The rows seen in claims, open and settled.
#[derive(Default)]
struct Rows {
    /// Rows in flight: when their claim was asked for, and their store time so far.
    open: HashMap<JobKey, (Instant, Duration)>,
    claimed: u64,
    settled: u64,
    /// Life and store time of the settled rows.
    life: Duration,
    store: Duration,
}

impl std::fmt::Debug for TimedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimedStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// What a [`TimedStore`] measured, from its creation to the moment it was read.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StoreTimings {
    /// Seconds since the wrapper was made.
    pub elapsed_seconds: f64,
    /// Calls of every operation.
    pub calls: u64,
    /// The wall time of every call, summed (calls that overlap each count in full).
    pub store_seconds: f64,
    /// Each operation that was called: its name, calls and summed seconds, in trait order.
    pub operations: Vec<OpTiming>,
    /// Batch rows handed out by claims.
    pub rows_claimed: u64,
    /// Of those, rows this worker settled (an end state, `uncertain`, `refused` or released).
    pub rows_settled: u64,
    /// The lives of the claimed rows (from the claim that handed each out to the call that
    /// settled it, or to now), summed.
    pub row_seconds: f64,
    /// The part of [`row_seconds`](Self::row_seconds) spent in store calls: the calls naming
    /// the row, and its whole claim.
    pub row_store_seconds: f64,
}

impl StoreTimings {
    /// The share of the rows' lives spent waiting on the store (0 when no row was claimed).
    pub fn row_store_share(&self) -> f64 {
        if self.row_seconds > 0.0 {
            self.row_store_seconds / self.row_seconds
        } else {
            0.0
        }
    }

    /// Store calls per settled row, every operation included (0 when none settled).
    pub fn calls_per_row(&self) -> f64 {
        if self.rows_settled > 0 {
            self.calls as f64 / self.rows_settled as f64
        } else {
            0.0
        }
    }
}

/// The calls of one operation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OpTiming {
    /// The [`JobStore`] method.
    pub name: &'static str,
    /// How many times it was called.
    pub calls: u64,
    /// Their wall time, summed.
    pub seconds: f64,
}

impl TimedStore {
    /// Wraps `inner`; the measures start now.
    pub fn new(inner: SharedStore) -> TimedStore {
        TimedStore {
            inner,
            started: Instant::now(),
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            nanos: std::array::from_fn(|_| AtomicU64::new(0)),
            rows: Mutex::new(Rows::default()),
        }
    }

    /// The store it wraps.
    pub fn inner(&self) -> &SharedStore {
        &self.inner
    }

    /// What was measured so far.
    pub fn timings(&self) -> StoreTimings {
        let now = Instant::now();
        let mut operations = Vec::new();
        let (mut calls, mut nanos) = (0u64, 0u64);
        for (i, name) in OPS.iter().enumerate() {
            let n = self.counts[i].load(Ordering::Relaxed);
            let t = self.nanos[i].load(Ordering::Relaxed);
            calls += n;
            nanos = nanos.saturating_add(t);
            if n > 0 && !name.is_empty() {
                operations.push(OpTiming {
                    name,
                    calls: n,
                    seconds: t as f64 / 1e9,
                });
            }
        }
        let rows = self.lock();
        let (mut life, mut store) = (rows.life, rows.store);
        for (start, spent) in rows.open.values() {
            life += now.saturating_duration_since(*start);
            store += *spent;
        }
        StoreTimings {
            elapsed_seconds: now.duration_since(self.started).as_secs_f64(),
            calls,
            store_seconds: nanos as f64 / 1e9,
            operations,
            rows_claimed: rows.claimed,
            rows_settled: rows.settled,
            row_seconds: life.as_secs_f64(),
            row_store_seconds: store.as_secs_f64(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rows> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one call of `name` that took `took`.
    fn count(&self, name: &str, took: Duration) {
        let i = op(name);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.nanos[i].fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Adds a call's time to the row it names; `settled`: the row is done for this worker.
    fn row(&self, key: JobKey, took: Duration, settled: bool) {
        let mut rows = self.lock();
        let Some(entry) = rows.open.get_mut(&key) else {
            return;
        };
        entry.1 += took;
        if settled {
            if let Some((start, spent)) = rows.open.remove(&key) {
                rows.settled += 1;
                rows.life += start.elapsed();
                rows.store += spent;
            }
        }
    }

    /// Runs one call of `name` on behalf of row `key` (if any); `settles` tells from its
    /// answer whether the row is done for this worker.
    async fn timed<T, F>(
        &self,
        name: &str,
        key: Option<JobKey>,
        call: F,
        settles: impl FnOnce(&T) -> bool,
    ) -> Result<T, StoreError>
    where
        F: std::future::Future<Output = Result<T, StoreError>>,
    {
        let start = Instant::now();
        let result = call.await;
        let took = start.elapsed();
        self.count(name, took);
        if let Some(key) = key {
            let settled = result.as_ref().is_ok_and(settles);
            self.row(key, took, settled);
        }
        result
    }
}

fn never<T>(_: &T) -> bool {
    false
}

fn always<T>(_: &T) -> bool {
    true
}

#[async_trait]
impl JobStore for TimedStore {
    fn location(&self) -> &Location {
        self.inner.location()
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.inner.close().await
    }

    async fn backup(&self, dest: &Path) -> Result<(), StoreError> {
        self.inner.backup(dest).await
    }

    async fn record_intent(&self, model_id: &str, input: &Value) -> Result<JobKey, StoreError> {
        self.timed(
            "record_intent",
            None,
            self.inner.record_intent(model_id, input),
            never,
        )
        .await
    }

    async fn record_submitted(&self, key: JobKey, request_id: &str) -> Result<(), StoreError> {
        self.timed(
            "record_submitted",
            Some(key),
            self.inner.record_submitted(key, request_id),
            never,
        )
        .await
    }

    async fn record_uncertain(&self, key: JobKey, error: &str) -> Result<(), StoreError> {
        self.timed(
            "record_uncertain",
            Some(key),
            self.inner.record_uncertain(key, error),
            always,
        )
        .await
    }

    async fn record_refused(&self, key: JobKey, error: &str) -> Result<(), StoreError> {
        self.timed(
            "record_refused",
            Some(key),
            self.inner.record_refused(key, error),
            always,
        )
        .await
    }

    async fn record_finished(&self, key: JobKey, finish: &Finish) -> Result<State, StoreError> {
        self.timed(
            "record_finished",
            Some(key),
            self.inner.record_finished(key, finish),
            |s: &State| s.is_settled(),
        )
        .await
    }

    async fn record_outputs_wanted(&self, key: JobKey, dir: &Path) -> Result<(), StoreError> {
        self.timed(
            "record_outputs_wanted",
            Some(key),
            self.inner.record_outputs_wanted(key, dir),
            never,
        )
        .await
    }

    async fn record_output_saved(
        &self,
        key: JobKey,
        url: &str,
        path: &Path,
    ) -> Result<State, StoreError> {
        self.timed(
            "record_output_saved",
            Some(key),
            self.inner.record_output_saved(key, url, path),
            |s: &State| s.is_settled(),
        )
        .await
    }

    async fn job(&self, key: JobKey) -> Result<Option<JobRecord>, StoreError> {
        self.timed("job", Some(key), self.inner.job(key), never)
            .await
    }

    async fn job_by_request_id(&self, request_id: &str) -> Result<Option<JobRecord>, StoreError> {
        self.timed(
            "job_by_request_id",
            None,
            self.inner.job_by_request_id(request_id),
            never,
        )
        .await
    }

    async fn outputs(&self, key: JobKey) -> Result<Vec<SavedOutput>, StoreError> {
        self.timed("outputs", Some(key), self.inner.outputs(key), never)
            .await
    }

    async fn outputs_of(&self, keys: &[JobKey]) -> Result<Vec<(JobKey, SavedOutput)>, StoreError> {
        self.timed("outputs_of", None, self.inner.outputs_of(keys), never)
            .await
    }

    async fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.timed("unfinished", None, self.inner.unfinished(), never)
            .await
    }

    async fn uncertain(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.timed("uncertain", None, self.inner.uncertain(), never)
            .await
    }

    async fn recent_jobs(&self, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        self.timed("recent_jobs", None, self.inner.recent_jobs(limit), never)
            .await
    }

    async fn duration_stats(&self, model_id: &str) -> Result<Option<DurationStats>, StoreError> {
        self.timed(
            "duration_stats",
            None,
            self.inner.duration_stats(model_id),
            never,
        )
        .await
    }

    async fn create_or_open_batch(
        &self,
        name: &str,
        model_id: &str,
        rows: Vec<NewRow>,
    ) -> Result<BatchInfo, StoreError> {
        self.timed(
            "create_or_open_batch",
            None,
            self.inner.create_or_open_batch(name, model_id, rows),
            never,
        )
        .await
    }

    async fn batch(&self, name: &str) -> Result<Option<BatchInfo>, StoreError> {
        self.timed("batch", None, self.inner.batch(name), never)
            .await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Claim, StoreError> {
        let start = Instant::now();
        let result = self.inner.claim(request).await;
        let took = start.elapsed();
        self.count("claim", took);
        if let Ok(claim) = &result {
            let mut rows = self.lock();
            for row in claim.submit.iter().chain(&claim.reattach) {
                // Each row of the claim waited for all of it.
                if rows.open.insert(row.key, (start, took)).is_none() {
                    rows.claimed += 1;
                }
            }
        }
        result
    }

    async fn heartbeat(&self, worker: &str, lease: Duration) -> Result<Lease, StoreError> {
        self.timed(
            "heartbeat",
            None,
            self.inner.heartbeat(worker, lease),
            never,
        )
        .await
    }

    async fn end_lease(&self, worker: &str) -> Result<(), StoreError> {
        self.timed("end_lease", None, self.inner.end_lease(worker), never)
            .await
    }

    async fn mark_submitting(&self, key: JobKey, worker: &str) -> Result<(), StoreError> {
        self.timed(
            "mark_submitting",
            Some(key),
            self.inner.mark_submitting(key, worker),
            never,
        )
        .await
    }

    async fn release(&self, key: JobKey, worker: &str) -> Result<(), StoreError> {
        self.timed(
            "release",
            Some(key),
            self.inner.release(key, worker),
            always,
        )
        .await
    }

    async fn let_go(&self, key: JobKey, worker: &str) -> Result<(), StoreError> {
        self.timed("let_go", Some(key), self.inner.let_go(key, worker), always)
            .await
    }

    async fn resubmit_uncertain(&self, batch: BatchId, lines: &[u64]) -> Result<u64, StoreError> {
        self.timed(
            "resubmit_uncertain",
            None,
            self.inner.resubmit_uncertain(batch, lines),
            never,
        )
        .await
    }

    async fn set_throttle_until(&self, until: SystemTime) -> Result<(), StoreError> {
        self.timed(
            "set_throttle_until",
            None,
            self.inner.set_throttle_until(until),
            never,
        )
        .await
    }

    async fn throttle_until(&self) -> Result<Option<SystemTime>, StoreError> {
        self.timed("throttle_until", None, self.inner.throttle_until(), never)
            .await
    }

    async fn batch_status(&self, name: &str) -> Result<BatchStatus, StoreError> {
        self.timed("batch_status", None, self.inner.batch_status(name), never)
            .await
    }

    async fn batch_rows(
        &self,
        batch: BatchId,
        filter: &RowFilter,
    ) -> Result<Vec<JobRecord>, StoreError> {
        self.timed(
            "batch_rows",
            None,
            self.inner.batch_rows(batch, filter),
            never,
        )
        .await
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn every_operation_has_a_slot() {
        // The names are the trait's methods, once each, and `op` finds each.
        for (i, name) in OPS.iter().enumerate().take(OPS.len() - 1) {
            assert_eq!(op(name), i);
        }
        assert_eq!(op("no such operation"), OPS.len() - 1);
    }

    #[tokio::test]
    async fn counts_calls_and_the_store_time_of_rows() {
        let dir = tempfile::tempdir().unwrap();
        let inner = crate::open(&dir.path().join("jobs.db").display().to_string())
            .await
            .unwrap();
        let timed = Arc::new(TimedStore::new(inner));
        let store: SharedStore = timed.clone();
        let rows = (1..=3)
            .map(|line| NewRow::new(line, json!({"prompt": line})))
            .collect();
        let batch = store
            .create_or_open_batch("timed", "acme/echo/text-to-image", rows)
            .await
            .unwrap();
        let claim = store
            .claim(&ClaimRequest::new(
                batch.id,
                "w",
                Duration::from_secs(60),
                2,
            ))
            .await
            .unwrap();
        assert_eq!(claim.submit.len(), 2);
        let (a, b) = (claim.submit[0].key, claim.submit[1].key);
        // Row a goes the whole way; row b is released.
        store.mark_submitting(a, "w").await.unwrap();
        store.record_submitted(a, "req-a").await.unwrap();
        let state = store
            .record_finished(a, &Finish::succeeded(json!({"image": "u"})))
            .await
            .unwrap();
        assert!(state.is_settled());
        let half = timed.timings();
        assert_eq!((half.rows_claimed, half.rows_settled), (2, 1));
        store.release(b, "w").await.unwrap();
        store.batch_status("timed").await.unwrap();

        let t = timed.timings();
        let calls: Vec<(&str, u64)> = t.operations.iter().map(|o| (o.name, o.calls)).collect();
        assert_eq!(
            calls,
            [
                ("record_submitted", 1),
                ("record_finished", 1),
                ("create_or_open_batch", 1),
                ("claim", 1),
                ("mark_submitting", 1),
                ("release", 1),
                ("batch_status", 1),
            ]
        );
        assert_eq!(t.calls, 7);
        assert_eq!((t.rows_claimed, t.rows_settled), (2, 2));
        assert!((t.calls_per_row() - 3.5).abs() < 1e-9);
        // Rows wait on the store only inside their lives; not every call is a row's.
        assert!(t.row_store_seconds > 0.0);
        assert!(t.row_store_seconds <= t.row_seconds);
        let summed: f64 = t.operations.iter().map(|o| o.seconds).sum();
        assert!((summed - t.store_seconds).abs() < 1e-6);
        assert!(t.row_store_share() > 0.0 && t.row_store_share() <= 1.0);
        // A settled row no longer grows.
        assert_eq!(timed.timings().row_seconds, t.row_seconds);
    }
}
