//! The embedded backend: one SQLite file in WAL mode (feature `sqlite`).
//!
//! One dedicated thread owns the connection. Operations are closures sent to it; the thread
//! runs every operation waiting in its queue inside one `BEGIN IMMEDIATE` transaction (each
//! in its own savepoint, so one failing operation does not undo the others), commits with
//! `synchronous = FULL`, and only then answers each caller. Many tasks writing at once thus
//! share one fsync (group commit), and every answer means "on disk".
//!
//! Several processes may open the same file: `BEGIN IMMEDIATE` takes SQLite's write lock, so
//! claims of different processes are serialized, and `busy_timeout` makes a writer wait for
//! another instead of failing.
//!
//! The file itself (`file`): a new store is published whole, a damaged or missing one is
//! refused and left untouched, [`close`](crate::JobStore::close) folds the WAL into the file,
//! and a store can be checked ([`SqliteStore::check_file`]) and copied while in use
//! ([`backup`](crate::JobStore::backup)).

mod file;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::clock::Clock;
use crate::error::{Message, StoreError};
use crate::hash::input_sha256;
use crate::location::Location;
use crate::migrate;
use crate::record::{
    check_usd, error_text, status_from_counts, PreparedRows, RawJob, DIED_SUBMITTING, JOB_COLUMNS,
};
use crate::types::{
    duration_millis, from_millis, to_millis, BatchId, BatchInfo, BatchStatus, CheckReport, Claim,
    ClaimRequest, DurationStats, Finish, JobKey, JobRecord, Lease, NewRow, Outcome, RowFilter,
    SavedOutput, State, DURATION_SAMPLE,
};
use crate::{JobStore, OpenOptions};

/// How long a writer waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How many prepared statements the connection keeps.
const STATEMENT_CACHE: usize = 128;

/// The most operations committed together.
const MAX_GROUP: usize = 256;

/// What the thread hands back to a caller once the group's commit is known.
type Deliver = Box<dyn FnOnce(Result<(), &str>) + Send>;
/// One operation: runs on the connection (or learns that the transaction could not start).
type Op = Box<dyn FnOnce(Result<&Connection, &str>, &Ctx) -> Deliver + Send>;
/// Work run between groups, outside any transaction (a checkpoint, a backup).
type Outside = Box<dyn FnOnce(&Connection, &Ctx) + Send>;

/// What the store's thread is sent.
enum Work {
    /// An operation of the next group.
    Op(Op),
    /// Work after the operations sent before it, outside any transaction.
    Outside(Outside),
}

/// What operations see besides the connection.
#[derive(Clone)]
struct Ctx {
    clock: Arc<dyn Clock>,
    location: String,
}

impl Ctx {
    fn now(&self) -> i64 {
        to_millis(self.clock.now())
    }

    fn db(&self, e: rusqlite::Error) -> StoreError {
        StoreError::Database {
            location: self.location.clone(),
            source: Box::new(e),
        }
    }
}

/// A read on the reading connection.
type ReadOp = Box<dyn FnOnce(&Connection, &Ctx) + Send>;

/// The SQLite store. Open it with [`crate::open`] or [`SqliteStore::open`].
pub struct SqliteStore {
    location: Location,
    sender: mpsc::Sender<Work>,
    /// A second connection on its own thread for long reads (a batch's totals), so they never
    /// hold the writer's group; `None` when it could not be opened (the writer reads then).
    reader: Option<mpsc::Sender<ReadOp>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.location)
            .finish()
    }
}

impl SqliteStore {
    /// Opens the store file at `path` (creating it and its folder, and migrating it).
    ///
    /// A new file is built whole beside `path` and published only complete, so any number of
    /// processes may open one new path at once. An existing file that is damaged or missing
    /// (empty, not a database, a `-wal` without its database, a failed `PRAGMA quick_check`)
    /// is refused with [`StoreError::Damaged`] and left as it was found.
    pub async fn open(path: &Path, options: OpenOptions) -> Result<SqliteStore, StoreError> {
        let location = Location::Sqlite(path.to_owned());
        let ctx = Ctx {
            clock: options.clock,
            location: location.to_string(),
        };
        let read_ctx = ctx.clone();
        let (sender, receiver) = mpsc::channel::<Work>();
        let (ready_tx, ready_rx) = oneshot::channel();
        let read_path = path.to_owned();
        let path = path.to_owned();
        let name = "runcomfy-store-sqlite".to_owned();
        let spawned =
            std::thread::Builder::new().name(name).spawn(move || {
                match file::open_writer(&path, &ctx) {
                    Ok(conn) => {
                        let _ = ready_tx.send(Ok(()));
                        serve(conn, ctx, receiver);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
        if let Err(e) = spawned {
            return Err(StoreError::Unavailable {
                location: location.to_string(),
                source: Box::new(e),
            });
        }
        match ready_rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(closed(&location)),
        }
        let reader = open_reader(read_path, read_ctx).await;
        Ok(SqliteStore {
            location,
            sender,
            reader,
        })
    }

    /// Runs `f` (reads only) on the reading connection in one read transaction (one snapshot
    /// of what was committed, so of every answered write); on the writer's thread when there
    /// is no reading connection.
    async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &Ctx) -> Result<R, StoreError> + Send + 'static,
    {
        let Some(reader) = &self.reader else {
            return self.call(f).await;
        };
        let (tx, rx) = oneshot::channel::<Result<R, StoreError>>();
        let op: ReadOp = Box::new(move |conn, ctx| {
            let result = match run(conn, "BEGIN") {
                Ok(()) => {
                    let result = f(conn, ctx);
                    let end = run(conn, "COMMIT");
                    match (result, end) {
                        (Ok(r), Ok(())) => Ok(r),
                        (Err(e), _) => Err(e),
                        (Ok(_), Err(e)) => Err(ctx.db(e)),
                    }
                }
                Err(e) => Err(ctx.db(e)),
            };
            let _ = tx.send(result);
        });
        reader.send(op).map_err(|_| closed(&self.location))?;
        rx.await.map_err(|_| closed(&self.location))?
    }

    /// Runs `f` on the store's thread inside the current group's transaction; answers once it
    /// is committed.
    async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &Ctx) -> Result<R, StoreError> + Send + 'static,
    {
        self.call_in(true, f).await
    }

    /// [`call`](Self::call) for an operation whose only write is one statement (SQLite undoes
    /// a failed statement by itself): no savepoint around it.
    async fn call_one_write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &Ctx) -> Result<R, StoreError> + Send + 'static,
    {
        self.call_in(false, f).await
    }

