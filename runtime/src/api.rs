//! Layer 3: one function per API endpoint, returning the plain types of [`crate::types`].
//!
//! Each builds its path from checked ids, sends through [`send_with_retry`] with the
//! classifier its endpoint needs (only [`Api::submit`] uses the money rule), and decodes.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;
use url::Url;

use crate::error::Error;
use crate::http::retry::{self, send_with_retry, Classifier, RetryPolicy};
use crate::http::transport::{Method, Outgoing, Transport};
use crate::ids::{check_model_id, RequestId};
use crate::types::{
    CancelWire, Cancellation, CatalogModel, JobResult, ListModels, ModelList, StatusInfo,
};

/// The API calls of one client: a transport and the retry policy its calls use.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    transport: Transport,
    retry: RetryPolicy,
}

impl Api {
    pub(crate) fn new(transport: Transport, retry: RetryPolicy) -> Self {
        Api { transport, retry }
    }

    /// The same transport (and connection pool) with another retry policy.
    pub(crate) fn with_retry(&self, retry: RetryPolicy) -> Self {
        Api {
            transport: self.transport.clone(),
            retry,
        }
    }

    pub(crate) fn base_url(&self) -> &Url {
        self.transport.base_url()
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    async fn call(
        &self,
        policy: &RetryPolicy,
        req: Outgoing<'_>,
        classify: Classifier,
        request_id: Option<&str>,
    ) -> Result<Value, Error> {
        send_with_retry(&self.transport, policy, &req, classify, request_id)
            .await
            .map_err(|stop| stop.error)
    }

    fn get<'a>(path: &'a str, query: &'a [(&'static str, String)]) -> Outgoing<'a> {
        Outgoing {
            method: Method::Get,
            path,
            query,
            body: None,
        }
    }

    /// `POST /v1/models/{model_id}`: submits a serialized input; returns the new job's id.
    ///
    /// The money rule applies ([`retry::submit`]): a failure that may have created a job is
    /// [`Error::SubmitUncertain`] and is never repeated. Runs in a `submit` span whose
    /// `request_id` is recorded the moment it is known.
    pub(crate) async fn submit(&self, model_id: &str, body: &[u8]) -> Result<RequestId, Error> {
        let span = tracing::info_span!("submit", model_id, request_id = tracing::field::Empty);
        let submit = span.clone();
        async {
            check_model_id(model_id)?;
            let path = format!("/v1/models/{model_id}");
            let req = Outgoing {
                method: Method::Post,
                path: &path,
                query: &[],
                body: Some(body),
            };
            let uncertain = |source: Error| Error::SubmitUncertain {
                model_id: model_id.to_owned(),
                source: Box::new(source),
            };
            let answer = send_with_retry(&self.transport, &self.retry, &req, retry::submit, None)
                .await
                .map_err(|stop| match stop.uncertain {
                    true => uncertain(stop.error),
                    false => stop.error,
                })?;
            let Some(raw_id) = answer.get("request_id").and_then(Value::as_str) else {
                return Err(uncertain(Error::Decode {
                    what: "submit answer",
                    request_id: None,
                    body: answer.to_string(),
                    source: <serde_json::Error as serde::de::Error>::missing_field("request_id"),
                }));
            };
            // An id outside the documented set cannot be put in a URL; the error keeps it.
            let id = RequestId::new(raw_id).map_err(uncertain)?;
            submit.record("request_id", id.as_str());
            tracing::info!(model_id, request_id = %id, "job submitted");
            Ok(id)
        }
        .instrument(span)
        .await
    }

    /// `GET /v1/requests/{request_id}/status`.
    pub(crate) async fn status(&self, id: &RequestId) -> Result<StatusInfo, Error> {
        let path = format!("/v1/requests/{id}/status");
        let req = Self::get(&path, &[]);
        let v = self
            .call(&self.retry, req, retry::idempotent, Some(id.as_str()))
            .await?;
        decode(v, "status", Some(id.as_str()))
    }

    /// `GET /v1/requests/{request_id}/result`, with `include_cost=true` when asked.
    pub(crate) async fn result(
        &self,
        id: &RequestId,
        include_cost: bool,
    ) -> Result<JobResult, Error> {
        let path = format!("/v1/requests/{id}/result");
        let query = if include_cost {
            vec![("include_cost", "true".to_owned())]
        } else {
            Vec::new()
        };
        let req = Self::get(&path, &query);
        let v = self
            .call(&self.retry, req, retry::idempotent, Some(id.as_str()))
            .await?;
        decode(v, "result", Some(id.as_str()))
    }

    /// `POST /v1/requests/{request_id}/cancel`, retried like a read.
    pub(crate) async fn cancel(&self, id: &RequestId) -> Result<Cancellation, Error> {
        self.cancel_with(id, &self.retry).await
    }

    /// One cancel attempt within `limit`: what a passed deadline sends.
    pub(crate) async fn cancel_once(
        &self,
        id: &RequestId,
        limit: Duration,
    ) -> Result<Cancellation, Error> {
        let once = RetryPolicy::never();
        match tokio::time::timeout(limit, self.cancel_with(id, &once)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                request_id: Some(id.to_string()),
            }),
        }
    }

    async fn cancel_with(
        &self,
        id: &RequestId,
        policy: &RetryPolicy,
    ) -> Result<Cancellation, Error> {
        let path = format!("/v1/requests/{id}/cancel");
        let req = Outgoing {
            method: Method::Post,
            path: &path,
            query: &[],
            body: None,
        };
        let v = self
            .call(policy, req, retry::idempotent, Some(id.as_str()))
            .await?;
        let wire: CancelWire = decode(v, "cancel answer", Some(id.as_str()))?;
        Ok(wire.into_cancellation(id.as_str()))
    }

    /// `GET /v1/models`: one page of the catalog (`limit` checked before sending).
    pub(crate) async fn list_models(&self, query: &ListModels) -> Result<ModelList, Error> {
        if let Some(limit) = query.limit {
            if !(1..=100).contains(&limit) {
                return Err(Error::InvalidArgument {
                    name: "limit",
                    reason: format!("must be between 1 and 100, got {limit}"),
                });
            }
        }
        let pairs = query.query_pairs();
        let req = Self::get("/v1/models", &pairs);
        let v = self.call(&self.retry, req, retry::idempotent, None).await?;
        decode(v, "model list", None)
    }

    /// `GET /v1/models/{model_id}`: one catalog entry.
    pub(crate) async fn get_model(&self, model_id: &str) -> Result<CatalogModel, Error> {
        check_model_id(model_id)?;
        let path = format!("/v1/models/{model_id}");
        let req = Self::get(&path, &[]);
        let v = self.call(&self.retry, req, retry::idempotent, None).await?;
        decode(v, "model", None)
    }
}

fn decode<T: DeserializeOwned>(
    v: Value,
    what: &'static str,
    request_id: Option<&str>,
) -> Result<T, Error> {
    T::deserialize(&v).map_err(|source| Error::Decode {
        what,
        request_id: request_id.map(str::to_owned),
        body: v.to_string(),
        source,
    })
}

/// Decodes a successful result's `output` (an absent output reads as `{}`).
pub(crate) fn decode_output<T: DeserializeOwned>(
    result: JobResult,
    request_id: &str,
) -> Result<T, Error> {
    let output = result
        .output
        .unwrap_or_else(|| Value::Object(Default::default()));
    T::deserialize(&output).map_err(|source| Error::Decode {
        what: "output",
        request_id: Some(request_id.to_owned()),
        body: output.to_string(),
        source,
    })
}
