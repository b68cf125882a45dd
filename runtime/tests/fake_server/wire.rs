//! What goes over the wire for every endpoint: method, path, headers, body; and the answers.

use runcomfy::{CancelOutcome, JobState, ListModels, PriceUnit};
use runcomfy_fake::{Lifecycle, Route, Span};
use serde_json::json;

use crate::common::{self, Echo, EchoInput, ECHO_ID, SECRET};

fn assert_common_headers(r: &runcomfy_fake::RecordedRequest) {
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert_eq!(r.header("accept"), Some("application/json"));
    let ua = r.header("user-agent").unwrap();
    assert!(ua.starts_with("runcomfy-rs/"), "{ua}");
}

#[tokio::test]
async fn submit_sends_the_input_to_the_model_path() {
    let server = common::server().await;
    let client = server.client().unwrap();
    let input = EchoInput {
        prompt: "a red fox".into(),
        steps: Some(20),
    };
    let handle = client.submit::<Echo>(&input).await.unwrap();
    assert!(handle.request_id().starts_with("fake-"));
    assert_eq!(handle.model_id(), ECHO_ID);

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    // The model id goes into the path as is, slashes unescaped.
    assert_eq!(r.path, "/v1/models/acme/echo-1/text-to-image");
    assert_eq!(r.query, None);
    assert_common_headers(r);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), Some(json!({"prompt": "a red fox", "steps": 20})));
    let job = server.job(handle.request_id()).unwrap();
    assert_eq!(job.input, json!({"prompt": "a red fox", "steps": 20}));
}

#[tokio::test]
async fn untyped_submit_sends_the_value() {
    let server = common::server().await;
    let client = server.client().unwrap();
    let body = json!({"prompt": "x", "strength": 0.5});
    let handle = client.submit_json(ECHO_ID, &body).await.unwrap();
    assert_eq!(handle.model_id(), Some(ECHO_ID));
    assert_eq!(server.requests()[0].json(), Some(body));
}

#[tokio::test]
async fn status_is_a_get_without_body() {
    let server = common::server().await;
    let id = server.create_job(
        ECHO_ID,
        json!({}),
        Lifecycle::new().queued(4, Span::Forever),
    );
    let client = server.client().unwrap();
    let status = client.status(&id).await.unwrap();
    assert_eq!(status.request_id, id);
    assert_eq!(status.state, JobState::InQueue);
    assert_eq!(status.queue_position, Some(4));
    assert!(status.status_url.unwrap().ends_with("/status"));

    let r = &server.requests()[0];
    assert_eq!(r.method, "GET");
    assert_eq!(r.path, format!("/v1/requests/{id}/status"));
    assert_common_headers(r);
    assert_eq!(r.header("content-type"), None);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn result_asks_for_the_cost_only_when_told() {
    let server = common::server().await;
    let id = server.create_job(
        ECHO_ID,
        json!({}),
        Lifecycle::new().then_succeed_with(json!({"image": "https://cdn.example/a.png"})),
    );
    let client = server.client().unwrap();

    let plain = client.result(&id, false).await.unwrap();
    assert_eq!(plain.state, JobState::Succeeded);
    assert_eq!(plain.cost, None);
    assert_eq!(
        plain.output,
        Some(json!({"image": "https://cdn.example/a.png"}))
    );
    assert_eq!(plain.model_id.as_deref(), Some(ECHO_ID));
    assert!(plain.created_at.is_some() && plain.finished_at.is_some());

    let costed = client.result(&id, true).await.unwrap();
    assert!(costed.cost.unwrap() > 0.0);

    let reqs = server.requests();
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].path, format!("/v1/requests/{id}/result"));
    assert_eq!(reqs[0].query, None);
    assert_eq!(reqs[1].query.as_deref(), Some("include_cost=true"));
    assert_common_headers(&reqs[1]);
}

#[tokio::test]
async fn result_of_a_running_job_is_its_state() {
    let server = common::server().await;
    let id = server.create_job(ECHO_ID, json!({}), Lifecycle::new().running(Span::Forever));
    let client = server.client().unwrap();
    let r = client.result(&id, false).await.unwrap();
    assert_eq!(r.state, JobState::InProgress);
    assert_eq!(r.output, None);
}

