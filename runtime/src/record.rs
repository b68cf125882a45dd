//! Layer 3b: the job store the client writes through (feature `store`, set with
//! [`ClientBuilder::store`](crate::ClientBuilder::store)). A submit's intent is recorded
//! before it is sent and its request id the moment it returns; a wait records how the job
//! ended. Without the feature, or without a store, every step does nothing.

// Without the `store` feature the ends are made and never read.
#![cfg_attr(not(feature = "store"), allow(dead_code))]

use std::time::Duration;

use crate::api::Api;
use crate::error::{ApiErrorCode, Error};
#[cfg(feature = "store")]
use crate::ids::check_model_id;
use crate::ids::RequestId;
use crate::types::JobResult;
#[cfg(feature = "store")]
use crate::types::JobState;

/// The store's key of a job (`runcomfy_store::JobKey`; without the `store` feature, a type
/// with no value, so an `Option<Key>` is always `None`).
#[cfg(feature = "store")]
pub(crate) type Key = runcomfy_store::JobKey;

/// The store's key of a job: no value exists without the `store` feature.
#[cfg(not(feature = "store"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {}

/// How a watched job ended, as the store is told.
pub(crate) enum End<'a> {
    /// The server's answer for a job in a terminal state.
    Result(&'a JobResult),
    /// The server no longer knows the job (`404001`).
    Expired(&'a Error),
}

impl<'a> End<'a> {
    /// The end an error of a wait stands for, if any (only `404001`: the other ends come as
    /// results).
    pub(crate) fn of_error(error: &'a Error) -> Option<End<'a>> {
        match error {
            Error::Api(api) if api.code == Some(ApiErrorCode::ResourceNotFound) => {
                Some(End::Expired(error))
            }
            _ => None,
        }
    }
}

/// The client's job store, if it has one.
#[derive(Clone, Default)]
pub(crate) struct Recorder {
    #[cfg(feature = "store")]
    store: Option<runcomfy_store::SharedStore>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        #[cfg(feature = "store")]
        if let Some(store) = &self.store {
            // The location prints without a password.
            return write!(f, "Recorder({})", store.location());
        }
        f.write_str("Recorder(none)")
    }
}

/// `error` and each of its causes, joined with `: ` (what the store keeps as a submit error).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        // Each cause once, even from an error that also prints its source.
        let part = cause.to_string();
        if !part.is_empty() && !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = cause.source();
    }
    text
}

impl Recorder {
    /// A recorder writing to `store`.
    #[cfg(feature = "store")]
    pub(crate) fn new(store: Option<runcomfy_store::SharedStore>) -> Self {
        Recorder { store }
    }

    /// The store, when one is set.
    #[cfg(feature = "store")]
    pub(crate) fn store(&self) -> Option<&runcomfy_store::SharedStore> {
        self.store.as_ref()
    }

    /// True when a store is set (waits then ask for the cost).
    pub(crate) fn is_on(&self) -> bool {
        #[cfg(feature = "store")]
        return self.store.is_some();
        #[cfg(not(feature = "store"))]
        false
    }

    /// Submits `body` to `model_id` through `api`, recording the intent before sending (a
    /// store error then sends nothing) and the request id the moment it returns; a submit
    /// refused for sure is recorded refused, one that may have reached the server uncertain.
    pub(crate) async fn submit(
        &self,
        api: &Api,
        model_id: &str,
        body: &[u8],
    ) -> Result<(RequestId, Option<Key>), Error> {
        #[cfg(feature = "store")]
        if let Some(store) = &self.store {
            return submit_recorded(store.as_ref(), api, model_id, body)
                .await
                .map(|(id, key)| (id, Some(key)));
        }
        api.submit(model_id, body).await.map(|id| (id, None))
    }

    /// Records how job `id` (store key `key`, or looked up by its request id) ended; a job the
    /// store never saw is left alone. `run_time`: from submit to end, when watched live.
    #[cfg_attr(not(feature = "store"), allow(unused_variables))]
    pub(crate) async fn finish(
        &self,
        key: Option<Key>,
        id: &RequestId,
        end: End<'_>,
        run_time: Option<Duration>,
    ) -> Result<(), Error> {
        #[cfg(feature = "store")]
        if let Some(store) = &self.store {
            return finish_recorded(store.as_ref(), key, id, end, run_time).await;
        }
        Ok(())
    }

    /// The typical run time of `model_id`'s jobs from the store's history (`p50`, `p90`),
    /// when there is a store and it measured some. A store error reads as no history.
    #[cfg_attr(not(feature = "store"), allow(unused_variables))]
    pub(crate) async fn history(&self, model_id: &str) -> Option<(Duration, Duration)> {
        #[cfg(feature = "store")]
        if let Some(store) = &self.store {
            return match store.duration_stats(model_id).await {
                Ok(stats) => stats.map(|s| (s.p50, s.p90)),
                Err(e) => {
                    tracing::debug!(model_id, error = %e, "no run-time history from the store");
                    None
                }
            };
        }
        None
    }
}

#[cfg(feature = "store")]
fn store_error(
    step: &'static str,
    request_id: Option<&RequestId>,
) -> impl FnOnce(runcomfy_store::StoreError) -> Error {
    let request_id = request_id.map(|id| id.to_string());
    move |source| Error::Store {
        step,
        request_id,
        source,
    }
}