    async fn call_in<R, F>(&self, savepoint: bool, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &Ctx) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<R, StoreError>>();
        let op: Op = Box::new(move |conn, ctx| {
            let result = match conn {
                Ok(conn) if savepoint => in_savepoint(conn, ctx, f),
                Ok(conn) => f(conn, ctx),
                Err(message) => Err(unavailable(ctx, message)),
            };
            let location = ctx.location.clone();
            Box::new(move |commit| {
                let answer = match commit {
                    Ok(()) => result,
                    Err(message) => Err(StoreError::Unavailable {
                        location,
                        source: Box::new(Message(format!("commit failed: {message}"))),
                    }),
                };
                let _ = tx.send(answer);
            })
        });
        self.sender
            .send(Work::Op(op))
            .map_err(|_| closed(&self.location))?;
        rx.await.map_err(|_| closed(&self.location))?
    }

    /// Runs `f` on the store's thread after every operation sent before it, outside any
    /// transaction.
    async fn outside<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &Ctx) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<R, StoreError>>();
        let work: Outside = Box::new(move |conn, ctx| {
            let _ = tx.send(f(conn, ctx));
        });
        self.sender
            .send(Work::Outside(work))
            .map_err(|_| closed(&self.location))?;
        rx.await.map_err(|_| closed(&self.location))?
    }

    /// Checks the store file at `path` without opening it as a store, so a damaged file can
    /// be examined: whether it exists and is whole (`PRAGMA integrity_check`, which also
    /// compares every index with its table, so it reads the whole file), and its jobs by
    /// state. Nothing is created or changed.
    pub async fn check_file(path: &Path) -> Result<CheckReport, StoreError> {
        let ctx = Ctx {
            clock: Arc::new(crate::clock::SystemClock),
            location: Location::Sqlite(path.to_owned()).to_string(),
        };
        let path = path.to_owned();
        let location = ctx.location.clone();
        tokio::task::spawn_blocking(move || file::check(&path, &ctx))
            .await
            .map_err(|e| StoreError::Unavailable {
                location,
                source: Box::new(e),
            })?
    }
}

fn closed(location: &Location) -> StoreError {
    StoreError::Unavailable {
        location: location.to_string(),
        source: Box::new(Message("the store's thread stopped".into())),
    }
}

fn unavailable(ctx: &Ctx, message: &str) -> StoreError {
    StoreError::Unavailable {
        location: ctx.location.clone(),
        source: Box::new(Message(message.to_owned())),
    }
}

/// Opens the reading connection on its own thread (after the writer created and migrated the
/// file); `None` if that fails.
async fn open_reader(path: PathBuf, ctx: Ctx) -> Option<mpsc::Sender<ReadOp>> {
    let (sender, receiver) = mpsc::channel::<ReadOp>();
    let (ready_tx, ready_rx) = oneshot::channel();
    let name = "runcomfy-store-read".to_owned();
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            // Never creates: the writer made the file, and a file gone since is not recreated.
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let opened = Connection::open_with_flags(&path, flags).and_then(|conn| {
                conn.busy_timeout(BUSY_TIMEOUT)?;
                conn.execute_batch("PRAGMA query_only = ON")?;
                Ok(conn)
            });
            let Ok(conn) = opened else {
                let _ = ready_tx.send(false);
                return;
            };
            let _ = ready_tx.send(true);
            while let Ok(op) = receiver.recv() {
                op(&conn, &ctx);
            }
        })
        .ok()?;
    ready_rx.await.unwrap_or(false).then_some(sender)
}

fn migrate_db(conn: &Connection, ctx: &Ctx) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| ctx.db(e))?;
    let result = (|| {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS runcomfy_schema (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )
        .map_err(|e| ctx.db(e))?;
        let current: i64 = conn
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM runcomfy_schema",
                [],
                |r| r.get(0),
            )
            .map_err(|e| ctx.db(e))?;
        for m in migrate::pending(current, migrate::SQLITE, &ctx.location)? {
            conn.execute_batch(m.sql).map_err(|e| ctx.db(e))?;
            conn.execute(
                "INSERT INTO runcomfy_schema (version, applied_at) VALUES (?1, ?2)",
                params![m.version, ctx.now()],
            )
            .map_err(|e| ctx.db(e))?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(|e| ctx.db(e)),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The store's thread: group commit until every sender is gone; work outside transactions
/// between groups, in the order it was sent.
fn serve(conn: Connection, ctx: Ctx, receiver: mpsc::Receiver<Work>) {
    let mut waiting: Option<Work> = None;
    loop {
        let next = match waiting.take() {
            Some(work) => work,
            None => match receiver.recv() {
                Ok(work) => work,
                Err(_) => break,
            },
        };
        let first = match next {
            Work::Op(op) => op,
            Work::Outside(work) => {
                work(&conn, &ctx);
                continue;
            }
        };
        let mut ops = vec![first];
        while ops.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(Work::Op(op)) => ops.push(op),
                Ok(outside) => {
                    waiting = Some(outside);
                    break;
                }
                Err(_) => break,
            }
        }
        if let Err(e) = run(&conn, "BEGIN IMMEDIATE") {
            let message = e.to_string();
            for op in ops {
                op(Err(&message), &ctx)(Err(&message));
            }
            continue;
        }
        let delivers: Vec<Deliver> = ops.into_iter().map(|op| op(Ok(&conn), &ctx)).collect();
        let commit = run(&conn, "COMMIT").map_err(|e| {
            let _ = run(&conn, "ROLLBACK");
            e.to_string()
        });
        for deliver in delivers {
            deliver(commit.as_ref().map(|_| ()).map_err(String::as_str));
        }
    }
}

