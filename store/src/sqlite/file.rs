//! The store file itself: made whole before anyone sees it, checked before use, folded back
//! together on close, checked in full and copied on request.
//!
//! - A new store is built complete in a temporary file beside its final name (WAL mode set,
//!   migrated, checkpointed, closed, synced), then published by a hard link, which never
//!   replaces a file: a half-made store is never visible, and when another process published
//!   first, its file is used and ours is dropped.
//! - An existing file is refused, left as it was found, when it is damaged or missing: empty,
//!   not a database, a `-wal` or `-shm` without its database, a failed `PRAGMA quick_check`
//!   (linear in the file's size), tables that are not a job store's. Nothing is ever created
//!   in place of a store that was there.
//! - SQLite's transient answers while files are created and WAL indexes rebuilt (`busy`,
//!   `locked`) are retried within a deadline, so any number of processes may open one path at
//!   once.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::{migrate_db, Ctx, BUSY_TIMEOUT, STATEMENT_CACHE};
use crate::error::{Message, StoreError};
use crate::types::CheckReport;

/// How long opening may keep retrying SQLite's transient answers.
const OPEN_DEADLINE: Duration = BUSY_TIMEOUT;

/// The longest pause between two attempts to open.
const MAX_PAUSE: Duration = Duration::from_millis(100);

/// How long a checkpoint on close waits for other processes' readers.
const CHECKPOINT_WAIT: Duration = Duration::from_secs(2);

/// The most problems a check lists.
const MAX_PROBLEMS: u32 = 50;

/// Why one attempt to open failed.
enum Failure {
    /// SQLite was busy or locked: try again.
    Transient(StoreError),
    /// Anything else: give up.
    Fatal(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Fatal(e)
    }
}

/// True for SQLite's answers that another connection's work causes and that pass.
fn transient(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// The path of a file beside the store: `jobs.db` + `-wal`.
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn damaged(ctx: &Ctx, problem: impl Into<String>) -> StoreError {
    StoreError::Damaged {
        location: ctx.location.clone(),
        problem: problem.into(),
    }
}

fn unavailable(ctx: &Ctx, e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable {
        location: ctx.location.clone(),
        source: Box::new(e),
    }
}

/// A failure of SQLite on the store file: damage, a transient answer, or anything else.
fn sqlite_failure(ctx: &Ctx, e: rusqlite::Error) -> Failure {
    if transient(&e) {
        return Failure::Transient(unavailable(ctx, e));
    }
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => {
            Failure::Fatal(damaged(ctx, "the file is not a SQLite database"))
        }
        Some(ErrorCode::DatabaseCorrupt) => Failure::Fatal(damaged(ctx, e.to_string())),
        _ => Failure::Fatal(ctx.db(e)),
    }
}

/// Opens the store file at `path` for writing: created whole when it does not exist, refused
/// when it is damaged or missing, migrated; transient answers retried within a deadline.
pub(super) fn open_writer(path: &Path, ctx: &Ctx) -> Result<Connection, StoreError> {
    let deadline = Instant::now() + OPEN_DEADLINE;
    let mut pause = Duration::from_millis(2);
    loop {
        match open_once(path, ctx) {
            Ok(conn) => return Ok(conn),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Transient(e)) if Instant::now() >= deadline => return Err(e),
            Err(Failure::Transient(_)) => {
                std::thread::sleep(pause + jitter(pause));
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
}

/// Up to `pause` more, different in each process and attempt, so processes that collided do
/// not collide again in step.
fn jitter(pause: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let seed = u64::from(nanos) ^ u64::from(std::process::id()).rotate_left(17);
    let max = u64::try_from(pause.as_micros()).unwrap_or(u64::MAX).max(1);
    Duration::from_micros(seed % max)
}

fn open_once(path: &Path, ctx: &Ctx) -> Result<Connection, Failure> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| unavailable(ctx, e))?;
    }
    // The WAL and the shared-memory index appear only after their database: look for them
    // first, so a database published meanwhile is not taken for a missing one.
    let leftover = [sidecar(path, "-wal"), sidecar(path, "-shm")]
        .into_iter()
        .find(|p| p.exists());
    match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(found) = leftover {
                return Err(damaged(
                    ctx,
                    format!(
                        "the database file is missing but {} exists: the store was deleted or moved",
                        found.display()
                    ),
                )
                .into());
            }
            create(path, ctx)?;
        }
        Err(e) => return Err(unavailable(ctx, e).into()),
        Ok(meta) if !meta.is_file() => {
            return Err(damaged(ctx, "it is not a regular file").into());
        }
        // Never handed to SQLite: it takes an empty file for a new database and deletes the
        // WAL beside it.
        Ok(meta) if meta.len() == 0 => {
            return Err(damaged(ctx, "the file is empty (0 bytes)").into());
        }
        Ok(_) => {}
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| sqlite_failure(ctx, e))?;
    // A refused file is left as found: no checkpoint into it when this connection closes.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .map_err(|e| sqlite_failure(ctx, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sqlite_failure(ctx, e))?;
    let problems = quick_check(&conn).map_err(|e| sqlite_failure(ctx, e))?;
    if !problems.is_empty() {
        return Err(damaged(ctx, format!("PRAGMA quick_check: {}", problems.join("; "))).into());
    }
    match kind_of(&conn).map_err(|e| sqlite_failure(ctx, e))? {
        Contents::Store | Contents::Empty => {}
        Contents::Other => {
            return Err(damaged(
                ctx,
                "the database holds tables but no job store (no runcomfy_schema table)",
            )
            .into())
        }
    }
    // WAL: readers never block the writer; FULL: a commit is on disk when it returns.
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .map_err(|e| sqlite_failure(ctx, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        set_wal(&conn, ctx)?;
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(|e| sqlite_failure(ctx, e))?;
    // Every statement of the hot paths stays prepared (the default cache of 16 is smaller
    // than a claim and a row's steps together, so statements were parsed again and again).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    migrate(&conn, ctx)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, false)
        .map_err(|e| sqlite_failure(ctx, e))?;
    Ok(conn)
}

/// Switches the file to WAL mode (a store an old version made in another mode).
fn set_wal(conn: &Connection, ctx: &Ctx) -> Result<(), Failure> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| sqlite_failure(ctx, e))?;
    if mode.eq_ignore_ascii_case("wal") {
        return Ok(());
    }
    Err(Failure::Fatal(unavailable(
        ctx,
        Message(format!(
            "the file system does not support WAL mode (journal mode stays {mode})"
        )),
    )))
}

