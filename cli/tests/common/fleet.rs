//! A fleet of real processes for the kill and chaos tests: the `runcomfy-fake` binary, a
//! work folder with a rows file, `runcomfy batch` workers, and the check of a finished batch
//! against the fake's own record (at most one job per input, every paid id in the store or
//! its row uncertain, every output saved once and identical to the server's).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_runcomfy");
pub const I2V: &str = "happyhorse/happyhorse-1.0/image-to-video";
pub const TOKEN: &str = "fake-runcomfy-token";

/// A small xorshift generator: the kill moments of a run are reproducible from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Rng {
        let seed = std::env::var("RUNCOMFY_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("kill test seed: {seed} (RUNCOMFY_KILL_SEED={seed} repeats it)");
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The `runcomfy-fake` binary, built when the workspace build did not make it.
pub fn fake_binary() -> PathBuf {
    let dir = Path::new(BIN).parent().unwrap().to_path_buf();
    let bin = dir.join("runcomfy-fake");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "runcomfy-fake", "--bin", "runcomfy-fake"])
            .status()
            .unwrap();
        assert!(status.success(), "cannot build runcomfy-fake");
    }
    bin
}

/// The fake API as a process, killed when dropped.
pub struct Fake {
    pub child: Child,
    pub url: String,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Fake {
    pub fn start(args: &[&str]) -> Fake {
        let mut child = Command::new(fake_binary())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "fake said {line:?}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Fake {
            child,
            url,
            rt,
            http: reqwest::Client::new(),
        }
    }

