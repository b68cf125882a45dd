//! The fake server as a process of its own (the `runcomfy-fake` binary): for tests that drive
//! the `runcomfy` command line against it and kill either side.
//!
//! ```text
//! runcomfy-fake [--port N] [--schemas DIR] [--queue DURATION] [--run DURATION] ...
//! ```
//! It prints its base URL (`http://127.0.0.1:PORT`) as the first line of standard output
//! once it accepts connections, then serves until killed. Besides the API it answers:
//! - `GET /_fake/stats`: [`Stats`](crate::Stats) (requests per route, jobs per model and per
//!   input);
//! - `GET /_fake/inputs`: every distinct input with its jobs ([`InputCount`](crate::InputCount));
//! - `GET /_fake/jobs`: every job ([`JobRecord`](crate::JobRecord));
//! - `POST /_fake/inject`: plays a fault on the next requests of a route, from
//!   `{"route": "submit", "times": 2, "fault": ...}` where the fault is
//!   `{"status": 429, "retry_after": "1"}`, `{"delay_ms": 500}`, `{"cut_after": 1000}`, `"close_after_read"`,
//!   `"malformed_json"` or `"not_json"`;
//! - `GET /_fake/files/<request_id>/<name>` with `--serve-outputs BYTES`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::{FakeServer, FakeServerBuilder, Fault, Lifecycle, Route};

/// The command line's usage text.
pub const USAGE: &str = "\
usage: runcomfy-fake [options]

A fake RunComfy Model API on 127.0.0.1. Prints its base URL on the first line of standard
output, then serves until killed.

options:
  --port N                  listen on port N of 127.0.0.1 (default 0: any free port)
  --schemas DIR             serve the models below DIR (<model_id>/input.json) instead of
                            the models shipped in runcomfy
  --accept-unknown-models   accept submits to any model id, unchecked
  --token TOKEN             the bearer token to require (default: any token is accepted)
  --any-token               accept any bearer token (the default)
  --queue DURATION          how long each job stays queued, in real time (e.g. 500ms, 2s)
  --run DURATION            how long each job runs after its queue time (e.g. 10s)
                            (without --queue and --run: one queued poll, one running poll)
  --serve-outputs BYTES     serve each job's output files at /_fake/files/... as BYTES
                            deterministic bytes each (default: real media a browser plays:
                            a PNG marked with the job's number, a WebM clip, a WAV tone)
  --cdn-outputs             point output URLs at a CDN host instead and serve nothing
  --record-limit N          keep the last N requests in memory (default 1000)
  --threads N               worker threads (default 2)
  -h, --help                print this help
";

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Options {
    /// `--port`.
    pub port: u16,
    /// `--schemas`.
    pub schemas: Option<PathBuf>,
    /// `--accept-unknown-models`.
    pub accept_unknown_models: bool,
    /// `--token`; `None` (any token, the default) without it or with `--any-token`.
    pub token: Option<String>,
    /// `--queue`.
    pub queue: Option<Duration>,
    /// `--run`.
    pub run: Option<Duration>,
    /// `--serve-outputs` (without it, real media is served).
    pub serve_outputs: Option<usize>,
    /// `--cdn-outputs`.
    pub cdn_outputs: bool,
    /// `--record-limit`.
    pub record_limit: usize,
    /// `--threads`.
    pub threads: usize,
    /// `--help`.
    pub help: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 0,
            schemas: None,
            accept_unknown_models: false,
            token: None,
            queue: None,
            run: None,
            serve_outputs: None,
            cdn_outputs: false,
            record_limit: 1000,
            threads: 2,
            help: false,
        }
    }
}

impl Options {
    /// Parses the arguments (without the program name).
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Options, String> {
        let mut o = Options::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match flag.as_str() {
                "-h" | "--help" => o.help = true,
                "--port" => o.port = number(&flag, &value(&flag)?)?,
                "--schemas" => o.schemas = Some(PathBuf::from(value(&flag)?)),
                "--accept-unknown-models" => o.accept_unknown_models = true,
                "--token" => o.token = Some(value(&flag)?),
                "--any-token" => o.token = None,
                "--queue" => o.queue = Some(duration(&flag, &value(&flag)?)?),
                "--run" => o.run = Some(duration(&flag, &value(&flag)?)?),
                "--serve-outputs" => o.serve_outputs = Some(number(&flag, &value(&flag)?)?),
                "--cdn-outputs" => o.cdn_outputs = true,
                "--record-limit" => o.record_limit = number(&flag, &value(&flag)?)?,
                "--threads" => o.threads = number::<usize>(&flag, &value(&flag)?)?.max(1),
                other => return Err(format!("unknown argument {other:?} (see --help)")),
            }
        }
        Ok(o)
    }

    /// The server builder these options describe.
    pub fn builder(&self) -> FakeServerBuilder {
        let mut b = FakeServer::builder()
            .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)))
            .record_limit(self.record_limit);
        b = match &self.schemas {
            Some(dir) => b.models_from_dir(dir),
            None => b.all_models(),
        };
        if self.accept_unknown_models {
            b = b.accept_unknown_models();
        }
        b = match &self.token {
            Some(t) => b.token(t),
            None => b.any_token(),
        };
        if self.queue.is_some() || self.run.is_some() {
            b = b.lifecycle(Lifecycle::timed(
                self.queue.unwrap_or(Duration::ZERO),
                self.run.unwrap_or(Duration::ZERO),
            ));
        }
        match (self.serve_outputs, self.cdn_outputs) {
            (_, true) => b,
            (Some(size), false) => b.serve_outputs(size),
            (None, false) => b.serve_media(),
        }
    }
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{flag} takes a non-negative number, not {v:?}"))
}