/// Migrates when the file's version is behind (read first, so opening an up-to-date store
/// never takes the write lock).
fn migrate(conn: &Connection, ctx: &Ctx) -> Result<(), Failure> {
    let current: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM runcomfy_schema",
            [],
            |r| r.get(0),
        )
        .or_else(|e| match e {
            rusqlite::Error::SqliteFailure(..) if !transient(&e) => Ok(0),
            e => Err(e),
        })
        .map_err(|e| sqlite_failure(ctx, e))?;
    if crate::migrate::pending(current, crate::migrate::SQLITE, &ctx.location)?.is_empty() {
        return Ok(());
    }
    migrate_db(conn, ctx).map_err(|e| match e {
        StoreError::Database { ref source, .. }
            if source
                .downcast_ref::<rusqlite::Error>()
                .is_some_and(transient) =>
        {
            Failure::Transient(e)
        }
        e => Failure::Fatal(e),
    })
}

/// What a readable database holds.
enum Contents {
    /// A job store (its schema table).
    Store,
    /// No table at all.
    Empty,
    /// Tables, none of them a job store's.
    Other,
}

fn kind_of(conn: &Connection) -> rusqlite::Result<Contents> {
    let (tables, ours): (i64, i64) = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(name = 'runcomfy_schema'), 0) FROM sqlite_master WHERE type = 'table'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(match (tables, ours) {
        (_, n) if n > 0 => Contents::Store,
        (0, _) => Contents::Empty,
        _ => Contents::Other,
    })
}

/// `PRAGMA quick_check`'s problems (none: the file's pages and b-trees are sound); linear in
/// the file's size.
fn quick_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    pragma_check(conn, "quick_check")
}

/// The problems `PRAGMA name(N)` lists (`ok` alone: none).
fn pragma_check(conn: &Connection, name: &str) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare(&format!("PRAGMA {name}({MAX_PROBLEMS})"))?;
    let rows = statement.query_map([], |r| r.get::<_, String>(0))?;
    let mut problems = Vec::new();
    for row in rows {
        let row = row?;
        if row != "ok" {
            problems.push(row);
        }
    }
    Ok(problems)
}

/// Builds a new store complete in a temporary file beside `path` and publishes it there,
/// unless another process published one first (then theirs is used).
fn create(path: &Path, ctx: &Ctx) -> Result<(), Failure> {
    let temporary = temporary_name(path);
    let made = build(&temporary, ctx).and_then(|()| publish(&temporary, path, ctx));
    for leftover in [
        sidecar(&temporary, "-wal"),
        sidecar(&temporary, "-shm"),
        temporary,
    ] {
        let _ = fs::remove_file(leftover);
    }
    made
}

/// `jobs.db.new-<pid>-<nanoseconds>`: unique to this attempt.
fn temporary_name(path: &Path) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    sidecar(path, &format!(".new-{}-{nanos}", std::process::id()))
}

/// A complete store in `temporary`: WAL mode, migrated, its WAL folded in, closed and synced.
fn build(temporary: &Path, ctx: &Ctx) -> Result<(), Failure> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(temporary, flags).map_err(|e| ctx.db(e))?;
    set_wal(&conn, ctx)?;
    conn.execute_batch("PRAGMA synchronous = FULL")
        .map_err(|e| ctx.db(e))?;
    migrate_db(&conn, ctx)?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .map_err(|e| ctx.db(e))?;
    conn.close().map_err(|(_, e)| ctx.db(e))?;
    fs::File::open(temporary)
        .and_then(|f| f.sync_all())
        .map_err(|e| unavailable(ctx, e))?;
    Ok(())
}

