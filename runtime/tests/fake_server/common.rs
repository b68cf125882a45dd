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

/// Captures every tracing event and span field, formatted, for a token check.
#[derive(Clone, Default)]
pub struct Capture {
    pub lines: Arc<Mutex<Vec<String>>>,
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
        let mut line = format!("span {}", attrs.metadata().name());
        attrs.record(&mut Visit(&mut line));
        let mut lines = self.lines.lock().unwrap();
        lines.push(line);
        tracing::span::Id::from_u64(lines.len() as u64)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut line = String::from("record");
        values.record(&mut Visit(&mut line));
        self.lines.lock().unwrap().push(line);
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = format!("{} {}", event.metadata().level(), event.metadata().target());
        event.record(&mut Visit(&mut line));
        self.lines.lock().unwrap().push(line);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
