//! The client writing through a job store (feature `store`): a real SQLite file in a temporary
//! folder, the fake server over real HTTP.

use std::time::Duration;

use runcomfy::store::{self, SharedStore, State};
use runcomfy::{Client, Error, JobHandle, Progress};
use runcomfy_fake::{FakeServer, Fault, Lifecycle, Route, Span};
use serde_json::json;
use tokio::sync::mpsc;

use crate::common::{self, Echo, EchoInput, EchoOutput, ECHO_ID};

/// A store on a fresh SQLite file (the folder lives as long as the returned guard).
pub async fn sqlite_store() -> (SharedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&dir.path().join("jobs.db").display().to_string())
        .await
        .unwrap();
    (store, dir)
}

fn client(server: &FakeServer, store: &SharedStore) -> Client {
    server
        .client_builder()
        .poll_policy(runcomfy_fake::fast_poll_policy())
        .store(store.clone())
        .build()
        .unwrap()
}

/// A job that runs until the test ends.
fn endless() -> Lifecycle {
    Lifecycle::new().running(Span::Forever).then_succeed()
}

/// Sends every progress event to the returned channel.
fn progress_channel() -> (
    impl FnMut(&Progress) + Send,
    mpsc::UnboundedReceiver<Progress>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    (move |p: &Progress| drop(tx.send(p.clone())), rx)
}

/// Polls `run` until `rx` reports the job running, then drops it: a program that dies while
/// it waits.
async fn drop_when_running<F: std::future::Future>(
    run: F,
    mut rx: mpsc::UnboundedReceiver<Progress>,
) -> Option<String> {
    tokio::pin!(run);
    let mut request_id = None;
    loop {
        tokio::select! {
            _ = &mut run => panic!("an endless job ended"),
            event = rx.recv() => match event {
                Some(Progress::Submitted { request_id: id }) => request_id = Some(id),
                Some(Progress::Running) => return request_id,
                Some(_) => {}
                None => panic!("the progress channel closed"),
            },
        }
    }
}

#[tokio::test]
async fn an_untyped_run_dropped_mid_wait_left_its_request_id_in_the_store() {
    let server = common::builder()
        .lifecycle(endless())
        .start()
        .await
        .unwrap();
    let (store, _dir) = sqlite_store().await;
    let c = client(&server, &store);
    let input = json!({"prompt": "a lighthouse"});
    let (on_progress, rx) = progress_channel();
    let seen = drop_when_running(c.run_json_with_progress(ECHO_ID, &input, on_progress), rx)
        .await
        .expect("the run told its request id");

    // The program is gone; what it left behind:
    let jobs = server.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].request_id, seen);
    let record = store.job_by_request_id(&seen).await.unwrap().unwrap();
    assert_eq!(record.state, State::Submitted);
    assert_eq!(record.model_id, ECHO_ID);
    assert_eq!(record.input, input);
    assert_eq!(store.unfinished().await.unwrap().len(), 1);
    assert!(store.uncertain().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_typed_run_dropped_mid_wait_left_its_request_id_and_key_behind() {
    let server = common::builder()
        .lifecycle(endless())
        .start()
        .await
        .unwrap();
    let (store, _dir) = sqlite_store().await;
    let c = client(&server, &store);
    let endpoint = c.endpoint::<Echo>();

    // The `Run` form: its receipt outlives it.
    let run = endpoint.run(&EchoInput::new("a fox"));
    let receipt = run.receipt();
    let (on_progress, rx) = progress_channel();
    let other = endpoint.run_with_progress(&EchoInput::new("a wolf"), on_progress);
    let stopped = drop_when_running(other, rx).await.unwrap();
    // Polled until its submit returned (the id recorded, two commits on disk), then dropped
    // mid-wait: no wall-clock budget for the submit.
    let mut run = Box::pin(run);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while receipt.request_id().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no request id within 30 s"
        );
        tokio::select! {
            _ = &mut run => panic!("an endless job ended"),
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
    }
    drop(run);

    let id = receipt.request_id().expect("submitted").to_owned();
    let key = receipt.store_key().expect("recorded");
    let record = store.job(key).await.unwrap().unwrap();
    assert_eq!(record.request_id.as_deref(), Some(id.as_str()));
    assert_eq!(record.state, State::Submitted);
    assert_eq!(record.input, json!({"prompt": "a fox"}));
    let other = store.job_by_request_id(&stopped).await.unwrap().unwrap();
    assert_eq!(other.input, json!({"prompt": "a wolf"}));
    assert_eq!(server.submits(), 2);
}

