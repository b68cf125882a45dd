//! Layer 6: handles on submitted jobs. [`JobHandle`] and [`RequestHandle`] are plain data
//! that can be stored and re-attached; their methods take a [`Client`] and delegate to the
//! API layer and the waiter.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use futures_util::stream::Stream;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::time::Instant;

use crate::api::decode_output;
use crate::error::Error;
use crate::ids::RequestId;
use crate::model::Model;
use crate::record::Key;
use crate::session::Client;
use crate::types::{Cancellation, JobResult, StatusInfo};
use crate::wait::{event_stream, Event, Progress};

/// A submitted job of model `M`: plain data that can be stored (it serializes as
/// `{"request_id": …, "model_id": …}`) and used later with any [`Client`].
///
/// ```
/// use runcomfy::{JobHandle, Model};
/// # struct M; impl Model for M { const ID: &'static str = "a/b"; type Input = serde_json::Value; type Output = serde_json::Value; }
/// let handle = JobHandle::<M>::attach("req-1")?;
/// let stored = serde_json::to_string(&handle).unwrap();
/// assert_eq!(stored, r#"{"request_id":"req-1","model_id":"a/b"}"#);
/// let back: JobHandle<M> = serde_json::from_str(&stored).unwrap();
/// assert_eq!(back.request_id(), "req-1");
/// # Ok::<(), runcomfy::Error>(())
/// ```
///
/// A handle made by a submit through a client with a job store knows the job's key in the
/// store ([`store_key`](Self::store_key)); any other is found there by its request id when a
/// wait ends.
pub struct JobHandle<M: Model> {
    id: RequestId,
    key: Option<Key>,
    _model: PhantomData<fn() -> M>,
}

impl<M: Model> Clone for JobHandle<M> {
    fn clone(&self) -> Self {
        JobHandle {
            id: self.id.clone(),
            key: self.key,
            _model: PhantomData,
        }
    }
}

impl<M: Model> PartialEq for JobHandle<M> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<M: Model> fmt::Debug for JobHandle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle")
            .field("request_id", &self.id.as_str())
            .field("model_id", &M::ID)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct StoredHandle {
    request_id: RequestId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model_id: Option<String>,
}

impl<M: Model> Serialize for JobHandle<M> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StoredHandle {
            request_id: self.id.clone(),
            model_id: Some(M::ID.to_owned()),
        }
        .serialize(s)
    }
}

impl<'de, M: Model> Deserialize<'de> for JobHandle<M> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let stored = StoredHandle::deserialize(d)?;
        match stored.model_id {
            Some(m) if m != M::ID => Err(serde::de::Error::custom(format!(
                "handle of model {m} read as a handle of model {}",
                M::ID
            ))),
            _ => Ok(JobHandle::from_request_id(stored.request_id)),
        }
    }
}

impl<M: Model> JobHandle<M> {
    /// Re-attaches to a job from its request id alone (checked against `[A-Za-z0-9_-]{1,128}`).
    pub fn attach(request_id: &str) -> Result<Self, Error> {
        Ok(Self::from_request_id(RequestId::new(request_id)?))
    }

    pub(crate) fn from_request_id(id: RequestId) -> Self {
        Self::from_submit(id, None)
    }

    pub(crate) fn from_submit(id: RequestId, key: Option<Key>) -> Self {
        JobHandle {
            id,
            key,
            _model: PhantomData,
        }
    }

    /// The job's key in the client's job store, when this handle comes from a submit through
    /// a client with a store (feature `store`).
    #[cfg(feature = "store")]
    pub fn store_key(&self) -> Option<runcomfy_store::JobKey> {
        self.key
    }

    /// The request id: the only handle on the paid job.
    pub fn request_id(&self) -> &str {
        self.id.as_str()
    }

    /// The checked request id.
    pub fn id(&self) -> &RequestId {
        &self.id
    }

