//! Layer 7: the typed endpoint of one model (what generated code returns), and `run` =
//! submit + wait, the one composition behind every typed and untyped run.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;

use tokio::time::Instant;
use tracing::Instrument;

use crate::api::decode_output;
use crate::error::Error;
use crate::ids::RequestId;
use crate::job::{JobHandle, Receipt, Run};
use crate::model::Model;
use crate::session::Client;
use crate::types::JobResult;
use crate::wait::Progress;

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
/// input is validated and serialized when they are made), so they can be spawned as they are;
/// a [`Run`] tells its request id once submitted, so a run that is stopped keeps its job:
///
/// ```no_run
/// # use runcomfy::models::happyhorse::happyhorse_1_0::image_to_video as i2v;
/// # async fn demo(client: runcomfy::Client) -> Result<(), Box<dyn std::error::Error>> {
/// let endpoint = client.endpoint::<i2v::Model>();
/// let run = endpoint.run(&i2v::Input::new("https://example.com/a.png", "a wave"));
/// let receipt = run.receipt();
/// let task = tokio::spawn(run);
/// // ... `receipt.request_id()` is the job's id from the moment the submit returns ...
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

/// Submits `body` to `model_id`, then waits for the job: every `run` form is this.
/// The id goes into `receipt`, the `run` span (`model_id`, `request_id`) and a
/// [`Progress::Submitted`] event the moment the submit returns; the deadline counts from
/// before the submit.
pub(crate) async fn submit_and_wait(
    client: &Client,
    model_id: &str,
    body: &[u8],
    receipt: &Receipt,
    on_progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<(RequestId, JobResult), Error> {
    let span = tracing::info_span!("run", model_id, request_id = tracing::field::Empty);
    let run = span.clone();
    async move {
        let started = Instant::now();
        let (id, key) = client.submit_body(model_id, body).await?;
        receipt.set(id.clone(), key);
        run.record("request_id", id.as_str());
        on_progress(&Progress::Submitted {
            request_id: id.to_string(),
        });
        let result = client
            .waiter(&id, key, Some(model_id), false, started)
            .run(on_progress)
            .await?;
        Ok((id, result))
    }
    .instrument(span)
    .await
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
        async move {
            let (id, key) = client.submit_body(M::ID, &body?).await?;
            Ok(JobHandle::from_submit(id, key))
        }
    }

    /// Submits and waits; returns the typed output. The [`Run`] tells the request id once
    /// submitted, so a run that is dropped or aborted leaves its job reachable.
    pub fn run(&self, input: &M::Input) -> Run<M::Output> {
        let client = self.client.clone();
        let body = encode::<M>(input);
        let receipt = Receipt::default();
        let seen = receipt.clone();
        let future = async move {
            let (id, result) = submit_and_wait(&client, M::ID, &body?, &seen, &mut |_| {}).await?;
            decode_output(result, id.as_str())
        };
        Run::new(receipt, future)
    }

    /// Submits and waits, reporting progress ([`Progress::Submitted`], with the request id,
    /// first).
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
        let future = async move {
            let receipt = Receipt::default();
            let (id, result) =
                submit_and_wait(&client, M::ID, &body?, &receipt, &mut on_progress).await?;
            decode_output(result, id.as_str())
        };
        future
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
