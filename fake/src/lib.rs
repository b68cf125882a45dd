//! A fake RunComfy Model API on 127.0.0.1, for testing code that uses the `runcomfy` client.
//!
//! Real HTTP on an ephemeral port: every endpoint of the API, request bodies validated
//! against the registered models' input schemas, scripted job lifecycles
//! ([`Lifecycle`]), fault injection ([`Fault`]), a record of every request received
//! ([`RecordedRequest`]) and a clock that can be driven by hand ([`FakeServer::advance`]).
//!
//! ```
//! use runcomfy_fake::{FakeServer, Lifecycle};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = FakeServer::builder()
//!     .model("acme/echo/text-to-image", r#"{"type":"object","required":["prompt"],
//!         "properties":{"prompt":{"type":"string"}}}"#)
//!     .lifecycle(Lifecycle::new().queue_positions(&[2, 1]).then_succeed())
//!     .start()
//!     .await?;
//! let client = server.client()?;
//! let result = client
//!     .run_json("acme/echo/text-to-image", &serde_json::json!({"prompt": "a cat"}))
//!     .await?;
//! assert!(result.output.is_some());
//! assert_eq!(server.submits(), 1);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod lifecycle;

use std::collections::{BTreeMap, HashMap};

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::task::{AbortHandle, JoinSet};

pub use lifecycle::{Ending, Lifecycle, Span, Stage};
use lifecycle::{Now, Progression};

use runcomfy::{Client, ClientBuilder, PollPolicy, RetryPolicy};

/// The token the fake server expects unless told otherwise.
pub const FAKE_TOKEN: &str = "fake-runcomfy-token";

/// Why the fake server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FakeError {
    /// The listener could not be bound.
    #[error("could not bind the fake server: {0}")]
    Bind(#[source] std::io::Error),
    /// A model's input schema is not JSON, or not a usable JSON Schema.
    #[error("bad input schema for {model_id}: {message}")]
    Schema {
        /// The model.
        model_id: String,
        /// What is wrong.
        message: String,
    },
    /// A model id that the API would not accept.
    #[error("invalid model id {0:?}")]
    ModelId(String),
}

/// An endpoint of the API, to aim faults and count requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// `POST /v1/models/{model_id}`
    Submit,
    /// `GET /v1/requests/{id}/status`
    Status,
    /// `GET /v1/requests/{id}/result`
    Result,
    /// `POST /v1/requests/{id}/cancel`
    Cancel,
    /// `GET /v1/models`
    ListModels,
    /// `GET /v1/models/{model_id}`
    GetModel,
    /// Anything else.
    Other,
    /// Matches every route (for [`FakeServer::inject`] only).
    Any,
}

impl Route {
    fn matches(self, other: Route) -> bool {
        self == Route::Any || self == other
    }
}

/// A fault the fake server plays instead of (or before) its normal answer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer this status, body and optional `Retry-After`, without doing anything.
    Status {
        /// The HTTP status.
        status: u16,
        /// The `Retry-After` header, as sent (seconds or an HTTP date).
        retry_after: Option<String>,
        /// The body.
        body: String,
    },
    /// Answer a redirect (301, 302, 307, 308) to `location`, without doing anything.
    Redirect {
        /// The HTTP status.
        status: u16,
        /// The `Location` header.
        location: String,
    },
    /// Do the work at once (a submit creates its job), but answer only after this long.
    Delay(Duration),
    /// Read the request, do the work (a submit creates its paid job), then close the
    /// connection without answering.
    CloseAfterRead,
    /// Do the work (a submit creates its job), then answer 200 with a broken JSON body.
    MalformedJson,
}

impl Fault {
    /// 429 with an optional `Retry-After`.
    pub fn rate_limited(retry_after: Option<&str>) -> Fault {
        Fault::Status {
            status: 429,
            retry_after: retry_after.map(str::to_owned),
            body: json!({"message": "too many requests"}).to_string(),
        }
    }