/// Runs `f` in a savepoint: its writes are undone if it fails.
fn in_savepoint<R>(
    conn: &Connection,
    ctx: &Ctx,
    f: impl FnOnce(&Connection, &Ctx) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    run(conn, "SAVEPOINT op").map_err(|e| ctx.db(e))?;
    let result = f(conn, ctx);
    let end = if result.is_ok() {
        run(conn, "RELEASE op")
    } else {
        run(conn, "ROLLBACK TO op").and_then(|()| run(conn, "RELEASE op"))
    };
    match end {
        Ok(()) => result,
        Err(e) => Err(result.err().unwrap_or_else(|| ctx.db(e))),
    }
}

/// Runs one statement without parameters, prepared once (transaction and savepoint steps).
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn raw_job(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawJob> {
    Ok(RawJob {
        id: row.get(0)?,
        batch_id: row.get(1)?,
        line: row.get(2)?,
        model_id: row.get(3)?,
        input: row.get(4)?,
        input_sha256: row.get(5)?,
        state: row.get(6)?,
        request_id: row.get(7)?,
        worker_id: row.get(8)?,
        output: row.get(9)?,
        error: row.get(10)?,
        cost_usd: row.get(11)?,
        estimated_cost_usd: row.get(12)?,
        created_at: row.get(13)?,
        submitted_at: row.get(14)?,
        finished_at: row.get(15)?,
        run_ms: row.get(16)?,
        outputs_dir: row.get(17)?,
    })
}

/// The jobs a query selects (`sql` selects [`JOB_COLUMNS`]).
fn query_jobs(
    conn: &Connection,
    ctx: &Ctx,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<JobRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(|e| ctx.db(e))?;
    let raws = stmt
        .query_map(params, raw_job)
        .map_err(|e| ctx.db(e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ctx.db(e))?;
    raws.into_iter()
        .map(|raw| raw.into_record(&ctx.location))
        .collect()
}

fn get_job(conn: &Connection, ctx: &Ctx, key: JobKey) -> Result<Option<JobRecord>, StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM runcomfy_jobs WHERE id = ?1");
    Ok(query_jobs(conn, ctx, &sql, [key.0])?.into_iter().next())
}

/// A job's state, batch, worker and charge, or `UnknownJob`.
struct Brief {
    state: State,
    batch_id: Option<i64>,
    worker: Option<String>,
    request_id: Option<String>,
    charged: f64,
}

fn brief(conn: &Connection, ctx: &Ctx, key: JobKey) -> Result<Brief, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT state, batch_id, worker_id, request_id, charged_usd FROM runcomfy_jobs WHERE id = ?1",
        )
        .map_err(|e| ctx.db(e))?
        .query_row([key.0], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, f64>(4)?,
            ))
        })
        .optional()
        .map_err(|e| ctx.db(e))?;
    let Some((state, batch_id, worker, request_id, charged)) = row else {
        return Err(StoreError::UnknownJob(key));
    };
    let state = state
        .parse::<State>()
        .map_err(|detail| StoreError::Corrupt {
            location: ctx.location.clone(),
            key,
            what: "state",
            detail,
        })?;
    Ok(Brief {
        state,
        batch_id,
        worker,
        request_id,
        charged,
    })
}

/// Moves a row's charge to `new`, keeping its batch's committed total in step.
fn set_charge(
    conn: &Connection,
    ctx: &Ctx,
    key: JobKey,
    batch_id: Option<i64>,
    old: f64,
    new: f64,
) -> Result<(), StoreError> {
    let Some(batch_id) = batch_id else {
        return Ok(());
    };
    if old == new {
        return Ok(());
    }
    conn.prepare_cached("UPDATE runcomfy_jobs SET charged_usd = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![key.0, new]))
        .map_err(|e| ctx.db(e))?;
    conn.prepare_cached(
        "UPDATE runcomfy_batches SET committed_usd = MAX(0, committed_usd + ?2) WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![batch_id, new - old]))
    .map_err(|e| ctx.db(e))?;
    Ok(())
}

fn execute(
    conn: &Connection,
    ctx: &Ctx,
    sql: &str,
    p: impl rusqlite::Params,
) -> Result<usize, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute(p))
        .map_err(|e| ctx.db(e))
}

fn batch_info(
    conn: &Connection,
    ctx: &Ctx,
    name: &str,
) -> Result<Option<(BatchInfo, String)>, StoreError> {
    conn.prepare_cached(
        "SELECT id, model_id, row_count, rows_sha256 FROM runcomfy_batches WHERE name = ?1",
    )
    .map_err(|e| ctx.db(e))?
    .query_row([name], |r| {
        Ok((
            BatchInfo {
                id: BatchId(r.get(0)?),
                name: name.to_owned(),
                model_id: r.get(1)?,
                rows: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                created: false,
            },
            r.get::<_, String>(3)?,
        ))
    })
    .optional()
    .map_err(|e| ctx.db(e))
}

