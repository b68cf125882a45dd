//! The SQLite store's file under damage and concurrency, on real files in temporary folders:
//! a damaged or missing store is refused and left as it was found (never recreated empty),
//! the file alone holds every job once the store is closed, a check names what is wrong, a
//! backup is a store of its own, and any number of threads and processes may open one new
//! path at once.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runcomfy_store::{SharedStore, StoreError};
use serde_json::json;

const MODEL: &str = "acme/echo/text-to-image";

/// Set for a child process of [`many_processes_open_one_new_path`]: the store to open.
const CHILD_ENV: &str = "RUNCOMFY_DAMAGE_TEST_CHILD_STORE";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn location(path: &Path) -> String {
    path.display().to_string()
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A store at `path` holding `n` single jobs with request ids `req-0`…, closed (its WAL folded
/// into the file) and still open.
async fn store_with_jobs(path: &Path, n: usize) -> SharedStore {
    let store = runcomfy_store::open(&location(path)).await.expect("open");
    for i in 0..n {
        let input = json!({"prompt": format!("job {i}, a prompt long enough to fill pages")});
        let key = store.record_intent(MODEL, &input).await.expect("intent");
        store
            .record_submitted(key, &format!("req-{i}"))
            .await
            .expect("submitted");
    }
    store.close().await.expect("close");
    store
}

/// Opening must fail as damaged, naming the file.
async fn assert_refused(path: &Path) -> String {
    match runcomfy_store::open(&location(path)).await {
        Ok(store) => panic!(
            "a damaged store was opened: {} jobs",
            store.recent_jobs(usize::MAX).await.map_or(0, |j| j.len())
        ),
        Err(e) => {
            let message = e.to_string();
            assert!(
                matches!(e, StoreError::Damaged { .. }),
                "not refused as damaged: {message}"
            );
            assert!(
                message.contains(&path.display().to_string()),
                "the message does not name the file: {message}"
            );
            message
        }
    }
}

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

#[test]
fn an_empty_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    runtime().block_on(async {
        drop(store_with_jobs(&path, 3).await);
        std::fs::File::create(&path).unwrap(); // truncated to 0 bytes
        let message = assert_refused(&path).await;
        assert!(message.contains("empty"), "{message}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        // Refused again: nothing was made in its place.
        assert_refused(&path).await;
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    });
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let text = b"these are not the pages of a database, but they are 64 bytes...!".repeat(100);
    std::fs::write(&path, &text).unwrap();
    runtime().block_on(async {
        let message = assert_refused(&path).await;
        assert!(message.contains("not a SQLite database"), "{message}");
    });
    assert_eq!(bytes(&path), text);
}

#[test]
fn a_wal_without_its_database_is_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    runtime().block_on(async {
        // Still open: its -wal and -shm stay beside it.
        let _store = store_with_jobs(&path, 2).await;
        assert!(sidecar(&path, "-wal").exists());
        std::fs::remove_file(&path).unwrap();
        let message = assert_refused(&path).await;
        assert!(message.contains("missing"), "{message}");
        assert!(
            !path.exists(),
            "a new store was created in place of the deleted one"
        );
        let report = runcomfy_store::check(&location(&path)).await.unwrap();
        assert!(!report.is_ok(), "{report:?}");
    });
}

#[test]
fn the_file_alone_holds_every_job_once_the_store_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let copy = dir.path().join("copy").join("jobs.db");
    runtime().block_on(async {
        // The store stays open (as a process that exits without closing its connections).
        let _store = store_with_jobs(&path, 5).await;
        std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
        std::fs::copy(&path, &copy).unwrap(); // without its -wal
        let copied = runcomfy_store::open(&location(&copy))
            .await
            .expect("the copy opens");
        let jobs = copied.recent_jobs(usize::MAX).await.unwrap();
        assert_eq!(jobs.len(), 5, "{jobs:?}");
        for i in 0..5 {
            let id = format!("req-{i}");
            assert!(
                copied.job_by_request_id(&id).await.unwrap().is_some(),
                "{id}"
            );
        }
    });
}

