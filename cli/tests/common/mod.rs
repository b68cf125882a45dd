//! Test harness: the fake RunComfy server in this process, a loopback file host for the
//! outputs, the built `runcomfy` binary aimed at both, and a pseudo-terminal.

#![allow(dead_code)]

pub mod fleet;
pub mod media;

use runcomfy_testenv::{Within as _, DEADLINE};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runcomfy_fake::{FakeServer, FakeServerBuilder, FAKE_TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The path of the built binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_runcomfy");

pub const I2V: &str = "happyhorse/happyhorse-1.0/image-to-video";
/// A model the fake server knows but that is not built into the binary.
pub const EXTRA: &str = "acme/extra/text-to-image";
pub const EXTRA_SCHEMA: &str = r#"{"type":"object","required":["prompt"],"properties":{"prompt":{"type":"string"},"steps":{"type":"integer"}}}"#;

/// A fake API, a file host and temporary folders, served by a runtime of their own so the
/// test thread can block on the binary.
pub struct Env {
    pub rt: tokio::runtime::Runtime,
    pub server: FakeServer,
    pub files: FileServer,
    pub data: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

impl Env {
    /// Every generated model plus [`EXTRA`], default lifecycles.
    pub fn new() -> Env {
        Env::with(|b| b)
    }

    /// Like [`Env::new`], with the server builder adjusted by `f`.
    pub fn with(f: impl FnOnce(FakeServerBuilder) -> FakeServerBuilder) -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let builder = FakeServer::builder()
            .all_models()
            .model(EXTRA, EXTRA_SCHEMA);
        let server = rt.block_on(f(builder).start()).unwrap();
        let files = rt.block_on(FileServer::start());
        Env {
            rt,
            server,
            files,
            data: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    fn configure(&self, c: &mut StdCommand) {
        for var in [
            "RUNCOMFY_TOKEN",
            "RUNCOMFY_BASE_URL",
            "RUNCOMFY_JOURNAL_DIR",
            "RUNCOMFY_DATA_DIR",
            "RUNCOMFY_POLL_INTERVAL_MS",
            "RUNCOMFY_TIMEOUT",
            "RUNCOMFY_RETRIES",
            "RUNCOMFY_STORE",
        ] {
            c.env_remove(var);
        }
        c.env("RUNCOMFY_BASE_URL", self.server.base_url())
            .env("RUNCOMFY_TOKEN", FAKE_TOKEN)
            .env("RUNCOMFY_DATA_DIR", self.data.path())
            .env("RUNCOMFY_POLL_INTERVAL_MS", "5")
            .env("RUNCOMFY_TIMEOUT", "20s")
            .env("RUNCOMFY_RETRIES", "1")
            .env("NO_COLOR", "1")
            .current_dir(self.work.path());
    }

    /// The binary, configured for this environment.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut std = StdCommand::new(BIN);
        self.configure(&mut std);
        let mut c = assert_cmd::Command::from_std(std);
        c.timeout(Duration::from_secs(60));
        c
    }

    /// The same, as a plain `std` command (to spawn and kill, or to put on a terminal).
    pub fn std_cmd(&self) -> StdCommand {
        let mut c = StdCommand::new(BIN);
        self.configure(&mut c);
        c
    }

    /// Every single job of the store, as `runcomfy jobs --all --json` lists them (oldest
    /// first).
    pub fn jobs(&self) -> Vec<serde_json::Value> {
        let out = self
            .std_cmd()
            .args(["jobs", "--all", "--json"])
            .within(DEADLINE);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The default store's file (`jobs.db` in the data folder).
    pub fn store_file(&self) -> PathBuf {
        self.data.path().join("jobs.db")
    }

    /// A path in the work folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }
}

/// One request the file host received.
#[derive(Debug, Clone)]
pub struct FileRequest {
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl FileRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct FileState {
    files: HashMap<String, Vec<u8>>,
    /// Paths whose next answer stops after this many body bytes, then hangs up.
    cuts: Vec<(String, usize)>,
    requests: Vec<FileRequest>,
    /// Answers start only once this many requests arrived (all downloads in flight at once),
    /// or [`GATE_DEADLINE`] after the request (a client that died never holds the others).
    gate: usize,
    /// Paths whose answers send half the body, then wait for `release`.
    held: Vec<String>,
}

/// How long a gated or held answer waits for the others or for its release before it goes
/// on anyway (the test then fails on what it sees, instead of hanging).
pub const GATE_DEADLINE: Duration = Duration::from_secs(30);

/// A tiny HTTP/1.1 file host on 127.0.0.1 that honours `Range: bytes=N-` and can break a
/// transfer halfway.
pub struct FileServer {
    pub base: String,
    state: Arc<Mutex<FileState>>,
    /// Bumped at every request and release: what held answers wait on.
    changed: tokio::sync::watch::Sender<u64>,
}

impl FileServer {
    pub async fn start() -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(FileState::default()));
        let shared = state.clone();
        let (changed, _) = tokio::sync::watch::channel(0u64);
        let notify = changed.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone(), notify.clone()));
            }
        });
        FileServer {
            base,
            state,
            changed,
        }
    }

    /// No answer starts before `n` requests arrived: concurrent downloads overlap for sure.
    pub fn gate(&self, n: usize) {
        self.state.lock().unwrap().gate = n;
    }

    /// Answers for `name` send half their body, then wait until [`FileServer::release`].
    pub fn hold(&self, name: &str) {
        self.state
            .lock()
            .unwrap()
            .held
            .push(format!("/files/{name}"));
    }

    /// Lets the held answers for `name` finish.
    pub fn release(&self, name: &str) {
        let path = format!("/files/{name}");
        self.state.lock().unwrap().held.retain(|p| *p != path);
        self.changed.send_modify(|n| *n += 1);
    }

    /// Serves `body` at `/files/<name>`; returns its URL.
    pub fn add(&self, name: &str, body: Vec<u8>) -> String {
        let path = format!("/files/{name}");
        self.state.lock().unwrap().files.insert(path.clone(), body);
        format!("{}{path}", self.base)
    }

    /// The next answer for `name` sends only `after` body bytes, then hangs up.
    pub fn cut_next(&self, name: &str, after: usize) {
        self.state
            .lock()
            .unwrap()
            .cuts
            .push((format!("/files/{name}"), after));
    }

    pub fn requests(&self) -> Vec<FileRequest> {
        self.state.lock().unwrap().requests.clone()
    }
}

