//! Client overhead (issue 5): one request through `runcomfy::Client` against the same request
//! made with a bare `reqwest::Client` (same auth and accept headers, body read and parsed as
//! JSON), both to the fake server on 127.0.0.1 (on its own runtime thread).
//!
//! `cargo bench -p runcomfy-bench --bench client`: criterion's figures for both, then the
//! ratio ours/bare of the median times of interleaved requests (printed last).

use std::time::{Duration, Instant};

use criterion::Criterion;
use runcomfy::models::happyhorse::happyhorse_1_0::image_to_video as model;
use runcomfy_fake::{FakeServer, Lifecycle, Span};
use serde_json::Value;

struct Setup {
    server: FakeServer,
    _server_rt: tokio::runtime::Runtime,
    rt: tokio::runtime::Runtime,
    client: runcomfy::Client,
    bare: reqwest::Client,
    token: String,
    request_id: String,
    input: model::Input,
}

fn setup() -> Setup {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let server = server_rt
        .block_on(
            FakeServer::builder()
                .model(
                    model::INFO.id,
                    runcomfy::SchemaText::find(runcomfy::models::SCHEMAS, model::INFO.id)
                        .expect("shipped")
                        .input,
                )
                .lifecycle(Lifecycle::new().running(Span::Forever).then_succeed())
                .start(),
        )
        .expect("fake server");
    let request_id = server.create_job(
        model::INFO.id,
        serde_json::json!({}),
        Lifecycle::new().running(Span::Forever).then_succeed(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    let client = {
        let _guard = rt.enter();
        server.client().expect("client")
    };
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("reqwest");
    let token = server
        .token()
        .unwrap_or(runcomfy_fake::FAKE_TOKEN)
        .to_owned();
    let input = model::Input::new("https://example.com/cat.png", "the cat turns its head");
    Setup {
        server,
        _server_rt: server_rt,
        rt,
        client,
        bare,
        token,
        request_id,
        input,
    }
}

impl Setup {
    async fn ours_status(&self) {
        self.client.status(&self.request_id).await.expect("status");
    }

    async fn bare_status(&self) {
        let url = format!(
            "{}/v1/requests/{}/status",
            self.server.base_url(),
            self.request_id
        );
        let res = self
            .bare
            .get(url)
            .bearer_auth(&self.token)
            .header("accept", "application/json")
            .send()
            .await
            .expect("send");
        assert!(res.status().is_success());
        let bytes = res.bytes().await.expect("body");
        let _: Value = serde_json::from_slice(&bytes).expect("json");
    }

    async fn ours_submit(&self) {
        self.client
            .submit::<model::Model>(&self.input)
            .await
            .expect("submit");
    }

    async fn bare_submit(&self) {
        let url = format!("{}/v1/models/{}", self.server.base_url(), model::INFO.id);
        let res = self
            .bare
            .post(url)
            .bearer_auth(&self.token)
            .header("accept", "application/json")
            .json(&self.input)
            .send()
            .await
            .expect("send");
        assert!(res.status().is_success());
        let bytes = res.bytes().await.expect("body");
        let _: Value = serde_json::from_slice(&bytes).expect("json");
    }

    /// Forgets what the fake server records, so that long runs do not grow it.
    fn reset(&self) {
        self.server.clear_requests();
    }
}

fn criterion_benches(c: &mut Criterion, s: &Setup) {
    let mut group = c.benchmark_group("client");
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("status/runcomfy", |b| {
        b.iter(|| s.rt.block_on(s.ours_status()))
    });
    s.reset();
    group.bench_function("status/bare-reqwest", |b| {
        b.iter(|| s.rt.block_on(s.bare_status()))
    });
    s.reset();
    group.bench_function("submit/runcomfy", |b| {
        b.iter(|| s.rt.block_on(s.ours_submit()))
    });
    s.reset();
    group.bench_function("submit/bare-reqwest", |b| {
        b.iter(|| s.rt.block_on(s.bare_submit()))
    });
    s.reset();
    group.finish();
}

/// `n` pairs of requests, one of each side, alternating which goes first, each request timed
/// on its own: the median time of each side and their ratio (medians resist the bursts of a
/// shared machine better than means of blocks).
fn paired(s: &Setup, what: &str, n: usize) {
    let mut ours = Vec::with_capacity(n);
    let mut bare = Vec::with_capacity(n);
    s.rt.block_on(async {
        for i in 0..n {
            for side in [i % 2, 1 - i % 2] {
                let started = Instant::now();
                match (what, side) {
                    ("status", 0) => s.ours_status().await,
                    ("status", _) => s.bare_status().await,
                    (_, 0) => s.ours_submit().await,
                    _ => s.bare_submit().await,
                }
                let secs = started.elapsed().as_secs_f64();
                if side == 0 { &mut ours } else { &mut bare }.push(secs);
            }
            if i % 1000 == 999 {
                s.reset();
            }
        }
    });
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (o, b) = (median(&mut ours), median(&mut bare));
    println!(
        "client {what}: median runcomfy {:.1} us, bare reqwest {:.1} us per request ({n} each, interleaved); overhead ratio ours/bare: {:.3}",
        o * 1e6,
        b * 1e6,
        o / b
    );
}

fn main() {
    // `cargo test --benches` runs bench targets too: nothing to check there.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let s = setup();
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c, &s);
    c.final_summary();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average: {}", load.trim());
    paired(&s, "status", 10_000);
    paired(&s, "submit", 5_000);
}