    /// A bare HTTP status (500, 503, ...) with a small JSON body.
    pub fn status(status: u16) -> Fault {
        Fault::Status {
            status,
            retry_after: None,
            body: json!({"message": format!("fake http {status}")}).to_string(),
        }
    }

    /// An API error body with `error_code`, sent with `http_status` (200 for the
    /// error-body-with-success case).
    pub fn api_error(http_status: u16, error_code: i64, message: &str) -> Fault {
        Fault::Status {
            status: http_status,
            retry_after: None,
            body: json!({"error_code": error_code, "error_message": message}).to_string(),
        }
    }
}

/// One request the fake server received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, undecoded.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The headers, names in lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The endpoint it was routed to.
    pub route: Route,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, when it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// What the fake server knows of one job.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobSnapshot {
    /// The job.
    pub request_id: String,
    /// Its model.
    pub model_id: String,
    /// The submitted body.
    pub input: Value,
    /// `/status` and `/result` requests made on it.
    pub polls: u32,
    /// Cancel requests made on it.
    pub cancels: u32,
}

struct FakeModel {
    id: String,
    schema: Value,
    validator: Option<jsonschema::Validator>,
    output: Option<Value>,
    price_usd: f64,
}

struct Job {
    model_id: String,
    input: Value,
    progression: Progression,
    created_at: SystemTime,
    finished_at: Option<SystemTime>,
    polls: u32,
    cancels: u32,
}

enum Clock {
    Tokio(tokio::time::Instant),
    Manual(Duration),
}

struct State {
    requests: Vec<RecordedRequest>,
    faults: Vec<(Route, Fault, usize)>,
    jobs: HashMap<String, Job>,
    next_lifecycles: Vec<Lifecycle>,
    lifecycle: Lifecycle,
    clock: Clock,
    next_id: u64,
}

struct Shared {
    models: BTreeMap<String, FakeModel>,
    token: Option<String>,
    accept_unknown_models: bool,
    base_url: String,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not turn every later request into a panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn now(&self) -> Duration {
        match &self.clock {
            Clock::Tokio(start) => start.elapsed(),
            Clock::Manual(t) => *t,
        }
    }
}

/// Configures a [`FakeServer`].
#[must_use]
pub struct FakeServerBuilder {
    models: Vec<(String, String, Option<Value>)>,
    token: Option<String>,
    accept_unknown_models: bool,
    lifecycle: Lifecycle,
    manual_clock: bool,
    addr: SocketAddr,
}

impl Default for FakeServerBuilder {
    fn default() -> Self {
        FakeServerBuilder {
            models: Vec::new(),
            token: Some(FAKE_TOKEN.to_owned()),
            accept_unknown_models: false,
            lifecycle: Lifecycle::default(),
            manual_clock: false,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        }
    }
}

impl FakeServerBuilder {
    /// Registers a model with its input schema (JSON text); submits are validated against it.
    pub fn model(mut self, id: &str, input_schema: &str) -> Self {
        self.models
            .push((id.to_owned(), input_schema.to_owned(), None));
        self
    }

    /// Registers a model whose successful jobs answer `output`.
    pub fn model_with_output(mut self, id: &str, input_schema: &str, output: Value) -> Self {
        self.models
            .push((id.to_owned(), input_schema.to_owned(), Some(output)));
        self
    }

    /// Registers every generated model (`runcomfy::models::SCHEMAS`), with a sample output
    /// made from each output schema.
    pub fn all_models(mut self) -> Self {
        for text in runcomfy::models::SCHEMAS {
            let output = text
                .output
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .map(|schema| sample_output(text.id, &schema));
            self.models
                .push((text.id.to_owned(), text.input.to_owned(), output));
        }
        self
    }

    /// Accepts any model id with any body (no schema check).
    pub fn accept_unknown_models(mut self) -> Self {
        self.accept_unknown_models = true;
        self
    }

