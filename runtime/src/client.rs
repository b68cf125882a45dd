//! The client: configuration, and every API call with its retry rule.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;
use url::Url;

use crate::endpoint::{encode, Endpoint};
use crate::error::{ApiError, Error};
use crate::ids::{check_model_id, RequestId};
use crate::job::{JobHandle, RequestHandle};
use crate::model::Model;
use crate::poll::{PollPolicy, Progress, Waiter};
use crate::retry::RetryPolicy;
use crate::transport::{
    is_loopback, Incoming, Method, Outgoing, SendError, Token, Transport, TransportConfig,
};
use crate::types::{
    CancelWire, Cancellation, CatalogModel, JobResult, ListModels, ModelList, StatusInfo,
};

/// The production API.
pub const DEFAULT_BASE_URL: &str = "https://model-api.runcomfy.net";
/// The environment variable the token is read from.
pub const TOKEN_ENV: &str = "RUNCOMFY_TOKEN";
/// The environment variable that overrides the base URL.
pub const BASE_URL_ENV: &str = "RUNCOMFY_BASE_URL";

/// A RunComfy Model API client. Cheap to clone (it shares one connection pool).
///
/// Typed calls go through the generated endpoint methods (`client.<model>().run(&input)`)
/// or the generic [`Client::run`]; models that were not generated are reached with
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
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    retry: RetryPolicy,
    poll: PollPolicy,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("transport", &self.inner.transport)
            .field("retry", &self.inner.retry)
            .field("poll", &self.inner.poll)
            .finish()
    }
}

/// Configures a [`Client`].
///
/// Unset values come from the environment (`RUNCOMFY_TOKEN`, `RUNCOMFY_BASE_URL`) unless
/// [`ignore_env`](Self::ignore_env) is called, then from the defaults.
///
/// ```
/// use std::time::Duration;
/// let client = runcomfy::Client::builder()
///     .token("my-token")
///     .base_url("http://127.0.0.1:8080")
///     .request_timeout(Duration::from_secs(20))
///     .poll_policy(runcomfy::PollPolicy::default().deadline(Some(Duration::from_secs(600))))
///     .build()?;
/// assert_eq!(client.base_url().as_str(), "http://127.0.0.1:8080/");
/// # Ok::<(), runcomfy::Error>(())
/// ```
#[derive(Clone)]
pub struct ClientBuilder {
    token: Option<Token>,
    base_url: Option<String>,
    read_env: bool,
    connect_timeout: Duration,
    request_timeout: Duration,
    retry: RetryPolicy,
    poll: PollPolicy,
    user_agent: String,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("base_url", &self.base_url)
            .field("read_env", &self.read_env)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("poll", &self.poll)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            token: None,
            base_url: None,
            read_env: true,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            poll: PollPolicy::default(),
            user_agent: concat!("runcomfy-rs/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl ClientBuilder {
    /// Sets the API token (otherwise read from `RUNCOMFY_TOKEN`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Token::new(token.into()));
        self
    }

    /// Sets the base URL (otherwise `RUNCOMFY_BASE_URL`, else [`DEFAULT_BASE_URL`]).
    /// HTTPS is required except for loopback hosts.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Ignores `RUNCOMFY_TOKEN` and `RUNCOMFY_BASE_URL`.
    pub fn ignore_env(mut self) -> Self {
        self.read_env = false;
        self
    }

    /// The connect timeout (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The timeout of one HTTP request, answer included (default 60 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How single requests are retried.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How waits poll.
    pub fn poll_policy(mut self, policy: PollPolicy) -> Self {
        self.poll = policy;
        self
    }

    /// The `User-Agent` header (default `runcomfy-rs/<version>`).
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// Builds the client. Fails when no token is found or the base URL is not acceptable.
    pub fn build(self) -> Result<Client, Error> {
        self.build_with_env(|name| std::env::var(name).ok())
    }