#[async_trait]
impl JobStore for SqliteStore {
    fn location(&self) -> &Location {
        &self.location
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.outside(file::checkpoint).await
    }

    async fn backup(&self, dest: &Path) -> Result<(), StoreError> {
        let dest = dest.to_owned();
        self.outside(move |conn, ctx| file::backup(conn, ctx, &dest))
            .await
    }

    async fn record_intent(&self, model_id: &str, input: &Value) -> Result<JobKey, StoreError> {
        let model_id = model_id.to_owned();
        let text = input.to_string();
        let hash = input_sha256(input);
        self.call(move |conn, ctx| {
            let now = ctx.now();
            execute(
                conn,
                ctx,
                "INSERT INTO runcomfy_jobs (model_id, input, input_sha256, state, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, 'submitting', ?4, ?4)",
                params![model_id, text, hash, now],
            )?;
            Ok(JobKey(conn.last_insert_rowid()))
        })
        .await
    }

    async fn record_submitted(&self, key: JobKey, request_id: &str) -> Result<(), StoreError> {
        let request_id = request_id.to_owned();
        self.call_one_write(move |conn, ctx| {
            // The usual case in one statement; the others are told apart below.
            let done = execute(
                conn,
                ctx,
                "UPDATE runcomfy_jobs SET state = 'submitted', request_id = ?2, error = NULL, \
                 submitted_at = ?3, updated_at = ?3 \
                 WHERE id = ?1 AND request_id IS NULL AND state IN ('submitting', 'uncertain')",
                params![key.0, request_id, ctx.now()],
            )?;
            if done == 1 {
                return Ok(());
            }
            let b = brief(conn, ctx, key)?;
            match (&b.request_id, b.state) {
                (Some(known), _) if *known == request_id => Ok(()),
                _ => Err(StoreError::InvalidState {
                    key,
                    state: b.state,
                    action: "record a request id",
                }),
            }
        })
        .await
    }

    async fn record_uncertain(&self, key: JobKey, error: &str) -> Result<(), StoreError> {
        let error = error_text(error);
        self.call(move |conn, ctx| {
            let b = brief(conn, ctx, key)?;
            match b.state {
                State::Uncertain => Ok(()),
                State::Submitting => {
                    execute(
                        conn,
                        ctx,
                        "UPDATE runcomfy_jobs SET state = 'uncertain', error = ?2, updated_at = ?3 WHERE id = ?1",
                        params![key.0, error, ctx.now()],
                    )?;
                    Ok(())
                }
                state => Err(StoreError::InvalidState {
                    key,
                    state,
                    action: "record an uncertain submit",
                }),
            }
        })
        .await
    }

    async fn record_refused(&self, key: JobKey, error: &str) -> Result<(), StoreError> {
        let error = error_text(error);
        self.call(move |conn, ctx| {
            let b = brief(conn, ctx, key)?;
            match b.state {
                State::Refused => Ok(()),
                State::Claimed | State::Submitting => {
                    let now = ctx.now();
                    execute(
                        conn,
                        ctx,
                        "UPDATE runcomfy_jobs SET state = 'refused', error = ?2, finished_at = ?3, updated_at = ?3 \
                         WHERE id = ?1",
                        params![key.0, error, now],
                    )?;
                    set_charge(conn, ctx, key, b.batch_id, b.charged, 0.0)
                }
                state => Err(StoreError::InvalidState {
                    key,
                    state,
                    action: "record a refused submit",
                }),
            }
        })
        .await
    }

    async fn record_finished(&self, key: JobKey, finish: &Finish) -> Result<State, StoreError> {
        check_usd("a cost", finish.cost_usd)?;
        let finish = finish.clone();
        self.call(move |conn, ctx| {
            let b = brief(conn, ctx, key)?;
            match b.state {
                State::Submitted => {}
                state @ (State::Saving | State::Succeeded | State::Failed | State::Cancelled | State::Expired) => {
                    return Ok(state)
                }
                state => {
                    return Err(StoreError::InvalidState {
                        key,
                        state,
                        action: "record the end of a job not submitted",
                    })
                }
            }
            let mut wanted = finish.wanted_outputs.clone();
            wanted.sort();
            wanted.dedup();
            let (state, output, error) = match &finish.outcome {
                Outcome::Succeeded(output) if wanted.is_empty() => (State::Succeeded, Some(output.to_string()), None),
                Outcome::Succeeded(output) => (State::Saving, Some(output.to_string()), None),
                Outcome::Failed(error) => (State::Failed, None, Some(error.to_string())),
                Outcome::Cancelled => (State::Cancelled, None, None),
                Outcome::Expired(error) => (State::Expired, None, Some(error.to_string())),
            };
            let now = ctx.now();
            execute(
                conn,
                ctx,
                "UPDATE runcomfy_jobs SET state = ?2, output = ?3, error = ?4, cost_usd = ?5, \
                 finished_at = ?6, updated_at = ?6, run_ms = ?7 WHERE id = ?1",
                params![
                    key.0,
                    state.as_str(),
                    output,
                    error,
                    finish.cost_usd,
                    now,
                    finish.run_time.map(duration_millis)
                ],
            )?;
            if state == State::Saving {
                for url in &wanted {
                    execute(
                        conn,
                        ctx,
                        "INSERT INTO runcomfy_outputs (job_id, url) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                        params![key.0, url],
                    )?;
                }
            }
            if let Some(cost) = finish.cost_usd {
                set_charge(conn, ctx, key, b.batch_id, b.charged, cost)?;
            }
            Ok(state)
        })
        .await
    }

