//! Every error path, and the token absent from all of them.

use runcomfy::{ApiErrorCode, Client, Error, IdKind, JobState};
use runcomfy_fake::{FakeServer, Fault, Lifecycle, Route, Span};
use serde_json::json;

use crate::common::{self, Echo, EchoInput, ECHO_ID, SECRET};

fn assert_no_token(text: &str) {
    assert!(!text.contains(SECRET), "token leaked: {text}");
}

fn check(err: &Error) {
    assert_no_token(&err.to_string());
    assert_no_token(&format!("{err:?}"));
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        assert_no_token(&s.to_string());
        source = s.source();
    }
    let text = err.to_string();
    assert!(!text.ends_with('.'), "{text}");
    assert!(!text.starts_with(char::is_uppercase), "{text}");
}

#[tokio::test]
async fn validation_refuses_before_any_request() {
    let server = common::server().await;
    let client = server.client().unwrap();
    let input = EchoInput {
        prompt: String::new(),
        steps: Some(99),
    };
    let err = client.submit::<Echo>(&input).await.unwrap_err();
    check(&err);
    let Error::Validation { model_id, errors } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(model_id, ECHO_ID);
    assert_eq!(errors.violations.len(), 2);
    assert!(err.to_string().contains("/prompt"), "{err}");
    // run and the endpoint refuse the same way.
    assert!(matches!(
        client.run::<Echo>(&input).await,
        Err(Error::Validation { .. })
    ));
    assert!(matches!(
        client.endpoint::<Echo>().submit(&input).await,
        Err(Error::Validation { .. })
    ));
    assert_eq!(server.count(Route::Any), 0);
}

#[tokio::test]
async fn bad_ids_are_refused_before_any_request() {
    let server = common::server().await;
    let client = server.client().unwrap();
    for bad in ["one", "a/../b", "a/b?x=1", "a/b/c/d/e/f", "a/ b"] {
        let err = client.submit_json(bad, &json!({})).await.unwrap_err();
        check(&err);
        assert!(
            matches!(
                err,
                Error::InvalidId {
                    kind: IdKind::Model,
                    ..
                }
            ),
            "{bad}: {err:?}"
        );
        assert!(client.get_model(bad).await.is_err());
    }
    for bad in ["", "../x", "a/b", "a?b", "a.b", &"x".repeat(129)] {
        for err in [
            client.status(bad).await.unwrap_err(),
            client.result(bad, true).await.unwrap_err(),
            client.cancel(bad).await.unwrap_err(),
        ] {
            assert!(
                matches!(
                    err,
                    Error::InvalidId {
                        kind: IdKind::Request,
                        ..
                    }
                ),
                "{bad}: {err:?}"
            );
        }
        assert!(runcomfy::RequestHandle::attach(bad).is_err());
    }
    assert_eq!(server.count(Route::Any), 0);
}

#[test]
fn missing_token_names_the_variable() {
    let err = Client::builder().ignore_env().build().unwrap_err();
    assert!(matches!(
        err,
        Error::MissingToken {
            var: "RUNCOMFY_TOKEN"
        }
    ));
    assert!(err.to_string().contains("RUNCOMFY_TOKEN"), "{err}");
    let err = Client::builder()
        .ignore_env()
        .token("  ")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::MissingToken { .. }));
    let err = Client::builder()
        .ignore_env()
        .token("a\nb")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidToken));
}

