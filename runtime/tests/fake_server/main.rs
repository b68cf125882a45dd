//! The client against the fake server, over real HTTP on 127.0.0.1.

#[cfg(feature = "store")]
mod batch;
#[cfg(feature = "store")]
mod batch_ends;
mod common;
mod download;
mod errors;
mod files;
mod retry;
#[cfg(feature = "store")]
mod store;
mod wait;
mod wire;

/// The store's tests need the `store` feature (the workspace build enables it through
/// `runcomfy-bench`): a build without it shows them as one ignored test, with the reason.
#[cfg(not(feature = "store"))]
#[test]
#[ignore = "the store and batch tests need the `store` feature (cargo test -p runcomfy --features store)"]
fn store_and_batch_tests() {
    panic!("built without the `store` feature");
}