    async fn record_outputs_wanted(&self, key: JobKey, dir: &Path) -> Result<(), StoreError> {
        let dir = dir.to_string_lossy().into_owned();
        self.call(move |conn, ctx| {
            brief(conn, ctx, key)?;
            execute(
                conn,
                ctx,
                "UPDATE runcomfy_jobs SET outputs_dir = ?2, updated_at = ?3 WHERE id = ?1",
                params![key.0, dir, ctx.now()],
            )?;
            Ok(())
        })
        .await
    }

    async fn record_output_saved(
        &self,
        key: JobKey,
        url: &str,
        path: &Path,
    ) -> Result<State, StoreError> {
        let url = url.to_owned();
        let path = path.to_string_lossy().into_owned();
        self.call(move |conn, ctx| {
            let b = brief(conn, ctx, key)?;
            if !matches!(b.state, State::Saving | State::Succeeded) {
                return Err(StoreError::InvalidState {
                    key,
                    state: b.state,
                    action: "record a saved output of a job that did not succeed",
                });
            }
            let now = ctx.now();
            execute(
                conn,
                ctx,
                "INSERT INTO runcomfy_outputs (job_id, url, path, saved_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (job_id, url) DO UPDATE SET path = excluded.path, saved_at = excluded.saved_at",
                params![key.0, url, path, now],
            )?;
            if b.state == State::Saving {
                let missing: bool = conn
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM runcomfy_outputs WHERE job_id = ?1 AND path IS NULL)",
                    )
                    .and_then(|mut s| s.query_row([key.0], |r| r.get(0)))
                    .map_err(|e| ctx.db(e))?;
                if !missing {
                    execute(
                        conn,
                        ctx,
                        "UPDATE runcomfy_jobs SET state = 'succeeded', updated_at = ?2 WHERE id = ?1",
                        params![key.0, now],
                    )?;
                    return Ok(State::Succeeded);
                }
            }
            Ok(b.state)
        })
        .await
    }

    async fn job(&self, key: JobKey) -> Result<Option<JobRecord>, StoreError> {
        self.call(move |conn, ctx| get_job(conn, ctx, key)).await
    }

    async fn job_by_request_id(&self, request_id: &str) -> Result<Option<JobRecord>, StoreError> {
        let request_id = request_id.to_owned();
        self.call(move |conn, ctx| {
            let sql = format!("SELECT {JOB_COLUMNS} FROM runcomfy_jobs WHERE request_id = ?1");
            Ok(query_jobs(conn, ctx, &sql, [request_id])?
                .into_iter()
                .next())
        })
        .await
    }

    async fn outputs(&self, key: JobKey) -> Result<Vec<SavedOutput>, StoreError> {
        self.call(move |conn, ctx| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT url, path FROM runcomfy_outputs WHERE job_id = ?1 ORDER BY url",
                )
                .map_err(|e| ctx.db(e))?;
            let rows = stmt
                .query_map([key.0], |r| {
                    Ok(SavedOutput {
                        url: r.get(0)?,
                        path: r.get::<_, Option<String>>(1)?.map(PathBuf::from),
                    })
                })
                .map_err(|e| ctx.db(e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ctx.db(e))?;
            Ok(rows)
        })
        .await
    }

    async fn unfinished(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.call(|conn, ctx| {
            let sql = format!(
                "SELECT {JOB_COLUMNS} FROM runcomfy_jobs WHERE state IN ('submitted', 'saving') \
                 AND batch_id IS NULL ORDER BY id"
            );
            query_jobs(conn, ctx, &sql, [])
        })
        .await
    }

    async fn uncertain(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.call(|conn, ctx| {
            let sql = format!(
                "SELECT {JOB_COLUMNS} FROM runcomfy_jobs WHERE state IN ('submitting', 'uncertain') \
                 AND batch_id IS NULL ORDER BY id"
            );
            query_jobs(conn, ctx, &sql, [])
        })
        .await
    }

    async fn recent_jobs(&self, limit: usize) -> Result<Vec<JobRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |conn, ctx| {
            let sql = format!(
                "SELECT {JOB_COLUMNS} FROM runcomfy_jobs WHERE batch_id IS NULL ORDER BY id DESC LIMIT ?1"
            );
            query_jobs(conn, ctx, &sql, [limit])
        })
        .await
    }

    async fn duration_stats(&self, model_id: &str) -> Result<Option<DurationStats>, StoreError> {
        let model_id = model_id.to_owned();
        self.call(move |conn, ctx| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT run_ms FROM runcomfy_jobs WHERE model_id = ?1 AND run_ms IS NOT NULL \
                     AND state IN ('succeeded', 'saving') ORDER BY finished_at DESC LIMIT ?2",
                )
                .map_err(|e| ctx.db(e))?;
            let millis = stmt
                .query_map(params![model_id, DURATION_SAMPLE as i64], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(|e| ctx.db(e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ctx.db(e))?;
            Ok(DurationStats::from_millis(millis))
        })
        .await
    }

    async fn create_or_open_batch(
        &self,
        name: &str,
        model_id: &str,
        rows: Vec<NewRow>,
    ) -> Result<BatchInfo, StoreError> {
        let name = name.to_owned();
        let model_id = model_id.to_owned();
        let prepared = tokio::task::spawn_blocking(move || PreparedRows::new(rows))
            .await
            .map_err(|e| StoreError::InvalidArgument(format!("hashing the rows failed: {e}")))??;
        self.call(move |conn, ctx| {
            if let Some((info, digest)) = batch_info(conn, ctx, &name)? {
                if info.model_id != model_id {
                    return Err(StoreError::BatchMismatch {
                        name,
                        detail: format!("its model is {}, not {model_id}", info.model_id),
                    });
                }
                if digest != prepared.digest {
                    let mut stmt = conn
                        .prepare("SELECT line, input_sha256 FROM runcomfy_jobs WHERE batch_id = ?1 ORDER BY line")
                        .map_err(|e| ctx.db(e))?;
                    let stored = stmt
                        .query_map([info.id.0], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                        .map_err(|e| ctx.db(e))?
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| ctx.db(e))?;
                    return Err(StoreError::BatchMismatch {
                        detail: prepared.difference(&stored),
                        name,
                    });
                }
                return Ok(info);
            }
            let now = ctx.now();
            let count = prepared.rows.len() as i64;
            execute(
                conn,
                ctx,
                "INSERT INTO runcomfy_batches (name, model_id, row_count, rows_sha256, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, model_id, count, prepared.digest, now],
            )?;
            let id = conn.last_insert_rowid();
            let mut insert = conn
                .prepare_cached(
                    "INSERT INTO runcomfy_jobs (batch_id, line, model_id, input, input_sha256, state, \
                     estimated_cost_usd, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?7, ?7)",
                )
                .map_err(|e| ctx.db(e))?;
            for (line, input, hash, estimate) in &prepared.rows {
                insert
                    .execute(params![id, line, model_id, input, hash, estimate, now])
                    .map_err(|e| ctx.db(e))?;
            }
            Ok(BatchInfo {
                id: BatchId(id),
                name,
                model_id,
                rows: count as u64,
                created: true,
            })
        })
        .await
    }

    async fn batch(&self, name: &str) -> Result<Option<BatchInfo>, StoreError> {
        let name = name.to_owned();
        self.call(move |conn, ctx| Ok(batch_info(conn, ctx, &name)?.map(|(info, _)| info)))
            .await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Claim, StoreError> {
        check_usd("a budget", request.budget_usd)?;
        let request = request.clone();
        self.call(move |conn, ctx| claim(conn, ctx, &request)).await
    }

    async fn heartbeat(&self, worker: &str, lease: Duration) -> Result<Lease, StoreError> {
        let worker = worker.to_owned();
        self.call(move |conn, ctx| {
            let until = ctx.now().saturating_add(duration_millis(lease));
            let renewed = execute(
                conn,
                ctx,
                "UPDATE runcomfy_workers SET lease_until = MAX(lease_until, ?2) WHERE worker_id = ?1",
                params![worker, until],
            )?;
            if renewed == 1 {
                return Ok(Lease::Renewed);
            }
            execute(
                conn,
                ctx,
                "INSERT INTO runcomfy_workers (worker_id, lease_until) VALUES (?1, ?2)",
                params![worker, until],
            )?;
            Ok(Lease::Lost)
        })
        .await
    }

    async fn end_lease(&self, worker: &str) -> Result<(), StoreError> {
        let worker = worker.to_owned();
        self.call_one_write(move |conn, ctx| {
            // Expired: a lease counts while `lease_until` is not before the claim's now.
            execute(
                conn,
                ctx,
                "UPDATE runcomfy_workers SET lease_until = ?2 WHERE worker_id = ?1",
                params![worker, ctx.now().saturating_sub(1)],
            )?;
            Ok(())
        })
        .await
    }

    async fn mark_submitting(&self, key: JobKey, worker: &str) -> Result<(), StoreError> {
        let worker = worker.to_owned();
        self.call_one_write(move |conn, ctx| {
            let done = execute(
                conn,
                ctx,
                "UPDATE runcomfy_jobs SET state = 'submitting', updated_at = ?3 \
                 WHERE id = ?1 AND worker_id = ?2 AND state = 'claimed'",
                params![key.0, worker, ctx.now()],
            )?;
            if done == 1 {
                return Ok(());
            }
            let b = brief(conn, ctx, key)?;
            Err(held_error(key, &b, worker, "mark as submitting"))
        })
        .await
    }

    async fn release(&self, key: JobKey, worker: &str) -> Result<(), StoreError> {
        let worker = worker.to_owned();
        self.call(move |conn, ctx| {
            let b = brief(conn, ctx, key)?;
            if b.worker.as_deref() != Some(worker.as_str()) || !matches!(b.state, State::Claimed | State::Submitting) {
                return Err(held_error(key, &b, worker, "release"));
            }
            execute(
                conn,
                ctx,
                "UPDATE runcomfy_jobs SET state = 'queued', worker_id = NULL, updated_at = ?2 WHERE id = ?1",
                params![key.0, ctx.now()],
            )?;
            set_charge(conn, ctx, key, b.batch_id, b.charged, 0.0)
        })
        .await
    }

    async fn let_go(&self, key: JobKey, worker: &str) -> Result<(), StoreError> {
        let worker = worker.to_owned();
        self.call_one_write(move |conn, ctx| {
            let done = execute(
                conn,
                ctx,
                "UPDATE runcomfy_jobs SET worker_id = NULL, updated_at = ?3 \
                 WHERE id = ?1 AND worker_id = ?2 AND state IN ('submitted', 'saving')",
                params![key.0, worker, ctx.now()],
            )?;
            if done == 1 {
                return Ok(());
            }
            let b = brief(conn, ctx, key)?;
            Err(held_error(key, &b, worker, "let go of"))
        })
        .await
    }

    async fn resubmit_uncertain(&self, batch: BatchId, lines: &[u64]) -> Result<u64, StoreError> {
        let lines = lines.to_vec();
        self.call(move |conn, ctx| {
            let now = ctx.now();
            let mut queued = 0;
            for line in lines {
                let Ok(line) = i64::try_from(line) else { continue };
                let row = conn
                    .prepare_cached(
                        "SELECT id, charged_usd FROM runcomfy_jobs WHERE batch_id = ?1 AND line = ?2 AND state = 'uncertain'",
                    )
                    .and_then(|mut s| s.query_row(params![batch.0, line], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?))).optional())
                    .map_err(|e| ctx.db(e))?;
                let Some((id, charged)) = row else { continue };
                execute(
                    conn,
                    ctx,
                    "UPDATE runcomfy_jobs SET state = 'queued', worker_id = NULL, error = NULL, updated_at = ?2 WHERE id = ?1",
                    params![id, now],
                )?;
                set_charge(conn, ctx, JobKey(id), Some(batch.0), charged, 0.0)?;
                queued += 1;
            }
            Ok(queued)
        })
        .await
    }

    async fn set_throttle_until(&self, until: SystemTime) -> Result<(), StoreError> {
        let until = to_millis(until);
        self.call(move |conn, ctx| {
            execute(
                conn,
                ctx,
                "INSERT INTO runcomfy_throttle (id, until_ms) VALUES (1, ?1) \
                 ON CONFLICT (id) DO UPDATE SET until_ms = MAX(until_ms, excluded.until_ms)",
                [until],
            )?;
            Ok(())
        })
        .await
    }

    async fn throttle_until(&self) -> Result<Option<SystemTime>, StoreError> {
        self.call(throttle).await
    }

    async fn batch_status(&self, name: &str) -> Result<BatchStatus, StoreError> {
        let name = name.to_owned();
        // A scan of the batch's rows: on the reading connection, beside the writer.
        self.read(move |conn, ctx| {
            let Some((info, _)) = batch_info(conn, ctx, &name)? else {
                return Err(StoreError::UnknownBatch(name));
            };
            let committed: f64 = conn
                .prepare_cached("SELECT committed_usd FROM runcomfy_batches WHERE id = ?1")
                .and_then(|mut s| s.query_row([info.id.0], |r| r.get(0)))
                .map_err(|e| ctx.db(e))?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT state, COUNT(*), COALESCE(SUM(cost_usd), 0) FROM runcomfy_jobs \
                     WHERE batch_id = ?1 GROUP BY state",
                )
                .map_err(|e| ctx.db(e))?;
            let counts = stmt
                .query_map([info.id.0], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, f64>(2)?,
                    ))
                })
                .map_err(|e| ctx.db(e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ctx.db(e))?;
            Ok(status_from_counts(info, committed, counts))
        })
        .await
    }

    async fn batch_rows(
        &self,
        batch: BatchId,
        filter: &RowFilter,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let filter = filter.clone();
        self.call(move |conn, ctx| {
            let state = filter.state.map(State::as_str);
            let after = filter.after_line.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
            let limit = filter.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
            let sql = format!(
                "SELECT {JOB_COLUMNS} FROM runcomfy_jobs WHERE batch_id = ?1 AND (?2 IS NULL OR state = ?2) \
                 AND line > ?3 ORDER BY line LIMIT ?4"
            );
            query_jobs(conn, ctx, &sql, params![batch.0, state, after, limit])
        })
        .await
    }
}