#[test]
fn https_is_required_except_on_loopback() {
    let build = |url: &str| {
        Client::builder()
            .ignore_env()
            .token(SECRET)
            .base_url(url)
            .build()
    };
    for ok in [
        "https://model-api.runcomfy.net",
        "https://proxy.example/prefix/",
        "http://127.0.0.1:9",
        "http://127.8.0.1",
        "http://localhost:1234",
        "http://[::1]:80",
    ] {
        assert!(build(ok).is_ok(), "{ok}");
    }
    for bad in [
        "http://model-api.runcomfy.net",
        "http://10.0.0.1",
        "ftp://localhost",
        "not a url",
        "https://user:pw@host.example",
        "https://host.example/?q=1",
    ] {
        let err = build(bad).unwrap_err();
        check(&err);
        assert!(
            matches!(err, Error::InvalidBaseUrl { .. }),
            "{bad}: {err:?}"
        );
        assert!(!err.to_string().contains("pw"), "{err}");
    }
    let c = build("https://model-api.runcomfy.net").unwrap();
    assert_eq!(c.base_url().as_str(), "https://model-api.runcomfy.net/");
}

#[test]
fn debug_output_redacts_the_token() {
    let builder = Client::builder().ignore_env().token(SECRET);
    assert_no_token(&format!("{builder:?}"));
    let client = builder.build().unwrap();
    let debug = format!("{client:?}");
    assert_no_token(&debug);
    assert!(debug.contains("redacted"), "{debug}");
}

#[tokio::test]
async fn a_wrong_token_is_a_user_account_error() {
    let server = common::server().await;
    let client = server
        .client_builder()
        .token("sk-wrong-token")
        .build()
        .unwrap();
    let err = client.get_model(ECHO_ID).await.unwrap_err();
    check(&err);
    let api = err.api_error().unwrap();
    assert_eq!(api.status, 400);
    assert_eq!(api.code, Some(ApiErrorCode::UserAccount));
    assert!(!err.to_string().contains("sk-wrong-token"));
    // Not retried: a 400 is final.
    assert_eq!(server.count(Route::Any), 1);
    // A submit refused the same way did not create a job and is not "uncertain".
    let err = client
        .submit::<Echo>(&EchoInput::new("x"))
        .await
        .unwrap_err();
    assert!(!err.may_have_submitted());
    assert_eq!(server.job_count(), 0);
}

#[tokio::test]
async fn documented_codes_are_recognised() {
    let server = common::server().await;
    let client = server.client().unwrap();

    let err = client
        .submit_json("acme/nope/x", &json!({}))
        .await
        .unwrap_err();
    check(&err);
    assert_eq!(
        err.api_error().unwrap().code,
        Some(ApiErrorCode::InvalidResourceIdentifier)
    );

    let err = client.status("no-such-job").await.unwrap_err();
    check(&err);
    let api = err.api_error().unwrap();
    assert_eq!(
        (api.status, api.code),
        (404, Some(ApiErrorCode::ResourceNotFound))
    );
    assert_eq!(err.request_id(), Some("no-such-job"));
    assert!(err.to_string().contains("404001"), "{err}");

    server.inject(Route::Result, Fault::api_error(403, 403001, "not yours"));
    let err = client.result("someone-elses", false).await.unwrap_err();
    assert_eq!(
        err.api_error().unwrap().code,
        Some(ApiErrorCode::PermissionDenied)
    );
    assert_eq!(err.request_id(), Some("someone-elses"));

    server.inject(
        Route::Submit,
        Fault::api_error(400, 400002, "no balance left"),
    );
    let err = client
        .submit::<Echo>(&EchoInput::new("x"))
        .await
        .unwrap_err();
    check(&err);
    assert_eq!(
        err.api_error().unwrap().code,
        Some(ApiErrorCode::InsufficientResources)
    );
    assert!(err.to_string().contains("no balance left"), "{err}");
    assert!(!err.may_have_submitted());

    let other = runcomfy::ApiErrorCode::from_code(123);
    assert_eq!(other, ApiErrorCode::Other(123));
}