async fn serve(
    mut stream: TcpStream,
    state: Arc<Mutex<FileState>>,
    changed: tokio::sync::watch::Sender<u64>,
) {
    let mut watch = changed.subscribe();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_owned();
    let headers: Vec<(String, String)> = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let request = FileRequest {
        path: path.clone(),
        headers,
    };
    let (file, cut) = {
        let mut st = state.lock().unwrap();
        st.requests.push(request.clone());
        let cut = st
            .cuts
            .iter()
            .position(|(p, _)| *p == path)
            .map(|i| st.cuts.remove(i).1);
        (st.files.get(&path).cloned(), cut)
    };
    changed.send_modify(|n| *n += 1);
    let gate_open = |st: &FileState| st.requests.len() >= st.gate;
    let _ = tokio::time::timeout(
        GATE_DEADLINE,
        watch.wait_for(|_| gate_open(&state.lock().unwrap())),
    )
    .await;
    let Some(file) = file else {
        let _ = stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        return;
    };
    let len = file.len();
    let start = request
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let (status, from) = match start {
        Some(s) if s >= len => {
            let _ = stream
                .write_all(format!("HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes())
                .await;
            return;
        }
        Some(s) => (
            format!(
                "206 Partial Content\r\nContent-Range: bytes {s}-{}/{len}",
                len - 1
            ),
            s,
        ),
        None => ("200 OK".to_owned(), 0),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        len - from
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let body = &file[from..];
    let body = match cut {
        Some(n) => &body[..n.min(body.len())],
        None => body,
    };
    let held = |st: &FileState| st.held.contains(&path);
    if held(&state.lock().unwrap()) {
        let (first, rest) = body.split_at(body.len() / 2);
        let _ = stream.write_all(first).await;
        let _ = stream.flush().await;
        let _ = tokio::time::timeout(
            GATE_DEADLINE,
            watch.wait_for(|_| !held(&state.lock().unwrap())),
        )
        .await;
        let _ = stream.write_all(rest).await;
    } else {
        let _ = stream.write_all(body).await;
    }
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
}

/// Runs `cmd` with its standard output and error on a pseudo-terminal (100x30); returns its
/// status and everything it wrote there.
pub fn run_in_pty(mut cmd: StdCommand) -> (ExitStatus, Vec<u8>) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let name = ptsname(&master, Vec::new()).expect("ptsname");
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(Path::new(name.to_str().expect("utf-8 pty name")))
        .expect("open pty slave");
    let size = rustix::termios::Winsize {
        ws_row: 30,
        ws_col: 100,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&slave, size).expect("set the window size");
    cmd.env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .stdout(slave.try_clone().expect("dup"))
        .stderr(slave);
    let child = cmd.spawn().expect("spawn on the pty");
    // The parent's copies of the slave are gone with `cmd`: the reader sees the end once the
    // child exits.
    drop(cmd);
    let mut master = std::fs::File::from(master);
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        out
    });
    let status = child.within(DEADLINE).status;
    let out = reader.join().expect("reader");
    (status, out)
}

/// `run` of [`I2V`] with its two required inputs.
pub fn i2v_args() -> Vec<&'static str> {
    vec![
        "run",
        I2V,
        "--image-url",
        "https://example.com/cat.png",
        "--prompt",
        "the cat turns its head",
    ]
}

impl Env {
    /// `run` of [`I2V`] (output piped) whose submit the server answers only after `delay`
    /// (making the paid job at once), returned once the job exists: a submit in flight.
    pub fn run_with_submit_in_flight(&self, delay: Duration) -> std::process::Child {
        self.server.inject_times(
            runcomfy_fake::Route::Submit,
            runcomfy_fake::Fault::Delay(delay),
            1,
        );
        let child = self
            .std_cmd()
            .args(i2v_args())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runcomfy starts");
        let sent = wait_until(Duration::from_secs(20), || self.server.job_count() == 1);
        assert!(sent, "the submit never reached the server");
        child
    }
}

/// Bytes a command wrote, as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Waits until `cond` holds, for at most `limit`.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// `cmd` run by `sh` under a file-size limit of `blocks` (512 bytes each) with `SIGXFSZ`
/// ignored (an ignored signal stays ignored across exec), so a write past it fails with
/// "file too large" instead of killing the process.
pub fn under_file_limit(cmd: StdCommand, blocks: u64) -> StdCommand {
    let mut sh = StdCommand::new("sh");
    sh.arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\""
        ))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        sh.current_dir(dir);
    }
    sh
}