    /// The bearer token to require (default [`FAKE_TOKEN`]).
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    /// Accepts any bearer token.
    pub fn any_token(mut self) -> Self {
        self.token = None;
        self
    }

    /// The lifecycle of new jobs (default: [`Lifecycle::default`]).
    pub fn lifecycle(mut self, lifecycle: Lifecycle) -> Self {
        self.lifecycle = lifecycle;
        self
    }

    /// Drives `Span::Time` stages by [`FakeServer::advance`] only, instead of tokio's clock
    /// (which a paused test runtime also controls).
    pub fn manual_clock(mut self) -> Self {
        self.manual_clock = true;
        self
    }

    /// Listens on this address instead of an ephemeral port of 127.0.0.1.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Compiles the schemas, binds, and starts serving on the current tokio runtime.
    pub async fn start(self) -> Result<FakeServer, FakeError> {
        let mut models = BTreeMap::new();
        for (id, schema_text, output) in self.models {
            if runcomfy::check_model_id(&id).is_err() {
                return Err(FakeError::ModelId(id));
            }
            let schema: Value =
                serde_json::from_str(&schema_text).map_err(|e| FakeError::Schema {
                    model_id: id.clone(),
                    message: e.to_string(),
                })?;
            let normalized = normalize_schema(schema.clone());
            let validator = jsonschema::options()
                .should_validate_formats(false)
                .build(&normalized)
                .map_err(|e| FakeError::Schema {
                    model_id: id.clone(),
                    message: e.to_string(),
                })?;
            models.insert(
                id.clone(),
                FakeModel {
                    id,
                    schema,
                    validator: Some(validator),
                    output,
                    price_usd: 0.1,
                },
            );
        }
        let listener = TcpListener::bind(self.addr)
            .await
            .map_err(FakeError::Bind)?;
        let addr = listener.local_addr().map_err(FakeError::Bind)?;
        let base_url = format!("http://{addr}");
        let shared = Arc::new(Shared {
            models,
            token: self.token,
            accept_unknown_models: self.accept_unknown_models,
            base_url: base_url.clone(),
            state: Mutex::new(State {
                requests: Vec::new(),
                faults: Vec::new(),
                jobs: HashMap::new(),
                next_lifecycles: Vec::new(),
                lifecycle: self.lifecycle,
                clock: if self.manual_clock {
                    Clock::Manual(Duration::ZERO)
                } else {
                    Clock::Tokio(tokio::time::Instant::now())
                },
                next_id: 1,
            }),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone())).abort_handle();
        Ok(FakeServer {
            addr,
            base_url,
            shared,
            task,
        })
    }
}