#[tokio::test]
async fn a_finished_run_records_its_output_cost_and_run_time() {
    let server = common::builder()
        .lifecycle(
            Lifecycle::new()
                .running(Span::Polls(2))
                .then_succeed_with(json!({"image": "https://cdn.example/out.png"})),
        )
        .start()
        .await
        .unwrap();
    let (store, _dir) = sqlite_store().await;
    let c = client(&server, &store);
    let run = c.endpoint::<Echo>().run(&EchoInput::new("a kite"));
    let receipt = run.receipt();
    let out: EchoOutput = run.await.unwrap();
    assert_eq!(out.image.as_deref(), Some("https://cdn.example/out.png"));

    let record = store
        .job(receipt.store_key().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, State::Succeeded);
    assert_eq!(
        record.output,
        Some(json!({"image": "https://cdn.example/out.png"}))
    );
    // The waits asked for the cost because a store is set, and the store kept it.
    let asked: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.route == Route::Result)
        .map(|r| r.query.unwrap_or_default())
        .collect();
    assert!(!asked.is_empty());
    assert!(
        asked.iter().all(|q| q.contains("include_cost=true")),
        "{asked:?}"
    );
    let fake = c.result(receipt.request_id().unwrap(), true).await.unwrap();
    assert_eq!(record.cost_usd, fake.cost);
    assert!(record.cost_usd.is_some());
    // A live run's time feeds the model's history.
    assert!(record.run_time.is_some());
    let stats = store.duration_stats(ECHO_ID).await.unwrap().unwrap();
    assert_eq!(stats.samples, 1);
}

#[tokio::test]
async fn a_failed_job_and_a_reattached_handle_record_their_ends() {
    let server = common::builder()
        .lifecycle(Lifecycle::new().then_fail(json!({"message": "out of memory"})))
        .start()
        .await
        .unwrap();
    let (store, _dir) = sqlite_store().await;
    let c = client(&server, &store);
    let handle = c
        .endpoint::<Echo>()
        .submit(&EchoInput::new("a bee"))
        .await
        .unwrap();
    let key = handle.store_key().unwrap();
    assert_eq!(
        store.job(key).await.unwrap().unwrap().state,
        State::Submitted
    );
    // Re-attached from its id alone (as another process would): the end is found by id.
    let again = JobHandle::<Echo>::attach(handle.request_id()).unwrap();
    assert_eq!(again.store_key(), None);
    let err = again.wait(&c).await.unwrap_err();
    assert!(matches!(err, Error::JobFailed { .. }), "{err}");
    let record = store.job(key).await.unwrap().unwrap();
    assert_eq!(record.state, State::Failed);
    assert_eq!(record.error, Some(json!({"message": "out of memory"})));
    // Not watched from its submit: no run time to learn from.
    assert_eq!(record.run_time, None);
}

#[tokio::test]
async fn a_refused_submit_is_recorded_refused_and_creates_no_job() {
    let server = common::server().await;
    let (store, _dir) = sqlite_store().await;
    let c = client(&server, &store);
    // The fake's schema refuses `steps: 99` with 422.
    let err = c
        .submit_json(ECHO_ID, &json!({"prompt": "a cat", "steps": 99}))
        .await
        .unwrap_err();
    assert!(!err.may_have_submitted(), "{err}");
    let jobs = store.recent_jobs(10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, State::Refused);
    assert_eq!(jobs[0].request_id, None);
    assert!(jobs[0].error.is_some());
    assert_eq!(server.stats().jobs, 0);
    // A typed input that fails validation never reaches the store (nor the server).
    let err = c
        .endpoint::<Echo>()
        .submit(&EchoInput::new(""))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation { .. }), "{err}");
    assert_eq!(store.recent_jobs(10).await.unwrap().len(), 1);
    assert_eq!(server.submits(), 1);
}

#[tokio::test]
async fn a_connection_cut_after_the_post_is_uncertain_and_never_resent() {
    let server = common::server().await;
    let (store, _dir) = sqlite_store().await;
    let c = client(&server, &store);
    server.inject_times(Route::Submit, Fault::CloseAfterRead, 1);
    let input = json!({"prompt": "a river"});
    let err = c.run_json(ECHO_ID, &input).await.unwrap_err();
    assert!(err.may_have_submitted(), "{err}");

    // The server created the paid job; the client sent the POST once and knows it may exist.
    let stats = server.stats();
    assert_eq!(stats.requests_by_route.get("submit"), Some(&1));
    assert_eq!(stats.jobs, 1);
    let uncertain = store.uncertain().await.unwrap();
    assert_eq!(uncertain.len(), 1);
    assert_eq!(uncertain[0].state, State::Uncertain);
    assert_eq!(uncertain[0].input, input);
    assert!(uncertain[0].error.is_some());
    assert!(store.unfinished().await.unwrap().is_empty());
}

