//! What the user sees: an indicatif spinner and bars on a terminal, plain lines otherwise,
//! nothing with `--quiet`, one JSON object per event on standard output with `--json`.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use runcomfy::Progress;

/// How events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One JSON object per event on standard output.
    Json,
    /// Only results and errors.
    Quiet,
    /// Spinners and bars on standard error (a terminal).
    Terminal,
    /// One plain line per change on standard error (not a terminal: no control codes).
    Plain,
}

/// The display of one command.
pub struct Ui {
    mode: Mode,
    started: Instant,
    spinner: Mutex<Option<ProgressBar>>,
}

/// Writes a line to standard output; a closed pipe is not an error worth a panic.
pub fn out(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", printable(line));
    let _ = stdout.flush();
}

/// Writes a line to standard error.
pub fn err(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{}", printable(line));
}

/// `text` safe for a terminal: every control character but a line break or a tab is
/// written as an escape (`\u{1b}`), so a message from the server, a file or a schema can
/// never move the cursor, recolour or rewrite what the screen shows.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut clean = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            clean.extend(c.escape_unicode());
        } else {
            clean.push(c);
        }
    }
    std::borrow::Cow::Owned(clean)
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl Ui {
    /// Picks the mode from the flags and whether standard error is a terminal.
    pub fn new(json: bool, quiet: bool) -> Ui {
        let mode = if json {
            Mode::Json
        } else if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Terminal
        } else {
            Mode::Plain
        };
        Ui {
            mode,
            started: Instant::now(),
            spinner: Mutex::new(None),
        }
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Emits an event object (JSON mode only), with the elapsed time added.
    pub fn event(&self, mut event: Value) {
        if self.mode == Mode::Json {
            if let Value::Object(map) = &mut event {
                map.insert(
                    "elapsed_ms".to_owned(),
                    Value::from(self.started.elapsed().as_millis() as u64),
                );
            }
            out(&event.to_string());
        }
    }

    /// A note for people (plain and terminal modes), on standard error.
    pub fn note(&self, line: &str) {
        match self.mode {
            Mode::Plain => err(line),
            Mode::Terminal => self.suspend(|| err(line)),
            _ => {}
        }
    }

    /// A warning: shown in every mode but JSON, where it is an event.
    pub fn warn(&self, line: &str) {
        match self.mode {
            Mode::Json => self.event(json!({"event": "warning", "message": line})),
            _ => self.suspend(|| err(&format!("warning: {line}"))),
        }
    }

    fn suspend(&self, f: impl FnOnce()) {
        let guard = self.spinner.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// The job was submitted (or re-attached): starts the spinner.
    pub fn submitted(&self, request_id: &str, job: &str, model_id: &str, resumed: bool) {
        self.event(json!({
            "event": if resumed { "resumed" } else { "submitted" },
            "request_id": request_id,
            "job": job,
            "model_id": model_id,
        }));
        let verb = if resumed { "resumed" } else { "submitted" };
        match self.mode {
            Mode::Plain => err(&format!("{verb} {request_id} ({model_id})")),
            Mode::Terminal => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                let style =
                    ProgressStyle::with_template("{spinner:.cyan} {prefix} {msg} [{elapsed}]")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner());
                bar.set_style(style);
                bar.set_prefix(request_id.to_owned());
                bar.set_message(format!("{verb}, waiting"));
                bar.enable_steady_tick(Duration::from_millis(100));
                *self.spinner.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
            }
            _ => {}
        }
    }

    /// A change of the job's state.
    pub fn progress(&self, p: &Progress) {
        let (event, text) = match p {
            Progress::Submitted { .. } => return,
            Progress::Queued { position } => (
                json!({"event": "queued", "queue_position": position}),
                match position {
                    Some(n) => format!("in_queue (position {n})"),
                    None => "in_queue".to_owned(),
                },
            ),
            Progress::Running => (json!({"event": "running"}), "in_progress".to_owned()),
            Progress::Unknown { state } => {
                (json!({"event": "state", "state": state}), state.clone())
            }
            Progress::Done { state } => (
                json!({"event": "done", "state": state.as_str()}),
                state.as_str().to_owned(),
            ),
            _ => return,
        };
        self.event(event);
        match self.mode {
            Mode::Plain => err(&format!("{text} after {}", seconds(self.started.elapsed()))),
            Mode::Terminal => {
                if let Some(bar) = self
                    .spinner
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                {
                    bar.set_message(printable(&text).into_owned());
                }
            }
            _ => {}
        }
    }

    /// The wait ended: stops the spinner with a last word.
    pub fn finish_wait(&self, word: &str) {
        let bar = self
            .spinner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(bar) = bar {
            // The live line goes; a plain line with the outcome stays.
            bar.finish_and_clear();
            err(&format!(
                "{} {word} after {}",
                bar.prefix(),
                seconds(bar.elapsed())
            ));
        }
    }

    /// The server asked to wait (`Retry-After`) for `wait`, until `until`: shown in every
    /// mode but quiet (a long silent pause looks like a hang).
    pub fn server_wait(&self, wait: &str, until: &str) {
        match self.mode {
            Mode::Json => self.event(json!({
                "event": "waiting",
                "reason": "retry_after",
                "wait": wait,
                "until": until,
            })),
            Mode::Quiet => {}
            _ => self.suspend(|| {
                err(&format!(
                    "the server asked to wait {wait} (Retry-After): waiting until {until}"
                ))
            }),
        }
    }

    /// A bar for one download, on a terminal.
    pub fn download_bar(&self, name: &str, total: Option<u64>) -> Option<ProgressBar> {
        if self.mode != Mode::Terminal {
            return None;
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let template = if total.is_some() {
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}"
        } else {
            "{spinner} {prefix} {bytes} {bytes_per_sec}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(name.to_owned());
        Some(bar)
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(
            printable("plain text\tand a tab\n"),
            "plain text\tand a tab\n"
        );
        let forged = "boom\x1b[2K\r\x1b[32msucceeded\x07";
        let shown = printable(forged);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
        assert_eq!(shown, "boom\\u{1b}[2K\\u{d}\\u{1b}[32msucceeded\\u{7}");
    }
}