    fn build_with_env(self, lookup: impl Fn(&str) -> Option<String>) -> Result<Client, Error> {
        let env = |name: &str| {
            if self.read_env {
                lookup(name).filter(|v| !v.trim().is_empty())
            } else {
                None
            }
        };
        let token = match self.token {
            Some(t) => t,
            None => Token::new(env(TOKEN_ENV).ok_or(Error::MissingToken { var: TOKEN_ENV })?),
        };
        if token.is_empty() {
            return Err(Error::MissingToken { var: TOKEN_ENV });
        }
        let base_text = self
            .base_url
            .or_else(|| env(BASE_URL_ENV))
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let base = check_base_url(&base_text)?;
        let transport = Transport::new(TransportConfig {
            base,
            token,
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            user_agent: self.user_agent,
        })?;
        Ok(Client {
            inner: Arc::new(Inner {
                transport,
                retry: self.retry,
                poll: self.poll,
            }),
        })
    }
}

fn check_base_url(text: &str) -> Result<Url, Error> {
    let shown = if text.contains('@') {
        "[url with credentials]".to_owned()
    } else {
        text.to_owned()
    };
    let fail = |reason| Error::InvalidBaseUrl {
        url: shown.clone(),
        reason,
    };
    let url = Url::parse(text.trim()).map_err(|_| fail("not an absolute url"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(fail(
            "credentials in the url are not allowed; use the token",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(fail("a query or fragment is not allowed"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(fail("https is required except for loopback addresses")),
        _ => return Err(fail("the scheme must be https")),
    }
    if url.host().is_none() {
        return Err(fail("no host"));
    }
    Ok(url)
}

/// Why a response was not a success, and whether asking again may help.
struct Failure {
    error: Error,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Client {
    /// A builder, to configure a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured from the environment: `RUNCOMFY_TOKEN` (required) and
    /// `RUNCOMFY_BASE_URL` (optional).
    pub fn from_env() -> Result<Client, Error> {
        Client::builder().build()
    }

    /// A client with this token and the defaults (the base URL may still come from
    /// `RUNCOMFY_BASE_URL`).
    pub fn new(token: impl Into<String>) -> Result<Client, Error> {
        Client::builder().token(token).build()
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &Url {
        self.inner.transport.base_url()
    }

    /// The poll policy waits use.
    pub fn poll_policy(&self) -> &PollPolicy {
        &self.inner.poll
    }

    /// The retry policy single requests use.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// A copy of this client (sharing its connection pool) with another poll policy.
    pub fn with_poll_policy(&self, poll: PollPolicy) -> Client {
        self.rebuild(|i| i.poll = poll)
    }

    /// A copy of this client (sharing its connection pool) with another retry policy.
    pub fn with_retry_policy(&self, retry: RetryPolicy) -> Client {
        self.rebuild(|i| i.retry = retry)
    }

    fn rebuild(&self, f: impl FnOnce(&mut PolicyPair)) -> Client {
        let mut pair = PolicyPair {
            poll: self.inner.poll.clone(),
            retry: self.inner.retry.clone(),
        };
        f(&mut pair);
        Client {
            inner: Arc::new(Inner {
                transport: self.inner.transport.clone(),
                retry: pair.retry,
                poll: pair.poll,
            }),
        }
    }

    /// The typed endpoint of model `M` (what the generated methods return).
    pub fn endpoint<M: Model>(&self) -> Endpoint<M> {
        Endpoint::new(self)
    }

    // ----- typed, generic -----

    /// Validates `input`, then submits it to model `M`. See [`Client::submit_json`] for the
    /// retry rule.
    pub async fn submit<M: Model>(&self, input: &M::Input) -> Result<JobHandle<M>, Error> {
        self.submit_encoded::<M>(encode::<M>(input)?).await
    }

    pub(crate) async fn submit_encoded<M: Model>(
        &self,
        body: Vec<u8>,
    ) -> Result<JobHandle<M>, Error> {
        let handle = self.submit_bytes(M::ID, &body).await?;
        Ok(JobHandle::from_request_id(handle.into_request_id()))
    }

    /// Submits and waits; returns the typed output.
    ///
    /// If this future is dropped after the submit, the job goes on and its id is lost to the
    /// caller: use [`Client::run_with_progress`] (whose first event is
    /// [`Progress::Submitted`]) or [`Client::submit`] then [`JobHandle::wait`] to keep it.
    pub async fn run<M: Model>(&self, input: &M::Input) -> Result<M::Output, Error> {
        self.run_with_progress::<M>(input, |_| {}).await
    }

    /// Submits and waits, calling `on_progress` with [`Progress::Submitted`] first, then at
    /// every change of state.
    pub async fn run_with_progress<M: Model>(
        &self,
        input: &M::Input,
        mut on_progress: impl FnMut(&Progress) + Send,
    ) -> Result<M::Output, Error> {
        self.run_encoded::<M>(encode::<M>(input)?, &mut on_progress)
            .await
    }

    pub(crate) async fn run_encoded<M: Model>(
        &self,
        body: Vec<u8>,
        on_progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<M::Output, Error> {
        let started = Instant::now();
        let handle = self.submit_encoded::<M>(body).await?;
        on_progress(&Progress::Submitted {
            request_id: handle.request_id().to_owned(),
        });
        let waiter = Waiter::new(self.clone(), handle.id().clone(), false, started);
        let result = waiter.run(on_progress).await?;
        decode_output::<M::Output>(result, handle.request_id())
    }

    /// Waits for a stored typed handle; returns the typed output.
    pub async fn wait<M: Model>(&self, handle: &JobHandle<M>) -> Result<M::Output, Error> {
        handle.wait(self).await
    }

    // ----- untyped -----

    /// Submits `input` (the model's input object) to `model_id`, for models that were not
    /// generated. No client-side validation happens; the server checks the body.
    ///
    /// A submit is a paid job, so it is retried only when it provably did not reach the
    /// server (the connection was never made) or was refused with 429. Any ambiguous failure
    /// (timeout, reset, 5xx, an unreadable answer) returns [`Error::SubmitUncertain`].
    pub async fn submit_json(&self, model_id: &str, input: &Value) -> Result<RequestHandle, Error> {
        let body = serde_json::to_vec(input).map_err(|source| Error::Encode {
            model_id: model_id.to_owned(),
            source,
        })?;
        self.submit_bytes(model_id, &body).await
    }

    /// Submits and waits; returns the successful result (with its raw `output`).
    pub async fn run_json(&self, model_id: &str, input: &Value) -> Result<JobResult, Error> {
        self.run_json_with_progress(model_id, input, |_| {}).await
    }

    /// Submits and waits, reporting progress as [`Client::run_with_progress`] does.
    pub async fn run_json_with_progress(
        &self,
        model_id: &str,
        input: &Value,
        mut on_progress: impl FnMut(&Progress) + Send,
    ) -> Result<JobResult, Error> {
        let started = Instant::now();
        let handle = self.submit_json(model_id, input).await?;
        on_progress(&Progress::Submitted {
            request_id: handle.request_id().to_owned(),
        });
        Waiter::new(self.clone(), handle.id().clone(), false, started)
            .run(&mut on_progress)
            .await
    }

    /// `GET /v1/requests/{request_id}/status`.
    pub async fn status(&self, request_id: &str) -> Result<StatusInfo, Error> {
        self.status_of(&RequestId::new(request_id)?).await
    }

    /// `GET /v1/requests/{request_id}/result`, with `include_cost=true` when asked.
    /// While the job runs, the answer holds only its state.
    pub async fn result(&self, request_id: &str, include_cost: bool) -> Result<JobResult, Error> {
        self.result_of(&RequestId::new(request_id)?, include_cost)
            .await
    }

    /// `POST /v1/requests/{request_id}/cancel`; returns the outcome (`cancelled` or
    /// `not_cancellable`). Retried like a GET.
    pub async fn cancel(&self, request_id: &str) -> Result<Cancellation, Error> {
        self.cancel_of(&RequestId::new(request_id)?, &self.inner.retry)
            .await
    }

    /// `GET /v1/models`: one page of the catalog.
    pub async fn list_models(&self, query: &ListModels) -> Result<ModelList, Error> {
        if let Some(limit) = query.limit {
            if !(1..=100).contains(&limit) {
                return Err(Error::InvalidArgument {
                    name: "limit",
                    reason: format!("must be between 1 and 100, got {limit}"),
                });
            }
        }
        let pairs = query.query_pairs();
        let v = self
            .idempotent(Method::Get, "/v1/models", &pairs, None, &self.inner.retry)
            .await?;
        decode(v, "model list", None)
    }

    /// `GET /v1/models/{model_id}`: one catalog entry, with its price and input schema.
    pub async fn get_model(&self, model_id: &str) -> Result<CatalogModel, Error> {
        check_model_id(model_id)?;
        let path = format!("/v1/models/{model_id}");
        let v = self
            .idempotent(Method::Get, &path, &[], None, &self.inner.retry)
            .await?;
        decode(v, "model", None)
    }

    // ----- crate-internal calls -----

    pub(crate) async fn status_of(&self, id: &RequestId) -> Result<StatusInfo, Error> {
        let path = format!("/v1/requests/{id}/status");
        let v = self
            .idempotent(
                Method::Get,
                &path,
                &[],
                Some(id.as_str()),
                &self.inner.retry,
            )
            .await?;
        decode(v, "status", Some(id.as_str()))
    }

    pub(crate) async fn result_of(
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
        let v = self
            .idempotent(
                Method::Get,
                &path,
                &query,
                Some(id.as_str()),
                &self.inner.retry,
            )
            .await?;
        decode(v, "result", Some(id.as_str()))
    }

    async fn cancel_of(&self, id: &RequestId, policy: &RetryPolicy) -> Result<Cancellation, Error> {
        let path = format!("/v1/requests/{id}/cancel");
        let v = self
            .idempotent(Method::Post, &path, &[], Some(id.as_str()), policy)
            .await?;
        let wire: CancelWire = decode(v, "cancel answer", Some(id.as_str()))?;
        Ok(wire.into_cancellation(id.as_str()))
    }

    /// One cancel attempt, bounded in time: used when a deadline passes.
    pub(crate) async fn cancel_once(&self, id: &RequestId) -> Result<Cancellation, Error> {
        let once = RetryPolicy::never();
        let attempt = self.cancel_of(id, &once);
        match tokio::time::timeout(Duration::from_secs(10), attempt).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                request_id: Some(id.to_string()),
            }),
        }
    }

    pub(crate) async fn wait_handle(
        &self,
        id: &RequestId,
        on_progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<JobResult, Error> {
        Waiter::new(self.clone(), id.clone(), true, Instant::now())
            .run(on_progress)
            .await
    }

    pub(crate) fn waiter(&self, id: &RequestId) -> Waiter {
        Waiter::new(self.clone(), id.clone(), true, Instant::now())
    }

    /// A GET or a cancel: retried on transport failures, 429, 408 and 5xx.
    async fn idempotent(
        &self,
        method: Method,
        path: &str,
        query: &[(&'static str, String)],
        request_id: Option<&str>,
        policy: &RetryPolicy,
    ) -> Result<Value, Error> {
        let req = Outgoing {
            method,
            path,
            query,
            body: None,
        };
        let start = Instant::now();
        let mut retry = 0u32;
        loop {
            let failure = match self.inner.transport.send(&req).await {
                Ok(resp) => match self.read_json(resp, request_id) {
                    Ok(v) => return Ok(v),
                    Err(f) => f,
                },
                Err(SendError::Refused(e)) => return Err(e),
                Err(SendError::TimedOut) => Failure {
                    error: Error::Timeout {
                        request_id: request_id.map(str::to_owned),
                    },
                    retryable: true,
                    retry_after: None,
                },
                Err(SendError::NotSent(e) | SendError::Failed(e)) => Failure {
                    error: Error::Transport {
                        request_id: request_id.map(str::to_owned),
                        source: e,
                    },
                    retryable: true,
                    retry_after: None,
                },
            };
            match self.retry_delay(policy, &failure, retry, start) {
                Some(delay) => {
                    tracing::debug!(path, retry, ?delay, error = %failure.error, "retrying");
                    tokio::time::sleep(delay).await;
                    retry += 1;
                }
                None => return Err(failure.error),
            }
        }
    }

    /// The submit: see [`Client::submit_json`] for its retry rule.
    async fn submit_bytes(&self, model_id: &str, body: &[u8]) -> Result<RequestHandle, Error> {
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
        let policy = &self.inner.retry;
        let start = Instant::now();
        let mut retry = 0u32;
        loop {
            let failure = match self.inner.transport.send(&req).await {
                Err(SendError::Refused(e)) => return Err(e),
                // The connection was never made: nothing reached the server.
                Err(SendError::NotSent(e)) => Failure {
                    error: Error::Transport {
                        request_id: None,
                        source: e,
                    },
                    retryable: true,
                    retry_after: None,
                },
                Err(SendError::TimedOut) => {
                    return Err(uncertain(Error::Timeout { request_id: None }))
                }
                Err(SendError::Failed(e)) => {
                    return Err(uncertain(Error::Transport {
                        request_id: None,
                        source: e,
                    }))
                }
                Ok(resp) if resp.status == 429 => Failure {
                    error: Error::RateLimited {
                        retry_after: resp.retry_after,
                        request_id: None,
                    },
                    retryable: true,
                    retry_after: resp.retry_after,
                },
                Ok(resp) if resp.status >= 500 => {
                    return Err(uncertain(Error::Api(Box::new(ApiError::from_body(
                        resp.status,
                        resp.body,
                    )))))
                }
                Ok(resp) if resp.is_success() => return self.read_submit_answer(model_id, resp),
                // Any other status is a refusal: no job was made.
                Ok(resp) => {
                    return Err(Error::Api(Box::new(ApiError::from_body(
                        resp.status,
                        resp.body,
                    ))))
                }
            };
            match self.retry_delay(policy, &failure, retry, start) {
                Some(delay) => {
                    tracing::debug!(model_id, retry, ?delay, error = %failure.error, "retrying a submit that was not received");
                    tokio::time::sleep(delay).await;
                    retry += 1;
                }
                None => return Err(failure.error),
            }
        }
    }

    fn read_submit_answer(&self, model_id: &str, resp: Incoming) -> Result<RequestHandle, Error> {
        let uncertain = |source: Error| Error::SubmitUncertain {
            model_id: model_id.to_owned(),
            source: Box::new(source),
        };
        let value: Value = match serde_json::from_str(&resp.body) {
            Ok(v) => v,
            Err(source) => {
                return Err(uncertain(Error::Decode {
                    what: "submit answer",
                    request_id: None,
                    body: resp.body,
                    source,
                }))
            }
        };
        if has_error_code(&value) {
            // An error body with HTTP 2xx: the server refused the job.
            return Err(Error::Api(Box::new(ApiError::from_body(
                resp.status,
                resp.body,
            ))));
        }
        let Some(raw_id) = value.get("request_id").and_then(Value::as_str) else {
            return Err(uncertain(Error::Decode {
                what: "submit answer",
                request_id: None,
                body: resp.body,
                source: <serde_json::Error as serde::de::Error>::missing_field("request_id"),
            }));
        };
        // An id outside the documented set cannot be put in a URL; the error keeps it.
        let id = RequestId::new(raw_id).map_err(uncertain)?;
        tracing::info!(model_id, request_id = %id, "job submitted");
        Ok(RequestHandle::new(id, Some(model_id.to_owned())))
    }

    /// Turns an answer into JSON, or a failure that says whether to retry.
    fn read_json(&self, resp: Incoming, request_id: Option<&str>) -> Result<Value, Failure> {
        let final_error = |error| Failure {
            error,
            retryable: false,
            retry_after: None,
        };
        if resp.status == 429 {
            return Err(Failure {
                error: Error::RateLimited {
                    retry_after: resp.retry_after,
                    request_id: request_id.map(str::to_owned),
                },
                retryable: true,
                retry_after: resp.retry_after,
            });
        }
        if !resp.is_success() {
            let retryable = resp.status >= 500 || resp.status == 408;
            let retry_after = resp.retry_after;
            let mut api = ApiError::from_body(resp.status, resp.body);
            if api.request_id.is_none() {
                api.request_id = request_id.map(str::to_owned);
            }
            return Err(Failure {
                error: Error::Api(Box::new(api)),
                retryable,
                retry_after,
            });
        }
        let value: Value = serde_json::from_str(&resp.body).map_err(|source| {
            final_error(Error::Decode {
                what: "answer",
                request_id: request_id.map(str::to_owned),
                body: resp.body.clone(),
                source,
            })
        })?;
        if has_error_code(&value) {
            let mut api = ApiError::from_body(resp.status, resp.body);
            if api.request_id.is_none() {
                api.request_id = request_id.map(str::to_owned);
            }
            return Err(final_error(Error::Api(Box::new(api))));
        }
        Ok(value)
    }

    fn retry_delay(
        &self,
        policy: &RetryPolicy,
        failure: &Failure,
        retry: u32,
        start: Instant,
    ) -> Option<Duration> {
        if !failure.retryable || retry.saturating_add(1) >= policy.max_attempts {
            return None;
        }
        let delay = policy.delay(retry, failure.retry_after, rand::random());
        if start.elapsed().saturating_add(delay) > policy.budget {
            return None;
        }
        Some(delay)
    }
}

struct PolicyPair {
    poll: PollPolicy,
    retry: RetryPolicy,
}

fn has_error_code(v: &Value) -> bool {
    v.get("error_code").is_some_and(|c| !c.is_null())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn token_and_base_url_come_from_the_environment() {
        let c = Client::builder()
            .build_with_env(env(&[
                (TOKEN_ENV, "t0k3n-from-env"),
                (BASE_URL_ENV, "http://127.0.0.1:4000"),
            ]))
            .unwrap();
        assert_eq!(c.base_url().as_str(), "http://127.0.0.1:4000/");
        assert!(!format!("{c:?}").contains("t0k3n-from-env"));

        let c = Client::builder()
            .build_with_env(env(&[(TOKEN_ENV, "t")]))
            .unwrap();
        assert_eq!(c.base_url().as_str(), "https://model-api.runcomfy.net/");

        // Code wins over the environment.
        let c = Client::builder()
            .base_url("https://other.example")
            .build_with_env(env(&[
                (TOKEN_ENV, "t"),
                (BASE_URL_ENV, "https://env.example"),
            ]))
            .unwrap();
        assert_eq!(c.base_url().as_str(), "https://other.example/");
    }

    #[test]
    fn a_missing_or_empty_token_is_an_error_value() {
        for vars in [&[][..], &[(TOKEN_ENV, "")][..], &[(TOKEN_ENV, " \t")][..]] {
            let err = Client::builder().build_with_env(env(vars)).unwrap_err();
            assert!(
                matches!(err, Error::MissingToken { var: TOKEN_ENV }),
                "{err:?}"
            );
        }
        let err = Client::builder()
            .ignore_env()
            .build_with_env(env(&[(TOKEN_ENV, "t")]))
            .unwrap_err();
        assert!(matches!(err, Error::MissingToken { .. }));
    }
}