/// A running fake server; it stops when dropped.
pub struct FakeServer {
    addr: SocketAddr,
    base_url: String,
    shared: Arc<Shared>,
    task: AbortHandle,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("base_url", &self.base_url)
            .field("models", &self.shared.models.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeServer {
    /// A builder.
    pub fn builder() -> FakeServerBuilder {
        FakeServerBuilder::default()
    }

    /// Starts a server that knows every generated model.
    pub async fn start_with_all_models() -> Result<FakeServer, FakeError> {
        FakeServer::builder().all_models().start().await
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The token the server requires, if any.
    pub fn token(&self) -> Option<&str> {
        self.shared.token.as_deref()
    }

    /// A client builder aimed at this server, ignoring the environment, with quick policies
    /// for tests (polls every few milliseconds, retries within a 5 s budget).
    pub fn client_builder(&self) -> ClientBuilder {
        Client::builder()
            .ignore_env()
            .base_url(self.base_url.clone())
            .token(self.shared.token.as_deref().unwrap_or(FAKE_TOKEN))
            .connect_timeout(Duration::from_secs(2))
            .request_timeout(Duration::from_secs(5))
            .poll_policy(fast_poll_policy())
            .retry_policy(fast_retry_policy())
    }

    /// A client from [`client_builder`](Self::client_builder).
    pub fn client(&self) -> Result<Client, runcomfy::Error> {
        self.client_builder().build()
    }

    /// Plays `fault` on the next request to `route`.
    pub fn inject(&self, route: Route, fault: Fault) {
        self.inject_times(route, fault, 1);
    }

    /// Plays `fault` on the next `times` requests to `route`.
    pub fn inject_times(&self, route: Route, fault: Fault, times: usize) {
        if times > 0 {
            self.shared.lock().faults.push((route, fault, times));
        }
    }

    /// Forgets faults not played yet.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Sets the lifecycle of jobs submitted from now on.
    pub fn set_lifecycle(&self, lifecycle: Lifecycle) {
        self.shared.lock().lifecycle = lifecycle;
    }

    /// Uses `lifecycle` for the next submitted job only (queued: calls add up, in order).
    pub fn script_next(&self, lifecycle: Lifecycle) {
        self.shared.lock().next_lifecycles.push(lifecycle);
    }

    /// Creates a job directly, without a submit request; returns its request id.
    pub fn create_job(&self, model_id: &str, input: Value, lifecycle: Lifecycle) -> String {
        let mut st = self.shared.lock();
        new_job(&mut st, model_id, input, Some(lifecycle))
    }

    /// Moves the manual clock forward (see [`FakeServerBuilder::manual_clock`]).
    pub fn advance(&self, by: Duration) {
        let mut st = self.shared.lock();
        if let Clock::Manual(t) = &mut st.clock {
            *t += by;
        }
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// How many requests reached `route` (`Route::Any` counts all).
    pub fn count(&self, route: Route) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| route.matches(r.route))
            .count()
    }

    /// How many submit requests reached the server, whatever their fate.
    pub fn submits(&self) -> usize {
        self.count(Route::Submit)
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// How many jobs exist (each a paid job on the real API).
    pub fn job_count(&self) -> usize {
        self.shared.lock().jobs.len()
    }

    /// What the server knows of a job.
    pub fn job(&self, request_id: &str) -> Option<JobSnapshot> {
        let st = self.shared.lock();
        st.jobs.get(request_id).map(|j| JobSnapshot {
            request_id: request_id.to_owned(),
            model_id: j.model_id.clone(),
            input: j.input.clone(),
            polls: j.polls,
            cancels: j.cancels,
        })
    }
}

/// Polls every 2 to 20 ms with a 20 s deadline: for tests against the fake server.
pub fn fast_poll_policy() -> PollPolicy {
    PollPolicy::default()
        .delays(Duration::from_millis(2), 1.5, Duration::from_millis(20))
        .deadline(Some(Duration::from_secs(20)))
}

/// Retries after 1 to 20 ms, `Retry-After` capped at 200 ms, within 5 s.
pub fn fast_retry_policy() -> RetryPolicy {
    RetryPolicy::default()
        .delays(Duration::from_millis(1), Duration::from_millis(20))
        .max_retry_after(Duration::from_millis(200))
        .budget(Duration::from_secs(5))
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Dropping the JoinSet (when this task is aborted) aborts every connection task.
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "fake server accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let shared = shared.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { handle(shared, req).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Answer = Response<Full<Bytes>>;

/// The error that makes hyper drop the connection without answering.
#[derive(Debug)]
struct Hangup;

impl std::fmt::Display for Hangup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fake server hangs up")
    }
}

impl std::error::Error for Hangup {}

fn route_of(method: &hyper::Method, path: &str) -> Route {
    let get = method == hyper::Method::GET;
    let post = method == hyper::Method::POST;
    if path == "/v1/models" {
        return if get { Route::ListModels } else { Route::Other };
    }
    if let Some(_id) = path.strip_prefix("/v1/models/") {
        return match (get, post) {
            (true, _) => Route::GetModel,
            (_, true) => Route::Submit,
            _ => Route::Other,
        };
    }
    if let Some(rest) = path.strip_prefix("/v1/requests/") {
        let mut parts = rest.splitn(2, '/');
        let _id = parts.next();
        return match (parts.next(), get, post) {
            (Some("status"), true, _) => Route::Status,
            (Some("result"), true, _) => Route::Result,
            (Some("cancel"), _, true) => Route::Cancel,
            _ => Route::Other,
        };
    }
    Route::Other
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Answer, Hangup> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => return Err(Hangup),
    };
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let route = route_of(&parts.method, &path);
    let recorded = RecordedRequest {
        method: parts.method.as_str().to_owned(),
        path: path.clone(),
        query: query.clone(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        route,
    };
    let fault = {
        let mut st = shared.lock();
        st.requests.push(recorded.clone());
        take_fault(&mut st, route)
    };
    match fault {
        Some(Fault::Status {
            status,
            retry_after,
            body,
        }) => {
            let mut answer = json_answer(status, body);
            if let Some(ra) = retry_after {
                if let Ok(v) = hyper::header::HeaderValue::from_str(&ra) {
                    answer.headers_mut().insert(hyper::header::RETRY_AFTER, v);
                }
            }
            Ok(answer)
        }
        Some(Fault::Redirect { status, location }) => {
            let mut answer = json_answer(status, String::new());
            if let Ok(v) = hyper::header::HeaderValue::from_str(&location) {
                answer.headers_mut().insert(hyper::header::LOCATION, v);
            }
            Ok(answer)
        }
        Some(Fault::Delay(d)) => {
            // The work is done at once (a submit creates its job even if the client gives up).
            let answer = serve(&shared, &recorded);
            tokio::time::sleep(d).await;
            Ok(answer)
        }
        Some(Fault::CloseAfterRead) => {
            let _ = serve(&shared, &recorded);
            Err(Hangup)
        }
        Some(Fault::MalformedJson) => {
            let _ = serve(&shared, &recorded);
            Ok(json_answer(
                200,
                "{\"request_id\": \"oops\", \"status\": ".to_owned(),
            ))
        }
        None => Ok(serve(&shared, &recorded)),
    }
}

fn take_fault(st: &mut State, route: Route) -> Option<Fault> {
    let i = st
        .faults
        .iter()
        .position(|(r, _, n)| r.matches(route) && *n > 0)?;
    let (_, fault, n) = &mut st.faults[i];
    let fault = fault.clone();
    *n -= 1;
    if *n == 0 {
        st.faults.remove(i);
    }
    Some(fault)
}

fn json_answer(status: u16, body: String) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(body)));
    *answer.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    answer.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    answer
}