/// Why a worker may not act on a row it does not hold.
fn held_error(key: JobKey, b: &Brief, worker: String, action: &'static str) -> StoreError {
    if b.batch_id.is_some() && b.worker.as_deref() != Some(worker.as_str()) {
        StoreError::LeaseLost { key, worker }
    } else {
        StoreError::InvalidState {
            key,
            state: b.state,
            action,
        }
    }
}

fn throttle(conn: &Connection, ctx: &Ctx) -> Result<Option<SystemTime>, StoreError> {
    let until: Option<i64> = conn
        .prepare_cached("SELECT until_ms FROM runcomfy_throttle WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
        .map_err(|e| ctx.db(e))?;
    Ok(until.filter(|&t| t > ctx.now()).map(from_millis))
}

/// Keys as a JSON array, for `json_each`.
fn skip_list(keys: &[JobKey]) -> String {
    let ids: Vec<String> = keys.iter().map(|k| k.0.to_string()).collect();
    format!("[{}]", ids.join(","))
}

/// The claim, inside the write transaction.
fn claim(conn: &Connection, ctx: &Ctx, request: &ClaimRequest) -> Result<Claim, StoreError> {
    let now = ctx.now();
    let lease_until = now.saturating_add(duration_millis(request.lease));
    let worker = request.worker.as_str();
    let batch = request.batch.0;
    let exists: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM runcomfy_batches WHERE id = ?1)")
        .and_then(|mut s| s.query_row([batch], |r| r.get(0)))
        .map_err(|e| ctx.db(e))?;
    if !exists {
        return Err(StoreError::UnknownBatch(format!("#{batch}")));
    }
    execute(
        conn,
        ctx,
        "INSERT INTO runcomfy_workers (worker_id, lease_until) VALUES (?1, ?2) \
         ON CONFLICT (worker_id) DO UPDATE SET lease_until = MAX(lease_until, excluded.lease_until)",
        params![worker, lease_until],
    )?;

    // Take back the rows of workers whose lease expired.
    let dead: Vec<String> = conn
        .prepare_cached("SELECT worker_id FROM runcomfy_workers WHERE lease_until < ?1")
        .and_then(|mut s| s.query_map([now], |r| r.get(0))?.collect())
        .map_err(|e| ctx.db(e))?;
    let mut newly_uncertain = 0;
    for gone in &dead {
        let claimed: Vec<(i64, Option<i64>, f64)> = conn
            .prepare_cached(
                "SELECT id, batch_id, charged_usd FROM runcomfy_jobs WHERE worker_id = ?1 AND state = 'claimed'",
            )
            .and_then(|mut s| s.query_map([gone], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect())
            .map_err(|e| ctx.db(e))?;
        for (id, batch_id, charged) in claimed {
            set_charge(conn, ctx, JobKey(id), batch_id, charged, 0.0)?;
        }
        execute(
            conn,
            ctx,
            "UPDATE runcomfy_jobs SET state = 'queued', worker_id = NULL, updated_at = ?2 \
             WHERE worker_id = ?1 AND state = 'claimed'",
            params![gone, now],
        )?;
        newly_uncertain += execute(
            conn,
            ctx,
            "UPDATE runcomfy_jobs SET state = 'uncertain', worker_id = NULL, error = ?2, updated_at = ?3 \
             WHERE worker_id = ?1 AND state = 'submitting'",
            params![gone, error_text(DIED_SUBMITTING), now],
        )? as u64;
        execute(
            conn,
            ctx,
            "UPDATE runcomfy_jobs SET worker_id = NULL WHERE worker_id = ?1 AND state NOT IN ('claimed', 'submitting')",
            [gone],
        )?;
        execute(
            conn,
            ctx,
            "DELETE FROM runcomfy_workers WHERE worker_id = ?1",
            [gone],
        )?;
    }

    // Rows with a request id and no live worker: re-attach them (not those this worker let go).
    let want = i64::try_from(request.want).unwrap_or(i64::MAX);
    let skip = skip_list(&request.skip);
    let reattach: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM runcomfy_jobs WHERE batch_id = ?1 AND state IN ('submitted', 'saving') \
             AND worker_id IS NULL AND id NOT IN (SELECT value FROM json_each(?3)) \
             ORDER BY line LIMIT ?2",
        )
        .and_then(|mut s| s.query_map(params![batch, want, skip], |r| r.get(0))?.collect())
        .map_err(|e| ctx.db(e))?;
    for id in &reattach {
        execute(
            conn,
            ctx,
            "UPDATE runcomfy_jobs SET worker_id = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, worker, now],
        )?;
    }

    // New rows, within the cap and the budget.
    let in_flight: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM runcomfy_jobs WHERE state IN ('claimed', 'submitting', 'submitted') \
             AND batch_id IS NOT NULL",
        )
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(|e| ctx.db(e))?;
    let mut in_flight = u64::try_from(in_flight).unwrap_or(0);
    let wanted_new = (request.want - reattach.len()) as u64;
    let room = match request.max_in_flight {
        Some(cap) => wanted_new.min(cap.saturating_sub(in_flight)),
        None => wanted_new,
    };
    let capped = room < wanted_new;
    let candidates: Vec<(i64, Option<f64>)> = conn
        .prepare_cached(
            "SELECT id, estimated_cost_usd FROM runcomfy_jobs WHERE batch_id = ?1 AND state = 'queued' \
             ORDER BY line LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![batch, i64::try_from(room).unwrap_or(i64::MAX)], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .map_err(|e| ctx.db(e))?;
    let mut committed: f64 = conn
        .prepare_cached("SELECT committed_usd FROM runcomfy_batches WHERE id = ?1")
        .and_then(|mut s| s.query_row([batch], |r| r.get(0)))
        .map_err(|e| ctx.db(e))?;
    let mut over_budget = false;
    let mut submit = Vec::with_capacity(candidates.len());
    for (id, estimate) in candidates {
        let estimate = estimate.unwrap_or(0.0);
        if let Some(budget) = request.budget_usd {
            if committed + estimate > budget + 1e-9 {
                over_budget = true;
                break;
            }
        }
        execute(
            conn,
            ctx,
            "UPDATE runcomfy_jobs SET state = 'claimed', worker_id = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, worker, now],
        )?;
        set_charge(conn, ctx, JobKey(id), Some(batch), 0.0, estimate)?;
        committed += estimate;
        in_flight += 1;
        submit.push(id);
    }
    // The budget also stops a claim that had no room to look at the next row.
    if !over_budget && submit.len() as u64 == room {
        if let Some(budget) = request.budget_usd {
            let next: Option<Option<f64>> = conn
                .prepare_cached(
                    "SELECT estimated_cost_usd FROM runcomfy_jobs WHERE batch_id = ?1 AND state = 'queued' \
                     ORDER BY line LIMIT 1",
                )
                .and_then(|mut s| s.query_row([batch], |r| r.get(0)).optional())
                .map_err(|e| ctx.db(e))?;
            if let Some(next) = next {
                over_budget = committed + next.unwrap_or(0.0) > budget + 1e-9;
            }
        }
    }
    let more_queued: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM runcomfy_jobs WHERE batch_id = ?1 AND state = 'queued')",
        )
        .and_then(|mut s| s.query_row([batch], |r| r.get(0)))
        .map_err(|e| ctx.db(e))?;
    let fetch = |ids: &[i64]| -> Result<Vec<JobRecord>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(job) = get_job(conn, ctx, JobKey(*id))? {
                out.push(job);
            }
        }
        Ok(out)
    };
    Ok(Claim {
        submit: fetch(&submit)?,
        reattach: fetch(&reattach)?,
        newly_uncertain,
        in_flight,
        capped,
        over_budget,
        more_queued,
        throttle_until: throttle(conn, ctx)?,
    })
}
