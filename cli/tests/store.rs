//! The job store's file through the `runcomfy` binary against the fake server: commands
//! started together on a new data folder, a damaged store refused and left untouched, the
//! file alone holding every job once a command ended, `store check` and `store backup`, and
//! a libpq `key=value` connection string taken for PostgreSQL with its password never shown.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{i2v_args, text, Env};

/// The longest a command of these tests may take before it is killed.
const LIMIT: Duration = Duration::from_secs(60);

/// Waits for every child within [`LIMIT`] (from `started`), killing any that outlives it;
/// returns each one's output, a killed one's with `None` as its status code.
fn wait_all(children: Vec<Child>, started: Instant) -> Vec<(Option<i32>, String, String)> {
    children
        .into_iter()
        .map(|mut child| {
            let code = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break status.code(),
                    Ok(None) if started.elapsed() > LIMIT => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                    Err(e) => panic!("waiting for a child: {e}"),
                }
            };
            let output = child.wait_with_output().unwrap_or_else(|e| Output {
                status: Default::default(),
                stdout: Vec::new(),
                stderr: e.to_string().into_bytes(),
            });
            (code, text(&output.stdout), text(&output.stderr))
        })
        .collect()
}

/// Runs the binary with `args` (and `data` as its data folder when given) within [`LIMIT`].
fn run(env: &Env, data: Option<&Path>, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = env.std_cmd();
    if let Some(dir) = data {
        cmd.env("RUNCOMFY_DATA_DIR", dir);
    }
    let child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn runcomfy");
    wait_all(vec![child], Instant::now()).remove(0)
}

/// The request ids `runcomfy jobs --all --json --store STORE` lists.
fn listed_ids(env: &Env, store: &Path) -> Vec<String> {
    let store = store.display().to_string();
    let (code, out, err) = run(env, None, &["jobs", "--all", "--json", "--store", &store]);
    assert_eq!(code, Some(0), "jobs --store {store}: {err}");
    out.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|j| j["request_id"].as_str().map(str::to_owned))
        .collect()
}

/// The request id of a finished `run` (its store's only job).
fn request_id_of_run(env: &Env, data: &Path) -> String {
    let (code, _, err) = run(env, Some(data), &i2v_args());
    assert_eq!(code, Some(0), "run: {err}");
    let ids = listed_ids(env, &data.join("jobs.db"));
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids[0].clone()
}

#[test]
fn commands_started_together_on_a_new_data_folder_all_succeed() {
    let env = Env::new();
    for round in 0..16 {
        let data = tempfile::tempdir().unwrap();
        let folder = data.path().join("new");
        let started = Instant::now();
        let children: Vec<Child> = [vec!["jobs"], vec!["jobs"], i2v_args(), i2v_args()]
            .into_iter()
            .map(|args| {
                env.std_cmd()
                    .env("RUNCOMFY_DATA_DIR", &folder)
                    .args(args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn runcomfy")
            })
            .collect();
        for (i, (code, out, err)) in wait_all(children, started).into_iter().enumerate() {
            assert_eq!(
                code,
                Some(0),
                "round {round}, command {i}: stdout {out:?}, stderr {err:?}"
            );
        }
        assert_eq!(listed_ids(&env, &folder.join("jobs.db")).len(), 2);
    }
}

#[test]
fn a_command_waits_out_a_lock_sqlite_does_not_wait_for() {
    // The state of a new file while its creator sets WAL mode: another journal mode and a
    // write in progress. Switching it to WAL answers "database is locked" without waiting.
    let env = Env::new();
    request_id_of_run(&env, env.data.path());
    let holder = rusqlite::Connection::open(env.store_file()).unwrap();
    holder
        .execute_batch("PRAGMA journal_mode = DELETE; BEGIN IMMEDIATE;")
        .unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        holder.execute_batch("COMMIT").unwrap();
    });
    let (code, out, err) = run(&env, None, &["jobs", "--all"]);
    release.join().unwrap();
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("succeeded"), "{out}");
}

#[test]
fn a_truncated_store_is_refused_untouched_and_nothing_is_sent() {
    let env = Env::new();
    let data = env.data.path();
    request_id_of_run(&env, data);
    let file = env.store_file();
    std::fs::File::create(&file).unwrap(); // truncated to 0 bytes
    let submits = env.server.submits();
    for args in [vec!["jobs"], i2v_args()] {
        let (code, out, err) = run(&env, None, &args);
        assert_ne!(code, Some(0), "{args:?}: {out}");
        assert!(code.is_some(), "{args:?} hung: {err}");
        assert!(
            err.contains(&file.display().to_string()) && err.contains("damaged"),
            "{args:?}: {err}"
        );
        assert!(err.contains("store check"), "{args:?}: {err}");
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 0, "{args:?}");
    }
    assert_eq!(
        env.server.submits(),
        submits,
        "a job was sent without its store"
    );
}

