//! Typed Rust client for [RunComfy's Model API](https://docs.runcomfy.com).
//!
//! Every model under the workspace's `schemas/` folder becomes a module in [`models`], with a
//! typed `Input` (required fields in the constructor, optional ones through setters), a typed
//! `Output`, and `endpoint(&client)`, the model's typed [`Endpoint`].
//!
//! ```no_run
//! use runcomfy::models::happyhorse::happyhorse_1_0::image_to_video as i2v;
//!
//! # async fn demo() -> Result<(), runcomfy::Error> {
//! let client = runcomfy::Client::from_env()?;
//! let input = i2v::Input::new("https://example.com/cat.png", "the cat turns its head")
//!     .resolution(i2v::Resolution::P720);
//! let endpoint = i2v::endpoint(&client); // or client.endpoint::<i2v::Model>()
//!
//! // Submit first and keep the request id: it is the only handle on the paid job.
//! let handle = endpoint.submit(&input).await?;
//! println!("submitted {}", handle.request_id());
//! let output = handle
//!     .wait_with_progress(&client, |p| println!("{p:?}"))
//!     .await?;
//! println!("{:?}", output.video);
//! # Ok(())
//! # }
//! ```
//!
//! `endpoint.run(&input)` submits and waits in one call; the [`Run`] it returns tells the
//! request id once submitted, so a run stopped by a timeout or a `select!` leaves its job
//! reachable (see [`Run`] for the pattern).
//!
//! File fields of generated inputs take a [`FileInput`]: a URL, a local path or bytes (sent as
//! `data:` URIs, their sizes checked before sending). [`download::Downloader`] saves a result's
//! output files into a folder.
//!
//! Models that were not generated are reached untyped with [`Client::submit_json`] and
//! [`Client::run_json`]. The `runcomfy-fake` crate is a loopback imitation of the API to
//! test code that uses this crate.
#![warn(missing_docs)]

// Generated code names this crate as `::runcomfy`, inside it as well as from users' crates.
extern crate self as runcomfy;

pub mod download;
pub mod file;
pub mod model;
pub mod validate;

pub use file::FileInput;
pub use model::{MediaOutput, Model, ModelInfo, SchemaText};
pub use url::Url;
pub use validate::{Rule, Validate, ValidationErrors, Violation};

// The layers, each using only those above it in this list (checked by `tests/layers.rs`):
// leaves (`model`, `validate`, `error`, `ids`, `types`), then `http::transport`,
// `http::retry`, `api`, `record`, `wait`, `session`, `job`, `endpoint`, `client`.
mod api;
mod client;
mod endpoint;
mod error;
mod http;
mod ids;
mod job;
mod record;
mod session;
mod types;
mod wait;

pub use client::{ClientBuilder, BASE_URL_ENV, DEFAULT_BASE_URL, TOKEN_ENV};
pub use endpoint::Endpoint;
pub use error::{ApiError, ApiErrorCode, Error, IdKind};
pub use http::retry::RetryPolicy;
pub use ids::RequestId;
#[doc(hidden)]
pub use ids::{check_model_id, check_request_id};
pub use job::{JobHandle, Receipt, RequestHandle, Run};
pub use session::Client;
pub use types::{
    CancelAttempt, CancelOutcome, Cancellation, CatalogModel, JobResult, JobState, ListModels,
    ModelList, PriceUnit, StatusInfo,
};
#[doc(hidden)]
pub use wait::Simulation;
pub use wait::{Event, Learned, PollPolicy, PollVia, Progress};

/// The job store (the `runcomfy-store` crate, feature `store`): open one and hand it to
/// [`ClientBuilder::store`].
#[cfg(feature = "store")]
pub use runcomfy_store as store;

#[cfg(feature = "store")]
pub mod batch;

/// The generated models: one module per model id, built from `schemas/` at compile time.
///
/// Each model module holds `Input`, `Output`, their enums and nested types, a marker type
/// `Model` implementing [`Model`], `INFO` and `endpoint(&client)`.
/// [`ALL`](models::ALL) lists every model's [`ModelInfo`]; with the `schema-texts` feature,
/// `SCHEMAS` holds every model's schema files as [`SchemaText`].
pub mod models {
    include!(concat!(env!("OUT_DIR"), "/models.rs"));
}

/// What generated code uses from this crate. Not a public API: it changes with the generator.
#[doc(hidden)]
pub mod __codegen {
    pub use crate::endpoint::Endpoint;
    pub use crate::file::{FileInput, FileKind, FileRule};
    pub use crate::model::{MediaOutput, Model, ModelInfo, SchemaText};
    pub use crate::session::Client;
    #[cfg(feature = "schemars")]
    pub use crate::validate::int_enum_schema;
    pub use crate::validate::{IntBounds, NumBounds, Rule, UnknownVariant, Validate, Validator};
    pub use regex::Regex;
    #[cfg(feature = "schemars")]
    pub use schemars;
    pub use serde;
    pub use serde_json;
    pub use std::sync::LazyLock;

    /// Reads a required field that may be `null`: a missing key is an error, where serde
    /// would read a missing `Option` field as `None`.
    pub fn required_nullable<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: serde::Deserializer<'de>,
        T: serde::Deserialize<'de>,
    {
        <Option<T> as serde::Deserialize>::deserialize(d)
    }
    pub use url::Url;
}
