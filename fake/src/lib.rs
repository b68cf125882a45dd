//! A fake RunComfy Model API on 127.0.0.1, for testing code that uses the `runcomfy` client.
//!
//! Real HTTP on an ephemeral port: every endpoint of the API, request bodies validated
//! against the registered models' input schemas as the generator reads them (the
//! generator's own dialect, through [`runcomfy_codegen::dialect`]: what the generated
//! `Input::validate()` refuses, the fake answers with 422), scripted job lifecycles
//! ([`Lifecycle`]), fault injection ([`Fault`]), a record of every request received
//! ([`RecordedRequest`]), counters of paid jobs per model and per input ([`Stats`]), the
//! paginated catalog with schemas, and a clock that can be driven by hand
//! ([`FakeServer::advance`]).
//!
//! Add it to your `[dev-dependencies]`:
//!
//! ```
//! use runcomfy_fake::{FakeServer, Lifecycle};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = FakeServer::builder()
//!     .model("acme/echo/text-to-image", r#"{"type":"object","required":["prompt"],
//!         "properties":{"prompt":{"type":"string"},"strength":{"type":"float","maximum":1}}}"#)
//!     .lifecycle(Lifecycle::new().queue_positions(&[2, 1]).then_succeed())
//!     .start()
//!     .await?;
//! let client = server.client()?;
//! let result = client
//!     .run_json("acme/echo/text-to-image", &serde_json::json!({"prompt": "a cat"}))
//!     .await?;
//! assert!(result.output.is_some());
//!
//! // A body the schema refuses is answered 422 and creates no job.
//! let refused = client
//!     .submit_json("acme/echo/text-to-image", &serde_json::json!({"prompt": "a", "strength": 2}))
//!     .await;
//! assert!(refused.is_err());
//! assert_eq!(server.submits(), 2);
//! assert_eq!(server.stats().jobs, 1);
//! # Ok(()) }
//! ```
//!
//! The same server runs as a process of its own: the `runcomfy-fake` binary listens on
//! 127.0.0.1, prints its address, and exposes its counters at `GET /_fake/stats` (see
//! [`standalone`]).
#![warn(missing_docs)]

mod api;
mod builder;
mod fault;
mod http;
mod lifecycle;
pub mod media;
mod models;
mod server;
pub mod standalone;
mod stats;

pub use builder::FakeServerBuilder;
pub use fault::{Fault, RecordedRequest, Route};
pub use lifecycle::{Ending, Lifecycle, Span, Stage};
pub use models::ModelSpec;
pub use server::{FakeServer, JobSnapshot};
pub use stats::{InputCount, JobRecord, Stats};

use std::time::Duration;

use runcomfy::{PollPolicy, RetryPolicy};

/// The token the fake server expects unless told otherwise.
pub const FAKE_TOKEN: &str = "fake-runcomfy-token";

/// Why the fake server could not start, or could not take a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FakeError {
    /// The listener could not be bound.
    #[error("could not bind the fake server: {0}")]
    Bind(#[source] std::io::Error),
    /// A model's schema is not JSON, or the generator refuses it.
    #[error("bad schema for {model_id}: {message}")]
    Schema {
        /// The model.
        model_id: String,
        /// What is wrong: the generator's diagnostics, `file#/pointer: message` each.
        message: String,
    },
    /// A folder of schemas that the generator refuses.
    #[error("bad schemas in {dir}: {message}")]
    Schemas {
        /// The folder.
        dir: std::path::PathBuf,
        /// The generator's diagnostics.
        message: String,
    },
    /// A model id that the API would not accept.
    #[error("invalid model id {0:?}")]
    ModelId(String),
}

/// Polls every 2 to 20 ms with a 20 s deadline: for tests against the fake server.
pub fn fast_poll_policy() -> PollPolicy {
    PollPolicy::default()
        .delays(Duration::from_millis(2), 1.5, Duration::from_millis(20))
        .deadline(Some(Duration::from_secs(20)))
}

/// Retries after 1 to 20 ms, `Retry-After` capped at 200 ms, within 5 s.
pub fn fast_retry_policy() -> RetryPolicy {
    RetryPolicy::default()
        .delays(Duration::from_millis(1), Duration::from_millis(20))
        .max_retry_after(Duration::from_millis(200))
        .budget(Duration::from_secs(5))
}
