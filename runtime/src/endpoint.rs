//! The typed endpoint of one model: what generated code returns, and where `run` lives.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;

use crate::client::Client;
use crate::error::Error;
use crate::job::JobHandle;
use crate::model::Model;
use crate::poll::Progress;

/// A typed endpoint of model `M`: a [`Client`] clone (cheap: the client is an `Arc` inside)
/// and the model's type. Generated code returns one per model.
///
/// ```no_run
/// # use runcomfy::models::happyhorse::happyhorse_1_0::image_to_video as i2v;
/// # async fn demo(client: &runcomfy::Client, input: &i2v::Input) -> Result<(), runcomfy::Error> {
/// let endpoint = client.endpoint::<i2v::Model>();
/// let handle = endpoint.submit(input).await?; // store handle.request_id() now
/// let output = handle.wait(client).await?;
/// # Ok(()) }
/// ```
///
/// The futures of [`run`](Self::run) and [`submit`](Self::submit) own what they need (the
/// input is validated and serialized when they are made), so they can be spawned as they are:
///
/// ```no_run
/// # use runcomfy::models::happyhorse::happyhorse_1_0::image_to_video as i2v;
/// # async fn demo(client: runcomfy::Client) -> Result<(), Box<dyn std::error::Error>> {
/// let endpoint = client.endpoint::<i2v::Model>();
/// let task = tokio::spawn(endpoint.run(&i2v::Input::new("https://example.com/a.png", "a wave")));
/// let output: i2v::Output = task.await??;
/// # Ok(()) }
/// ```
pub struct Endpoint<M: Model> {
    client: Client,
    _model: PhantomData<fn() -> M>,
}

impl<M: Model> Clone for Endpoint<M> {
    fn clone(&self) -> Self {
        Endpoint {
            client: self.client.clone(),
            _model: PhantomData,
        }
    }
}

impl<M: Model> fmt::Debug for Endpoint<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("model_id", &M::ID)
            .finish()
    }
}

/// Validates and serializes an input of model `M`: the checks made before any request.
pub(crate) fn encode<M: Model>(input: &M::Input) -> Result<Vec<u8>, Error> {
    if let Err(errors) = crate::validate::Validate::validate(input) {
        return Err(Error::Validation {
            model_id: M::ID.to_owned(),
            errors,
        });
    }
    serde_json::to_vec(input).map_err(|source| Error::Encode {
        model_id: M::ID.to_owned(),
        source,
    })
}

impl<M: Model> Endpoint<M> {
    /// The endpoint of model `M` on (a clone of) `client`.
    pub fn new(client: &Client) -> Self {
        Endpoint {
            client: client.clone(),
            _model: PhantomData,
        }
    }

    /// The client this endpoint uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The model id.
    pub fn model_id(&self) -> &'static str {
        M::ID
    }

    /// Validates `input` (refusing before any request), then submits it.
    /// See [`Client::submit_json`] for the retry rule that protects against paying twice.
    pub fn submit(
        &self,
        input: &M::Input,
    ) -> impl Future<Output = Result<JobHandle<M>, Error>> + Send + 'static {
        let client = self.client.clone();
        let body = encode::<M>(input);
        async move { client.submit_encoded::<M>(body?).await }
    }

    /// Submits and waits; returns the typed output.
    pub fn run(
        &self,
        input: &M::Input,
    ) -> impl Future<Output = Result<M::Output, Error>> + Send + 'static {
        self.run_with_progress(input, |_| {})
    }

    /// Submits and waits, reporting progress ([`Progress::Submitted`] first).
    pub fn run_with_progress<F>(
        &self,
        input: &M::Input,
        mut on_progress: F,
    ) -> impl Future<Output = Result<M::Output, Error>> + Send
    where
        F: FnMut(&Progress) + Send,
    {
        let client = self.client.clone();
        let body = encode::<M>(input);
        async move { client.run_encoded::<M>(body?, &mut on_progress).await }
    }

    /// Waits for a stored handle of this model.
    pub async fn wait(&self, handle: &JobHandle<M>) -> Result<M::Output, Error> {
        handle.wait(&self.client).await
    }

    /// Re-attaches to a job of this model from its request id alone.
    pub fn attach(&self, request_id: &str) -> Result<JobHandle<M>, Error> {
        JobHandle::attach(request_id)
    }
}
