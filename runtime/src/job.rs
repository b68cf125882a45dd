//! Handles on submitted jobs: plain data that can be stored and re-attached.

use std::fmt;
use std::marker::PhantomData;

use futures_util::stream::{self, Stream};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::client::{decode_output, Client};
use crate::error::Error;
use crate::ids::RequestId;
use crate::model::Model;
use crate::poll::{Event, Progress, Step, Waiter};
use crate::types::{Cancellation, JobResult, StatusInfo};

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
pub struct JobHandle<M: Model> {
    id: RequestId,
    _model: PhantomData<fn() -> M>,
}

impl<M: Model> Clone for JobHandle<M> {
    fn clone(&self) -> Self {
        JobHandle {
            id: self.id.clone(),
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
        JobHandle {
            id,
            _model: PhantomData,
        }
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
        RequestHandle::new(self.id, Some(M::ID.to_owned()))
    }

    /// The current state (`/status`).
    pub async fn status(&self, client: &Client) -> Result<StatusInfo, Error> {
        client.status_of(&self.id).await
    }

    /// The raw result (`/result`); see [`Client::result`].
    pub async fn result(&self, client: &Client, include_cost: bool) -> Result<JobResult, Error> {
        client.result_of(&self.id, include_cost).await
    }

    /// Asks the server to cancel the job; returns the outcome.
    pub async fn cancel(&self, client: &Client) -> Result<Cancellation, Error> {
        client.cancel(self.id.as_str()).await
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
        let result = client.wait_handle(&self.id, &mut on_progress).await?;
        decode_output(result, self.id.as_str())
    }

    /// Waits as a stream: progress events, then the output; an error ends the stream.
    ///
    /// Dropping the stream stops polling; the job goes on and this handle still reaches it.
    pub fn events(
        &self,
        client: &Client,
    ) -> impl Stream<Item = Result<Event<M::Output>, Error>> + Send + 'static {
        event_stream(client.waiter(&self.id), |result, id| {
            decode_output::<M::Output>(result, id)
        })
    }
}

/// A submitted job of any model: plain data that can be stored and re-attached.
///
/// ```
/// let handle = runcomfy::RequestHandle::attach("req-1")?;
/// assert_eq!(serde_json::to_string(&handle).unwrap(), r#"{"request_id":"req-1"}"#);
/// # Ok::<(), runcomfy::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestHandle {
    request_id: RequestId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model_id: Option<String>,
}

impl RequestHandle {
    pub(crate) fn new(request_id: RequestId, model_id: Option<String>) -> Self {
        RequestHandle {
            request_id,
            model_id,
        }
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

    pub(crate) fn into_request_id(self) -> RequestId {
        self.request_id
    }

    /// Gives the handle a model type, checking the model id when it is known.
    pub fn typed<M: Model>(self) -> Result<JobHandle<M>, Error> {
        match &self.model_id {
            Some(m) if m != M::ID => Err(Error::InvalidArgument {
                name: "model",
                reason: format!("handle of model {m} used as model {}", M::ID),
            }),
            _ => Ok(JobHandle::from_request_id(self.request_id)),
        }
    }

    /// The current state (`/status`).
    pub async fn status(&self, client: &Client) -> Result<StatusInfo, Error> {
        client.status_of(&self.request_id).await
    }

    /// The raw result (`/result`).
    pub async fn result(&self, client: &Client, include_cost: bool) -> Result<JobResult, Error> {
        client.result_of(&self.request_id, include_cost).await
    }

    /// Asks the server to cancel the job.
    pub async fn cancel(&self, client: &Client) -> Result<Cancellation, Error> {
        client.cancel(self.request_id.as_str()).await
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
        client.wait_handle(&self.request_id, &mut on_progress).await
    }

    /// Waits as a stream: progress events, then the result.
    pub fn events(
        &self,
        client: &Client,
    ) -> impl Stream<Item = Result<Event<JobResult>, Error>> + Send + 'static {
        event_stream(client.waiter(&self.request_id), |r, _| Ok(r))
    }
}

fn event_stream<T, F>(
    waiter: Waiter,
    finish: F,
) -> impl Stream<Item = Result<Event<T>, Error>> + Send + 'static
where
    T: Send + 'static,
    F: Fn(JobResult, &str) -> Result<T, Error> + Send + 'static,
{
    stream::unfold((waiter, finish), |(mut waiter, finish)| async move {
        let item = match waiter.next().await? {
            Ok(Step::Progress(p)) => Ok(Event::Progress(p)),
            Ok(Step::Done(result)) => {
                let id = waiter.request_id().to_string();
                finish(*result, &id).map(Event::Output)
            }
            Err(e) => Err(e),
        };
        Some((item, (waiter, finish)))
    })
}
