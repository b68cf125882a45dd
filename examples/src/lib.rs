//! Shared helpers for the examples: connect to the real API or to an in-process fake.

use std::time::Duration;

use runcomfy::{Client, PollPolicy, Progress};
use runcomfy_fake::{FakeServer, Lifecycle, Span};

/// A client for the real API when `RUNCOMFY_TOKEN` is set (at `RUNCOMFY_BASE_URL`, default
/// production); otherwise a fake RunComfy server started in this process, and a client aimed
/// at it. Keep the returned server alive as long as the client is used.
pub async fn connect() -> anyhow::Result<(Client, Option<FakeServer>)> {
    let has_token = std::env::var(runcomfy::TOKEN_ENV).is_ok_and(|t| !t.trim().is_empty());
    if has_token {
        let client = Client::from_env()?;
        println!("using the RunComfy API at {}", client.base_url());
        return Ok((client, None));
    }
    let server = FakeServer::builder()
        .all_models()
        .lifecycle(
            Lifecycle::new()
                .queue_positions(&[2, 1])
                .running(Span::Polls(3))
                .then_succeed(),
        )
        .start()
        .await?;
    println!(
        "{} is not set: running against a fake RunComfy server at {} (no job is paid for)",
        runcomfy::TOKEN_ENV,
        server.base_url()
    );
    let client = server
        .client_builder()
        .poll_policy(PollPolicy::default().delays(
            Duration::from_millis(100),
            1.5,
            Duration::from_millis(400),
        ))
        .build()?;
    Ok((client, Some(server)))
}

/// Prints one progress event.
pub fn print_progress(p: &Progress) {
    match p {
        Progress::Submitted { request_id } => println!("submitted: request id {request_id}"),
        Progress::Queued {
            position: Some(pos),
        } => println!("queued at position {pos}"),
        Progress::Queued { position: None } => println!("queued"),
        Progress::Running => println!("running"),
        Progress::Unknown { state } => println!("state {state:?} (waiting on)"),
        Progress::Done { state } => println!("done: {state}"),
        other => println!("{other:?}"),
    }
}

/// Prints every URL of a media output, and any extra keys.
pub fn print_media(output: &runcomfy::MediaOutput) {
    let singles = [&output.video, &output.image, &output.audio];
    let lists = [&output.videos, &output.images, &output.audios];
    for url in singles.into_iter().flatten() {
        println!("output: {url}");
    }
    for url in lists.into_iter().flatten().flatten() {
        println!("output: {url}");
    }
    for (key, value) in &output.extra {
        println!("output {key}: {value}");
    }
}
