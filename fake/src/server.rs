//! [`FakeServer`]: the running server's shared state and the handle tests drive it with.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

use runcomfy::{Client, ClientBuilder};

use crate::builder::FakeServerBuilder;
use crate::fault::{Fault, RecordedRequest, Route};
use crate::lifecycle::{Lifecycle, Progression};
use crate::models::{Model, ModelSpec};
use crate::stats::{canonical, InputCount, JobRecord, Stats};
use crate::{fast_poll_policy, fast_retry_policy, FakeError, FAKE_TOKEN};

/// Where sample outputs point when the server does not serve them.
pub(crate) const CDN_BASE: &str = "https://playgrounds-storage-public.runcomfy.net/fake";

/// What the builder decided, fixed for the server's life.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) token: Option<String>,
    pub(crate) accept_unknown_models: bool,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) manual_clock: bool,
    pub(crate) record_limit: usize,
    pub(crate) outputs: Outputs,
}

/// Where a job's output URLs point and what is served there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outputs {
    /// A CDN host's URLs (nothing served here): the library's default.
    Cdn,
    /// `/_fake/files/...` here, each file this many deterministic bytes.
    Bytes(usize),
    /// `/_fake/files/...` here, each file real media a browser plays ([`crate::media`]).
    Media,
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

pub(crate) struct Job {
    pub(crate) model_id: String,
    pub(crate) input: Value,
    pub(crate) progression: Progression,
    pub(crate) created_at: SystemTime,
    pub(crate) finished_at: Option<SystemTime>,
    pub(crate) polls: u32,
    pub(crate) cancels: u32,
}

enum Clock {
    Tokio(tokio::time::Instant),
    Manual(Duration),
}

/// Jobs of one (model, input body) pair.
struct InputEntry {
    input: Value,
    request_ids: Vec<String>,
}

pub(crate) struct State {
    pub(crate) models: BTreeMap<String, Arc<Model>>,
    requests: VecDeque<RecordedRequest>,
    counts: HashMap<Route, usize>,
    faults: Vec<(Route, Fault, usize)>,
    pub(crate) jobs: HashMap<String, Job>,
    job_order: Vec<String>,
    inputs: BTreeMap<(String, String), InputEntry>,
    next_lifecycles: VecDeque<Lifecycle>,
    lifecycle: Lifecycle,
    clock: Clock,
    next_id: u64,
}

pub(crate) struct Shared {
    pub(crate) settings: Settings,
    pub(crate) base_url: String,
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not turn every later request into a panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where sample output URLs point.
    pub(crate) fn output_base(&self, request_id: &str) -> String {
        match self.settings.outputs {
            Outputs::Cdn => CDN_BASE.to_owned(),
            Outputs::Bytes(_) | Outputs::Media => {
                format!("{}/_fake/files/{request_id}", self.base_url)
            }
        }
    }

    /// The bytes and media type of a served output file.
    pub(crate) fn output_file(
        &self,
        request_id: &str,
        name: &str,
    ) -> Option<(Vec<u8>, &'static str)> {
        match self.settings.outputs {
            Outputs::Cdn => None,
            Outputs::Bytes(size) => {
                let kind = match name.rsplit('.').next() {
                    Some("mp4") => "video/mp4",
                    Some("mp3") => "audio/mpeg",
                    Some("png") => "image/png",
                    _ => "application/octet-stream",
                };
                Some((crate::api::file_bytes(request_id, name, size), kind))
            }
            Outputs::Media => crate::media::output_file(request_id, name),
        }
    }
}

impl State {
    pub(crate) fn now(&self) -> Duration {
        match &self.clock {
            Clock::Tokio(start) => start.elapsed(),
            Clock::Manual(t) => *t,
        }
    }

    /// Records a request and takes the fault to play on it, if any.
    pub(crate) fn arrive(&mut self, req: RecordedRequest, limit: usize) -> Option<Fault> {
        let route = req.route;
        *self.counts.entry(route).or_default() += 1;
        if limit > 0 {
            if self.requests.len() >= limit {
                self.requests.pop_front();
            }
            self.requests.push_back(req);
        }
        let i = self
            .faults
            .iter()
            .position(|(r, _, n)| r.matches(route) && *n > 0)?;
        let (_, fault, n) = &mut self.faults[i];
        let fault = fault.clone();
        *n -= 1;
        if *n == 0 {
            self.faults.remove(i);
        }
        Some(fault)
    }