#[tokio::test]
async fn error_bodies_sent_with_http_200_are_errors() {
    let server = common::server().await;
    let client = server.client().unwrap();
    let id = server.create_job(ECHO_ID, json!({}), Lifecycle::new());

    server.inject(Route::Status, Fault::api_error(200, 404001, "expired"));
    let err = client.status(&id).await.unwrap_err();
    check(&err);
    let api = err.api_error().unwrap();
    assert_eq!(
        (api.status, api.code),
        (200, Some(ApiErrorCode::ResourceNotFound))
    );
    assert_eq!(api.request_id.as_deref(), Some(id.as_str()));

    server.inject(
        Route::Submit,
        Fault::api_error(200, 400004, "token revoked"),
    );
    let err = client
        .submit::<Echo>(&EchoInput::new("x"))
        .await
        .unwrap_err();
    assert_eq!(
        err.api_error().unwrap().code,
        Some(ApiErrorCode::UserAccount)
    );
    assert!(!err.may_have_submitted());
    assert_eq!(server.submits(), 1);

    server.inject(Route::Cancel, Fault::api_error(200, 403001, "not yours"));
    let err = client.cancel(&id).await.unwrap_err();
    assert_eq!(
        err.api_error().unwrap().code,
        Some(ApiErrorCode::PermissionDenied)
    );
}

#[tokio::test]
async fn a_body_that_breaks_the_schema_gets_field_errors() {
    let server = common::server().await;
    let client = server.client().unwrap();
    let err = client
        .submit_json(ECHO_ID, &json!({"steps": 0, "strength": "high"}))
        .await
        .unwrap_err();
    check(&err);
    let api = err.api_error().unwrap();
    assert_eq!(api.status, 422);
    let fields = api.field_errors();
    assert_eq!(fields.len(), 3, "{fields:?}");
    assert!(fields.iter().any(|f| f.starts_with("/steps")), "{fields:?}");
    assert!(
        fields.iter().any(|f| f.starts_with("/strength")),
        "{fields:?}"
    );
    assert!(err.to_string().contains("/steps"), "{err}");
    assert!(!err.may_have_submitted());
    assert_eq!(server.job_count(), 0);
}

