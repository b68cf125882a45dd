//! Layer 7: the facade. [`ClientBuilder`] makes a [`Client`]; the client's methods are one
//! line each over the API layer, the job handles and the endpoint's `run`.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde_json::Value;
use url::Url;

use crate::api::Api;
use crate::endpoint::{submit_and_wait, Endpoint};
use crate::error::Error;
use crate::http::retry::RetryPolicy;
use crate::http::transport::{check_base_url, Token, Transport, TransportConfig};
use crate::ids::RequestId;
use crate::job::{JobHandle, Receipt, RequestHandle, Run};
use crate::model::Model;
use crate::record::Recorder;
// `Client` is defined in `session`, below the job handles that take it; its methods are here.
pub(crate) use crate::session::Client;
use crate::types::{Cancellation, CatalogModel, JobResult, ListModels, ModelList, StatusInfo};
use crate::wait::{PollPolicy, Progress};

/// The production API.
pub const DEFAULT_BASE_URL: &str = "https://model-api.runcomfy.net";
/// The environment variable the token is read from.
pub const TOKEN_ENV: &str = "RUNCOMFY_TOKEN";
/// The environment variable that overrides the base URL.
pub const BASE_URL_ENV: &str = "RUNCOMFY_BASE_URL";

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
    recorder: Recorder,
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
            .field("store", &self.recorder)
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
            recorder: Recorder::default(),
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

    /// Records every submit of the client in `store` (feature `store`): its intent before it
    /// is sent (a store error sends nothing), its request id the moment it returns, a refusal
    /// or an uncertain outcome, and how each wait ended (with the cost: waits then ask for
    /// it). Typed and untyped submits and runs all go through it; the job's key is on the
    /// handle ([`JobHandle::store_key`]) and the run's [`Receipt`].
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = runcomfy::store::open("jobs.db").await?;
    /// let client = runcomfy::Client::builder().store(store.clone()).build()?;
    /// let handle = client
    ///     .submit_json("acme/echo/text-to-image", &serde_json::json!({"prompt": "a cat"}))
    ///     .await?;
    /// // The request id is in the store now: a program that dies here loses nothing.
    /// let key = handle.store_key().expect("submitted through a store");
    /// let record = store.job(key).await?.expect("recorded");
    /// assert_eq!(record.request_id.as_deref(), Some(handle.request_id()));
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "store")]
    pub fn store(mut self, store: runcomfy_store::SharedStore) -> Self {
        self.recorder = Recorder::new(Some(store));
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
        Ok(Client::from_parts(
            Api::new(transport, self.retry),
            self.poll,
            self.recorder,
        ))
    }
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
        self.api().base_url()
    }

    /// The poll policy waits use.
    pub fn poll_policy(&self) -> &PollPolicy {
        self.poll()
    }

    /// The job store every submit is recorded in, when one was set
    /// ([`ClientBuilder::store`]).
    #[cfg(feature = "store")]
    pub fn store(&self) -> Option<&runcomfy_store::SharedStore> {
        self.recorder().store()
    }

    /// The retry policy single requests use.
    pub fn retry_policy(&self) -> &RetryPolicy {
        self.api().retry_policy()
    }

    /// A copy of this client (sharing its connection pool) with another poll policy.
    pub fn with_poll_policy(&self, poll: PollPolicy) -> Client {
        Client::from_parts(self.api().clone(), poll, self.recorder().clone())
    }

    /// A copy of this client (sharing its connection pool) with another retry policy.
    pub fn with_retry_policy(&self, retry: RetryPolicy) -> Client {
        Client::from_parts(
            self.api().with_retry(retry),
            self.poll().clone(),
            self.recorder().clone(),
        )
    }

    /// The typed endpoint of model `M` (what the generated methods return).
    pub fn endpoint<M: Model>(&self) -> Endpoint<M> {
        Endpoint::new(self)
    }

    // ----- typed, generic -----

    /// Validates `input`, then submits it to model `M`. See [`Client::submit_json`] for the
    /// retry rule.
    pub fn submit<M: Model>(
        &self,
        input: &M::Input,
    ) -> impl Future<Output = Result<JobHandle<M>, Error>> + Send + 'static {
        self.endpoint::<M>().submit(input)
    }

    /// Submits and waits; returns the typed output. See [`Endpoint::run`].
    pub fn run<M: Model>(&self, input: &M::Input) -> Run<M::Output> {
        self.endpoint::<M>().run(input)
    }

    /// Submits and waits, calling `on_progress` with [`Progress::Submitted`] first, then at
    /// every change of state.
    pub fn run_with_progress<M: Model>(
        &self,
        input: &M::Input,
        on_progress: impl FnMut(&Progress) + Send,
    ) -> impl Future<Output = Result<M::Output, Error>> + Send {
        self.endpoint::<M>().run_with_progress(input, on_progress)
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
        let body = encode_json(model_id, input)?;
        let (id, key) = self.submit_body(model_id, &body).await?;
        Ok(RequestHandle::new(id, Some(model_id.to_owned())).with_key(key))
    }

    /// Submits and waits; returns the successful result (with its raw `output`). The [`Run`]
    /// tells the request id once submitted.
    pub fn run_json(&self, model_id: &str, input: &Value) -> Run<JobResult> {
        let client = self.clone();
        let body = encode_json(model_id, input);
        let model = model_id.to_owned();
        let receipt = Receipt::default();
        let seen = receipt.clone();
        let future = async move {
            let (_, result) = submit_and_wait(&client, &model, &body?, &seen, &mut |_| {}).await?;
            Ok(result)
        };
        Run::new(receipt, future)
    }

    /// Submits and waits, reporting progress as [`Client::run_with_progress`] does.
    pub async fn run_json_with_progress(
        &self,
        model_id: &str,
        input: &Value,
        mut on_progress: impl FnMut(&Progress) + Send,
    ) -> Result<JobResult, Error> {
        let future = async {
            let body = encode_json(model_id, input)?;
            let receipt = Receipt::default();
            let (_, result) =
                submit_and_wait(self, model_id, &body, &receipt, &mut on_progress).await?;
            Ok(result)
        };
        future.await
    }

    /// `GET /v1/requests/{request_id}/status`.
    pub async fn status(&self, request_id: &str) -> Result<StatusInfo, Error> {
        self.api().status(&RequestId::new(request_id)?).await
    }

    /// `GET /v1/requests/{request_id}/result`, with `include_cost=true` when asked.
    /// While the job runs, the answer holds only its state.
    pub async fn result(&self, request_id: &str, include_cost: bool) -> Result<JobResult, Error> {
        self.api()
            .result(&RequestId::new(request_id)?, include_cost)
            .await
    }

    /// `POST /v1/requests/{request_id}/cancel`; returns the outcome (`cancelled` or
    /// `not_cancellable`). Retried like a GET.
    pub async fn cancel(&self, request_id: &str) -> Result<Cancellation, Error> {
        self.api().cancel(&RequestId::new(request_id)?).await
    }

    /// `GET /v1/models`: one page of the catalog.
    pub async fn list_models(&self, query: &ListModels) -> Result<ModelList, Error> {
        self.api().list_models(query).await
    }

    /// `GET /v1/models/{model_id}`: one catalog entry, with its price and input schema.
    pub async fn get_model(&self, model_id: &str) -> Result<CatalogModel, Error> {
        self.api().get_model(model_id).await
    }
}

fn encode_json(model_id: &str, input: &Value) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(input).map_err(|source| Error::Encode {
        model_id: model_id.to_owned(),
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
