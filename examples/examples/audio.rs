//! An audio model, typed: ACE-Step 1.5 text-to-audio, with progress.
//!
//! ```sh
//! cargo run -p runcomfy-examples --example audio
//! ```

use anyhow::Context;
use runcomfy::models::acestep_ai::ace_step_1_5::text_to_audio::{endpoint, Input};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (client, _fake) = runcomfy_examples::connect().await?;
    let input = Input::new("lo-fi, mellow piano, vinyl crackle, 80 bpm")
        .lyrics("[instrumental]")
        .duration(30);
    let output = endpoint(&client)
        .run_with_progress(&input, runcomfy_examples::print_progress)
        .await
        .context("the audio job did not succeed")?;
    runcomfy_examples::print_media(&output);
    Ok(())
}
