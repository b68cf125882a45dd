//! Layer 5: the [`Client`] type: the API layer, the poll policy and the job store (when set)
//! behind one `Arc`.
//!
//! The type is defined here, below the job handles that take it as an argument; its builder
//! and its methods are the facade in `client.rs`.

use std::fmt;
use std::sync::Arc;

use tokio::time::Instant;

use crate::api::Api;
use crate::error::Error;
use crate::ids::RequestId;
use crate::record::{Key, Recorder};
use crate::wait::{PollPolicy, Waiter};

/// A RunComfy Model API client. Cheap to clone (clones share one connection pool).
///
/// Typed calls go through a model's endpoint (`client.endpoint::<M>()` or the generated
/// methods) or the generic [`Client::run`]; models that were not generated are reached with
/// [`Client::submit_json`] and [`Client::run_json`].
///
/// Its `Debug` form never shows the token:
///
/// ```
/// let client = runcomfy::Client::builder().token("sk-secret").build()?;
/// assert!(!format!("{client:?}").contains("sk-secret"));
/// # Ok::<(), runcomfy::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Shared>,
}

struct Shared {
    api: Api,
    poll: PollPolicy,
    recorder: Recorder,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api", &self.inner.api)
            .field("poll", &self.inner.poll)
            .field("store", &self.inner.recorder)
            .finish()
    }
}

impl Client {
    pub(crate) fn from_parts(api: Api, poll: PollPolicy, recorder: Recorder) -> Client {
        Client {
            inner: Arc::new(Shared {
                api,
                poll,
                recorder,
            }),
        }
    }

    pub(crate) fn api(&self) -> &Api {
        &self.inner.api
    }

    pub(crate) fn poll(&self) -> &PollPolicy {
        &self.inner.poll
    }

    pub(crate) fn recorder(&self) -> &Recorder {
        &self.inner.recorder
    }

    /// Submits `body` to `model_id`, through the job store when the client has one (intent
    /// before sending, request id the moment it returns).
    pub(crate) async fn submit_body(
        &self,
        model_id: &str,
        body: &[u8],
    ) -> Result<(RequestId, Option<Key>), Error> {
        self.recorder().submit(self.api(), model_id, body).await
    }

    /// A wait for job `id` (store key `key`) under this client's poll policy. `poll_now` and
    /// `started` as in [`Waiter::new`].
    pub(crate) fn waiter(
        &self,
        id: &RequestId,
        key: Option<Key>,
        model_id: Option<&str>,
        poll_now: bool,
        started: Instant,
    ) -> Waiter {
        Waiter::new(
            self.api().clone(),
            self.recorder().clone(),
            key,
            self.poll().clone(),
            id.clone(),
            model_id,
            poll_now,
            started,
        )
    }
}