    pub(crate) fn add_fault(&mut self, route: Route, fault: Fault, times: usize) {
        if times > 0 {
            self.faults.push((route, fault, times));
        }
    }

    /// Creates a job (a paid job on the real API); returns its request id.
    pub(crate) fn new_job(
        &mut self,
        model_id: &str,
        input: Value,
        lifecycle: Option<Lifecycle>,
    ) -> String {
        let lifecycle = lifecycle
            .or_else(|| self.next_lifecycles.pop_front())
            .unwrap_or_else(|| self.lifecycle.clone());
        let n = self.next_id;
        self.next_id += 1;
        let id = format!("fake-{n:04}-{:08x}", rand::random::<u32>());
        let now = self.now();
        let entry = self
            .inputs
            .entry((model_id.to_owned(), canonical(&input)))
            .or_insert_with(|| InputEntry {
                input: input.clone(),
                request_ids: Vec::new(),
            });
        entry.request_ids.push(id.clone());
        self.job_order.push(id.clone());
        self.jobs.insert(
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

    pub(crate) fn stats(&self) -> Stats {
        let mut jobs_by_model = BTreeMap::new();
        for job in self.jobs.values() {
            *jobs_by_model.entry(job.model_id.clone()).or_default() += 1;
        }
        let mut requests_by_route = BTreeMap::new();
        for (route, n) in &self.counts {
            requests_by_route.insert(route.name().to_owned(), *n);
        }
        Stats {
            requests: self.counts.values().sum(),
            requests_by_route,
            jobs: self.jobs.len(),
            jobs_by_model,
            distinct_inputs: self.inputs.len(),
            repeated_inputs: self
                .inputs
                .values()
                .filter(|e| e.request_ids.len() > 1)
                .count(),
            max_jobs_per_input: self
                .inputs
                .values()
                .map(|e| e.request_ids.len())
                .max()
                .unwrap_or(0),
        }
    }

    pub(crate) fn inputs(&self) -> Vec<InputCount> {
        self.inputs
            .iter()
            .map(|((model_id, _), e)| InputCount {
                model_id: model_id.clone(),
                input: e.input.clone(),
                jobs: e.request_ids.len(),
                request_ids: e.request_ids.clone(),
            })
            .collect()
    }

    pub(crate) fn job_records(&self) -> Vec<JobRecord> {
        self.job_order
            .iter()
            .filter_map(|id| {
                self.jobs.get(id).map(|j| JobRecord {
                    request_id: id.clone(),
                    model_id: j.model_id.clone(),
                    input: j.input.clone(),
                })
            })
            .collect()
    }
}

/// A running fake server; it stops when dropped.
pub struct FakeServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: AbortHandle,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("base_url", &self.shared.base_url)
            .field("models", &self.model_ids())
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

    /// Starts a server that knows every model shipped in `runcomfy`.
    pub async fn start_with_all_models() -> Result<FakeServer, FakeError> {
        FakeServer::builder().all_models().start().await
    }

    pub(crate) async fn start(
        specs: Vec<ModelSpec>,
        settings: Settings,
        addr: SocketAddr,
    ) -> Result<FakeServer, FakeError> {
        let mut models = BTreeMap::new();
        for spec in specs {
            let model = Model::compile(spec)?;
            models.insert(model.id.clone(), Arc::new(model));
        }
        let listener = TcpListener::bind(addr).await.map_err(FakeError::Bind)?;
        let addr = listener.local_addr().map_err(FakeError::Bind)?;
        let state = State {
            models,
            requests: VecDeque::new(),
            counts: HashMap::new(),
            faults: Vec::new(),
            jobs: HashMap::new(),
            job_order: Vec::new(),
            inputs: BTreeMap::new(),
            next_lifecycles: VecDeque::new(),
            lifecycle: settings.lifecycle.clone(),
            clock: if settings.manual_clock {
                Clock::Manual(Duration::ZERO)
            } else {
                Clock::Tokio(tokio::time::Instant::now())
            },
            next_id: 1,
        };
        let shared = Arc::new(Shared {
            settings,
            base_url: format!("http://{addr}"),
            state: Mutex::new(state),
        });
        let task = tokio::spawn(crate::http::accept_loop(listener, shared.clone())).abort_handle();
        Ok(FakeServer { addr, shared, task })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The token the server requires, if any.
    pub fn token(&self) -> Option<&str> {
        self.shared.settings.token.as_deref()
    }

    /// A client builder aimed at this server, ignoring the environment, with quick policies
    /// for tests (polls every few milliseconds, retries within a 5 s budget).
    pub fn client_builder(&self) -> ClientBuilder {
        Client::builder()
            .ignore_env()
            .base_url(self.shared.base_url.clone())
            .token(self.shared.settings.token.as_deref().unwrap_or(FAKE_TOKEN))
            .connect_timeout(Duration::from_secs(2))
            .request_timeout(Duration::from_secs(5))
            .poll_policy(fast_poll_policy())
            .retry_policy(fast_retry_policy())
    }

    /// A client from [`client_builder`](Self::client_builder).
    pub fn client(&self) -> Result<Client, runcomfy::Error> {
        self.client_builder().build()
    }

    /// The registered model ids, sorted.
    pub fn model_ids(&self) -> Vec<String> {
        self.shared.lock().models.keys().cloned().collect()
    }

    /// Adds a model, or replaces the one with its id (a schema change in the catalog):
    /// submits from now on are checked against the new schema.
    pub fn set_model(&self, spec: ModelSpec) -> Result<(), FakeError> {
        let model = Model::compile(spec)?;
        self.shared
            .lock()
            .models
            .insert(model.id.clone(), Arc::new(model));
        Ok(())
    }

    /// Removes a model from the catalog (its existing jobs go on); `false` if unknown.
    pub fn remove_model(&self, model_id: &str) -> bool {
        self.shared.lock().models.remove(model_id).is_some()
    }

    /// Plays `fault` on the next request to `route`.
    pub fn inject(&self, route: Route, fault: Fault) {
        self.inject_times(route, fault, 1);
    }

    /// Plays `fault` on the next `times` requests to `route`.
    pub fn inject_times(&self, route: Route, fault: Fault, times: usize) {
        self.shared.lock().add_fault(route, fault, times);
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
        self.shared.lock().next_lifecycles.push_back(lifecycle);
    }

    /// Creates a job directly, without a submit request; returns its request id.
    pub fn create_job(&self, model_id: &str, input: Value, lifecycle: Lifecycle) -> String {
        self.shared.lock().new_job(model_id, input, Some(lifecycle))
    }

    /// Moves the manual clock forward (see [`FakeServerBuilder::manual_clock`]).
    pub fn advance(&self, by: Duration) {
        let mut st = self.shared.lock();
        if let Clock::Manual(t) = &mut st.clock {
            *t += by;
        }
    }

    /// Every request received so far, in order (the last ones only, with
    /// [`FakeServerBuilder::record_limit`]).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.iter().cloned().collect()
    }

    /// How many requests reached `route` (`Route::Any` counts all).
    pub fn count(&self, route: Route) -> usize {
        let st = self.shared.lock();
        st.counts
            .iter()
            .filter(|(r, _)| route.matches(**r))
            .map(|(_, n)| n)
            .sum()
    }

    /// How many submit requests reached the server, whatever their fate.
    pub fn submits(&self) -> usize {
        self.count(Route::Submit)
    }

    /// Forgets the recorded requests and their counts (not the jobs).
    pub fn clear_requests(&self) {
        let mut st = self.shared.lock();
        st.requests.clear();
        st.counts.clear();
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

    /// Counters: requests per route, jobs per model and per input (also served at
    /// `GET /_fake/stats`).
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats()
    }

    /// How many jobs were created for `model_id` with this body (compared as JSON values).
    pub fn jobs_for_input(&self, model_id: &str, input: &Value) -> usize {
        let key = (model_id.to_owned(), canonical(input));
        self.shared
            .lock()
            .inputs
            .get(&key)
            .map_or(0, |e| e.request_ids.len())
    }

    /// Every distinct (model, input) with its jobs (also served at `GET /_fake/inputs`).
    pub fn inputs(&self) -> Vec<InputCount> {
        self.shared.lock().inputs()
    }

    /// Every job in creation order (also served at `GET /_fake/jobs`).
    pub fn jobs(&self) -> Vec<JobRecord> {
        self.shared.lock().job_records()
    }

    /// The content of output file `name` of job `request_id` when the server serves
    /// outputs ([`FakeServerBuilder::serve_outputs`]): deterministic bytes of the configured
    /// size; `None` otherwise.
    pub fn output_bytes(&self, request_id: &str, name: &str) -> Option<Vec<u8>> {
        self.shared
            .output_file(request_id, name)
            .map(|(bytes, _)| bytes)
    }
}
