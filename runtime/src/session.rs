//! Layer 5: the [`Client`] type: the API layer and the poll policy behind one `Arc`.
//!
//! The type is defined here, below the job handles that take it as an argument; its builder
//! and its methods are the facade in `client.rs`.

use std::fmt;
use std::sync::Arc;

use tokio::time::Instant;

use crate::api::Api;
use crate::ids::RequestId;
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
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api", &self.inner.api)
            .field("poll", &self.inner.poll)
            .finish()
    }
}

impl Client {
    pub(crate) fn from_parts(api: Api, poll: PollPolicy) -> Client {
        Client {
            inner: Arc::new(Shared { api, poll }),
        }
    }

    pub(crate) fn api(&self) -> &Api {
        &self.inner.api
    }

    pub(crate) fn poll(&self) -> &PollPolicy {
        &self.inner.poll
    }

    /// A wait for job `id` under this client's poll policy. `poll_now` and `started` as in
    /// [`Waiter::new`].
    pub(crate) fn waiter(
        &self,
        id: &RequestId,
        model_id: Option<&str>,
        poll_now: bool,
        started: Instant,
    ) -> Waiter {
        Waiter::new(
            self.api().clone(),
            self.poll().clone(),
            id.clone(),
            model_id,
            poll_now,
            started,
        )
    }
}