    pub fn get(&self, path_or_url: &str) -> Vec<u8> {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.url)
        };
        self.rt.block_on(async {
            let r = self.http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
            assert!(r.status().is_success(), "{url}: {}", r.status());
            r.bytes().await.unwrap().to_vec()
        })
    }

    /// Plays a fault on the fake's next requests of a route (`POST /_fake/inject`).
    pub fn inject(&self, route: &str, times: u64, fault: Value) {
        let url = format!("{}/_fake/inject", self.url);
        let body = json!({"route": route, "times": times, "fault": fault});
        self.rt.block_on(async {
            let r = self
                .http
                .post(&url)
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "inject {body}: {}", r.status());
        });
    }

    pub fn json(&self, path: &str) -> Value {
        serde_json::from_slice(&self.get(path)).unwrap()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A folder with the rows file, the outputs and the data folder of the workers.
pub struct Work {
    pub dir: tempfile::TempDir,
}

impl Work {
    pub fn new(rows: u64) -> Work {
        let dir = tempfile::tempdir().unwrap();
        let lines: Vec<String> = (1..=rows)
            .map(|i| {
                json!({"image_url": format!("https://example.test/{i}.png"), "prompt": format!("row {i}"), "duration": 3})
                    .to_string()
            })
            .collect();
        std::fs::write(dir.path().join("rows.jsonl"), lines.join("\n") + "\n").unwrap();
        Work { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A worker process: `runcomfy batch` over the rows into `out`.
    pub fn worker(&self, fake: &Fake, store: &str, name: &str, concurrency: u32) -> Command {
        let mut c = Command::new(BIN);
        for var in ["RUNCOMFY_STORE", "RUNCOMFY_TIMEOUT", "RUNCOMFY_RETRIES"] {
            c.env_remove(var);
        }
        c.env("RUNCOMFY_BASE_URL", &fake.url)
            .env("RUNCOMFY_TOKEN", TOKEN)
            .env("RUNCOMFY_DATA_DIR", self.path("data"))
            .env("RUNCOMFY_POLL_INTERVAL_MS", "50")
            .current_dir(self.dir.path())
            .args([
                "--quiet",
                "batch",
                I2V,
                "--input",
                "rows.jsonl",
                "--out",
                "out",
            ])
            .args(["--store", store, "--name", name, "--lease", "1s"])
            .args(["--concurrency", &concurrency.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        // Every worker's errors, appended to one file the failure messages show.
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("workers.log"))
        {
            Ok(log) => c.stderr(log),
            Err(_) => c.stderr(Stdio::null()),
        };
        c
    }
}

pub fn sigkill(child: &mut Child) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    let _ = child.wait();
}

/// What the checks found, printed by every kill test.
#[derive(Debug, Default)]
pub struct Figures {
    pub rows: u64,
    pub kills: u64,
    pub server_jobs: usize,
    pub max_jobs_per_input: usize,
    pub missing_ids: usize,
    pub missing_ids_of_uncertain_rows: usize,
    pub uncertain: u64,
    pub succeeded: u64,
    pub files: usize,
    pub files_identical: usize,
    /// Files in `out/<line>/` beyond the recorded ones (a second copy, `name-1`): must be 0,
    /// since a run finds a file published just before a kill and records it.
    pub extra_copies: usize,
}

/// Checks the batch against the fake's own record and prints the figures.
pub fn check(fake: &Fake, work: &Work, store: &str, name: &str, rows: u64, kills: u64) -> Figures {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let backend = if store.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    let store = rt.block_on(runcomfy_store::open(store)).unwrap();
    let status = rt.block_on(store.batch_status(name)).unwrap();
    let batch = rt.block_on(store.batch(name)).unwrap().unwrap();
    let records = rt
        .block_on(store.batch_rows(batch.id, &runcomfy_store::RowFilter::all()))
        .unwrap();
    let mut f = Figures {
        rows,
        kills,
        uncertain: status.uncertain,
        succeeded: status.succeeded,
        ..Figures::default()
    };
    assert_eq!(status.total, rows);
    assert!(status.is_done(), "the batch is not done: {status:?}");
    assert_eq!(status.succeeded + status.uncertain, rows, "{status:?}");

    // At most one job per input, on the server's count.
    let inputs = fake.json("/_fake/inputs");
    let inputs = inputs.as_array().unwrap();
    f.max_jobs_per_input = inputs
        .iter()
        .map(|i| i["jobs"].as_u64().unwrap() as usize)
        .max()
        .unwrap_or(0);
    let jobs = fake.json("/_fake/jobs");
    let jobs = jobs.as_array().unwrap();
    f.server_jobs = jobs.len();

    // Every paid request id is in the store, or its row is uncertain (its answer was lost).
    let uncertain_hashes: HashSet<&str> = records
        .iter()
        .filter(|r| r.state == runcomfy_store::State::Uncertain)
        .map(|r| r.input_sha256.as_str())
        .collect();
    let known: HashSet<&str> = records
        .iter()
        .filter_map(|r| r.request_id.as_deref())
        .collect();
    for job in jobs {
        let id = job["request_id"].as_str().unwrap();
        if !known.contains(id) {
            f.missing_ids += 1;
            if uncertain_hashes.contains(runcomfy_store::input_sha256(&job["input"]).as_str()) {
                f.missing_ids_of_uncertain_rows += 1;
            }
        }
    }

    // Every output present once and identical to the server's.
    let out = work.path("out");
    let mut per_row: BTreeMap<u64, usize> = BTreeMap::new();
    for entry in std::fs::read_dir(&out).unwrap() {
        let entry = entry.unwrap();
        let Ok(line) = entry.file_name().to_string_lossy().parse::<u64>() else {
            continue;
        };
        let visible = std::fs::read_dir(entry.path())
            .unwrap()
            .filter(|e| {
                !e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with('.')
            })
            .count();
        per_row.insert(line, visible);
    }
    let by_line: HashMap<u64, &runcomfy_store::JobRecord> = records
        .iter()
        .filter_map(|r| r.batch.map(|(_, line)| (line, r)))
        .collect();
    for (line, record) in &by_line {
        if record.state != runcomfy_store::State::Succeeded {
            continue;
        }
        let outputs = rt.block_on(store.outputs(record.key)).unwrap();
        assert!(!outputs.is_empty(), "line {line}: no output recorded");
        for o in outputs {
            let path = o
                .path
                .unwrap_or_else(|| panic!("line {line}: {} not saved", o.url));
            assert!(path.is_absolute(), "{}", path.display());
            f.files += 1;
            let saved = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if saved == fake.get(&o.url) {
                f.files_identical += 1;
            }
        }
        f.extra_copies += per_row.get(line).copied().unwrap_or(0).saturating_sub(1);
    }
    eprintln!(
        "kill test: backend={} rows={} kills={} server_jobs={} max_jobs_per_input={} missing_ids={} (of uncertain rows: {}) uncertain={} succeeded={} files={} identical={} extra_copies={}",
        backend,
        f.rows, f.kills, f.server_jobs, f.max_jobs_per_input, f.missing_ids, f.missing_ids_of_uncertain_rows, f.uncertain, f.succeeded, f.files, f.files_identical, f.extra_copies
    );
    assert!(f.max_jobs_per_input <= 1, "an input was submitted twice");
    assert_eq!(
        f.missing_ids, f.missing_ids_of_uncertain_rows,
        "a paid request id is missing from the store"
    );
    assert!(f.missing_ids as u64 <= f.uncertain);
    assert_eq!(
        f.files, f.files_identical,
        "a saved output differs from the server's"
    );
    assert_eq!(f.files as u64, f.succeeded);
    // Issues 11 and 12: every output downloaded exactly once, even when a kill lands between
    // a file's publish and its record.
    assert_eq!(f.extra_copies, 0, "an output was downloaded twice");
    f
}