    /// The model id.
    pub fn model_id(&self) -> &'static str {
        M::ID
    }

    /// Forgets the model type.
    pub fn into_untyped(self) -> RequestHandle {
        RequestHandle::new(self.id, Some(M::ID.to_owned())).with_key(self.key)
    }

    /// The current state (`/status`).
    pub async fn status(&self, client: &Client) -> Result<StatusInfo, Error> {
        client.api().status(&self.id).await
    }

    /// The raw result (`/result`); see [`Client::result`].
    pub async fn result(&self, client: &Client, include_cost: bool) -> Result<JobResult, Error> {
        client.api().result(&self.id, include_cost).await
    }

    /// Asks the server to cancel the job; returns the outcome.
    pub async fn cancel(&self, client: &Client) -> Result<Cancellation, Error> {
        client.api().cancel(&self.id).await
    }

    /// Waits for the job to end under the client's poll policy; returns the typed output, or
    /// an error that carries the request id. The first poll is immediate.
    pub async fn wait(&self, client: &Client) -> Result<M::Output, Error> {
        self.wait_with_progress(client, |_| {}).await
    }

    /// Waits, calling `on_progress` at every change of state.
    pub async fn wait_with_progress(
        &self,
        client: &Client,
        mut on_progress: impl FnMut(&Progress) + Send,
    ) -> Result<M::Output, Error> {
        let result = client
            .waiter(&self.id, self.key, Some(M::ID), true, Instant::now())
            .run(&mut on_progress)
            .await?;
        decode_output(result, self.id.as_str())
    }

    /// Waits as a stream: progress events, then the output; an error ends the stream.
    ///
    /// Dropping the stream stops polling; the job goes on and this handle still reaches it.
    pub fn events(
        &self,
        client: &Client,
    ) -> impl Stream<Item = Result<Event<M::Output>, Error>> + Send + 'static {
        let waiter = client.waiter(&self.id, self.key, Some(M::ID), true, Instant::now());
        event_stream(waiter, decode_output::<M::Output>)
    }
}

/// A submitted job of any model: plain data that can be stored and re-attached.
///
/// ```
/// let handle = runcomfy::RequestHandle::attach("req-1")?;
/// assert_eq!(serde_json::to_string(&handle).unwrap(), r#"{"request_id":"req-1"}"#);
/// # Ok::<(), runcomfy::Error>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestHandle {
    request_id: RequestId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model_id: Option<String>,
    /// The job's key in the client's store, when the handle comes from a submit through it.
    #[serde(skip)]
    key: Option<Key>,
}

/// Two handles are equal when they name the same job (the store key is not compared).
impl PartialEq for RequestHandle {
    fn eq(&self, other: &Self) -> bool {
        self.request_id == other.request_id && self.model_id == other.model_id
    }
}

impl Eq for RequestHandle {}

impl RequestHandle {
    pub(crate) fn new(request_id: RequestId, model_id: Option<String>) -> Self {
        RequestHandle {
            request_id,
            model_id,
            key: None,
        }
    }

    pub(crate) fn with_key(mut self, key: Option<Key>) -> Self {
        self.key = key;
        self
    }

    /// The job's key in the client's job store, when this handle comes from a submit through
    /// a client with a store (feature `store`).
    #[cfg(feature = "store")]
    pub fn store_key(&self) -> Option<runcomfy_store::JobKey> {
        self.key
    }

    /// Re-attaches to a job from its request id alone.
    pub fn attach(request_id: &str) -> Result<Self, Error> {
        Ok(RequestHandle::new(RequestId::new(request_id)?, None))
    }

    /// The request id.
    pub fn request_id(&self) -> &str {
        self.request_id.as_str()
    }

    /// The checked request id.
    pub fn id(&self) -> &RequestId {
        &self.request_id
    }

    /// The model id, when known.
    pub fn model_id(&self) -> Option<&str> {
        self.model_id.as_deref()
    }

    /// Gives the handle a model type, checking the model id when it is known.
    pub fn typed<M: Model>(self) -> Result<JobHandle<M>, Error> {
        match &self.model_id {
            Some(m) if m != M::ID => Err(Error::InvalidArgument {
                name: "model",
                reason: format!("handle of model {m} used as model {}", M::ID),
            }),
            _ => Ok(JobHandle::from_submit(self.request_id, self.key)),
        }
    }

    /// The current state (`/status`).
    pub async fn status(&self, client: &Client) -> Result<StatusInfo, Error> {
        client.api().status(&self.request_id).await
    }

    /// The raw result (`/result`).
    pub async fn result(&self, client: &Client, include_cost: bool) -> Result<JobResult, Error> {
        client.api().result(&self.request_id, include_cost).await
    }

    /// Asks the server to cancel the job.
    pub async fn cancel(&self, client: &Client) -> Result<Cancellation, Error> {
        client.api().cancel(&self.request_id).await
    }

    /// Waits for the job to end; returns the successful result.
    pub async fn wait(&self, client: &Client) -> Result<JobResult, Error> {
        self.wait_with_progress(client, |_| {}).await
    }

    /// Waits, calling `on_progress` at every change of state.
    pub async fn wait_with_progress(
        &self,
        client: &Client,
        mut on_progress: impl FnMut(&Progress) + Send,
    ) -> Result<JobResult, Error> {
        client
            .waiter(
                &self.request_id,
                self.key,
                self.model_id(),
                true,
                Instant::now(),
            )
            .run(&mut on_progress)
            .await
    }

