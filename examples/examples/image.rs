//! An image model, typed: Wan 2.7 text-to-image, with progress.
//!
//! ```sh
//! cargo run -p runcomfy-examples --example image
//! ```

use anyhow::Context;
use runcomfy::models::wan_ai::wan_2_7::text_to_image::{endpoint, ImageSize, Input};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (client, _fake) = runcomfy_examples::connect().await?;
    let input = Input::new("A lighthouse on a cliff at dawn, watercolor")
        .image_size(ImageSize::Landscape169)
        .max_images(2)
        .seed(42);
    let output = endpoint(&client)
        .run_with_progress(&input, runcomfy_examples::print_progress)
        .await
        .context("the image job did not succeed")?;
    runcomfy_examples::print_media(&output);
    Ok(())
}
