//! [`FakeServerBuilder`]: which models, which token, which lifecycle, which clock.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde_json::Value;

use crate::lifecycle::Lifecycle;
use crate::models::ModelSpec;
use crate::server::{FakeServer, Outputs, Settings};
use crate::{FakeError, FAKE_TOKEN};

/// Where a builder takes models from, in order.
#[derive(Debug)]
enum Models {
    One(Box<ModelSpec>),
    Shipped,
    Dir(PathBuf),
}

/// Configures a [`FakeServer`].
///
/// Models come explicitly: [`model`](Self::model) (an id and its input schema),
/// [`add_model`](Self::add_model) (with an output schema, output or price),
/// [`models_from_dir`](Self::models_from_dir) (a schema folder, read by the generator's
/// loader), or [`all_models`](Self::all_models) (the models shipped in `runcomfy`). Every
/// schema is read the way the generator reads it; one the generator refuses makes
/// [`start`](Self::start) fail with its diagnostics.
#[must_use]
#[derive(Debug)]
pub struct FakeServerBuilder {
    models: Vec<Models>,
    pub(crate) settings: Settings,
    addr: SocketAddr,
}

impl Default for FakeServerBuilder {
    fn default() -> Self {
        FakeServerBuilder {
            models: Vec::new(),
            settings: Settings {
                token: Some(FAKE_TOKEN.to_owned()),
                accept_unknown_models: false,
                lifecycle: Lifecycle::default(),
                manual_clock: false,
                record_limit: usize::MAX,
                outputs: Outputs::Cdn,
            },
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        }
    }
}

impl FakeServerBuilder {
    /// Registers a model with its input schema (JSON text in the catalog's dialect);
    /// submits are validated against it.
    pub fn model(self, id: &str, input_schema: &str) -> Self {
        self.add_model(ModelSpec::new(id, input_schema))
    }

    /// Registers a model whose successful jobs answer `output`.
    pub fn model_with_output(self, id: &str, input_schema: &str, output: Value) -> Self {
        self.add_model(ModelSpec::new(id, input_schema).output(output))
    }

    /// Registers a model described in full.
    pub fn add_model(mut self, spec: ModelSpec) -> Self {
        self.models.push(Models::One(Box::new(spec)));
        self
    }

    /// Registers every model below `dir` (`<model_id>/input.json`, optional
    /// `output.json`), read by the generator's loader.
    pub fn models_from_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.models.push(Models::Dir(dir.into()));
        self
    }

    /// Registers every model shipped in `runcomfy` (`runcomfy::models::SCHEMAS`), with a
    /// sample output made from each output schema.
    pub fn all_models(mut self) -> Self {
        self.models.push(Models::Shipped);
        self
    }

    /// Accepts any model id with any body (no schema check).
    pub fn accept_unknown_models(mut self) -> Self {
        self.settings.accept_unknown_models = true;
        self
    }

    /// The bearer token to require (default [`FAKE_TOKEN`]).
    pub fn token(mut self, token: &str) -> Self {
        self.settings.token = Some(token.to_owned());
        self
    }

    /// Accepts any bearer token.
    pub fn any_token(mut self) -> Self {
        self.settings.token = None;
        self
    }

    /// The lifecycle of new jobs (default: [`Lifecycle::default`]).
    pub fn lifecycle(mut self, lifecycle: Lifecycle) -> Self {
        self.settings.lifecycle = lifecycle;
        self
    }

    /// Drives `Span::Time` stages by [`FakeServer::advance`] only, instead of tokio's clock
    /// (which a paused test runtime also controls).
    pub fn manual_clock(mut self) -> Self {
        self.settings.manual_clock = true;
        self
    }

    /// Keeps only the last `n` requests for [`FakeServer::requests`] (counters still count
    /// them all): for long runs.
    pub fn record_limit(mut self, n: usize) -> Self {
        self.settings.record_limit = n;
        self
    }

    /// Serves output files itself: sample outputs point at
    /// `<base_url>/_fake/files/<request_id>/<name>`, whose content is
    /// [`FakeServer::output_bytes`] (`size` bytes, the same for every download).
    /// By default outputs point at a CDN host and nothing is served.
    pub fn serve_outputs(mut self, size: usize) -> Self {
        self.settings.outputs = Outputs::Bytes(size);
        self
    }

    /// Serves output files itself as real media a browser shows and plays
    /// ([`media`](crate::media)): a PNG marked with the job's number for image models, a
    /// WebM clip for video models, a WAV tone for audio models (sample outputs then end in
    /// `.png`, `.webm` and `.wav`). The standalone fake does this by default.
    pub fn serve_media(mut self) -> Self {
        self.settings.outputs = Outputs::Media;
        self
    }

    /// Listens on this address instead of an ephemeral port of 127.0.0.1.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Reads and checks the schemas, binds, and starts serving on the current tokio runtime.
    pub async fn start(self) -> Result<FakeServer, FakeError> {
        let mut specs = Vec::new();
        for source in self.models {
            match source {
                Models::One(spec) => specs.push(*spec),
                Models::Shipped => specs.extend(shipped()),
                Models::Dir(dir) => {
                    let models = runcomfy_codegen::dialect::translate_dir(&dir).map_err(|d| {
                        FakeError::Schemas {
                            dir: dir.clone(),
                            message: d.to_string().trim_end().replace('\n', "; "),
                        }
                    })?;
                    specs.extend(models.into_iter().map(ModelSpec::translated));
                }
            }
        }
        FakeServer::start(specs, self.settings, self.addr).await
    }
}

/// The models shipped in `runcomfy`.
fn shipped() -> Vec<ModelSpec> {
    runcomfy::models::SCHEMAS
        .iter()
        .map(|text| {
            let spec = ModelSpec::new(text.id, text.input);
            match text
                .output
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
            {
                Some(schema) => spec.output_schema(schema),
                None => spec,
            }
        })
        .collect()
}
