//! Waiting: progress events, both poll modes, stored handles, runs stopped after their
//! submit, deadlines, unknown states, spans, and a controllable clock.
//!
//! Tests where time matters run on tokio's paused clock, with request timeouts far beyond
//! the waits under test, so no result depends on the machine's load.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use runcomfy::{
    CancelAttempt, CancelOutcome, Client, Error, Event, JobHandle, JobState, Learned, PollPolicy,
    PollVia, Progress, RequestHandle,
};
use runcomfy_fake::{Lifecycle, Route, Span};
use serde_json::json;

use crate::common::{self, Echo, EchoInput, EchoOutput, ECHO_ID};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A client of `server` with `policy` and request timeouts that a paused clock never reaches.
fn paused_client(server: &runcomfy_fake::FakeServer, policy: PollPolicy) -> Client {
    server
        .client_builder()
        .poll_policy(policy)
        .request_timeout(Duration::from_secs(24 * 3600))
        .build()
        .unwrap()
}

fn scripted() -> Lifecycle {
    Lifecycle::new()
        .queue_positions(&[3, 2, 1])
        .state("starting", Span::Polls(2))
        .running(Span::Polls(2))
        .then_succeed_with(json!({"image": "https://cdn.example/out.png", "seed": 7}))
}

#[tokio::test]
async fn run_reports_progress_and_returns_the_typed_output() {
    let server = common::builder()
        .lifecycle(scripted())
        .start()
        .await
        .unwrap();
    let client = server
        .client_builder()
        .poll_policy(runcomfy_fake::fast_poll_policy().via(PollVia::Status))
        .build()
        .unwrap();
    let mut events = Vec::new();
    let out = client
        .endpoint::<Echo>()
        .run_with_progress(&EchoInput::new("a fox"), |p| events.push(p.clone()))
        .await
        .unwrap();
    assert_eq!(
        out,
        EchoOutput {
            image: Some("https://cdn.example/out.png".into()),
            images: None
        }
    );
    let Progress::Submitted { request_id } = &events[0] else {
        panic!("{events:?}")
    };
    assert!(server.job(request_id).is_some());
    assert_eq!(
        events[1..],
        [
            Progress::Queued { position: Some(3) },
            Progress::Queued { position: Some(2) },
            Progress::Queued { position: Some(1) },
            Progress::Unknown {
                state: "starting".into()
            },
            Progress::Running,
            Progress::Done {
                state: JobState::Succeeded
            },
        ]
    );
    // Status mode: 7 status polls (3 queued, 2 starting, 2 running, 1 completed) then one result.
    assert_eq!(server.count(Route::Status), 8);
    assert_eq!(server.count(Route::Result), 1);
}

#[tokio::test]
async fn polling_the_result_alone_saves_a_request() {
    let server = common::builder()
        .lifecycle(scripted())
        .start()
        .await
        .unwrap();
    let client = server.client().unwrap();
    assert_eq!(
        client.poll_policy(),
        &runcomfy_fake::fast_poll_policy().via(PollVia::Result)
    );
    let mut events = Vec::new();
    client
        .run_with_progress::<Echo>(&EchoInput::new("a fox"), |p| events.push(p.clone()))
        .await
        .unwrap();
    assert_eq!(server.count(Route::Status), 0);
    assert_eq!(server.count(Route::Result), 8);
    // /result does not give queue positions.
    assert_eq!(events[1], Progress::Queued { position: None });
    assert_eq!(events.len(), 5, "{events:?}");
}