#[test]
fn a_new_store_file_is_whole_before_any_job_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new").join("jobs.db");
    let copy = dir.path().join("copy.db");
    runtime().block_on(async {
        let store = runcomfy_store::open(&location(&path)).await.unwrap();
        // Copied while open, before any close: the copy is a whole, empty store.
        std::fs::copy(&path, &copy).unwrap();
        let conn = rusqlite::Connection::open(&copy).unwrap();
        let version: i64 = conn
            .query_row("SELECT MAX(version) FROM runcomfy_schema", [], |r| r.get(0))
            .expect("the copy alone is a migrated store");
        assert!(version >= 1);
        drop(conn);
        let copied = runcomfy_store::open(&location(&copy))
            .await
            .expect("the copy opens");
        assert!(copied.recent_jobs(10).await.unwrap().is_empty());
        drop(store);
    });
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".new-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// Overwrites page `page` (1-based) of the file with garbage.
fn corrupt_page(path: &Path, page: u64, page_size: u64) {
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start((page - 1) * page_size)).unwrap();
    let garbage: Vec<u8> = (0..page_size).map(|i| (i * 7 + 13) as u8).collect();
    file.write_all(&garbage).unwrap();
    file.sync_all().unwrap();
}

/// The root page of a table or index, and the page size, read behind the store's back.
fn root_page(path: &Path, name: &str) -> (u64, u64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let root: i64 = conn
        .query_row(
            "SELECT rootpage FROM sqlite_master WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap();
    let size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    (root as u64, size as u64)
}

#[test]
fn a_corrupt_page_is_refused_at_open_and_named_by_the_check() {
    for damaged in [
        "runcomfy_jobs_request",
        "runcomfy_jobs",
        "runcomfy_jobs_state",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        runtime().block_on(async {
            drop(store_with_jobs(&path, 400).await);
            let (root, page_size) = root_page(&path, damaged);
            corrupt_page(&path, root, page_size);
            let before = bytes(&path);
            let message = assert_refused(&path).await;
            assert!(
                message.contains("quick_check") || message.contains("malformed"),
                "{message}"
            );
            assert_eq!(
                bytes(&path),
                before,
                "{damaged}: the refused file was changed"
            );
            let report = runcomfy_store::check(&location(&path)).await.unwrap();
            assert!(!report.is_ok(), "{damaged}: the check found nothing");
            assert_eq!(
                bytes(&path),
                before,
                "{damaged}: the check changed the file"
            );
        });
    }
}

#[test]
fn the_check_counts_jobs_by_state_and_a_backup_is_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let backup = dir.path().join("backup").join("copy.db");
    runtime().block_on(async {
        let store = store_with_jobs(&path, 7).await;
        let report = runcomfy_store::check(&location(&path)).await.unwrap();
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.jobs.get("submitted"), Some(&7), "{report:?}");
        // A backup while another task keeps recording.
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    let input = json!({"prompt": format!("during the backup {i}")});
                    store.record_intent(MODEL, &input).await.unwrap();
                }
            })
        };
        std::fs::create_dir_all(backup.parent().unwrap()).unwrap();
        store.backup(&backup).await.expect("backup");
        writer.await.unwrap();
        let err = store.backup(&backup).await.unwrap_err().to_string();
        assert!(err.contains("never replaces"), "{err}");
        let copy = runcomfy_store::open(&location(&backup))
            .await
            .expect("the backup opens");
        for i in 0..7 {
            let id = format!("req-{i}");
            assert!(copy.job_by_request_id(&id).await.unwrap().is_some(), "{id}");
        }
        let copied = runcomfy_store::check(&location(&backup)).await.unwrap();
        assert!(copied.is_ok(), "{copied:?}");
    });
}

#[test]
fn a_truncated_file_with_its_wal_present_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    runtime().block_on(async {
        let store = store_with_jobs(&path, 300).await;
        // Newer jobs only in the WAL, as a process that died before closing leaves them.
        for i in 0..20 {
            let input = json!({"prompt": format!("newer {i}")});
            store.record_intent(MODEL, &input).await.unwrap();
        }
        let wal = bytes(&sidecar(&path, "-wal"));
        assert!(wal.len() > 32, "the newer jobs are not in the WAL");
        for cut in [0, bytes(&path).len() / 2] {
            let mut main = bytes(&path);
            // The intact pair: the crash state is a sound store with every job.
            let sound = dir.path().join(format!("sound-{cut}.db"));
            std::fs::write(&sound, &main).unwrap();
            std::fs::write(sidecar(&sound, "-wal"), &wal).unwrap();
            let opened = runcomfy_store::open(&location(&sound))
                .await
                .expect("sound");
            assert_eq!(opened.recent_jobs(usize::MAX).await.unwrap().len(), 320);
            let copy = dir.path().join(format!("crashed-{cut}.db"));
            main.truncate(cut);
            std::fs::write(&copy, &main).unwrap();
            std::fs::write(sidecar(&copy, "-wal"), &wal).unwrap();
            assert_refused(&copy).await;
            assert_eq!(bytes(&copy).len(), cut, "the refused file was changed");
            // SQLite deletes the WAL beside an empty file: it must never see one.
            assert_eq!(bytes(&sidecar(&copy, "-wal")), wal, "the WAL was changed");
        }
        drop(store);
    });
}

