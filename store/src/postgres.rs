//! The shared backend: a PostgreSQL server (feature `postgres`).
//!
//! Workers on any number of machines share one database. A claim is one transaction that
//! takes a transaction-scoped advisory lock (so the concurrency cap and the budget are
//! counted by one claimer at a time), locks the batch's row, and picks rows with
//! `FOR UPDATE SKIP LOCKED`. Every other step is one statement (a data-modifying `WITH` where
//! a row and its batch's totals change together), so a job costs few round trips.
//!
//! Connections come from a small pool (`deadpool-postgres`), without TLS: use a local server,
//! a Unix socket (`postgres://user@%2Fvar%2Frun%2Fpostgresql/db`) or a tunnel.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use serde_json::Value;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::clock::Clock;
use crate::error::{Message, StoreError};
use crate::hash::input_sha256;
use crate::location::{Location, Secret};
use crate::migrate;
use crate::record::{
    check_usd, error_text, status_from_counts, PreparedRows, RawJob, DIED_SUBMITTING, JOB_COLUMNS,
    JOB_COLUMN_COUNT, NULL_COLUMNS,
};
use crate::types::{
    duration_millis, from_millis, to_millis, BatchId, BatchInfo, BatchStatus, CheckReport, Claim,
    ClaimRequest, DurationStats, Finish, JobKey, JobRecord, Lease, NewRow, Outcome, RowFilter,
    SavedOutput, State, DURATION_SAMPLE,
};
use crate::{JobStore, OpenOptions};

/// The advisory lock claims and migrations take (any constant unlikely to be used by others).
const LOCK_KEY: i64 = 0x7275_6e63_6f6d_6679; // "runcomfy"

/// A claim's look at the queue: rows in flight, the batch's total, and the first queued rows
/// that fit under the cap (`$3`, NULL: none), plus `$4` more to peek at.
const PICK_SQL: &str = "WITH inflight AS (SELECT COUNT(*) AS n FROM runcomfy_jobs \
         WHERE state IN ('claimed', 'submitting', 'submitted') AND batch_id IS NOT NULL), \
     bat AS (SELECT committed_usd FROM runcomfy_batches WHERE id = $1 /*lock*/), \
     pick AS (SELECT id, COALESCE(estimated_cost_usd, 0) AS est, line FROM runcomfy_jobs \
         WHERE batch_id = $1 AND state = 'queued' ORDER BY line \
         LIMIT GREATEST(0, LEAST($2::bigint, COALESCE($3::bigint - (SELECT n FROM inflight), $2::bigint))) + $4::bigint \
         FOR UPDATE SKIP LOCKED) \
     SELECT (SELECT n FROM inflight), (SELECT committed_usd FROM bat), \
         COALESCE(ARRAY(SELECT id FROM pick ORDER BY line), '{}'), \
         COALESCE(ARRAY(SELECT est FROM pick ORDER BY line), '{}')";