#[tokio::test]
async fn a_stored_handle_can_be_waited_on_later() {
    let server = common::server().await;
    let client = server.client().unwrap();
    let handle = client.submit::<Echo>(&EchoInput::new("x")).await.unwrap();
    let stored = serde_json::to_string(&handle).unwrap();
    assert!(stored.contains(ECHO_ID));

    // Another client, later: re-attach from the stored text, or from the id alone.
    let later = server.client().unwrap();
    let back: JobHandle<Echo> = serde_json::from_str(&stored).unwrap();
    assert_eq!(back, handle);
    let out = back.wait(&later).await.unwrap();
    assert!(out.image.is_some());
    let again = JobHandle::<Echo>::attach(handle.request_id()).unwrap();
    assert_eq!(later.wait(&again).await.unwrap(), out);
    let ep = later
        .endpoint::<Echo>()
        .attach(handle.request_id())
        .unwrap();
    assert_eq!(later.endpoint::<Echo>().wait(&ep).await.unwrap(), out);

    // A handle of another model is refused.
    let wrong = r#"{"request_id":"abc","model_id":"other/model"}"#;
    assert!(serde_json::from_str::<JobHandle<Echo>>(wrong).is_err());
    let untyped: RequestHandle = serde_json::from_str(wrong).unwrap();
    assert!(untyped.typed::<Echo>().is_err());
    assert!(serde_json::from_str::<RequestHandle>(r#"{"request_id":"a/b"}"#).is_err());
}

#[tokio::test]
async fn untyped_run_and_wait_return_the_raw_result() {
    let server = common::server().await;
    let client = server
        .client_builder()
        .poll_policy(runcomfy_fake::fast_poll_policy().include_cost(true))
        .build()
        .unwrap();
    let r = client
        .run_json(ECHO_ID, &json!({"prompt": "x"}))
        .await
        .unwrap();
    assert_eq!(r.state, JobState::Succeeded);
    assert!(r.output.unwrap()["image"].is_string());
    assert!(r.cost.is_some());
    let handle = client
        .submit_json(ECHO_ID, &json!({"prompt": "y"}))
        .await
        .unwrap();
    let r = RequestHandle::attach(handle.request_id())
        .unwrap()
        .wait(&client)
        .await
        .unwrap();
    assert_eq!(r.request_id, handle.request_id());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_wait_leaves_the_job_recoverable() {
    let server = common::builder()
        .lifecycle(Lifecycle::new().running(Span::Polls(10)).then_succeed())
        .start()
        .await
        .unwrap();
    let client = paused_client(&server, runcomfy_fake::fast_poll_policy());
    let handle = client.submit::<Echo>(&EchoInput::new("x")).await.unwrap();
    let first = tokio::time::timeout(ms(15), handle.wait(&client)).await;
    assert!(first.is_err(), "the wait should still be running");
    let polls = server.job(handle.request_id()).unwrap().polls;
    assert!((1..10).contains(&polls), "{polls}");
    // Nothing was cancelled; waiting again finishes the job.
    let out = handle.wait(&client).await.unwrap();
    assert!(out.image.is_some());
    assert_eq!(server.count(Route::Cancel), 0);
}

/// A run stopped after its submit (a timeout, a `select!`) has told its request id: the paid
/// job is re-attached and its output still comes, without a second submit.
#[tokio::test(start_paused = true)]
async fn a_run_stopped_after_its_submit_keeps_its_request_id() {
    let server = common::builder()
        .lifecycle(Lifecycle::new().running(Span::Polls(10)).then_succeed())
        .start()
        .await
        .unwrap();
    let client = paused_client(&server, runcomfy_fake::fast_poll_policy());
    let endpoint = client.endpoint::<Echo>();
    let mut run = endpoint.run(&EchoInput::new("x"));
    assert_eq!(
        run.request_id(),
        None,
        "nothing is sent before the run is polled"
    );
    assert_eq!(server.submits(), 0);
    let stopped = tokio::time::timeout(ms(15), &mut run).await;
    assert!(stopped.is_err(), "the run should still be waiting");
    let id = run
        .request_id()
        .expect("the id is known once submitted")
        .to_owned();
    drop(run);
    assert_eq!(server.job(&id).unwrap().cancels, 0);
    let out = endpoint.attach(&id).unwrap().wait(&client).await.unwrap();
    assert!(out.image.is_some());
    assert_eq!(server.submits(), 1);
}

/// A spawned run keeps its id readable through a receipt, even after its task is aborted.
#[tokio::test(start_paused = true)]
async fn an_aborted_run_task_leaves_its_id_in_the_receipt() {
    let server = common::builder()
        .lifecycle(Lifecycle::new().running(Span::Forever))
        .start()
        .await
        .unwrap();
    let client = paused_client(&server, runcomfy_fake::fast_poll_policy().deadline(None));
    let run = client.run_json(ECHO_ID, &json!({"prompt": "x"}));
    let receipt = run.receipt();
    let task = tokio::spawn(run);
    // The paused clock stands still while this loop keeps the runtime busy: the run
    // submits and then sleeps before its first poll.
    while receipt.request_id().is_none() {
        tokio::task::yield_now().await;
    }
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let id = receipt.request_id().unwrap();
    assert!(server.job(id).is_some());
    let status = RequestHandle::attach(id)
        .unwrap()
        .status(&client)
        .await
        .unwrap();
    assert_eq!(status.state, JobState::InProgress);
    assert_eq!(server.submits(), 1);
}

/// One garbled answer while polling does not end the wait: the job is paid for, its result
/// still comes. Both poll modes.
#[tokio::test(start_paused = true)]
async fn a_garbled_answer_while_polling_is_retried() {
    for (via, route) in [
        (PollVia::Result, Route::Result),
        (PollVia::Status, Route::Status),
    ] {
        let server = common::builder()
            .lifecycle(Lifecycle::new().running(Span::Polls(2)).then_succeed())
            .start()
            .await
            .unwrap();
        let client = paused_client(&server, runcomfy_fake::fast_poll_policy().via(via));
        let handle = client.submit::<Echo>(&EchoInput::new("x")).await.unwrap();
        server.inject_times(route, runcomfy_fake::Fault::MalformedJson, 1);
        let out = handle.wait(&client).await.unwrap();
        assert!(out.image.is_some(), "{via:?}");
        assert_eq!(server.submits(), 1);
    }
}

#[tokio::test]
async fn progress_is_also_a_stream() {
    let server = common::builder()
        .lifecycle(scripted())
        .start()
        .await
        .unwrap();
    let client = server.client().unwrap();
    let handle = client.submit::<Echo>(&EchoInput::new("x")).await.unwrap();
    let items: Vec<_> = handle.events(&client).collect().await;
    assert_eq!(items.len(), 5, "{items:?}");
    assert!(matches!(
        items[0],
        Ok(Event::Progress(Progress::Queued { .. }))
    ));
    assert!(matches!(
        items[3],
        Ok(Event::Progress(Progress::Done {
            state: JobState::Succeeded
        }))
    ));
    let Ok(Event::Output(out)) = &items[4] else {
        panic!("{items:?}")
    };
    assert_eq!(out.image.as_deref(), Some("https://cdn.example/out.png"));

    // An error ends the stream.
    let failing = server.create_job(ECHO_ID, json!({}), Lifecycle::new().then_fail(json!("bad")));
    let items: Vec<_> = RequestHandle::attach(&failing)
        .unwrap()
        .events(&client)
        .collect()
        .await;
    assert_eq!(items.len(), 2);
    assert!(matches!(items[1], Err(Error::JobFailed { .. })));
}

#[tokio::test]
async fn completed_on_status_then_failed_on_result() {
    let server = common::builder()
        .lifecycle(
            Lifecycle::new()
                .running(Span::Polls(1))
                .then_fail(json!({"message": "oom"})),
        )
        .start()
        .await
        .unwrap();
    let client = server
        .client_builder()
        .poll_policy(runcomfy_fake::fast_poll_policy().via(PollVia::Status))
        .build()
        .unwrap();
    let err = client.run::<Echo>(&EchoInput::new("x")).await.unwrap_err();
    assert!(matches!(err, Error::JobFailed { .. }), "{err:?}");
    assert_eq!(server.count(Route::Status), 2);
    assert_eq!(server.count(Route::Result), 1);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_cancels_a_queued_job_and_names_it() {
    let server = common::builder()
        .lifecycle(Lifecycle::new().queued(5, Span::Forever))
        .start()
        .await
        .unwrap();
    let client = paused_client(
        &server,
        runcomfy_fake::fast_poll_policy().deadline(Some(ms(150))),
    );
    let seen = Arc::new(Mutex::new(None));
    let seen2 = seen.clone();
    let err = client
        .run_with_progress::<Echo>(&EchoInput::new("x"), move |p| {
            if let Progress::Submitted { request_id } = p {
                *seen2.lock().unwrap() = Some(request_id.clone());
            }
        })
        .await
        .unwrap_err();
    let Error::Deadline {
        request_id,
        last_state,
        cancel,
        waited,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(Some(request_id.clone()), *seen.lock().unwrap());
    assert_eq!(*last_state, Some(JobState::InQueue));
    assert_eq!(*cancel, CancelAttempt::Answered(CancelOutcome::Cancelled));
    assert!(*waited >= ms(150) && *waited < ms(200), "{waited:?}");
    let text = err.to_string();
    assert!(
        text.contains(request_id) && text.contains("in_queue") && text.contains("cancelled"),
        "{text}"
    );
    assert_eq!(server.count(Route::Cancel), 1);
    assert_eq!(server.job(request_id).unwrap().cancels, 1);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_on_a_running_job_reports_not_cancellable() {
    let server = common::server().await;
    let id = server.create_job(ECHO_ID, json!({}), Lifecycle::new().running(Span::Forever));
    let client = paused_client(
        &server,
        runcomfy_fake::fast_poll_policy().deadline(Some(ms(60))),
    );
    let err = JobHandle::<Echo>::attach(&id)
        .unwrap()
        .wait(&client)
        .await
        .unwrap_err();
    let Error::Deadline {
        cancel, last_state, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        *cancel,
        CancelAttempt::Answered(CancelOutcome::NotCancellable)
    );
    assert_eq!(*last_state, Some(JobState::InProgress));
    assert!(err.to_string().contains("cancel: not_cancellable"), "{err}");
}

/// "cancel not confirmed" only when a cancel was sent and got no usable answer.
#[tokio::test(start_paused = true)]
async fn the_deadline_says_whether_a_cancel_was_sent() {
    let server = common::server().await;
    let policy = runcomfy_fake::fast_poll_policy().deadline(Some(ms(60)));
    let running = || server.create_job(ECHO_ID, json!({}), Lifecycle::new().running(Span::Forever));

    server.inject(Route::Cancel, runcomfy_fake::Fault::status(500));
    let client = paused_client(&server, policy.clone());
    let err = RequestHandle::attach(&running())
        .unwrap()
        .wait(&client)
        .await
        .unwrap_err();
    let Error::Deadline { cancel, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*cancel, CancelAttempt::NotConfirmed);
    assert!(err.to_string().contains("cancel not confirmed"), "{err}");
    assert_eq!(server.count(Route::Cancel), 1, "one attempt, not retried");

    let client = paused_client(&server, policy.cancel_on_deadline(false));
    let err = RequestHandle::attach(&running())
        .unwrap()
        .wait(&client)
        .await
        .unwrap_err();
    let Error::Deadline { cancel, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*cancel, CancelAttempt::NotSent);
    let text = err.to_string();
    assert!(
        text.contains("no cancel sent") && !text.contains("not confirmed"),
        "{text}"
    );
    assert_eq!(server.count(Route::Cancel), 1);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_interrupts_a_slow_poll_and_can_skip_the_cancel() {
    let server = common::server().await;
    let id = server.create_job(ECHO_ID, json!({}), Lifecycle::new().running(Span::Forever));
    server.inject(
        Route::Result,
        runcomfy_fake::Fault::Delay(Duration::from_secs(3)),
    );
    let client = paused_client(
        &server,
        runcomfy_fake::fast_poll_policy()
            .deadline(Some(ms(100)))
            .cancel_on_deadline(false),
    );
    let start = tokio::time::Instant::now();
    let err = RequestHandle::attach(&id)
        .unwrap()
        .wait(&client)
        .await
        .unwrap_err();
    assert!(start.elapsed() < ms(150), "{:?}", start.elapsed());
    let Error::Deadline {
        cancel, last_state, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((cancel, last_state), (&CancelAttempt::NotSent, &None));
    assert!(err.to_string().contains("none seen"), "{err}");
    assert_eq!(server.count(Route::Cancel), 0);
}

#[tokio::test]
async fn unknown_states_are_bounded() {
    let server = common::builder()
        .lifecycle(Lifecycle::new().state("warming_up", Span::Forever))
        .start()
        .await
        .unwrap();
    let client = server
        .client_builder()
        .poll_policy(runcomfy_fake::fast_poll_policy().max_unknown_polls(5))
        .build()
        .unwrap();
    let mut events = Vec::new();
    let err = client
        .run_with_progress::<Echo>(&EchoInput::new("x"), |p| events.push(p.clone()))
        .await
        .unwrap_err();
    let Error::UnknownState {
        state,
        polls,
        request_id,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((state.as_str(), *polls), ("warming_up", 6));
    assert_eq!(server.job(request_id).unwrap().polls, 6);
    assert_eq!(
        events[1],
        Progress::Unknown {
            state: "warming_up".into()
        }
    );
    assert_eq!(events.len(), 2, "one event per change, not per poll");
}

#[tokio::test]
async fn unknown_states_under_the_bound_are_waited_through() {
    let server = common::builder()
        .lifecycle(
            Lifecycle::new()
                .state("pending", Span::Polls(3))
                .running(Span::Polls(1))
                .state("processing", Span::Polls(3))
                .then_succeed(),
        )
        .start()
        .await
        .unwrap();
    let client = server
        .client_builder()
        .poll_policy(runcomfy_fake::fast_poll_policy().max_unknown_polls(3))
        .build()
        .unwrap();
    // 3 + 3 unknown polls in all, but never more than 3 in a row.
    client.run::<Echo>(&EchoInput::new("x")).await.unwrap();
}

#[tokio::test]
async fn the_manual_clock_drives_timed_jobs() {
    let server = common::builder()
        .manual_clock()
        .lifecycle(Lifecycle::timed(
            Duration::from_secs(5),
            Duration::from_secs(55),
        ))
        .start()
        .await
        .unwrap();
    let client = server.client().unwrap();
    let handle = client.submit::<Echo>(&EchoInput::new("x")).await.unwrap();
    assert_eq!(
        handle.status(&client).await.unwrap().state,
        JobState::InQueue
    );
    server.advance(Duration::from_secs(5));
    assert_eq!(
        handle.status(&client).await.unwrap().state,
        JobState::InProgress
    );
    server.advance(Duration::from_secs(54));
    assert_eq!(
        handle.result(&client, false).await.unwrap().state,
        JobState::InProgress
    );
    server.advance(Duration::from_secs(1));
    assert_eq!(
        handle.status(&client).await.unwrap().state,
        JobState::Completed
    );
    assert!(handle.wait(&client).await.unwrap().image.is_some());
    let c = handle.cancel(&client).await.unwrap();
    assert_eq!(c.outcome, CancelOutcome::NotCancellable);
}

/// With tokio's clock paused, a 10-minute job under the default poll policy finishes at once,
/// and costs the polls the pure schedule predicts.
#[tokio::test(start_paused = true)]
async fn a_paused_clock_measures_polls_per_job() {
    let server = common::builder()
        .lifecycle(Lifecycle::timed(
            Duration::from_secs(30),
            Duration::from_secs(570),
        ))
        .start()
        .await
        .unwrap();
    let policy = PollPolicy::default().jitter(0.0);
    let client = server
        .client_builder()
        .poll_policy(policy.clone())
        .request_timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    client.run::<Echo>(&EchoInput::new("x")).await.unwrap();
    let predicted = policy.simulate(Duration::from_secs(600), 0.0);
    assert_eq!(server.count(Route::Result) as u32, predicted.polls);
    assert!(started.elapsed() >= Duration::from_secs(600));
}

/// A model's history moves the first poll near the job's end, then polls tighter: on the
/// paused clock, a 60 s job costs the polls the learned schedule predicts, far fewer than the
/// default schedule, and its end is seen within 5% of its length.
#[tokio::test(start_paused = true)]
async fn a_known_history_polls_near_the_end() {
    let server = common::builder()
        .lifecycle(Lifecycle::timed(Duration::ZERO, Duration::from_secs(60)))
        .start()
        .await
        .unwrap();
    let learned = Learned::new(Duration::from_secs(60), Duration::from_secs(66));
    let policy = PollPolicy::default().jitter(0.0);
    let client = paused_client(&server, policy.clone().learned(Some(learned)));
    let started = tokio::time::Instant::now();
    client.run::<Echo>(&EchoInput::new("x")).await.unwrap();
    let seen = started.elapsed();
    let predicted = policy.simulate_learned(&learned, Duration::from_secs(60), 0.0);
    assert_eq!(server.count(Route::Result) as u32, predicted.polls);
    assert_eq!(predicted.polls, 5); // at 48 s, then every 3 s to 60 s
    let without = policy.simulate(Duration::from_secs(60), 0.0).polls;
    assert!(
        predicted.polls * 2 < without,
        "{} vs {without}",
        predicted.polls
    );
    assert!(seen >= Duration::from_secs(60));
    assert!(seen <= Duration::from_secs(63), "{seen:?}");

    // A stored handle (not watched from its submit) keeps the usual schedule: its age is
    // unknown.
    server.clear_requests();
    let handle = client.submit::<Echo>(&EchoInput::new("y")).await.unwrap();
    handle.wait(&client).await.unwrap();
    assert_eq!(
        server.count(Route::Result) as u32,
        policy.simulate(Duration::from_secs(60), 0.0).polls + 1
    );
}

#[tokio::test]
async fn an_endpoint_future_owns_its_client_and_can_be_spawned() {
    let server = common::server().await;
    let client = server.client().unwrap();
    let endpoint = client.endpoint::<Echo>();
    let task = tokio::spawn(endpoint.run(&EchoInput::new("x")));
    let submit = tokio::spawn(endpoint.submit(&EchoInput::new("y")));
    drop((client, endpoint));
    let out = task.await.unwrap().unwrap();
    assert!(out.image.is_some(), "{out:?}");
    let handle = submit.await.unwrap().unwrap();
    assert!(server.job(handle.request_id()).is_some());
    // An invalid input is refused by the future, before any request.
    let err = server
        .client()
        .unwrap()
        .endpoint::<Echo>()
        .run(&EchoInput::new(""))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation { .. }), "{err:?}");
    assert_eq!(server.count(Route::Submit), 2);
}

/// `run`, `submit` and `wait` spans carry `model_id` and `request_id` (recorded once known),
/// and the requests of a wait happen inside its span.
#[tokio::test(start_paused = true)]
async fn spans_name_the_model_and_the_job() {
    let capture = common::Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let server = common::builder()
        .lifecycle(Lifecycle::new().running(Span::Polls(2)).then_succeed())
        .start()
        .await
        .unwrap();
    let client = paused_client(&server, runcomfy_fake::fast_poll_policy());
    let run = client.endpoint::<Echo>().run(&EchoInput::new("x"));
    let receipt = run.receipt();
    run.await.unwrap();
    let id = receipt.request_id().unwrap();
    let named = format!("model_id={ECHO_ID} request_id={id}");
    for name in ["run", "submit", "wait"] {
        assert_eq!(
            capture.spans(name),
            [format!("{name}{{{named}}}")],
            "{name}"
        );
    }
    // Every poll of the wait is inside the wait span, inside the run span.
    let polls = capture.events("/result");
    assert!(polls.len() >= 3, "{polls:?}");
    for line in &polls {
        assert!(
            line.ends_with(&format!(" @ run{{{named}}} > wait{{{named}}}")),
            "{line}"
        );
    }
    // A stored handle's wait names its job too.
    JobHandle::<Echo>::attach(id)
        .unwrap()
        .wait(&client)
        .await
        .unwrap();
    assert_eq!(capture.spans("wait").len(), 2);
    assert_eq!(capture.spans("wait")[1], format!("wait{{{named}}}"));
}
