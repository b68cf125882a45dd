//! Small real media files (a PNG, a WAV, a WebM clip): the fake's own, so the outputs a test
//! serves and the ones the standalone fake serves are made one way.

#[allow(unused_imports)]
pub use runcomfy_fake::media::{png, wav, WEBM};
