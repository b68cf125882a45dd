//! Retry rules, counting how many requests (and paid submits) reached the server.
//!
//! Tests where time matters run on tokio's paused clock, with request timeouts far beyond
//! the waits under test, so no result depends on the machine's load.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use runcomfy::{Error, RetryPolicy};
use runcomfy_fake::{FakeServer, Fault, Lifecycle, Route};
use serde_json::json;

use crate::common::{self, Echo, EchoInput, ECHO_ID, ECHO_SCHEMA, SECRET};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test]
async fn gets_retry_5xx_and_connection_losses() {
    let server = common::server().await;
    let client = server.client().unwrap();
    let id = server.create_job(ECHO_ID, json!({}), Lifecycle::new());
    server.inject_times(Route::Status, Fault::status(503), 2);
    server.inject(Route::Status, Fault::CloseAfterRead);
    server.inject(Route::Status, Fault::status(500));
    let status = client.status(&id).await.unwrap();
    assert_eq!(status.request_id, id);
    assert_eq!(server.count(Route::Status), 5);
}

#[tokio::test]
async fn gets_give_up_after_max_attempts() {
    let server = common::server().await;
    let client = server
        .client_builder()
        .retry_policy(RetryPolicy::default().max_attempts(3).delays(ms(1), ms(2)))
        .build()
        .unwrap();
    server.inject_times(Route::GetModel, Fault::status(502), 10);
    let err = client.get_model(ECHO_ID).await.unwrap_err();
    assert_eq!(err.api_error().unwrap().status, 502);
    assert_eq!(server.count(Route::GetModel), 3);
}

#[tokio::test]
async fn gets_do_not_retry_client_errors() {
    let server = common::server().await;
    let client = server.client().unwrap();
    server.inject(Route::Result, Fault::api_error(404, 404001, "gone"));
    assert!(client.result("abc", false).await.is_err());
    assert_eq!(server.count(Route::Result), 1);
}