/// Rows inserted per statement when a batch is created.
const INSERT_CHUNK: usize = 5_000;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL store. Open it with [`crate::open`] or [`PgStore::open`].
pub struct PgStore {
    location: Location,
    printable: String,
    pool: Pool,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.location)
            .finish()
    }
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl PgStore {
    /// Connects to the server at `url`, checks the schema version and migrates.
    ///
    /// Fails with [`StoreError::Unavailable`] when the server cannot be reached, and
    /// [`StoreError::SchemaTooNew`] when the database was made by a newer version.
    pub async fn open(url: Secret, options: OpenOptions) -> Result<PgStore, StoreError> {
        let location = Location::Postgres(url.clone());
        let printable = location.to_string();
        let mut config = tokio_postgres::Config::from_str(url.expose()).map_err(|e| {
            StoreError::BadLocation {
                location: printable.clone(),
                reason: e.to_string(),
            }
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("runcomfy");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::BadLocation {
                location: printable.clone(),
                reason: e.to_string(),
            })?;
        let store = PgStore {
            location,
            printable,
            pool,
            clock: options.clock,
        };
        store.migrate().await?;
        Ok(store)
    }

    fn now(&self) -> i64 {
        to_millis(self.clock.now())
    }

    /// A driver error: `Unavailable` when the connection failed, `Database` otherwise.
    fn db(&self, e: tokio_postgres::Error) -> StoreError {
        let lost = match e.as_db_error() {
            None => true,
            // Connection exceptions, and the server shutting down or starting.
            Some(db) => {
                let code = db.code().code();
                code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
            }
        };
        let location = self.printable.clone();
        let source = Box::new(PgError(e));
        if lost {
            StoreError::Unavailable { location, source }
        } else {
            StoreError::Database { location, source }
        }
    }

    /// Waits a little before the next attempt of a step the server aborted for a deadlock or
    /// a serialization failure (the aborted transaction changed nothing, so it is run again).
    async fn conflict_backoff(attempt: u32) {
        tokio::time::sleep(Duration::from_millis(2 + 5 * u64::from(attempt))).await;
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Unavailable {
            location: self.printable.clone(),
            source: Box::new(Message(e.to_string())),
        })
    }

    /// Hands a connection back to the pool, or drops it when the step failed because the
    /// connection was lost (the server may have closed it without the pool noticing yet).
    fn settle<T>(&self, client: Object, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if matches!(&result, Err(e) if e.is_unavailable()) {
            drop(Object::take(client));
        }
        result
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let result: Result<_, StoreError> = async {
        let tx = client.transaction().await.map_err(|e| self.db(e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
            .await
            .map_err(|e| self.db(e))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS runcomfy_schema (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await
        .map_err(|e| self.db(e))?;
        let current: i64 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM runcomfy_schema", &[])
            .await
            .map_err(|e| self.db(e))?
            .get(0);
        for m in migrate::pending(current, migrate::POSTGRES, &self.printable)? {
            tx.batch_execute(m.sql).await.map_err(|e| self.db(e))?;
            tx.execute(
                "INSERT INTO runcomfy_schema (version, applied_at) VALUES ($1, $2)",
                &[&m.version, &self.now()],
            )
            .await
            .map_err(|e| self.db(e))?;
        }
        tx.commit().await.map_err(|e| self.db(e))
        }
        .await;
        self.settle(client, result)
    }

    /// Runs `step` again, after a short pause, while the server aborts it as a conflict
    /// (deadlock, serialization failure: it changed nothing), at most [`CONFLICT_ATTEMPTS`]
    /// more times.
    async fn retry_conflicts<T, F, Fut>(mut step: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut attempt = 0;
        loop {
            match step().await {
                Err(e) if is_conflict(&e) && attempt < CONFLICT_ATTEMPTS => {
                    attempt += 1;
                    Self::conflict_backoff(attempt).await;
                }
                other => return other,
            }
        }
    }

    /// Runs one statement and returns its rows.
    /// The jobs by state, for [`crate::check`] (the server keeps its own files whole).
    pub async fn count_jobs(&self) -> Result<CheckReport, StoreError> {
        let mut report = CheckReport::default();
        for row in self
            .query(
                "SELECT state, COUNT(*) FROM runcomfy_jobs GROUP BY state",
                &[],
            )
            .await?
        {
            let state: String = row.try_get(0).map_err(|e| self.db(e))?;
            let n: i64 = row.try_get(1).map_err(|e| self.db(e))?;
            report.jobs.insert(state, u64::try_from(n).unwrap_or(0));
        }
        Ok(report)
    }

    async fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        Self::retry_conflicts(|| async {
            let client = self.client().await?;
            let result = async {
                let stmt = client.prepare_cached(sql).await.map_err(|e| self.db(e))?;
                client.query(&stmt, params).await.map_err(|e| self.db(e))
            }
            .await;
            self.settle(client, result)
        })
        .await
    }

    /// Runs one statement and returns the rows it changed.
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        Self::retry_conflicts(|| async {
            let client = self.client().await?;
            let result = async {
                let stmt = client.prepare_cached(sql).await.map_err(|e| self.db(e))?;
                client.execute(&stmt, params).await.map_err(|e| self.db(e))
            }
            .await;
            self.settle(client, result)
        })
        .await
    }

    async fn jobs(&self, sql: &str, params: Params<'_>) -> Result<Vec<JobRecord>, StoreError> {
        self.query(sql, params)
            .await?
            .iter()
            .map(|row| self.record(row))
            .collect()
    }

    fn record(&self, row: &Row) -> Result<JobRecord, StoreError> {
        raw_job(row)
            .map_err(|e| self.db(e))?
            .into_record(&self.printable)
    }

    async fn brief(&self, key: JobKey) -> Result<Brief, StoreError> {
        let rows = self
            .query(
                "SELECT state, batch_id, worker_id, request_id FROM runcomfy_jobs WHERE id = $1",
                &[&key.0],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Err(StoreError::UnknownJob(key));
        };
        let state: String = row.try_get(0).map_err(|e| self.db(e))?;
        let state = state
            .parse::<State>()
            .map_err(|detail| StoreError::Corrupt {
                location: self.printable.clone(),
                key,
                what: "state",
                detail,
            })?;
        Ok(Brief {
            state,
            batch_id: row.try_get(1).map_err(|e| self.db(e))?,
            worker: row.try_get(2).map_err(|e| self.db(e))?,
            request_id: row.try_get(3).map_err(|e| self.db(e))?,
        })
    }

    async fn batch_info(&self, name: &str) -> Result<Option<(BatchInfo, String, f64)>, StoreError> {
        let rows = self
            .query(
                "SELECT id, model_id, row_count, rows_sha256, committed_usd FROM runcomfy_batches WHERE name = $1",
                &[&name],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let get = |e| self.db(e);
        Ok(Some((
            BatchInfo {
                id: BatchId(row.try_get(0).map_err(get)?),
                name: name.to_owned(),
                model_id: row.try_get(1).map_err(get)?,
                rows: u64::try_from(row.try_get::<_, i64>(2).map_err(get)?).unwrap_or(0),
                created: false,
            },
            row.try_get(3).map_err(get)?,
            row.try_get(4).map_err(get)?,
        )))
    }

    async fn claim_in(&self, request: &ClaimRequest) -> Result<Claim, StoreError> {
        let now = self.now();
        let lease_until = now.saturating_add(duration_millis(request.lease));
        let worker = request.worker.as_str();
        let batch = request.batch.0;
        let db = |e| self.db(e);

        // 1. Renew this worker's lease; read the throttle and the workers whose lease expired.
        let head = self
            .query(
                "WITH up AS (INSERT INTO runcomfy_workers (worker_id, lease_until) VALUES ($1, $2) \
                     ON CONFLICT (worker_id) DO UPDATE \
                     SET lease_until = GREATEST(runcomfy_workers.lease_until, EXCLUDED.lease_until) \
                     RETURNING 1) \
                 SELECT EXISTS (SELECT 1 FROM runcomfy_batches WHERE id = $4), \
                     (SELECT until_ms FROM runcomfy_throttle WHERE id = 1), \
                     ARRAY(SELECT worker_id FROM runcomfy_workers WHERE lease_until < $3 AND worker_id <> $1), \
                     (SELECT COUNT(*) FROM up)",
                &[&worker, &lease_until, &now, &batch],
            )
            .await?;
        let head = first(&head, &self.printable)?;
        if !head.try_get::<_, bool>(0).map_err(db)? {
            return Err(StoreError::UnknownBatch(format!("#{batch}")));
        }
        let throttle: Option<i64> = head.try_get(1).map_err(db)?;
        let dead: Vec<String> = head.try_get(2).map_err(db)?;

        // 2. Take back the rows of workers whose lease expired (rare). Row locks make two
        //    claimers doing this at once move each row once.
        let mut newly_uncertain = 0;
        for gone in &dead {
            newly_uncertain += self.reap(gone, now).await?;
        }

        // 3. Rows with a request id and no live worker: re-attach them. They are counted in
        //    flight already, so this needs no lock.
        let want = i64::try_from(request.want).unwrap_or(i64::MAX);
        let skip: Vec<i64> = request.skip.iter().map(|k| k.0).collect();
        let mut reattach = if want > 0 {
            self.jobs(
                &format!(
                    "UPDATE runcomfy_jobs SET worker_id = $2, updated_at = $3 WHERE id IN ( \
                         SELECT id FROM runcomfy_jobs WHERE batch_id = $1 AND worker_id IS NULL \
                         AND state IN ('submitted', 'saving') AND NOT (id = ANY($5)) \
                         ORDER BY line LIMIT $4 FOR UPDATE SKIP LOCKED) \
                     RETURNING {JOB_COLUMNS}"
                ),
                &[&batch, &worker, &now, &want, &skip],
            )
            .await?
        } else {
            Vec::new()
        };
        reattach.sort_by_key(|job| job.batch.map(|(_, line)| line));

        // 4. New rows, within the cap and the budget: counted by one claimer at a time.
        let wanted_new = (request.want - reattach.len()) as u64;
        let guarded = request.max_in_flight.is_some() || request.budget_usd.is_some();
        // A transaction the server aborted (deadlock, serialization failure) took nothing:
        // it is run again.
        let (taken, mut in_flight, capped, over_budget) = Self::retry_conflicts(|| async {
            let mut client = self.client().await?;
            let result: Result<_, StoreError> = async {
        let tx = client.transaction().await.map_err(db)?;
        if guarded {
            tx_execute(&tx, "SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
                .await
                .map_err(db)?;
        }
        // With a budget, look one row further to know whether the next one fits; and lock the
        // batch's row so no end of a job moves its total meanwhile.
        let cap = request
            .max_in_flight
            .map(|c| i64::try_from(c).unwrap_or(i64::MAX));
        let peek = i64::from(request.budget_usd.is_some());
        let wanted_new_sql = i64::try_from(wanted_new).unwrap_or(i64::MAX);
        let pick_sql = if request.budget_usd.is_some() {
            PICK_SQL.replace("/*lock*/", "FOR UPDATE")
        } else {
            PICK_SQL.replace("/*lock*/", "")
        };
        let picked = tx_query(&tx, &pick_sql, &[&batch, &wanted_new_sql, &cap, &peek])
            .await
            .map_err(db)?;
        let picked = first(&picked, &self.printable)?;
        let in_flight_before: i64 = picked.try_get(0).map_err(db)?;
        let committed: f64 = picked.try_get(1).map_err(db)?;
        let ids: Vec<i64> = picked.try_get(2).map_err(db)?;
        let estimates: Vec<f64> = picked.try_get(3).map_err(db)?;
        let in_flight = u64::try_from(in_flight_before).unwrap_or(0);
        let room = match request.max_in_flight {
            Some(cap) => wanted_new.min(cap.saturating_sub(in_flight)),
            None => wanted_new,
        };
        let capped = room < wanted_new;
        let mut over_budget = false;
        let mut chosen: Vec<i64> = Vec::new();
        let mut added = 0.0;
        for (i, (id, estimate)) in ids.iter().zip(&estimates).enumerate() {
            if let Some(budget) = request.budget_usd {
                if committed + added + estimate > budget + 1e-9 {
                    over_budget = true;
                    break;
                }
            }
            if i as u64 >= room {
                break;
            }
            chosen.push(*id);
            added += estimate;
        }
        let taken = tx_query(
            &tx,
            &format!(
                "WITH took AS (UPDATE runcomfy_jobs SET state = 'claimed', worker_id = $2, updated_at = $3, \
                     charged_usd = COALESCE(estimated_cost_usd, 0) \
                     WHERE id = ANY($1) AND state = 'queued' RETURNING {JOB_COLUMNS}), \
                 bat AS (UPDATE runcomfy_batches SET committed_usd = committed_usd + $5::float8 \
                     WHERE id = $4 AND $5::float8 <> 0) \
                 SELECT {JOB_COLUMNS}, EXISTS (SELECT 1 FROM runcomfy_jobs \
                     WHERE batch_id = $4 AND state = 'queued' AND id <> ALL($1)) FROM took \
                 UNION ALL SELECT {NULL_COLUMNS}, EXISTS (SELECT 1 FROM runcomfy_jobs \
                     WHERE batch_id = $4 AND state = 'queued' AND id <> ALL($1)) \
                 ORDER BY 1 NULLS LAST"
            ),
            &[&chosen, &worker, &now, &batch, &added],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok((taken, in_flight, capped, over_budget))
        }
        .await;
            self.settle(client, result)
        })
        .await?;
        let more_queued: bool = match taken.last() {
            Some(row) => row.try_get(JOB_COLUMN_COUNT).map_err(db)?,
            None => false,
        };
        let mut submit = taken
            .iter()
            .filter(|row| matches!(row.try_get::<_, Option<i64>>(0), Ok(Some(_))))
            .map(|row| self.record(row))
            .collect::<Result<Vec<_>, _>>()?;
        submit.sort_by_key(|job| job.batch.map(|(_, line)| line));
        in_flight += submit.len() as u64;
        Ok(Claim {
            submit,
            reattach,
            newly_uncertain,
            in_flight,
            capped,
            over_budget,
            more_queued,
            throttle_until: throttle.filter(|&t| t > now).map(from_millis),
        })
    }

    /// Takes back the rows of a worker whose lease expired; returns how many became uncertain.
    async fn reap(&self, gone: &str, now: i64) -> Result<u64, StoreError> {
        Self::retry_conflicts(|| self.reap_once(gone, now)).await
    }

    async fn reap_once(&self, gone: &str, now: i64) -> Result<u64, StoreError> {
        let db = |e| self.db(e);
        let mut client = self.client().await?;
        let result: Result<_, StoreError> = async {
        let tx = client.transaction().await.map_err(db)?;
        // First the worker's row, only if its lease is still expired: a heartbeat racing with
        // this waits for the commit, then finds the row gone and reports the lease lost.
        let expired = tx_execute(
            &tx,
            "DELETE FROM runcomfy_workers WHERE worker_id = $1 AND lease_until < $2",
            &[&gone, &now],
        )
        .await
        .map_err(db)?;
        if expired == 0 {
            return Ok(0);
        }
        tx_execute(
            &tx,
            "WITH old AS (SELECT id, batch_id, charged_usd FROM runcomfy_jobs \
                 WHERE worker_id = $1 AND state = 'claimed' FOR UPDATE), \
             upd AS (UPDATE runcomfy_jobs j SET state = 'queued', worker_id = NULL, charged_usd = 0, \
                 updated_at = $2 FROM old WHERE j.id = old.id RETURNING old.batch_id, old.charged_usd), \
             sums AS (SELECT batch_id, SUM(charged_usd) AS total FROM upd GROUP BY batch_id) \
             UPDATE runcomfy_batches b SET committed_usd = GREATEST(0, b.committed_usd - sums.total) \
             FROM sums WHERE b.id = sums.batch_id",
            &[&gone, &now],
        )
        .await
        .map_err(db)?;
        let uncertain = tx_execute(
            &tx,
            "UPDATE runcomfy_jobs SET state = 'uncertain', worker_id = NULL, error = $2, updated_at = $3 \
             WHERE worker_id = $1 AND state = 'submitting'",
            &[&gone, &error_text(DIED_SUBMITTING), &now],
        )
        .await
        .map_err(db)?;
        // Claimed and submitting rows are never freed here: a claim the gone worker (alive but late:
        // its lease ran out while it worked) committed after the statements above keeps its
        // worker, so the next reap moves it; freed, it would stay `claimed` by nobody forever.
        tx_execute(
            &tx,
            "UPDATE runcomfy_jobs SET worker_id = NULL WHERE worker_id = $1 AND state NOT IN ('claimed', 'submitting')",
            &[&gone],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(uncertain)
        }
        .await;
        self.settle(client, result)
    }

    async fn create_batch(
        &self,
        name: &str,
        model_id: &str,
        prepared: &PreparedRows,
    ) -> Result<Option<BatchInfo>, StoreError> {
        let now = self.now();
        let db = |e| self.db(e);
        let mut client = self.client().await?;
        let result: Result<_, StoreError> = async {
            let tx = client.transaction().await.map_err(db)?;
            let count = prepared.rows.len() as i64;
            // A concurrent creator of the same name makes this wait, then insert nothing.
            let created = tx
            .query_opt(
                "INSERT INTO runcomfy_batches (name, model_id, row_count, rows_sha256, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING RETURNING id",
                &[&name, &model_id, &count, &prepared.digest, &now],
            )
            .await
            .map_err(db)?;
            let Some(created) = created else {
                return Ok(None);
            };
            let id: i64 = created.try_get(0).map_err(db)?;
            let insert = tx
            .prepare_cached(
                "INSERT INTO runcomfy_jobs (batch_id, line, model_id, input, input_sha256, state, \
                 estimated_cost_usd, created_at, updated_at) \
                 SELECT $1, l, $2, i, h, 'queued', e, $3, $3 \
                 FROM unnest($4::bigint[], $5::text[], $6::text[], $7::float8[]) AS t (l, i, h, e)",
            )
            .await
            .map_err(db)?;
            for chunk in prepared.rows.chunks(INSERT_CHUNK) {
                let lines: Vec<i64> = chunk.iter().map(|r| r.0).collect();
                let inputs: Vec<&str> = chunk.iter().map(|r| r.1.as_str()).collect();
                let hashes: Vec<&str> = chunk.iter().map(|r| r.2.as_str()).collect();
                let estimates: Vec<Option<f64>> = chunk.iter().map(|r| r.3).collect();
                tx.execute(
                    &insert,
                    &[&id, &model_id, &now, &lines, &inputs, &hashes, &estimates],
                )
                .await
                .map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
            Ok(Some(BatchInfo {
                id: BatchId(id),
                name: name.to_owned(),
                model_id: model_id.to_owned(),
                rows: count as u64,
                created: true,
            }))
        }
        .await;
        self.settle(client, result)
    }
}

/// A driver error that shows the server's message (the driver's own says only "db error").
/// How many times a step the server aborted for a deadlock or a serialization failure is
/// run again before its error is returned.
const CONFLICT_ATTEMPTS: u32 = 8;

/// True when the server aborted the step's transaction for a deadlock (`40P01`) or a
/// serialization failure (`40001`): nothing of it was committed, so running it again is safe.
fn is_conflict(e: &StoreError) -> bool {
    let StoreError::Database { source, .. } = e else {
        return false;
    };
    source
        .downcast_ref::<PgError>()
        .and_then(|pg| pg.0.as_db_error())
        .is_some_and(|db| matches!(db.code().code(), "40P01" | "40001"))
}

#[derive(Debug)]
struct PgError(tokio_postgres::Error);

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_db_error() {
            Some(db) => write!(f, "{} ({})", db.message(), db.code().code()),
            None => match std::error::Error::source(&self.0) {
                Some(cause) => write!(f, "{}: {cause}", self.0),
                None => write!(f, "{}", self.0),
            },
        }
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// A job's state, batch, worker and request id.
struct Brief {
    state: State,
    batch_id: Option<i64>,
    worker: Option<String>,
    request_id: Option<String>,
}

fn held_error(key: JobKey, b: &Brief, worker: &str, action: &'static str) -> StoreError {
    if b.batch_id.is_some() && b.worker.as_deref() != Some(worker) {
        StoreError::LeaseLost {
            key,
            worker: worker.to_owned(),
        }
    } else {
        StoreError::InvalidState {
            key,
            state: b.state,
            action,
        }
    }
}

fn raw_job(row: &Row) -> Result<RawJob, tokio_postgres::Error> {
    Ok(RawJob {
        id: row.try_get(0)?,
        batch_id: row.try_get(1)?,
        line: row.try_get(2)?,
        model_id: row.try_get(3)?,
        input: row.try_get(4)?,
        input_sha256: row.try_get(5)?,
        state: row.try_get(6)?,
        request_id: row.try_get(7)?,
        worker_id: row.try_get(8)?,
        output: row.try_get(9)?,
        error: row.try_get(10)?,
        cost_usd: row.try_get(11)?,
        estimated_cost_usd: row.try_get(12)?,
        created_at: row.try_get(13)?,
        submitted_at: row.try_get(14)?,
        finished_at: row.try_get(15)?,
        run_ms: row.try_get(16)?,
        outputs_dir: row.try_get(17)?,
    })
}

#[async_trait]
impl JobStore for PgStore {
    fn location(&self) -> &Location {
        &self.location
    }

    async fn record_intent(&self, model_id: &str, input: &Value) -> Result<JobKey, StoreError> {
        let text = input.to_string();
        let hash = input_sha256(input);
        let rows = self
            .query(
                "INSERT INTO runcomfy_jobs (model_id, input, input_sha256, state, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'submitting', $4, $4) RETURNING id",
                &[&model_id, &text, &hash, &self.now()],
            )
            .await?;
        let row = rows.first().ok_or_else(|| StoreError::Database {
            location: self.printable.clone(),
            source: Box::new(Message("the insert returned no id".into())),
        })?;
        Ok(JobKey(row.try_get(0).map_err(|e| self.db(e))?))
    }

    async fn record_submitted(&self, key: JobKey, request_id: &str) -> Result<(), StoreError> {
        let done = self
            .execute(
                "UPDATE runcomfy_jobs SET state = 'submitted', request_id = $2, error = NULL, \
                 submitted_at = $3, updated_at = $3 \
                 WHERE id = $1 AND request_id IS NULL AND state IN ('submitting', 'uncertain')",
                &[&key.0, &request_id, &self.now()],
            )
            .await?;
        if done == 1 {
            return Ok(());
        }
        let b = self.brief(key).await?;
        if b.request_id.as_deref() == Some(request_id) {
            return Ok(());
        }
        Err(StoreError::InvalidState {
            key,
            state: b.state,
            action: "record a request id",
        })
    }

    async fn record_uncertain(&self, key: JobKey, error: &str) -> Result<(), StoreError> {
        let done = self
            .execute(
                "UPDATE runcomfy_jobs SET state = 'uncertain', error = $2, updated_at = $3 \
                 WHERE id = $1 AND state = 'submitting'",
                &[&key.0, &error_text(error), &self.now()],
            )
            .await?;
        if done == 1 {
            return Ok(());
        }
        match self.brief(key).await?.state {
            State::Uncertain => Ok(()),
            state => Err(StoreError::InvalidState {
                key,
                state,
                action: "record an uncertain submit",
            }),
        }
    }

    async fn record_refused(&self, key: JobKey, error: &str) -> Result<(), StoreError> {
        let rows = self
            .query(
                "WITH old AS (SELECT id, batch_id, charged_usd FROM runcomfy_jobs \
                     WHERE id = $1 AND state IN ('claimed', 'submitting') FOR UPDATE), \
                 upd AS (UPDATE runcomfy_jobs j SET state = 'refused', error = $2, finished_at = $3, \
                     updated_at = $3, charged_usd = 0 FROM old WHERE j.id = old.id \
                     RETURNING old.batch_id, old.charged_usd), \
                 bat AS (UPDATE runcomfy_batches b SET committed_usd = GREATEST(0, b.committed_usd - upd.charged_usd) \
                     FROM upd WHERE b.id = upd.batch_id) \
                 SELECT COUNT(*) FROM upd",
                &[&key.0, &error_text(error), &self.now()],
            )
            .await?;
        if count(&rows) == 1 {
            return Ok(());
        }
        match self.brief(key).await?.state {
            State::Refused => Ok(()),
            state => Err(StoreError::InvalidState {
                key,
                state,
                action: "record a refused submit",
            }),
        }
    }

    async fn record_finished(&self, key: JobKey, finish: &Finish) -> Result<State, StoreError> {
        check_usd("a cost", finish.cost_usd)?;
        let mut wanted = finish.wanted_outputs.clone();
        wanted.sort();
        wanted.dedup();
        let (state, output, error) = match &finish.outcome {
            Outcome::Succeeded(output) if wanted.is_empty() => {
                (State::Succeeded, Some(output.to_string()), None)
            }
            Outcome::Succeeded(output) => (State::Saving, Some(output.to_string()), None),
            Outcome::Failed(error) => (State::Failed, None, Some(error.to_string())),
            Outcome::Cancelled => (State::Cancelled, None, None),
            Outcome::Expired(error) => (State::Expired, None, Some(error.to_string())),
        };
        if state != State::Saving {
            wanted.clear();
        }
        let run_ms = finish.run_time.map(duration_millis);
        let rows = self
            .query(
                "WITH old AS (SELECT id, batch_id, charged_usd FROM runcomfy_jobs \
                     WHERE id = $1 AND state = 'submitted' FOR UPDATE), \
                 upd AS (UPDATE runcomfy_jobs j SET state = $2, output = $3, error = $4, cost_usd = $5, \
                     finished_at = $6, updated_at = $6, run_ms = $7, \
                     charged_usd = COALESCE($5, old.charged_usd) \
                     FROM old WHERE j.id = old.id \
                     RETURNING old.batch_id, old.charged_usd, j.charged_usd AS new_charged), \
                 outs AS (INSERT INTO runcomfy_outputs (job_id, url) \
                     SELECT $1, u FROM unnest($8::text[]) AS u WHERE EXISTS (SELECT 1 FROM upd) \
                     ON CONFLICT DO NOTHING), \
                 bat AS (UPDATE runcomfy_batches b \
                     SET committed_usd = GREATEST(0, b.committed_usd + upd.new_charged - upd.charged_usd) \
                     FROM upd WHERE b.id = upd.batch_id) \
                 SELECT COUNT(*) FROM upd",
                &[
                    &key.0,
                    &state.as_str(),
                    &output,
                    &error,
                    &finish.cost_usd,
                    &self.now(),
                    &run_ms,
                    &wanted,
                ],
            )
            .await?;
        if count(&rows) == 1 {
            return Ok(state);
        }
        match self.brief(key).await?.state {
            state @ (State::Saving
            | State::Succeeded
            | State::Failed
            | State::Cancelled
            | State::Expired) => Ok(state),
            state => Err(StoreError::InvalidState {
                key,
                state,
                action: "record the end of a job not submitted",
            }),
        }
    }

    async fn record_outputs_wanted(&self, key: JobKey, dir: &Path) -> Result<(), StoreError> {
        let dir = dir.to_string_lossy().into_owned();
        let done = self
            .execute(
                "UPDATE runcomfy_jobs SET outputs_dir = $2, updated_at = $3 WHERE id = $1",
                &[&key.0, &dir, &self.now()],
            )
            .await?;
        if done == 1 {
            Ok(())
        } else {
            Err(StoreError::UnknownJob(key))
        }
    }

    async fn record_output_saved(
        &self,
        key: JobKey,
        url: &str,
        path: &Path,
    ) -> Result<State, StoreError> {
        let path = path.to_string_lossy().into_owned();
        let now = self.now();
        let db = |e| self.db(e);
        let mut client = self.client().await?;
        let result: Result<_, StoreError> = async {
        let tx = client.transaction().await.map_err(db)?;
        // Locking the job serializes the saves of its outputs, so the last one sees the others.
        let row = tx
            .query_opt(
                "SELECT state FROM runcomfy_jobs WHERE id = $1 FOR UPDATE",
                &[&key.0],
            )
            .await
            .map_err(db)?;
        let Some(row) = row else {
            return Err(StoreError::UnknownJob(key));
        };
        let state: String = row.try_get(0).map_err(db)?;
        let state = state
            .parse::<State>()
            .map_err(|detail| StoreError::Corrupt {
                location: self.printable.clone(),
                key,
                what: "state",
                detail,
            })?;
        if !matches!(state, State::Saving | State::Succeeded) {
            return Err(StoreError::InvalidState {
                key,
                state,
                action: "record a saved output of a job that did not succeed",
            });
        }
        tx_execute(
            &tx,
            "INSERT INTO runcomfy_outputs (job_id, url, path, saved_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (job_id, url) DO UPDATE SET path = EXCLUDED.path, saved_at = EXCLUDED.saved_at",
            &[&key.0, &url, &path, &now],
        )
        .await
        .map_err(db)?;
        let mut result = state;
        if state == State::Saving {
            let done = tx_execute(
                    &tx,
                    "UPDATE runcomfy_jobs SET state = 'succeeded', updated_at = $2 WHERE id = $1 \
                     AND NOT EXISTS (SELECT 1 FROM runcomfy_outputs WHERE job_id = $1 AND path IS NULL)",
                    &[&key.0, &now],
                )
                .await
                .map_err(db)?;
            if done == 1 {
                result = State::Succeeded;
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(result)
        }
        .await;
        self.settle(client, result)
    }

    async fn job(&self, key: JobKey) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM runcomfy_jobs WHERE id = $1");
        Ok(self.jobs(&sql, &[&key.0]).await?.into_iter().next())
    }

    async fn job_by_request_id(&self, request_id: &str) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM runcomfy_jobs WHERE request_id = $1");
        Ok(self.jobs(&sql, &[&request_id]).await?.into_iter().next())
    }

    async fn outputs(&self, key: JobKey) -> Result<Vec<SavedOutput>, StoreError> {
        self.query(
            "SELECT url, path FROM runcomfy_outputs WHERE job_id = $1 ORDER BY url",
            &[&key.0],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(SavedOutput {
                url: r.try_get(0).map_err(|e| self.db(e))?,
                path: r
                    .try_get::<_, Option<String>>(1)
                    .map_err(|e| self.db(e))?
                    .map(PathBuf::from),
            })
        })
        .collect()
    }

    async fn outputs_of(&self, keys: &[JobKey]) -> Result<Vec<(JobKey, SavedOutput)>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        self.query(
            "SELECT job_id, url, path FROM runcomfy_outputs WHERE job_id = ANY($1) \
             ORDER BY job_id, url",
            &[&ids],
        )
        .await?
        .iter()
        .map(|r| {
            Ok((
                JobKey(r.try_get(0).map_err(|e| self.db(e))?),
                SavedOutput {
                    url: r.try_get(1).map_err(|e| self.db(e))?,
                    path: r
                        .try_get::<_, Option<String>>(2)
                        .map_err(|e| self.db(e))?
                        .map(PathBuf::from),
                },
            ))
        })
        .collect()
    }

    async fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM runcomfy_jobs WHERE state IN ('submitted', 'saving') \
             AND batch_id IS NULL ORDER BY id"
        );
        self.jobs(&sql, &[]).await
    }

    async fn uncertain(&self) -> Result<Vec<JobRecord>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM runcomfy_jobs WHERE state IN ('submitting', 'uncertain') \
             AND batch_id IS NULL ORDER BY id"
        );
        self.jobs(&sql, &[]).await
    }

    async fn recent_jobs(&self, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM runcomfy_jobs WHERE batch_id IS NULL ORDER BY id DESC LIMIT $1"
        );
        self.jobs(&sql, &[&limit]).await
    }

    async fn duration_stats(&self, model_id: &str) -> Result<Option<DurationStats>, StoreError> {
        let millis = self
            .query(
                "SELECT run_ms FROM runcomfy_jobs WHERE model_id = $1 AND run_ms IS NOT NULL \
                 AND state IN ('succeeded', 'saving') ORDER BY finished_at DESC LIMIT $2",
                &[&model_id, &(DURATION_SAMPLE as i64)],
            )
            .await?
            .iter()
            .map(|r| r.try_get::<_, i64>(0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.db(e))?;
        Ok(DurationStats::from_millis(millis))
    }

    async fn create_or_open_batch(
        &self,
        name: &str,
        model_id: &str,
        rows: Vec<NewRow>,
    ) -> Result<BatchInfo, StoreError> {
        let prepared = tokio::task::spawn_blocking(move || PreparedRows::new(rows))
            .await
            .map_err(|e| StoreError::InvalidArgument(format!("hashing the rows failed: {e}")))??;
        if self.batch_info(name).await?.is_none() {
            if let Some(info) = self.create_batch(name, model_id, &prepared).await? {
                return Ok(info);
            }
        }
        let Some((info, digest, _)) = self.batch_info(name).await? else {
            return Err(StoreError::UnknownBatch(name.to_owned()));
        };
        if info.model_id != model_id {
            return Err(StoreError::BatchMismatch {
                name: name.to_owned(),
                detail: format!("its model is {}, not {model_id}", info.model_id),
            });
        }
        if digest != prepared.digest {
            let stored = self
                .query(
                    "SELECT line, input_sha256 FROM runcomfy_jobs WHERE batch_id = $1 ORDER BY line",
                    &[&info.id.0],
                )
                .await?
                .iter()
                .map(|r| Ok((r.try_get::<_, i64>(0)?, r.try_get::<_, String>(1)?)))
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()
                .map_err(|e| self.db(e))?;
            return Err(StoreError::BatchMismatch {
                name: name.to_owned(),
                detail: prepared.difference(&stored),
            });
        }
        Ok(info)
    }

    async fn batch(&self, name: &str) -> Result<Option<BatchInfo>, StoreError> {
        Ok(self.batch_info(name).await?.map(|(info, _, _)| info))
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Claim, StoreError> {
        check_usd("a budget", request.budget_usd)?;
        self.claim_in(request).await
    }

    async fn end_lease(&self, worker: &str) -> Result<(), StoreError> {
        // Expired: a lease counts while `lease_until` is not before the claim's now.
        let until = self.now().saturating_sub(1);
        self.execute(
            "UPDATE runcomfy_workers SET lease_until = $2 WHERE worker_id = $1",
            &[&worker, &until],
        )
        .await?;
        Ok(())
    }

    async fn heartbeat(&self, worker: &str, lease: Duration) -> Result<Lease, StoreError> {
        let until = self.now().saturating_add(duration_millis(lease));
        let renewed = self
            .execute(
                "UPDATE runcomfy_workers SET lease_until = GREATEST(lease_until, $2) WHERE worker_id = $1",
                &[&worker, &until],
            )
            .await?;
        if renewed == 1 {
            return Ok(Lease::Renewed);
        }
        self.execute(
            "INSERT INTO runcomfy_workers (worker_id, lease_until) VALUES ($1, $2) \
             ON CONFLICT (worker_id) DO UPDATE SET lease_until = GREATEST(runcomfy_workers.lease_until, EXCLUDED.lease_until)",
            &[&worker, &until],
        )
        .await?;
        Ok(Lease::Lost)
    }

    async fn mark_submitting(&self, key: JobKey, worker: &str) -> Result<(), StoreError> {
        let done = self
            .execute(
                "UPDATE runcomfy_jobs SET state = 'submitting', updated_at = $3 \
                 WHERE id = $1 AND worker_id = $2 AND state = 'claimed'",
                &[&key.0, &worker, &self.now()],
            )
            .await?;
        if done == 1 {
            return Ok(());
        }
        let b = self.brief(key).await?;
        Err(held_error(key, &b, worker, "mark as submitting"))
    }

    async fn release(&self, key: JobKey, worker: &str) -> Result<(), StoreError> {
        let rows = self
            .query(
                "WITH old AS (SELECT id, batch_id, charged_usd FROM runcomfy_jobs \
                     WHERE id = $1 AND worker_id = $2 AND state IN ('claimed', 'submitting') FOR UPDATE), \
                 upd AS (UPDATE runcomfy_jobs j SET state = 'queued', worker_id = NULL, charged_usd = 0, \
                     updated_at = $3 FROM old WHERE j.id = old.id RETURNING old.batch_id, old.charged_usd), \
                 bat AS (UPDATE runcomfy_batches b SET committed_usd = GREATEST(0, b.committed_usd - upd.charged_usd) \
                     FROM upd WHERE b.id = upd.batch_id) \
                 SELECT COUNT(*) FROM upd",
                &[&key.0, &worker, &self.now()],
            )
            .await?;
        if count(&rows) == 1 {
            return Ok(());
        }
        let b = self.brief(key).await?;
        Err(held_error(key, &b, worker, "release"))
    }

    async fn let_go(&self, key: JobKey, worker: &str) -> Result<(), StoreError> {
        let done = self
            .execute(
                "UPDATE runcomfy_jobs SET worker_id = NULL, updated_at = $3 \
                 WHERE id = $1 AND worker_id = $2 AND state IN ('submitted', 'saving')",
                &[&key.0, &worker, &self.now()],
            )
            .await?;
        if done == 1 {
            return Ok(());
        }
        let b = self.brief(key).await?;
        Err(held_error(key, &b, worker, "let go of"))
    }

    async fn resubmit_uncertain(&self, batch: BatchId, lines: &[u64]) -> Result<u64, StoreError> {
        let lines: Vec<i64> = lines
            .iter()
            .filter_map(|&l| i64::try_from(l).ok())
            .collect();
        let rows = self
            .query(
                "WITH old AS (SELECT id, charged_usd FROM runcomfy_jobs \
                     WHERE batch_id = $1 AND line = ANY($2) AND state = 'uncertain' FOR UPDATE), \
                 upd AS (UPDATE runcomfy_jobs j SET state = 'queued', worker_id = NULL, error = NULL, \
                     charged_usd = 0, updated_at = $3 FROM old WHERE j.id = old.id RETURNING old.charged_usd), \
                 bat AS (UPDATE runcomfy_batches SET committed_usd = \
                     GREATEST(0, committed_usd - (SELECT COALESCE(SUM(charged_usd), 0) FROM upd)) WHERE id = $1) \
                 SELECT COUNT(*) FROM upd",
                &[&batch.0, &lines, &self.now()],
            )
            .await?;
        Ok(u64::try_from(count(&rows)).unwrap_or(0))
    }

    async fn set_throttle_until(&self, until: SystemTime) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO runcomfy_throttle (id, until_ms) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET until_ms = GREATEST(runcomfy_throttle.until_ms, EXCLUDED.until_ms)",
            &[&to_millis(until)],
        )
        .await?;
        Ok(())
    }

    async fn throttle_until(&self) -> Result<Option<SystemTime>, StoreError> {
        let now = self.now();
        let rows = self
            .query("SELECT until_ms FROM runcomfy_throttle WHERE id = 1", &[])
            .await?;
        let until: Option<i64> = match rows.first() {
            Some(row) => Some(row.try_get(0).map_err(|e| self.db(e))?),
            None => None,
        };
        Ok(until.filter(|&t| t > now).map(from_millis))
    }

    async fn batch_status(&self, name: &str) -> Result<BatchStatus, StoreError> {
        let Some((info, _, committed)) = self.batch_info(name).await? else {
            return Err(StoreError::UnknownBatch(name.to_owned()));
        };
        let counts = self
            .query(
                "SELECT state, COUNT(*), COALESCE(SUM(cost_usd), 0) FROM runcomfy_jobs \
                 WHERE batch_id = $1 GROUP BY state",
                &[&info.id.0],
            )
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(|e| self.db(e))?;
        Ok(status_from_counts(info, committed, counts))
    }

    async fn batch_rows(
        &self,
        batch: BatchId,
        filter: &RowFilter,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let state = filter.state.map(State::as_str);
        let after = filter
            .after_line
            .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let limit = filter.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM runcomfy_jobs WHERE batch_id = $1 AND ($2::text IS NULL OR state = $2) \
             AND line > $3 ORDER BY line LIMIT $4"
        );
        self.jobs(&sql, &[&batch.0, &state, &after, &limit]).await
    }
}

/// Runs a statement inside a transaction through the connection's statement cache, so it
/// costs one round trip once prepared.
async fn tx_query(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let stmt = tx.prepare_cached(sql).await?;
    tx.query(&stmt, params).await
}

/// [`tx_query`] for a statement whose rows are not needed: the number it changed.
async fn tx_execute(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: Params<'_>,
) -> Result<u64, tokio_postgres::Error> {
    let stmt = tx.prepare_cached(sql).await?;
    tx.execute(&stmt, params).await
}

/// The first row of a statement that always returns one.
fn first<'a>(rows: &'a [Row], location: &str) -> Result<&'a Row, StoreError> {
    rows.first().ok_or_else(|| StoreError::Database {
        location: location.to_owned(),
        source: Box::new(Message("a statement returned no row".into())),
    })
}

/// The count a `SELECT COUNT(*)` returned.
fn count(rows: &[Row]) -> i64 {
    rows.first()
        .and_then(|r| r.try_get::<_, i64>(0).ok())
        .unwrap_or(0)
}