fn api_error(status: u16, code: i64, message: &str) -> Answer {
    json_answer(
        status,
        json!({"error_code": code, "error_message": message}).to_string(),
    )
}

/// The normal answer to a request.
fn serve(shared: &Shared, req: &RecordedRequest) -> Answer {
    if let Some(token) = &shared.token {
        let expected = format!("Bearer {token}");
        if req.header("authorization") != Some(expected.as_str()) {
            return api_error(400, 400004, "missing, expired or revoked token");
        }
    }
    let query = parse_query(req.query.as_deref().unwrap_or(""));
    match req.route {
        Route::Submit => submit(shared, req),
        Route::GetModel => {
            let id = req.path.trim_start_matches("/v1/models/");
            match shared.models.get(id) {
                Some(m) => json_answer(200, catalog_entry(m, true).to_string()),
                None => api_error(400, 400001, &format!("unknown model_id {id}")),
            }
        }
        Route::ListModels => list_models(shared, &query),
        Route::Status | Route::Result | Route::Cancel => {
            let rest = req.path.trim_start_matches("/v1/requests/");
            let id = rest.split('/').next().unwrap_or_default();
            let mut st = shared.lock();
            let now = st.now();
            let Some(job) = st.jobs.get_mut(id) else {
                return api_error(404, 404001, &format!("request {id} not found"));
            };
            match req.route {
                Route::Status => status_answer(shared, id, job, now),
                Route::Result => {
                    let cost = query.get("include_cost").map(String::as_str) == Some("true");
                    result_answer(shared, id, job, now, cost)
                }
                _ => cancel_answer(id, job, now),
            }
        }
        Route::Other | Route::Any => json_answer(
            404,
            json!({"message": format!("no route for {} {}", req.method, req.path)}).to_string(),
        ),
    }
}