#[tokio::test(start_paused = true)]
async fn a_get_that_times_out_is_retried() {
    let server = common::server().await;
    let client = server
        .client_builder()
        .request_timeout(ms(100))
        .build()
        .unwrap();
    let id = server.create_job(ECHO_ID, json!({}), Lifecycle::new());
    server.inject(Route::Result, Fault::Delay(Duration::from_secs(3600)));
    let r = client.result(&id, false).await.unwrap();
    assert_eq!(r.request_id, id);
    assert_eq!(server.count(Route::Result), 2);
    // Every attempt timing out ends in a timeout error that names the job.
    server.inject_times(Route::Result, Fault::Delay(Duration::from_secs(3600)), 3);
    let err = client
        .with_retry_policy(RetryPolicy::default().max_attempts(2).delays(ms(1), ms(1)))
        .result(&id, false)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(err.request_id(), Some(id.as_str()));
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_in_seconds_and_capped() {
    let server = common::server().await;
    let client = server
        .client_builder()
        .request_timeout(Duration::from_secs(3600))
        .retry_policy(
            RetryPolicy::default()
                .delays(ms(1), ms(1))
                .max_retry_after(ms(150)),
        )
        .build()
        .unwrap();
    server.inject(Route::GetModel, Fault::rate_limited(Some("1")));
    let start = Instant::now();
    client.get_model(ECHO_ID).await.unwrap();
    let waited = start.elapsed();
    // One second asked, capped at 150 ms: the wait is the cap, not the 1 ms backoff.
    assert!(waited >= ms(150) && waited < ms(160), "{waited:?}");
    assert_eq!(server.count(Route::GetModel), 2);
}

/// HTTP dates have whole seconds, so this one waits on tokio's paused clock.
#[tokio::test(start_paused = true)]
async fn retry_after_as_an_http_date_is_honoured() {
    let server = common::server().await;
    let client = server
        .client_builder()
        .request_timeout(Duration::from_secs(3600))
        .retry_policy(
            RetryPolicy::default()
                .delays(ms(1), ms(1))
                .max_retry_after(Duration::from_secs(60)),
        )
        .build()
        .unwrap();
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
    server.inject(Route::GetModel, Fault::rate_limited(Some(&at)));
    let start = Instant::now();
    client.get_model(ECHO_ID).await.unwrap();
    // At least ~29 s of the 30 s asked remained when the answer was read.
    assert!(
        start.elapsed() >= Duration::from_secs(28),
        "{:?}",
        start.elapsed()
    );
    assert!(
        start.elapsed() <= Duration::from_secs(31),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.count(Route::GetModel), 2);
}

/// A wait the server asks for is logged with its length and the wall-clock time it ends.
#[tokio::test(start_paused = true)]
async fn a_long_retry_after_says_that_it_waits_and_until_when() {
    let capture = common::Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let server = common::server().await;
    let client = server
        .client_builder()
        .request_timeout(Duration::from_secs(3600))
        .retry_policy(RetryPolicy::default().max_retry_after(Duration::from_secs(60)))
        .build()
        .unwrap();
    server.inject(Route::GetModel, Fault::rate_limited(Some("20")));
    let before = SystemTime::now();
    client.get_model(ECHO_ID).await.unwrap();
    let lines = capture.events("Retry-After");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert!(line.starts_with("INFO "), "{line}");
    assert!(line.contains("wait=20.000s"), "{line}");
    let until = line
        .split(" until=")
        .nth(1)
        .unwrap()
        .split(" error=")
        .next()
        .unwrap();
    let until = httpdate::parse_http_date(until).unwrap();
    let ahead = until.duration_since(before).unwrap();
    assert!(
        ahead >= Duration::from_secs(19) && ahead <= Duration::from_secs(80),
        "{line}"
    );
    // A short backoff is not worth a line at `info`.
    server.inject(Route::GetModel, Fault::status(503));
    client.get_model(ECHO_ID).await.unwrap();
    assert_eq!(capture.events("Retry-After").len(), 1);
    let retries = capture.events("retrying");
    assert!(
        retries.len() == 2 && retries[1].starts_with("DEBUG "),
        "the 503 retry is at debug: {retries:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limiting_past_the_budget_is_reported() {
    let server = common::server().await;
    let client = server
        .client_builder()
        .request_timeout(Duration::from_secs(3600))
        .retry_policy(
            RetryPolicy::default()
                .max_retry_after(Duration::from_secs(60))
                .budget(ms(500)),
        )
        .build()
        .unwrap();
    server.inject(Route::Status, Fault::rate_limited(Some("30")));
    let start = Instant::now();
    let err = client.status("abc").await.unwrap_err();
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "a wait past the budget is not begun"
    );
    let Error::RateLimited {
        retry_after,
        request_id,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*retry_after, Some(Duration::from_secs(30)));
    assert_eq!(request_id.as_deref(), Some("abc"));
    assert_eq!(server.count(Route::Status), 1);
}

#[tokio::test]
async fn a_rate_limited_submit_is_retried_and_pays_once() {
    let server = common::server().await;
    let client = server.client().unwrap();
    server.inject_times(Route::Submit, Fault::rate_limited(Some("0")), 2);
    let handle = client.submit::<Echo>(&EchoInput::new("x")).await.unwrap();
    assert_eq!(server.submits(), 3);
    assert_eq!(server.job_count(), 1);
    assert!(server.job(handle.request_id()).is_some());
}

#[tokio::test]
async fn a_submit_is_never_retried_after_a_5xx() {
    for status in [500, 502, 503, 504] {
        let server = common::server().await;
        let client = server.client().unwrap();
        server.inject_times(Route::Submit, Fault::status(status), 5);
        let err = client
            .submit::<Echo>(&EchoInput::new("x"))
            .await
            .unwrap_err();
        assert!(err.may_have_submitted(), "{err:?}");
        assert_eq!(err.api_error().unwrap().status, status);
        assert!(err.to_string().contains("may have created a job"), "{err}");
        assert!(err.to_string().contains(ECHO_ID), "{err}");
        common::assert_no_repeated_cause(&err);
        assert_eq!(server.submits(), 1, "http {status}");
    }
}

#[tokio::test]
async fn a_submit_is_never_retried_after_the_connection_drops() {
    let server = common::server().await;
    let client = server.client().unwrap();
    server.inject(Route::Submit, Fault::CloseAfterRead);
    let err = client
        .submit::<Echo>(&EchoInput::new("x"))
        .await
        .unwrap_err();
    assert!(err.may_have_submitted(), "{err:?}");
    let Error::SubmitUncertain { source, .. } = &err else {
        panic!()
    };
    assert!(matches!(**source, Error::Transport { .. }), "{source:?}");
    assert_eq!(server.submits(), 1);
    // The server did create (and bill) the job.
    assert_eq!(server.job_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_submit_is_never_retried_after_a_timeout() {
    let server = common::server().await;
    let client = server
        .client_builder()
        .request_timeout(ms(100))
        .build()
        .unwrap();
    server.inject(Route::Submit, Fault::Delay(ms(400)));
    let err = client
        .submit::<Echo>(&EchoInput::new("x"))
        .await
        .unwrap_err();
    let Error::SubmitUncertain { source, model_id } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(model_id, ECHO_ID);
    assert!(matches!(**source, Error::Timeout { .. }), "{source:?}");
    // Each cause is printed once: not `timed out: timed out`.
    common::assert_no_repeated_cause(&err);
    assert_eq!(
        common::chain(&err),
        [
            format!(
                "submit to {ECHO_ID} may have created a job (not retried, to avoid paying twice)"
            ),
            "request to the api timed out".to_owned(),
        ]
    );
    tokio::time::sleep(ms(400)).await;
    assert_eq!(server.submits(), 1);
    assert_eq!(server.job_count(), 1);
}

#[tokio::test]
async fn a_submit_with_an_unreadable_answer_keeps_the_body() {
    let server = common::server().await;
    let client = server.client().unwrap();
    server.inject(Route::Submit, Fault::MalformedJson);
    let err = client
        .submit::<Echo>(&EchoInput::new("x"))
        .await
        .unwrap_err();
    let Error::SubmitUncertain { source, .. } = &err else {
        panic!("{err:?}")
    };
    let Error::Decode { body, .. } = &**source else {
        panic!("{source:?}")
    };
    assert!(body.contains("request_id"), "{body}");
    common::assert_no_repeated_cause(&err);
    assert_eq!(
        common::chain(&err).len(),
        3,
        "uncertain, decode, the parser's error"
    );
    assert_eq!(server.submits(), 1);
    assert_eq!(server.job_count(), 1);
}

#[tokio::test]
async fn a_submit_answer_with_an_unusable_id_keeps_the_id() {
    let server = common::server().await;
    let client = server.client().unwrap();
    server.inject(
        Route::Submit,
        Fault::Status {
            status: 200,
            retry_after: None,
            body: json!({"request_id": "weird/id"}).to_string(),
        },
    );
    let err = client
        .submit::<Echo>(&EchoInput::new("x"))
        .await
        .unwrap_err();
    assert!(err.may_have_submitted());
    assert_eq!(err.request_id(), Some("weird/id"));
    let chain = common::chain(&err);
    assert!(chain[1].contains("weird/id"), "{chain:?}");
    common::assert_no_repeated_cause(&err);
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_is_retried_until_the_server_is_up() {
    let capture = common::Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    // A port that refuses connections and that nothing else can take.
    let (reserved, addr) = common::refusing_port();
    let client = runcomfy::Client::builder()
        .ignore_env()
        .token(SECRET)
        .base_url(format!("http://{addr}"))
        .request_timeout(Duration::from_secs(3600))
        .retry_policy(
            RetryPolicy::default()
                .max_attempts(50)
                .delays(ms(20), ms(40)),
        )
        .build()
        .unwrap();
    let submit = tokio::spawn(client.submit::<Echo>(&EchoInput::new("x")));
    // Start the server once the client has been refused (it then sleeps on the paused clock,
    // which does not move while this loop keeps the runtime busy).
    while capture.events("retrying").is_empty() {
        tokio::task::yield_now().await;
    }
    let server = FakeServer::builder()
        .token(SECRET)
        .model(ECHO_ID, ECHO_SCHEMA)
        .bind(addr)
        .start()
        .await
        .unwrap();
    drop(reserved);
    let handle = submit.await.unwrap().unwrap();
    assert_eq!(server.submits(), 1);
    assert!(server.job(handle.request_id()).is_some());
}

#[tokio::test]
async fn a_refused_connection_is_not_an_uncertain_submit() {
    let (_reserved, addr) = common::refusing_port();
    let client = runcomfy::Client::builder()
        .ignore_env()
        .token(SECRET)
        .base_url(format!("http://{addr}"))
        .retry_policy(RetryPolicy::default().max_attempts(3).delays(ms(1), ms(2)))
        .build()
        .unwrap();
    let err = client
        .submit::<Echo>(&EchoInput::new("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(!err.may_have_submitted());
    assert!(!err.to_string().contains(SECRET));
    common::assert_no_repeated_cause(&err);
    assert!(common::chain(&err).len() >= 2, "the cause is in the chain");
}

#[tokio::test]
async fn cancel_is_retried_like_a_get() {
    let server = common::server().await;
    let client = server.client().unwrap();
    let id = server.create_job(
        ECHO_ID,
        json!({}),
        Lifecycle::new().queued(1, runcomfy_fake::Span::Forever),
    );
    server.inject(Route::Cancel, Fault::status(503));
    server.inject(Route::Cancel, Fault::CloseAfterRead);
    let c = client.cancel(&id).await.unwrap();
    assert_eq!(c.outcome, runcomfy::CancelOutcome::Cancelled);
    assert_eq!(server.count(Route::Cancel), 3);
}