#[test]
fn opening_waits_for_a_lock_busy_timeout_does_not_cover() {
    // A store in another journal mode (as a new file is while its creator sets WAL mode),
    // with a write in progress in another connection: switching it to WAL answers "database
    // is locked" at once, without waiting.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    runtime().block_on(async { drop(store_with_jobs(&path, 1).await) });
    std::thread::sleep(Duration::from_millis(100)); // the dropped store's connections close
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder
        .execute_batch("PRAGMA journal_mode = DELETE; BEGIN IMMEDIATE;")
        .unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        holder.execute_batch("COMMIT").unwrap();
    });
    let opened = runtime().block_on(async {
        let store = runcomfy_store::open(&location(&path)).await?;
        store.recent_jobs(10).await
    });
    release.join().unwrap();
    assert_eq!(opened.expect("opened once the lock was released").len(), 1);
}

#[test]
fn many_threads_open_one_new_path_at_once() {
    const THREADS: usize = 16;
    for round in 0..16 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("jobs.db");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let path = path.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime");
                    barrier.wait();
                    rt.block_on(async {
                        let store = runcomfy_store::open(&location(&path)).await?;
                        let input = json!({"prompt": format!("thread {t}")});
                        store.record_intent(MODEL, &input).await?;
                        store.close().await
                    })
                })
            })
            .collect();
        for (t, thread) in threads.into_iter().enumerate() {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("round {round}, thread {t}: {e}"),
                Err(_) => panic!("round {round}, thread {t} panicked"),
            }
        }
        runtime().block_on(async {
            let store = runcomfy_store::open(&location(&path)).await.unwrap();
            assert_eq!(store.recent_jobs(100).await.unwrap().len(), THREADS);
        });
    }
}

/// The child of [`many_processes_open_one_new_path`]: says it is ready, waits for its
/// parent's signal (so every child opens at the same moment), opens the store its parent
/// names, records one job and closes. Does nothing when run as a test of its own.
#[test]
fn child_process_of_many_processes() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(path);
    let folder = path
        .parent()
        .and_then(Path::parent)
        .expect("the round's folder");
    std::fs::write(folder.join(format!("ready-{}", std::process::id())), b"").unwrap();
    let waiting = Instant::now();
    while !folder.join("go").exists() {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "no signal to start"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    let result = runtime().block_on(async {
        let store = runcomfy_store::open(&location(&path)).await?;
        let input = json!({"prompt": format!("process {}", std::process::id())});
        store.record_intent(MODEL, &input).await?;
        store.close().await
    });
    if let Err(e) = result {
        panic!("child {}: {e}", std::process::id());
    }
}

#[test]
fn many_processes_open_one_new_path_at_once() {
    const PROCESSES: usize = 12;
    const LIMIT: Duration = Duration::from_secs(90);
    let exe = std::env::current_exe().unwrap();
    for round in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join("jobs.db");
        let mut children: Vec<_> = (0..PROCESSES)
            .map(|_| {
                Command::new(&exe)
                    .args([
                        "--exact",
                        "child_process_of_many_processes",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(CHILD_ENV, &path)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn a child")
            })
            .collect();
        let started = Instant::now();
        let ready = |dir: &Path| {
            std::fs::read_dir(dir).map_or(0, |entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("ready-"))
                    .count()
            })
        };
        while ready(dir.path()) < PROCESSES && started.elapsed() < LIMIT {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Every child opens now (or, if some never got ready, the deadline below reports it).
        std::fs::write(dir.path().join("go"), b"").unwrap();
        let mut failures = Vec::new();
        for child in &mut children {
            let status = loop {
                match child.try_wait().expect("wait") {
                    Some(status) => break Some(status),
                    None if started.elapsed() > LIMIT => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                    None => std::thread::sleep(Duration::from_millis(10)),
                }
            };
            let mut out = String::new();
            if let Some(mut stdout) = child.stdout.take() {
                let _ = stdout.read_to_string(&mut out);
            }
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut out);
            }
            match status {
                Some(s) if s.success() => {}
                Some(s) => failures.push(format!("{s}: {out}")),
                None => failures.push(format!("killed after {LIMIT:?}: {out}")),
            }
        }
        assert!(failures.is_empty(), "round {round}: {failures:#?}");
        runtime().block_on(async {
            let store = runcomfy_store::open(&location(&path)).await.unwrap();
            assert_eq!(store.recent_jobs(100).await.unwrap().len(), PROCESSES);
        });
    }
}