    /// Waits for a job this program submitted at `submitted` (taken just before the submit),
    /// as a `run` does: the first poll comes after the policy's first delay (or near the
    /// model's learned run time) rather than at once, and with a store the job's run time
    /// from `submitted` joins the model's history. For a program that submits, records
    /// something of its own ([`store_key`](Self::store_key)), then waits.
    ///
    /// ```no_run
    /// # async fn demo(client: runcomfy::Client) -> Result<(), runcomfy::Error> {
    /// let submitted = std::time::Instant::now();
    /// let handle = client.submit_json("acme/echo/text-to-image", &serde_json::json!({"prompt": "a cat"})).await?;
    /// // ... record what this program needs about the job ...
    /// let result = handle.wait_submitted(&client, submitted, |_| {}).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_submitted(
        &self,
        client: &Client,
        submitted: std::time::Instant,
        mut on_progress: impl FnMut(&Progress) + Send,
    ) -> Result<JobResult, Error> {
        client
            .waiter(
                &self.request_id,
                self.key,
                self.model_id(),
                false,
                Instant::from_std(submitted),
            )
            .run(&mut on_progress)
            .await
    }

    /// Waits as a stream: progress events, then the result.
    pub fn events(
        &self,
        client: &Client,
    ) -> impl Stream<Item = Result<Event<JobResult>, Error>> + Send + 'static {
        let waiter = client.waiter(
            &self.request_id,
            self.key,
            self.model_id(),
            true,
            Instant::now(),
        );
        event_stream(waiter, |r, _| Ok(r))
    }
}

/// A `run` in flight: the future of its output, which also tells the job's request id once
/// the submit has returned it.
///
/// The submit is the only moment a paid job can be lost: if this future is dropped while the
/// submit is on the wire, the job may exist with an id nobody saw. From the moment the
/// submit returns, [`request_id`](Self::request_id) (and every [`Receipt`] taken from this
/// run) holds the id, so dropping the future (a timeout, a `select!`, an aborted task) only
/// stops the waiting: the job goes on and can be re-attached.
///
/// ```no_run
/// # use runcomfy::models::happyhorse::happyhorse_1_0::image_to_video as i2v;
/// # async fn demo(
/// #     client: runcomfy::Client,
/// #     input: i2v::Input,
/// #     shutdown: impl std::future::Future<Output = ()>,
/// # ) -> Result<(), runcomfy::Error> {
/// let endpoint = client.endpoint::<i2v::Model>();
/// let run = endpoint.run(&input);
/// let receipt = run.receipt(); // keeps the id readable after `run` is moved or dropped
/// tokio::select! {
///     output = run => println!("{:?}", output?.video),
///     _ = shutdown => match receipt.request_id() {
///         // Stopped waiting, not the job: store the id, or attach to it later.
///         Some(id) => {
///             println!("job {id} goes on");
///             let later = endpoint.attach(id)?; // or `JobHandle::attach` in another process
///             println!("{:?}", later.wait(&client).await?.video);
///         }
///         None => println!("stopped before the submit returned; no id to keep"),
///     },
/// }
/// # Ok(()) }
/// ```
#[must_use = "a run does nothing until it is awaited or spawned"]
pub struct Run<T> {
    receipt: Receipt,
    future: Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>,
}

impl<T> Run<T> {
    pub(crate) fn new(
        receipt: Receipt,
        future: impl Future<Output = Result<T, Error>> + Send + 'static,
    ) -> Self {
        Run {
            receipt,
            future: Box::pin(future),
        }
    }

    /// The job's request id, once the submit has returned it.
    pub fn request_id(&self) -> Option<&str> {
        self.receipt.request_id()
    }

    /// A cheap, cloneable view of this run's request id, which outlives the run (for a run
    /// that is spawned, raced or dropped).
    pub fn receipt(&self) -> Receipt {
        self.receipt.clone()
    }
}

impl<T> Future for Run<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.future.as_mut().poll(cx)
    }
}

impl<T> fmt::Debug for Run<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("request_id", &self.request_id())
            .finish_non_exhaustive()
    }
}

/// The request id of a [`Run`], readable from anywhere once its submit has returned.
///
/// With a job store on the client, it also tells the job's key in the store
/// ([`store_key`](Self::store_key)) once the submit returned.
#[derive(Debug, Clone, Default)]
pub struct Receipt {
    id: Arc<OnceLock<RequestId>>,
    key: Arc<OnceLock<Key>>,
}

impl Receipt {
    /// The request id, once known.
    pub fn request_id(&self) -> Option<&str> {
        self.id.get().map(RequestId::as_str)
    }

    /// The checked request id, once known.
    pub fn id(&self) -> Option<&RequestId> {
        self.id.get()
    }

    /// The job's key in the client's job store, once the submit returned and its request id
    /// was recorded there (feature `store`).
    #[cfg(feature = "store")]
    pub fn store_key(&self) -> Option<runcomfy_store::JobKey> {
        self.key.get().copied()
    }

    pub(crate) fn set(&self, id: RequestId, key: Option<Key>) {
        // Set once per run, by its submit.
        let _ = self.id.set(id);
        if let Some(key) = key {
            let _ = self.key.set(key);
        }
    }
}