fn submit(shared: &Shared, req: &RecordedRequest) -> Answer {
    let model_id = req.path.trim_start_matches("/v1/models/");
    if runcomfy::check_model_id(model_id).is_err() {
        return api_error(400, 400001, &format!("malformed model_id {model_id}"));
    }
    let input: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => {
            return json_answer(
                400,
                json!({"message": "the body is not JSON", "detail": e.to_string()}).to_string(),
            )
        }
    };
    match shared.models.get(model_id) {
        Some(model) => {
            if let Some(validator) = &model.validator {
                let errors: Vec<Value> = validator
                    .iter_errors(&input)
                    .take(20)
                    .map(|e| json!({"loc": e.instance_path().as_str(), "msg": e.to_string()}))
                    .collect();
                if !errors.is_empty() {
                    return json_answer(
                        422,
                        json!({"message": "input does not match the model's schema", "detail": errors})
                            .to_string(),
                    );
                }
            }
        }
        None if shared.accept_unknown_models => {}
        None => return api_error(400, 400001, &format!("unknown model_id {model_id}")),
    }
    let mut st = shared.lock();
    let id = new_job(&mut st, model_id, input, None);
    let base = &shared.base_url;
    json_answer(
        200,
        json!({
            "request_id": id,
            "status_url": format!("{base}/v1/requests/{id}/status"),
            "result_url": format!("{base}/v1/requests/{id}/result"),
            "cancel_url": format!("{base}/v1/requests/{id}/cancel"),
        })
        .to_string(),
    )
}

fn new_job(st: &mut State, model_id: &str, input: Value, lifecycle: Option<Lifecycle>) -> String {
    let lifecycle = lifecycle.unwrap_or_else(|| {
        if st.next_lifecycles.is_empty() {
            st.lifecycle.clone()
        } else {
            st.next_lifecycles.remove(0)
        }
    });
    let n = st.next_id;
    st.next_id += 1;
    let id = format!("fake-{n:04}-{:08x}", rand::random::<u32>());
    let now = st.now();
    st.jobs.insert(
        id.clone(),
        Job {
            model_id: model_id.to_owned(),
            input,
            progression: Progression::new(lifecycle, now),
            created_at: SystemTime::now(),
            finished_at: None,
            polls: 0,
            cancels: 0,
        },
    );
    id
}

fn status_answer(shared: &Shared, id: &str, job: &mut Job, now: Duration) -> Answer {
    let current = job.progression.current(now);
    job.progression.polled();
    job.polls += 1;
    let base = &shared.base_url;
    let mut body = json!({
        "request_id": id,
        "status_url": format!("{base}/v1/requests/{id}/status"),
        "result_url": format!("{base}/v1/requests/{id}/result"),
    });
    match current {
        Now::Stage(stage) => {
            body["status"] = Value::from(stage.state.clone());
            if stage.state == "in_queue" {
                if let Some(p) = stage.queue_position {
                    body["queue_position"] = Value::from(p);
                }
            }
        }
        Now::Ended(Ending::Cancel) => body["status"] = Value::from("cancelled"),
        Now::Ended(_) => body["status"] = Value::from("completed"),
    }
    json_answer(200, body.to_string())
}