#[tokio::test]
async fn cancel_posts_without_a_body_and_reports_the_outcome() {
    let server = common::server().await;
    let queued = server.create_job(
        ECHO_ID,
        json!({}),
        Lifecycle::new().queued(1, Span::Forever),
    );
    let running = server.create_job(ECHO_ID, json!({}), Lifecycle::new().running(Span::Forever));
    let client = server.client().unwrap();

    let c = client.cancel(&queued).await.unwrap();
    assert_eq!(c.outcome, CancelOutcome::Cancelled);
    assert_eq!(c.request_id, queued);
    let c = client.cancel(&running).await.unwrap();
    assert_eq!(c.outcome, CancelOutcome::NotCancellable);
    assert_eq!(c.state, Some(JobState::InProgress));

    let r = &server.requests()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, format!("/v1/requests/{queued}/cancel"));
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_common_headers(r);
    // The cancelled job now reads as cancelled.
    assert_eq!(
        client.status(&queued).await.unwrap().state,
        JobState::Cancelled
    );
}

#[tokio::test]
async fn catalog_list_sends_its_query() {
    let server = common::builder()
        .model("acme/other-1/text-to-video", r#"{"type":"object"}"#)
        .start()
        .await
        .unwrap();
    let client = server.client().unwrap();
    let all = client.list_models(&ListModels::new()).await.unwrap();
    assert_eq!(all.total, Some(2));
    assert_eq!(all.models.len(), 2);
    assert!(all.models.iter().all(|m| m.input_schema.is_none()));

    let q = ListModels::new()
        .search("other 1")
        .category("video")
        .kind("model")
        .include_schema(true)
        .limit(5)
        .offset(0);
    let page = client.list_models(&q).await.unwrap();
    let reqs = server.requests();
    let r = &reqs[1];
    assert_eq!(r.method, "GET");
    assert_eq!(r.path, "/v1/models");
    assert_eq!(
        r.query.as_deref(),
        Some("search=other+1&category=video&kind=model&include_schema=true&limit=5&offset=0")
    );
    assert_common_headers(r);
    // The fake searches ids, so "other 1" matches nothing; "other-1" does.
    assert_eq!(page.total, Some(0));
    let page = client
        .list_models(&ListModels::new().search("other-1").include_schema(true))
        .await
        .unwrap();
    assert_eq!(page.models[0].model_id, "acme/other-1/text-to-video");
    assert!(page.models[0].input_schema.is_some());

    // A limit outside 1..=100 is refused before sending.
    let err = client
        .list_models(&ListModels::new().limit(0))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        runcomfy::Error::InvalidArgument { name: "limit", .. }
    ));
    assert_eq!(server.count(Route::ListModels), 3);
}

#[tokio::test]
async fn catalog_get_reads_price_and_schema() {
    let server = common::server().await;
    let client = server.client().unwrap();
    let m = client.get_model(ECHO_ID).await.unwrap();
    assert_eq!(m.model_id, ECHO_ID);
    assert_eq!(m.price_unit, Some(PriceUnit::Output));
    assert!(m.base_price_usd.is_some());
    assert!(m.pricing_note.is_some());
    assert_eq!(m.input_schema.unwrap()["required"], json!(["prompt"]));
    let r = &server.requests()[0];
    assert_eq!(r.method, "GET");
    assert_eq!(r.path, "/v1/models/acme/echo-1/text-to-image");
}

#[tokio::test]
async fn user_agent_is_configurable() {
    let server = common::server().await;
    let client = server
        .client_builder()
        .user_agent("my-app/2")
        .build()
        .unwrap();
    client.get_model(ECHO_ID).await.unwrap();
    assert_eq!(server.requests()[0].header("user-agent"), Some("my-app/2"));
}

#[tokio::test]
async fn generated_model_runs_typed_against_its_schema() {
    use runcomfy::models::happyhorse::happyhorse_1_0::image_to_video as i2v;
    let server = runcomfy_fake::FakeServer::start_with_all_models()
        .await
        .unwrap();
    let client = server.client().unwrap();
    let input = i2v::Input::new("https://example.com/cat.png", "the cat turns its head")
        .resolution(i2v::Resolution::P720)
        .duration(i2v::InputDuration::V5);
    let output = i2v::endpoint(&client).run(&input).await.unwrap();
    assert!(output.video.unwrap().as_str().ends_with(".mp4"));
    let body = server.requests()[0].json().unwrap();
    assert_eq!(body["resolution"], "720P");
    assert_eq!(body["duration"], 5);
    assert!(runcomfy::models::ALL.len() >= 2);
}