/// With a store, a run asks it how long the model's jobs take and polls first near the end:
/// a 1 s job under a policy that would poll every 10 ms costs a handful of polls.
#[tokio::test]
async fn a_run_learns_its_schedule_from_the_store() {
    let server = common::builder()
        .lifecycle(Lifecycle::timed(Duration::ZERO, Duration::from_secs(1)))
        .start()
        .await
        .unwrap();
    let (store, _dir) = sqlite_store().await;
    // The model's history: five jobs of one second.
    for i in 0..5 {
        let key = store
            .record_intent(ECHO_ID, &json!({"prompt": i}))
            .await
            .unwrap();
        store
            .record_submitted(key, &format!("old-{i}"))
            .await
            .unwrap();
        let finish = store::Finish::succeeded(json!({})).run_time(Duration::from_secs(1));
        store.record_finished(key, &finish).await.unwrap();
    }
    let every_10ms = runcomfy::PollPolicy::default()
        .delays(Duration::from_millis(10), 1.0, Duration::from_millis(100))
        .deadline(Some(Duration::from_secs(20)));
    let c = server
        .client_builder()
        .poll_policy(every_10ms)
        .store(store.clone())
        .build()
        .unwrap();
    c.run::<Echo>(&EchoInput::new("a bell")).await.unwrap();
    // 800 ms, then every 50 ms: about 5 polls (about 100 without the history).
    let polls = server.count(Route::Result);
    assert!((1..=8).contains(&polls), "{polls} polls");
    assert_eq!(
        store
            .duration_stats(ECHO_ID)
            .await
            .unwrap()
            .unwrap()
            .samples,
        6
    );

    // A policy told not to use the history keeps its own schedule (every 50 ms here).
    server.clear_requests();
    let fixed = c.with_poll_policy(
        runcomfy::PollPolicy::default()
            .delays(Duration::from_millis(50), 1.0, Duration::from_millis(50))
            .deadline(Some(Duration::from_secs(20)))
            .use_history(false),
    );
    fixed.run::<Echo>(&EchoInput::new("a drum")).await.unwrap();
    let polls = server.count(Route::Result);
    assert!(polls > 8, "{polls} polls");
}

#[tokio::test]
async fn outputs_wanted_in_a_folder_keep_a_success_saving_until_each_is_saved() {
    let server = common::builder()
        .lifecycle(
            Lifecycle::new()
                .running(Span::Polls(1))
                .then_succeed_with(json!({"image": "https://cdn.example/a.png", "seed": 3})),
        )
        .start()
        .await
        .unwrap();
    let (store, _dir) = sqlite_store().await;
    let c = client(&server, &store);
    let submitted = std::time::Instant::now();
    let handle = c
        .submit_json(ECHO_ID, &json!({"prompt": "a fox"}))
        .await
        .unwrap();
    let key = handle.store_key().unwrap();
    store
        .record_outputs_wanted(key, std::path::Path::new("out"))
        .await
        .unwrap();
    let result = handle.wait_submitted(&c, submitted, |_| {}).await.unwrap();
    assert!(result.output.is_some());
    let record = store.job(key).await.unwrap().unwrap();
    // Succeeded at RunComfy, not done here: its file is wanted and not saved.
    assert_eq!(record.state, State::Saving);
    assert_eq!(record.outputs_dir, Some(std::path::PathBuf::from("out")));
    assert_eq!(store.unfinished().await.unwrap().len(), 1);
    let outputs = store.outputs(key).await.unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0].url, "https://cdn.example/a.png");
    // Watched from its submit: the run time joins the model's history.
    assert!(record.run_time.is_some());
    let state = store
        .record_output_saved(
            key,
            "https://cdn.example/a.png",
            std::path::Path::new("out/a.png"),
        )
        .await
        .unwrap();
    assert_eq!(state, State::Succeeded);

    // Without a folder, the same success is done at once.
    let other = c
        .submit_json(ECHO_ID, &json!({"prompt": "a hen"}))
        .await
        .unwrap();
    other.wait(&c).await.unwrap();
    let record = store
        .job(other.store_key().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, State::Succeeded);
}