fn duration(flag: &str, v: &str) -> Result<Duration, String> {
    humantime::parse_duration(v).map_err(|e| format!("{flag}: {v:?} is not a duration: {e}"))
}

/// A fault from its JSON form (see the module documentation).
pub(crate) fn fault_from_json(v: &Value) -> Result<Fault, String> {
    if let Some(name) = v.as_str() {
        return match name {
            "close_after_read" => Ok(Fault::CloseAfterRead),
            "malformed_json" => Ok(Fault::MalformedJson),
            "not_json" => Ok(Fault::not_json()),
            "unauthorized" => Ok(Fault::unauthorized()),
            other => Err(format!("unknown fault {other:?}")),
        };
    }
    if let Some(after) = v.get("cut_after").and_then(Value::as_u64) {
        return Ok(Fault::CutBody {
            after: usize::try_from(after).unwrap_or(usize::MAX),
        });
    }
    if let Some(ms) = v.get("delay_ms").and_then(Value::as_u64) {
        return Ok(Fault::Delay(Duration::from_millis(ms)));
    }
    let status = v
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (100..=599).contains(s))
        .ok_or(
            "a fault is a name, {\"delay_ms\": N}, {\"cut_after\": N} or {\"status\": N, ...}",
        )?;
    let mut fault = Fault::status(status);
    if let Fault::Status {
        retry_after, body, ..
    } = &mut fault
    {
        *retry_after = v
            .get("retry_after")
            .map(|r| r.as_str().map_or_else(|| r.to_string(), str::to_owned));
        if let Some(b) = v.get("body") {
            *body = b.as_str().map_or_else(|| b.to_string(), str::to_owned);
        }
    }
    Ok(fault)
}

/// A route from its name in `/_fake/stats`.
pub(crate) fn route_from_name(name: &str) -> Option<Route> {
    [
        Route::Submit,
        Route::Status,
        Route::Result,
        Route::Cancel,
        Route::ListModels,
        Route::GetModel,
        Route::File,
        Route::Other,
        Route::Any,
    ]
    .into_iter()
    .find(|r| r.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments() {
        assert_eq!(parse(&[]).unwrap(), Options::default());
        let o = parse(&[
            "--port",
            "8099",
            "--run=1.5s",
            "--queue",
            "200ms",
            "--any-token",
            "--serve-outputs",
            "4096",
            "--schemas",
            "schemas",
        ])
        .unwrap();
        assert_eq!(o.port, 8099);
        assert_eq!(o.run, Some(Duration::from_millis(1500)));
        assert_eq!(o.queue, Some(Duration::from_millis(200)));
        assert_eq!(o.token, None);
        assert_eq!(o.serve_outputs, Some(4096));
        assert_eq!(o.schemas, Some(PathBuf::from("schemas")));
        assert!(parse(&["--help"]).unwrap().help);
        for (bad, want) in [
            (&["--port"][..], "--port needs a value"),
            (&["--port", "-1"], "--port takes a non-negative number"),
            (&["--run", "soon"], "--run: \"soon\" is not a duration"),
            (&["--bogus"], "unknown argument \"--bogus\""),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with(want), "{bad:?}: {err}");
        }
    }

    #[test]
    fn faults_from_json() {
        assert_eq!(
            fault_from_json(&json!("close_after_read")),
            Ok(Fault::CloseAfterRead)
        );
        assert_eq!(
            fault_from_json(&json!({"cut_after": 100})),
            Ok(Fault::CutBody { after: 100 })
        );
        assert_eq!(
            fault_from_json(&json!({"delay_ms": 250})),
            Ok(Fault::Delay(Duration::from_millis(250)))
        );
        let Ok(Fault::Status {
            status,
            retry_after,
            ..
        }) = fault_from_json(&json!({"status": 429, "retry_after": 2}))
        else {
            panic!("a status fault");
        };
        assert_eq!((status, retry_after.as_deref()), (429, Some("2")));
        assert!(fault_from_json(&json!({"status": 1000})).is_err());
        assert!(fault_from_json(&json!("explode")).is_err());
        assert_eq!(route_from_name("list_models"), Some(Route::ListModels));
        assert_eq!(route_from_name("nope"), None);
    }
}