fn result_answer(shared: &Shared, id: &str, job: &mut Job, now: Duration, cost: bool) -> Answer {
    let current = job.progression.current(now);
    job.progression.polled();
    job.polls += 1;
    let mut body = json!({"request_id": id});
    match current {
        Now::Stage(stage) => {
            body["status"] = Value::from(stage.state);
            return json_answer(200, body.to_string());
        }
        Now::Ended(Ending::Cancel) => {
            body["status"] = Value::from("cancelled");
            return json_answer(200, body.to_string());
        }
        Now::Ended(Ending::Fail(error)) => {
            body["status"] = Value::from("failed");
            body["error"] = error;
        }
        Now::Ended(Ending::Succeed(output)) => {
            let model = shared.models.get(&job.model_id);
            let output = output
                .or_else(|| model.and_then(|m| m.output.clone()))
                .unwrap_or_else(|| sample_output(&job.model_id, &Value::Null));
            body["status"] = Value::from("succeeded");
            body["output"] = output;
            if cost {
                body["cost"] = Value::from(model.map_or(0.1, |m| m.price_usd));
            }
        }
    }
    let finished = *job.finished_at.get_or_insert_with(SystemTime::now);
    body["model_id"] = Value::from(job.model_id.clone());
    body["created_at"] = Value::from(rfc3339(job.created_at));
    body["finished_at"] = Value::from(rfc3339(finished));
    json_answer(200, body.to_string())
}

fn cancel_answer(id: &str, job: &mut Job, now: Duration) -> Answer {
    job.cancels += 1;
    let (status, outcome) = match job.progression.current(now) {
        Now::Stage(stage) if stage.state == "in_queue" => {
            job.progression.cancel();
            ("cancelled".to_owned(), "cancelled")
        }
        Now::Stage(stage) => (stage.state, "not_cancellable"),
        Now::Ended(Ending::Cancel) => ("cancelled".to_owned(), "cancelled"),
        Now::Ended(_) => ("completed".to_owned(), "not_cancellable"),
    };
    json_answer(
        202,
        json!({"request_id": id, "status": status, "outcome": outcome}).to_string(),
    )
}

fn list_models(shared: &Shared, query: &HashMap<String, String>) -> Answer {
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 20,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            return json_answer(
                422,
                json!({"message": "limit must be between 1 and 100"}).to_string(),
            )
        }
    };
    let offset = query
        .get("offset")
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0);
    let include_schema = query.get("include_schema").map(String::as_str) == Some("true");
    let search = query.get("search").map(|s| s.to_lowercase());
    let matching: Vec<&FakeModel> = shared
        .models
        .values()
        .filter(|m| {
            search
                .as_ref()
                .is_none_or(|s| m.id.to_lowercase().contains(s))
        })
        .filter(|m| {
            query
                .get("category")
                .is_none_or(|c| categories_of(&m.id).iter().any(|x| x == c))
        })
        .filter(|_| query.get("kind").is_none_or(|k| k == "model"))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|m| catalog_entry(m, include_schema))
        .collect();
    json_answer(
        200,
        json!({"models": page, "total": matching.len()}).to_string(),
    )
}

fn categories_of(id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (word, cat) in [
        ("video", "video"),
        ("image", "image"),
        ("audio", "audio"),
        ("edit", "image"),
    ] {
        if id.contains(word) && !out.iter().any(|c| c == cat) {
            out.push(cat.to_owned());
        }
    }
    out
}

fn catalog_entry(m: &FakeModel, include_schema: bool) -> Value {
    let display = m.id.rsplit('/').next().unwrap_or(&m.id).replace('-', " ");
    let mut entry = json!({
        "model_id": m.id,
        "display_name": display,
        "categories": categories_of(&m.id),
        "kind": "model",
        "base_price_usd": m.price_usd,
        "price_unit": if m.id.contains("video") { "second" } else { "output" },
        "pricing_note": "fake price",
    });
    if include_schema {
        entry["input_schema"] = m.schema.clone();
    }
    entry
}

