//! The client against the fake server, over real HTTP on 127.0.0.1.

#[cfg(feature = "store")]
mod batch;
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
/// `runcomfy-bench`); under `CI` a build without it fails instead of skipping them.
#[cfg(not(feature = "store"))]
#[test]
fn the_store_tests_ran() {
    if std::env::var_os("CI").is_some() {
        panic!("the store tests were not built: enable the `store` feature of runcomfy");
    }
    eprintln!("SKIPPED store tests: build with `--features store`");
}