/// Publishes `temporary` as `path` by a hard link, which never replaces a file.
fn publish(temporary: &Path, path: &Path, ctx: &Ctx) -> Result<(), Failure> {
    match fs::hard_link(temporary, path) {
        Ok(()) => {
            // The new name survives a crash of the machine.
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                let _ = fs::File::open(parent).and_then(|d| d.sync_all());
            }
            Ok(())
        }
        // Another process published its store first: use it.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Failure::Fatal(unavailable(
            ctx,
            Message(format!(
                "cannot publish the new store file (a hard link from {}): {e}; the folder's file system must support hard links",
                temporary.display()
            )),
        ))),
    }
}

/// Folds the WAL into the database file (`TRUNCATE`, waiting a little for other processes'
/// readers; else as much as they allow): afterwards the file alone holds every job.
pub(super) fn checkpoint(conn: &Connection, ctx: &Ctx) -> Result<(), StoreError> {
    conn.busy_timeout(CHECKPOINT_WAIT).map_err(|e| ctx.db(e))?;
    let full: rusqlite::Result<i64> =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0));
    let result = match full {
        Ok(0) => Ok(()),
        Ok(_) => passive(conn, ctx),
        Err(e) if transient(&e) => passive(conn, ctx),
        Err(e) => Err(ctx.db(e)),
    };
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| ctx.db(e))?;
    result
}

/// A checkpoint that copies what other processes' readers allow: the rest is folded in by
/// the last of them to close.
fn passive(conn: &Connection, ctx: &Ctx) -> Result<(), StoreError> {
    tracing::debug!(
        store = %ctx.location,
        "other processes use the store: the WAL is folded in as far as they allow"
    );
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        .or_else(|e| if transient(&e) { Ok(()) } else { Err(e) })
        .map_err(|e| ctx.db(e))
}

/// A consistent copy of the store in `dest` (a new file), while other connections use it.
pub(super) fn backup(conn: &Connection, ctx: &Ctx, dest: &Path) -> Result<(), StoreError> {
    if dest.exists() {
        return Err(StoreError::InvalidArgument(format!(
            "{} exists: a backup never replaces a file",
            dest.display()
        )));
    }
    let text = dest.to_str().ok_or_else(|| {
        StoreError::InvalidArgument(format!("{} is not valid UTF-8", dest.display()))
    })?;
    conn.execute("VACUUM INTO ?1", [text])
        .map_err(|e| ctx.db(e))?;
    fs::File::open(dest)
        .and_then(|f| f.sync_all())
        .map_err(|e| unavailable(ctx, e))
}

/// Checks the store file at `path` without changing it: that it exists and is whole
/// (`PRAGMA integrity_check`, which also compares every index with its table), and counts
/// its jobs by state.
pub(super) fn check(path: &Path, ctx: &Ctx) -> Result<CheckReport, StoreError> {
    let mut report = CheckReport::default();
    let leftover = [sidecar(path, "-wal"), sidecar(path, "-shm")]
        .into_iter()
        .find(|p| p.exists());
    match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            report.problems.push(match leftover {
                Some(found) => format!(
                    "the database file is missing but {} exists: the store was deleted or moved",
                    found.display()
                ),
                None => "the database file does not exist".to_owned(),
            });
            return Ok(report);
        }
        Err(e) => return Err(unavailable(ctx, e)),
        Ok(meta) if !meta.is_file() => {
            report.problems.push("it is not a regular file".to_owned());
            return Ok(report);
        }
        Ok(meta) if meta.len() == 0 => {
            report
                .problems
                .push("the file is empty (0 bytes)".to_owned());
            return Ok(report);
        }
        Ok(_) => {}
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| ctx.db(e))?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .map_err(|e| ctx.db(e))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| ctx.db(e))?;
    let problem = |e: rusqlite::Error| match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => Ok("the file is not a SQLite database".to_owned()),
        Some(ErrorCode::DatabaseCorrupt) => Ok(e.to_string()),
        _ => Err(ctx.db(e)),
    };
    match pragma_check(&conn, "integrity_check") {
        Ok(found) => report.problems.extend(found),
        Err(e) => {
            report.problems.push(problem(e)?);
            return Ok(report);
        }
    }
    match kind_of(&conn) {
        Ok(Contents::Store) => {}
        Ok(Contents::Empty) => report
            .problems
            .push("the database holds no job store".to_owned()),
        Ok(Contents::Other) => report.problems.push(
            "the database holds tables but no job store (no runcomfy_schema table)".to_owned(),
        ),
        Err(e) => report.problems.push(problem(e)?),
    }
    if !report.problems.is_empty() {
        return Ok(report);
    }
    let counted = (|| {
        let mut statement =
            conn.prepare("SELECT state, COUNT(*) FROM runcomfy_jobs GROUP BY state")?;
        let rows =
            statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
    })();
    match counted {
        Ok(rows) => {
            for (state, n) in rows {
                report.jobs.insert(state, u64::try_from(n).unwrap_or(0));
            }
        }
        Err(e) => report.problems.push(problem(e)?),
    }
    Ok(report)
}
