//! Counting paid jobs per model and per input, and the output files the server can serve.

use runcomfy_fake::{FakeServer, Fault, Lifecycle, Route, Stats};
use serde_json::{json, Value};

const ECHO: &str = "acme/echo/text-to-image";
const CLIP: &str = "acme/clip/text-to-video";
const SCHEMA: &str = r#"{"type":"object","required":["prompt"],"properties":{"prompt":{"type":"string"},"n":{"type":"integer","minimum":1,"maximum":4}}}"#;

#[tokio::test]
async fn jobs_are_counted_per_model_and_per_input() {
    let server = FakeServer::builder()
        .model(ECHO, SCHEMA)
        .model(CLIP, SCHEMA)
        .start()
        .await
        .expect("server");
    let client = server.client().expect("client");
    let a: Value = serde_json::from_str(r#"{"prompt": "a", "n": 2}"#).expect("json");
    let a_reordered: Value = serde_json::from_str(r#"{"n": 2, "prompt": "a"}"#).expect("json");
    client.submit_json(ECHO, &a).await.expect("submit");
    client
        .submit_json(ECHO, &a_reordered)
        .await
        .expect("submit");
    client
        .submit_json(ECHO, &json!({"prompt": "b"}))
        .await
        .expect("submit");
    client.submit_json(CLIP, &a).await.expect("submit");
    // Refused by validation: no job.
    assert!(client
        .submit_json(ECHO, &json!({"prompt": "c", "n": 9}))
        .await
        .is_err());
    // Answer lost: the job exists all the same.
    server.inject(Route::Submit, Fault::CloseAfterRead);
    assert!(client
        .submit_json(ECHO, &json!({"prompt": "lost"}))
        .await
        .is_err());

    assert_eq!(server.jobs_for_input(ECHO, &a), 2);
    assert_eq!(server.jobs_for_input(CLIP, &a), 1);
    assert_eq!(server.jobs_for_input(ECHO, &json!({"prompt": "lost"})), 1);
    assert_eq!(
        server.jobs_for_input(ECHO, &json!({"prompt": "c", "n": 9})),
        0
    );
    let stats = server.stats();
    assert_eq!(stats.jobs, 5);
    assert_eq!(stats.jobs_by_model[ECHO], 4);
    assert_eq!(stats.jobs_by_model[CLIP], 1);
    assert_eq!(stats.distinct_inputs, 4);
    assert_eq!(stats.repeated_inputs, 1);
    assert_eq!(stats.max_jobs_per_input, 2);
    assert_eq!(stats.requests_by_route["submit"], 6);
    assert_eq!(stats.requests, 6);

    let inputs = server.inputs();
    let twice = inputs
        .iter()
        .find(|i| i.jobs == 2)
        .expect("the repeated input");
    assert_eq!(twice.model_id, ECHO);
    assert_eq!(twice.request_ids.len(), 2);
    let jobs = server.jobs();
    assert_eq!(jobs.len(), 5);
    assert_eq!(jobs[0].input, a);
    assert_eq!(jobs[4].input, json!({"prompt": "lost"}));

    // The same figures over HTTP, for a test that runs the server as a process; these
    // requests are not counted.
    let http = reqwest::Client::new();
    let over_http: Stats = http
        .get(format!("{}/_fake/stats", server.base_url()))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(over_http, stats);
    let listed: Vec<Value> = http
        .get(format!("{}/_fake/jobs", server.base_url()))
        .send()
        .await
        .expect("jobs")
        .json()
        .await
        .expect("json");
    assert_eq!(listed.len(), 5);
    assert_eq!(listed[0]["request_id"], jobs[0].request_id.as_str());
    assert_eq!(server.stats(), stats);
}

#[tokio::test]
async fn faults_injected_over_http() {
    let server = FakeServer::builder()
        .model(ECHO, SCHEMA)
        .start()
        .await
        .expect("server");
    let http = reqwest::Client::new();
    let inject = |body: Value| {
        http.post(format!("{}/_fake/inject", server.base_url()))
            .json(&body)
            .send()
    };
    let ok = inject(
        json!({"route": "submit", "times": 2, "fault": {"status": 429, "retry_after": "7"}}),
    )
    .await
    .expect("inject");
    assert_eq!(ok.status(), 200);
    let bad = inject(json!({"route": "nowhere", "fault": "close_after_read"}))
        .await
        .expect("inject");
    assert_eq!(bad.status(), 400);
    let submit = || {
        http.post(format!("{}/v1/models/{ECHO}", server.base_url()))
            .bearer_auth(runcomfy_fake::FAKE_TOKEN)
            .json(&json!({"prompt": "a"}))
            .send()
    };
    for _ in 0..2 {
        let limited = submit().await.expect("submit");
        assert_eq!(limited.status(), 429);
        assert_eq!(limited.headers()["retry-after"], "7");
    }
    assert_eq!(submit().await.expect("submit").status(), 200);
    assert_eq!(server.stats().jobs, 1);
}

#[tokio::test]
async fn output_files_served_by_the_server_itself() {
    let server = FakeServer::builder()
        .model(CLIP, SCHEMA)
        .serve_outputs(10_000)
        .lifecycle(Lifecycle::new().then_succeed())
        .start()
        .await
        .expect("server");
    let client = server.client().expect("client");
    let result = client
        .run_json(CLIP, &json!({"prompt": "a"}))
        .await
        .expect("run");
    let output = serde_json::to_value(result.output.expect("output")).expect("value");
    let url = output["video"].as_str().expect("a video URL").to_owned();
    let prefix = format!("{}/_fake/files/", server.base_url());
    let rest = url.strip_prefix(&prefix).expect("served by the fake");
    let (request_id, name) = rest.split_once('/').expect("id/name");
    let want = server.output_bytes(request_id, name).expect("bytes");
    assert_eq!(want.len(), 10_000);

    let http = reqwest::Client::new();
    let full = http.get(&url).send().await.expect("get");
    assert_eq!(full.status(), 200);
    assert_eq!(full.headers()["content-type"], "video/mp4");
    assert_eq!(full.bytes().await.expect("body").as_ref(), &want[..]);
    let tail = http
        .get(&url)
        .header("range", "bytes=9000-")
        .send()
        .await
        .expect("get");
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.headers()["content-range"], "bytes 9000-9999/10000");
    assert_eq!(tail.bytes().await.expect("body").as_ref(), &want[9000..]);
    let unknown = http
        .get(format!("{prefix}fake-9999-00000000/x.mp4"))
        .send()
        .await
        .expect("get");
    assert_eq!(unknown.status(), 404);
    assert_eq!(server.count(Route::File), 3);
}
