//! Shared code of the issue-5 benchmarks (`cargo bench -p runcomfy-bench`, `scripts/bench-*`):
//! typify as the baseline generator, the throwaway crates of the compile-time scripts, and
//! stripped variants of our output to attribute compile time.

pub mod crates;
pub mod tagged_alloc;
pub mod typify_gen;
pub mod variants;
