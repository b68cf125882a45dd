//! HappyHorse 1.0 image-to-video, typed: submit, print progress, print the output.
//!
//! ```sh
//! cargo run -p runcomfy-examples --example quickstart            # against a fake server
//! RUNCOMFY_TOKEN=... cargo run -p runcomfy-examples --example quickstart   # the real API (paid)
//! ```

use anyhow::Context;
use runcomfy::models::happyhorse::happyhorse_1_0::image_to_video::{
    endpoint, Input, InputDuration, Output, Resolution,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (client, _fake) = runcomfy_examples::connect().await?;

    let input = Input::new(
        "https://playgrounds-storage-public.runcomfy.net/tools/7345/media-files/ref-promo.webp",
        "Slow cinematic camera drift around the subject, gentle wind moving hair.",
    )
    .resolution(Resolution::P1080)
    .duration(InputDuration::V5);

    // Submit first: the request id is the only handle on the paid job, so print it before
    // waiting. `endpoint.run(&input)` does both steps at once.
    let endpoint = endpoint(&client); // the same as `client.endpoint::<Model>()`
    let handle = endpoint.submit(&input).await.context("submit failed")?;
    println!("submitted: request id {}", handle.request_id());

    let output: Output = handle
        .wait_with_progress(&client, runcomfy_examples::print_progress)
        .await
        .with_context(|| format!("job {} did not succeed", handle.request_id()))?;

    if let Some(video) = &output.video {
        println!("video: {video}");
    }
    for video in output.videos.iter().flatten() {
        println!("video: {video}");
    }
    for image in output.image.iter().chain(output.images.iter().flatten()) {
        println!("image: {image}");
    }
    for (key, value) in &output.extra {
        println!("{key}: {value}");
    }
    Ok(())
}