#[tokio::test]
async fn malformed_json_keeps_the_raw_body() {
    let server = common::server().await;
    let client = server
        .client_builder()
        .retry_policy(runcomfy_fake::fast_retry_policy().max_attempts(2))
        .build()
        .unwrap();
    let id = server.create_job(ECHO_ID, json!({}), Lifecycle::new());
    // A garbled answer is retried; when every attempt is garbled, the last body is kept.
    server.inject_times(Route::Result, Fault::MalformedJson, 5);
    let err = client.result(&id, false).await.unwrap_err();
    assert_eq!(server.count(Route::Result), 2);
    common::assert_no_repeated_cause(&err);
    check(&err);
    let Error::Decode {
        body, request_id, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert!(body.starts_with("{\"request_id\""), "{body}");
    assert_eq!(request_id.as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn a_failed_job_carries_the_server_error_and_the_id() {
    let server = common::builder()
        .lifecycle(
            Lifecycle::new()
                .running(Span::Polls(1))
                .then_fail(json!({"message": "NSFW content detected"})),
        )
        .start()
        .await
        .unwrap();
    let client = server.client().unwrap();
    let err = client.run::<Echo>(&EchoInput::new("x")).await.unwrap_err();
    check(&err);
    let Error::JobFailed { request_id, error } = &err else {
        panic!("{err:?}")
    };
    assert!(server.job(request_id).is_some());
    assert_eq!(error["message"], "NSFW content detected");
    assert!(err.to_string().contains("NSFW content detected"), "{err}");
}

#[tokio::test]
async fn a_cancelled_job_is_an_error_with_its_id() {
    let server = common::builder()
        .lifecycle(Lifecycle::new().queued(1, Span::Polls(1)).then_cancel())
        .start()
        .await
        .unwrap();
    let client = server.client().unwrap();
    let err = client.run::<Echo>(&EchoInput::new("x")).await.unwrap_err();
    check(&err);
    assert!(matches!(&err, Error::Cancelled { .. }));
    assert_eq!(
        err.to_string(),
        format!("job {} was cancelled", err.request_id().unwrap())
    );
}

#[tokio::test]
async fn an_output_of_the_wrong_shape_is_a_decode_error_with_the_id() {
    let server = common::builder()
        .lifecycle(Lifecycle::new().then_succeed_with(json!({"image": 42})))
        .start()
        .await
        .unwrap();
    let client = server.client().unwrap();
    let handle = client.submit::<Echo>(&EchoInput::new("x")).await.unwrap();
    let err = handle.wait(&client).await.unwrap_err();
    let Error::Decode {
        what,
        body,
        request_id,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*what, "output");
    assert_eq!(body, r#"{"image":42}"#);
    assert_eq!(request_id.as_deref(), Some(handle.request_id()));
}

#[tokio::test]
async fn transport_errors_carry_the_request_id() {
    let server = common::server().await;
    let client = server
        .client_builder()
        .retry_policy(runcomfy::RetryPolicy::never())
        .build()
        .unwrap();
    let id = server.create_job(ECHO_ID, json!({}), Lifecycle::new());
    server.inject(Route::Status, Fault::CloseAfterRead);
    let err = client.status(&id).await.unwrap_err();
    check(&err);
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert_eq!(err.request_id(), Some(id.as_str()));
}

#[tokio::test]
async fn the_token_never_reaches_logs_or_errors() {
    let capture = common::Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    // A server that echoes the token back in an error body.
    let server = FakeServer::builder()
        .any_token()
        .model(ECHO_ID, common::ECHO_SCHEMA)
        .start()
        .await
        .unwrap();
    let client = server.client_builder().token(SECRET).build().unwrap();
    server.inject(
        Route::Status,
        Fault::Status {
            status: 400,
            retry_after: None,
            body:
                json!({"error_code": 400004, "error_message": format!("bad token Bearer {SECRET}")})
                    .to_string(),
        },
    );
    let err = client.status("abc").await.unwrap_err();
    check(&err);
    assert_no_token(&err.api_error().unwrap().body);
    assert!(err.to_string().contains("[redacted]"), "{err}");

    server.inject_times(Route::Result, Fault::status(503), 10);
    let err = client
        .with_retry_policy(runcomfy::RetryPolicy::default().max_attempts(2).delays(
            std::time::Duration::from_millis(1),
            std::time::Duration::from_millis(2),
        ))
        .result("abc", false)
        .await
        .unwrap_err();
    check(&err);
    server.clear_faults();
    let out = client
        .run::<crate::common::Echo>(&EchoInput::new("x"))
        .await
        .unwrap();
    assert!(out.image.is_some() || out.images.is_some());

    let lines = capture.lines.lock().unwrap();
    // Other test threads race on tracing's callsite cache, so not every event is certain to
    // be seen here; some of ours are.
    assert!(lines.iter().any(|l| l.contains(" runcomfy::")), "{lines:?}");
    for line in lines.iter() {
        assert_no_token(line);
    }
    let status = JobState::parse("in_queue");
    assert_eq!(status, JobState::InQueue);
}

#[tokio::test]
async fn redirects_are_not_followed_with_the_token() {
    let server = common::server().await;
    let elsewhere = FakeServer::builder()
        .any_token()
        .model(ECHO_ID, common::ECHO_SCHEMA)
        .start()
        .await
        .unwrap();
    let client = server.client().unwrap();
    for status in [301, 302, 307, 308] {
        let location = format!("{}/v1/models/{ECHO_ID}", elsewhere.base_url());
        server.inject(
            Route::GetModel,
            Fault::Redirect {
                status,
                location: location.clone(),
            },
        );
        let err = client.get_model(ECHO_ID).await.unwrap_err();
        check(&err);
        assert_eq!(err.api_error().unwrap().status, status);
        server.inject(Route::Submit, Fault::Redirect { status, location });
        let err = client
            .submit::<Echo>(&EchoInput::new("x"))
            .await
            .unwrap_err();
        assert_eq!(err.api_error().unwrap().status, status);
    }
    assert_eq!(elsewhere.count(Route::Any), 0);
    assert_eq!(server.job_count(), 0);
}
