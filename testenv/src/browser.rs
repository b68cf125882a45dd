//! A headless Chromium driven over its DevTools protocol (CDP), for tests marked
//! `#[needs(chromium)]`: the page is used as a person uses it (mouse clicks at an element's
//! place, typed text, keys), read back with `Runtime.evaluate`, and screenshotted.
//!
//! The protocol is JSON over one WebSocket ([`tungstenite`], blocking): a command is
//! `{id, method, params, sessionId}` and its answer carries the same `id`; events are skipped.
//! Every wait has a deadline. The browser runs without network but the loopback address (`--host-resolver-rules`
//! resolves every host nowhere, and no background service calls out) in a fresh profile
//! folder, removed with the browser.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// The window (and screenshot) size.
pub const WIDTH: u32 = 1280;
/// The window (and screenshot) size.
pub const HEIGHT: u32 = 1600;

/// The flags every test browser runs with: headless, no network, nothing in the background.
pub const FLAGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
];

/// One running headless Chromium with one page attached.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    session: String,
    next: u64,
    profile: PathBuf,
}

impl Browser {
    /// Starts `chromium` (the path [`crate::chromium`] gives) with one blank page; panics when
    /// it does not answer within `limit`.
    pub fn launch(chromium: &Path, limit: Duration) -> Browser {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let profile = std::env::temp_dir().join(format!(
            "runcomfy-chromium-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).unwrap_or_else(|e| panic!("{}: {e}", profile.display()));
        let mut child = Command::new(chromium)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("--window-size={WIDTH},{HEIGHT}"))
            .arg("--remote-debugging-port=0")
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
        // Chromium prints `DevTools listening on ws://...` on stderr; the rest of its stderr
        // is drained (and kept for a failure's message).
        let (tx, rx) = mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        // Nobody listens any more: keep draining.
                    }
                }
            });
        }
        // Any failure from here on kills the browser and removes its profile first.
        let connect = || -> Result<WebSocket<TcpStream>, String> {
            let start = Instant::now();
            let mut seen = Vec::new();
            let url = loop {
                let left = limit.saturating_sub(start.elapsed());
                match rx.recv_timeout(left) {
                    Ok(line) => match line.split_once("DevTools listening on ") {
                        Some((_, url)) => break url.trim().to_owned(),
                        None => seen.push(line),
                    },
                    Err(_) => {
                        return Err(format!(
                            "chromium printed no DevTools address within {limit:?}:\n{}",
                            seen.join("\n")
                        ))
                    }
                }
            };
            let host = url
                .strip_prefix("ws://")
                .and_then(|rest| rest.split('/').next())
                .ok_or_else(|| format!("unexpected DevTools address {url}"))?;
            let stream = TcpStream::connect(host).map_err(|e| format!("{host}: {e}"))?;
            let _ = stream.set_read_timeout(Some(limit));
            let (ws, _) =
                tungstenite::client(url.as_str(), stream).map_err(|e| format!("{url}: {e}"))?;
            // Short reads from now on, so every answer's wait keeps its own deadline.
            let _ = ws
                .get_ref()
                .set_read_timeout(Some(Duration::from_millis(200)));
            Ok(ws)
        };
        let ws = match connect() {
            Ok(ws) => ws,
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&profile);
                panic!("{why}");
            }
        };
        let mut browser = Browser {
            child,
            ws,
            session: String::new(),
            next: 0,
            profile,
        };
        let target = browser.call_on(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].clone();
        let attached = browser.call_on(
            None,
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false}),
        );
        browser
    }

    /// Sends one command to the page and returns its result; panics on a protocol error or
    /// after 60 s without an answer.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.call_on(Some(&session), method, params)
    }

    fn call_on(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        let limit = Duration::from_secs(60);
        let start = Instant::now();
        loop {
            if start.elapsed() > limit {
                panic!("{method}: no answer within {limit:?}");
            }
            let text = match self.ws.read() {
                Ok(Message::Text(t)) => t.to_string(),
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) => panic!("{method}: {e}"),
            };
            let Ok(answer) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if answer["id"] != json!(id) {
                continue;
            }
            if let Some(err) = answer.get("error") {
                panic!("{method}: {err}");
            }
            return answer["result"].clone();
        }
    }

    /// Opens `url` and waits (at most `limit`) until `ready`, a JavaScript expression, is
    /// true; returns the time from the navigation to that moment.
    pub fn open(&mut self, url: &str, ready: &str, limit: Duration) -> Duration {
        let start = Instant::now();
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for(ready, limit);
        start.elapsed()
    }

    /// The value of a JavaScript expression in the page (promises awaited); panics when it
    /// throws.
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expr}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Waits (at most `limit`) until `expr` is truthy; returns its value. Panics on the
    /// deadline with the expression.
    pub fn wait_for(&mut self, expr: &str, limit: Duration) -> Value {
        let start = Instant::now();
        loop {
            let v = self.eval(&format!(
                "(function(){{try{{return ({expr});}}catch(e){{return null}}}})()"
            ));
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if start.elapsed() > limit {
                panic!("not true within {limit:?}: {expr} (last value {v})");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Clicks the middle of the first element `selector` matches (scrolled into view first),
    /// as a mouse does; panics when nothing matches.
    pub fn click(&mut self, selector: &str) {
        let sel = json!(selector);
        let at = self.eval(&format!(
            "(function(){{var e=document.querySelector({sel});if(!e)return null;e.scrollIntoView({{block:'center'}});var r=e.getBoundingClientRect();return [r.left+r.width/2,r.top+r.height/2]}})()"
        ));
        let (Some(x), Some(y)) = (at[0].as_f64(), at[1].as_f64()) else {
            panic!("nothing to click: {selector}");
        };
        for (kind, count) in [("mouseMoved", 0), ("mousePressed", 1), ("mouseReleased", 1)] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": count}),
            );
        }
    }

    /// Types `text` into the focused element.
    pub fn type_text(&mut self, text: &str) {
        self.call("Input.insertText", json!({"text": text}));
    }

    /// Presses and releases one key: `ArrowRight`, `ArrowLeft`, `ArrowDown`, `ArrowUp`,
    /// `Enter`, `Escape`, `Backspace` or a printable character.
    pub fn key(&mut self, key: &str) {
        let code = match key {
            "ArrowLeft" => 37,
            "ArrowUp" => 38,
            "ArrowRight" => 39,
            "ArrowDown" => 40,
            "Enter" => 13,
            "Escape" => 27,
            "Backspace" => 8,
            k => k
                .chars()
                .next()
                .map_or(0, |c| c.to_ascii_uppercase() as u32),
        };
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": key, "windowsVirtualKeyCode": code}),
            );
        }
    }

    /// A PNG screenshot of the window, written to `path`; returns its bytes.
    pub fn screenshot(&mut self, path: &Path) -> Vec<u8> {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
        std::fs::write(path, &png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        png
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.ws.close(None);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A `file://` URL for a local page.
pub fn file_url(path: &Path) -> String {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = String::from("file://");
    for b in abs.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