#[test]
fn once_a_run_ended_a_copy_of_the_file_alone_lists_its_job() {
    let env = Env::new();
    for _ in 0..4 {
        let data = tempfile::tempdir().unwrap();
        let id = request_id_of_run(&env, data.path());
        let copy = env.path(&format!("copy-{id}.db"));
        std::fs::copy(data.path().join("jobs.db"), &copy).unwrap(); // without its -wal
        assert_eq!(listed_ids(&env, &copy), [id]);
    }
}

/// Overwrites page 2 of a SQLite file (the root of the store's first table) with garbage.
fn corrupt_second_page(path: &Path) {
    let header = std::fs::read(path).unwrap();
    let size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(size)).unwrap();
    let garbage: Vec<u8> = (0..size).map(|i| (i * 31 + 7) as u8).collect();
    file.write_all(&garbage).unwrap();
}

#[test]
fn store_check_counts_the_jobs_and_finds_a_corrupt_page() {
    let env = Env::new();
    request_id_of_run(&env, env.data.path());
    let (code, out, err) = run(&env, None, &["store", "check"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("ok, 1 jobs (1 succeeded)"), "{out}");
    let (code, out, _) = run(&env, None, &["store", "check", "--json"]);
    assert_eq!(code, Some(0));
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["jobs"]["succeeded"], 1, "{report}");

    let file = env.store_file();
    corrupt_second_page(&file);
    let before = std::fs::read(&file).unwrap();
    let (code, out, err) = run(&env, None, &["store", "check"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("problem:"), "{out}");
    assert!(err.contains("damaged"), "{err}");
    let (code, _, err) = run(&env, None, &["jobs"]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("quick_check") || err.contains("malformed"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "the damaged file was changed"
    );
}

#[test]
fn store_backup_makes_a_store_jobs_lists() {
    let env = Env::new();
    let id = request_id_of_run(&env, env.data.path());
    let copy = env.path("backup.db");
    let dest = copy.display().to_string();
    let (code, out, err) = run(&env, None, &["store", "backup", &dest]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), dest);
    assert_eq!(listed_ids(&env, &copy), [id]);
    let (code, _, err) = run(&env, None, &["store", "backup", &dest]);
    assert_ne!(code, Some(0));
    assert!(err.contains("never replaces"), "{err}");
}

/// Every file under `dir`, at any depth.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path.clone());
            }
            found.push(path);
        }
    }
    found
}

#[test]
fn a_libpq_connection_string_is_postgres_and_its_password_is_never_shown() {
    let env = Env::new();
    let libpq = "host=127.0.0.1 port=1 password=s3cret dbname=x connect_timeout=2";
    let mut runs = vec![
        vec!["jobs", "--store", libpq],
        vec!["--json", "jobs", "--store", libpq],
        vec!["batch", "status", "b", "--store", libpq],
        vec!["store", "check", "--store", libpq],
    ];
    let mut run_with_store = i2v_args();
    run_with_store.extend(["--store", libpq]);
    runs.push(run_with_store);
    for args in runs {
        let (code, out, err) = run(&env, None, &args);
        assert!(
            code.is_some_and(|c| c != 0),
            "{args:?}: {code:?} {out} {err}"
        );
        assert!(
            !out.contains("s3cret") && !err.contains("s3cret"),
            "{args:?}: {out} {err}"
        );
        assert!(
            err.contains("127.0.0.1"),
            "{args:?}: not taken for PostgreSQL: {err}"
        );
    }
    assert_eq!(env.server.submits(), 0, "a job was sent without its store");
    for dir in [env.work.path(), env.data.path()] {
        let named: Vec<_> = files_under(dir)
            .into_iter()
            .filter(|p| p.display().to_string().contains("s3cret"))
            .collect();
        assert!(named.is_empty(), "{named:?}");
    }
    // A path that only looks like a connection string is refused, not guessed.
    let (code, _, err) = run(&env, None, &["jobs", "--store", "jobs=1.db"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("not a PostgreSQL connection keyword"), "{err}");
    assert!(!env.path("jobs=1.db").exists());
}