fn parse_query(q: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The RunComfy schema dialect, made acceptable to a standard validator: `float` (any case)
/// becomes `number`, other type names are lowercased.
fn normalize_schema(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let v = if k == "type" {
                    normalize_type(v)
                } else {
                    normalize_schema(v)
                };
                out.insert(k, v);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(normalize_schema).collect()),
        other => other,
    }
}

fn normalize_type(v: Value) -> Value {
    match v {
        Value::String(s) => {
            let lower = s.to_ascii_lowercase();
            Value::from(match lower.as_str() {
                "float" | "double" => "number".to_owned(),
                "int" => "integer".to_owned(),
                _ => lower,
            })
        }
        Value::Array(items) => Value::Array(items.into_iter().map(normalize_type).collect()),
        other => normalize_schema(other),
    }
}

/// A plausible output for a model: one CDN URL under the key its schema (or id) suggests.
fn sample_output(model_id: &str, schema: &Value) -> Value {
    let props = schema
        .pointer("/properties/output/properties")
        .or_else(|| schema.get("properties"))
        .and_then(Value::as_object);
    let kind = ["video", "audio", "image"]
        .into_iter()
        .find(|k| model_id.contains(k))
        .unwrap_or(if model_id.contains("edit") {
            "image"
        } else {
            "video"
        });
    let ext = match kind {
        "video" => "mp4",
        "audio" => "mp3",
        _ => "png",
    };
    let url = format!(
        "https://playgrounds-storage-public.runcomfy.net/fake/{}.{ext}",
        model_id.replace('/', "-")
    );
    let key = props
        .and_then(|p| {
            p.keys()
                .find(|k| k.as_str() == kind)
                .or_else(|| p.keys().find(|k| k.starts_with(kind)))
                .or_else(|| p.keys().next())
        })
        .cloned()
        .unwrap_or_else(|| kind.to_owned());
    let is_list = props
        .and_then(|p| p.get(&key))
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        == Some("array");
    let value = if is_list { json!([url]) } else { json!(url) };
    json!({ key: value })
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn dialect_is_normalized() {
        let s = normalize_schema(
            json!({"properties": {"x": {"type": "Float"}, "y": {"type": ["INTEGER", "null"]}}}),
        );
        assert_eq!(s["properties"]["x"]["type"], "number");
        assert_eq!(s["properties"]["y"]["type"], json!(["integer", "null"]));
    }

    #[test]
    fn sample_outputs() {
        let schema = json!({"properties": {"image": {"type": "string"}, "video": {"type": "string"}, "videos": {"type": "array"}}});
        let out = sample_output("a/b/image-to-video", &schema);
        assert!(out["video"].as_str().unwrap().ends_with(".mp4"));
        let out = sample_output(
            "a/b/text-to-audio",
            &json!({"properties": {"audios": {"type": "array"}}}),
        );
        assert!(out["audios"][0].as_str().unwrap().ends_with(".mp3"));
        assert!(sample_output("a/b", &Value::Null).get("video").is_some());
    }

    #[test]
    fn routes() {
        use hyper::Method;
        assert_eq!(route_of(&Method::POST, "/v1/models/a/b"), Route::Submit);
        assert_eq!(route_of(&Method::GET, "/v1/models/a/b"), Route::GetModel);
        assert_eq!(route_of(&Method::GET, "/v1/models"), Route::ListModels);
        assert_eq!(
            route_of(&Method::GET, "/v1/requests/x/status"),
            Route::Status
        );
        assert_eq!(
            route_of(&Method::GET, "/v1/requests/x/result"),
            Route::Result
        );
        assert_eq!(
            route_of(&Method::POST, "/v1/requests/x/cancel"),
            Route::Cancel
        );
        assert_eq!(
            route_of(&Method::GET, "/v1/requests/x/cancel"),
            Route::Other
        );
    }
}
