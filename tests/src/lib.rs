//! Code generated from schemas outside `schemas/`, compiled under `#![deny(warnings)]` and
//! `#![deny(missing_docs)]`: the edge-case fixtures, and the shared corpus when present.
//! This crate is also the worked example of generating clients in one's own crate.
#![deny(warnings)]
#![deny(missing_docs)]

/// The edge-case fixtures of `codegen/tests/fixtures/edge`.
pub mod fixture_models {
    include!(concat!(env!("OUT_DIR"), "/fixtures.rs"));
}

/// The hard-schema corpus of `codegen/tests/fixtures/hard`: recursion, unions, `allOf`,
/// patterns, conditions, unsafe text, 1,000 properties. Named `models` because the
/// generated `for_each_hard_model!` macro names model paths from `$crate::models`.
pub mod models {
    include!(concat!(env!("OUT_DIR"), "/hard.rs"));
}

/// Every schema of `../shared/corpus` (RunComfy's and its peers').
#[cfg(has_corpus)]
pub mod corpus {
    include!(concat!(env!("OUT_DIR"), "/corpus.rs"));
}