/// The submit with its three records; see [`Recorder::submit`].
#[cfg(feature = "store")]
pub(crate) async fn submit_recorded(
    store: &dyn runcomfy_store::JobStore,
    api: &Api,
    model_id: &str,
    body: &[u8],
) -> Result<(RequestId, Key), Error> {
    // Checks that need no store first: an id the API refuses records nothing.
    check_model_id(model_id)?;
    let input: serde_json::Value =
        serde_json::from_slice(body).map_err(|source| Error::Encode {
            model_id: model_id.to_owned(),
            source,
        })?;
    let key = store
        .record_intent(model_id, &input)
        .await
        .map_err(store_error("the intent", None))?;
    match api.submit(model_id, body).await {
        Ok(id) => {
            record_request_id(store, key, id.as_str())
                .await
                .map_err(store_error("the request id", Some(&id)))?;
            Ok((id, key))
        }
        Err(error) => {
            let text = error_chain(&error);
            let recorded = if error.may_have_submitted() {
                store.record_uncertain(key, &text).await
            } else {
                store.record_refused(key, &text).await
            };
            if let Err(e) = recorded {
                // The row stays `submitting`, which the store lists as uncertain: safe.
                tracing::warn!(%key, error = %e, "could not record how a submit failed");
            }
            Err(error)
        }
    }
}

/// Records a paid job's request id, asking again while the store is briefly unreachable or
/// failing (a dropped connection, a restarting server): the write is idempotent, and this id
/// is the only handle on the job. Gives up after [`RECORD_ID_PATIENCE`], or at once on an
/// answer that will not change (the job holds another id, the store is too new).
#[cfg(feature = "store")]
pub(crate) async fn record_request_id(
    store: &dyn runcomfy_store::JobStore,
    key: Key,
    request_id: &str,
) -> Result<(), runcomfy_store::StoreError> {
    use runcomfy_store::StoreError;
    let policy = crate::http::retry::RetryPolicy::default();
    let started = std::time::Instant::now();
    let mut retry = 0;
    loop {
        match store.record_submitted(key, request_id).await {
            Ok(()) => return Ok(()),
            Err(e @ (StoreError::Unavailable { .. } | StoreError::Database { .. }))
                if started.elapsed() < RECORD_ID_PATIENCE =>
            {
                tracing::warn!(%key, request_id, error = %e, retry, "the request id was not recorded; asking the store again");
                tokio::time::sleep(policy.backoff(retry, rand::random::<f64>())).await;
                retry += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// How long [`record_request_id`] keeps asking a failing store.
#[cfg(feature = "store")]
pub(crate) const RECORD_ID_PATIENCE: Duration = Duration::from_secs(30);

/// The end of a job as the store takes it.
#[cfg(feature = "store")]
pub(crate) fn finish_of(
    end: &End<'_>,
    run_time: Option<Duration>,
) -> Option<runcomfy_store::Finish> {
    use runcomfy_store::{Finish, Outcome};
    let finish = match end {
        End::Result(result) => {
            let outcome = match &result.state {
                JobState::Succeeded | JobState::Completed => Outcome::Succeeded(
                    result
                        .output
                        .clone()
                        .unwrap_or_else(|| serde_json::Value::Object(Default::default())),
                ),
                JobState::Failed => {
                    Outcome::Failed(result.error.clone().unwrap_or(serde_json::Value::Null))
                }
                JobState::Cancelled => Outcome::Cancelled,
                _ => return None,
            };
            let mut finish = Finish::new(outcome);
            finish.cost_usd = result.cost;
            finish
        }
        End::Expired(error) => Finish::new(Outcome::Expired(serde_json::Value::String(
            error_chain(*error),
        ))),
    };
    Some(match run_time {
        Some(t) => finish.run_time(t),
        None => finish,
    })
}

#[cfg(feature = "store")]
async fn finish_recorded(
    store: &dyn runcomfy_store::JobStore,
    key: Option<Key>,
    id: &RequestId,
    end: End<'_>,
    run_time: Option<Duration>,
) -> Result<(), Error> {
    let Some(mut finish) = finish_of(&end, run_time) else {
        return Ok(());
    };
    let succeeded = matches!(finish.outcome, runcomfy_store::Outcome::Succeeded(_));
    let (key, record) = match key {
        Some(key) if succeeded => (
            key,
            store
                .job(key)
                .await
                .map_err(store_error("the outcome", Some(id)))?,
        ),
        Some(key) => (key, None),
        None => match store
            .job_by_request_id(id.as_str())
            .await
            .map_err(store_error("the outcome", Some(id)))?
        {
            Some(record) => (record.key, Some(record)),
            None => return Ok(()),
        },
    };
    // Outputs wanted in a folder (`record_outputs_wanted`): the job is done once they are saved.
    if let (runcomfy_store::Outcome::Succeeded(output), Some(_)) = (
        &finish.outcome,
        record.as_ref().and_then(|r| r.outputs_dir.as_ref()),
    ) {
        finish.wanted_outputs = crate::download::output_urls(output)
            .into_iter()
            .map(|u| u.as_str().to_owned())
            .collect();
    }
    store
        .record_finished(key, &finish)
        .await
        .map_err(store_error("the outcome", Some(id)))?;
    Ok(())
}
