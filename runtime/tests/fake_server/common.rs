//! A hand-written test model, server helpers and a log capture.

use std::sync::{Arc, Mutex};

use runcomfy::validate::{IntBounds, Validate, Validator};
use runcomfy::Model;
use runcomfy_fake::{FakeServer, FakeServerBuilder};
use serde::{Deserialize, Serialize};

pub const ECHO_ID: &str = "acme/echo-1/text-to-image";
pub const ECHO_SCHEMA: &str = r#"{
  "type": "object",
  "required": ["prompt"],
  "properties": {
    "prompt": {"type": "string", "minLength": 1, "maxLength": 100},
    "steps": {"type": "integer", "minimum": 1, "maximum": 50},
    "strength": {"type": "float"}
  }
}"#;
pub const SECRET: &str = "sk-test-7f3a9c1e5b2d";

/// A model written by hand the way the generator writes them.
pub struct Echo;

#[derive(Debug, Clone, Serialize)]
pub struct EchoInput {
    pub prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<i64>,
}

impl EchoInput {
    pub fn new(prompt: &str) -> Self {
        EchoInput {
            prompt: prompt.to_owned(),
            steps: None,
        }
    }
}

impl Validate for EchoInput {
    fn validate_into(&self, v: &mut Validator) {
        v.at("prompt", |v| v.len(&self.prompt, Some(1), Some(100)));
        if let Some(steps) = self.steps {
            let bounds = IntBounds {
                min: Some(1),
                max: Some(50),
                ..Default::default()
            };
            v.at("steps", |v| v.int(steps.into(), bounds));
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EchoOutput {
    pub image: Option<String>,
    pub images: Option<Vec<String>>,
}

impl Model for Echo {
    const ID: &'static str = ECHO_ID;
    type Input = EchoInput;
    type Output = EchoOutput;
}

pub fn builder() -> FakeServerBuilder {
    FakeServer::builder()
        .token(SECRET)
        .model(ECHO_ID, ECHO_SCHEMA)
}

pub async fn server() -> FakeServer {
    builder().start().await.unwrap()
}

/// Captures every tracing event and span, formatted: for the token check, the spans' fields
/// and which spans each event happened in.
#[derive(Clone, Default)]
pub struct Capture {
    /// Every span creation (`span NAME fields`), field record and event, in order. An event
    /// line ends with the spans it happened in: ` @ run{…} > wait{…}`.
    pub lines: Arc<Mutex<Vec<String>>>,
    spans: Arc<Mutex<Spans>>,
}

#[derive(Default)]
struct Spans {
    /// Name, fields (as recorded so far) and parent of each span; its id is its index + 1.
    all: Vec<(String, String, Option<u64>)>,
    /// The entered spans, innermost last (the tests run on one thread).
    entered: Vec<u64>,
}

impl Capture {
    /// Every span named `name`, as `name{fields}` with the fields recorded after its creation.
    pub fn spans(&self, name: &str) -> Vec<String> {
        let spans = self.spans.lock().unwrap();
        spans
            .all
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(n, f, _)| shown(n, f))
            .collect()
    }

    /// The event lines that contain `text`.
    pub fn events(&self, text: &str) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|l| !l.starts_with("span ") && !l.starts_with("record") && l.contains(text))
            .cloned()
            .collect()
    }
}

/// A span as `name{a=1 b=2}`, fields sorted (those recorded later come in any order).
fn shown(name: &str, fields: &str) -> String {
    let mut fields: Vec<&str> = fields.split_whitespace().collect();
    fields.sort();
    format!("{name}{{{}}}", fields.join(" "))
}

struct Visit<'a>(&'a mut String);

impl tracing::field::Visit for Visit<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push_str(&format!(" {}={}", field.name(), value));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = String::new();
        attrs.record(&mut Visit(&mut fields));
        let name = attrs.metadata().name().to_owned();
        self.lines
            .lock()
            .unwrap()
            .push(format!("span {name}{fields}"));
        let mut spans = self.spans.lock().unwrap();
        let parent = match attrs.parent() {
            Some(p) => Some(p.into_u64()),
            None if attrs.is_contextual() => spans.entered.last().copied(),
            None => None,
        };
        spans.all.push((name, fields, parent));
        tracing::span::Id::from_u64(spans.all.len() as u64)
    }
    fn record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut fields = String::new();
        values.record(&mut Visit(&mut fields));
        self.lines.lock().unwrap().push(format!("record{fields}"));
        let mut spans = self.spans.lock().unwrap();
        if let Some(span) = spans.all.get_mut(id.into_u64() as usize - 1) {
            span.1.push_str(&fields);
        }
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = format!("{} {}", event.metadata().level(), event.metadata().target());
        event.record(&mut Visit(&mut line));
        let spans = self.spans.lock().unwrap();
        let scope: Vec<String> = spans
            .entered
            .iter()
            .map(|id| {
                let (n, f, _) = &spans.all[*id as usize - 1];
                shown(n, f)
            })
            .collect();
        if !scope.is_empty() {
            line.push_str(&format!(" @ {}", scope.join(" > ")));
        }
        self.lines.lock().unwrap().push(line);
    }
    fn enter(&self, id: &tracing::span::Id) {
        self.spans.lock().unwrap().entered.push(id.into_u64());
    }
    fn exit(&self, id: &tracing::span::Id) {
        let mut spans = self.spans.lock().unwrap();
        if let Some(at) = spans.entered.iter().rposition(|e| *e == id.into_u64()) {
            spans.entered.remove(at);
        }
    }
}

/// `error`, then each of its causes, one per line: what a report that prints the chain shows.
pub fn chain(error: &dyn std::error::Error) -> Vec<String> {
    let mut out = vec![error.to_string()];
    let mut next = error.source();
    while let Some(cause) = next {
        out.push(cause.to_string());
        next = cause.source();
    }
    out
}

/// Fails when a message repeats its cause (`timed out: timed out` once the chain is printed).
pub fn assert_no_repeated_cause(error: &dyn std::error::Error) {
    let mut current: &dyn std::error::Error = error;
    while let Some(cause) = current.source() {
        let (outer, inner) = (current.to_string(), cause.to_string());
        assert!(
            !outer.contains(&inner),
            "the message repeats its cause:\n  {outer}\n  caused by: {inner}"
        );
        current = cause;
    }
}

/// Reserves a loopback port that refuses connections: bound, not listening, so nothing else
/// can take it. A server may bind it while the reservation is held (both reuse the address).
pub fn refusing_port() -> (tokio::net::TcpSocket, std::net::SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}
