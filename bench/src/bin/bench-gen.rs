//! Writes the throwaway crates of `scripts/bench-compile` and `scripts/bench-features`.
//!
//! ```text
//! bench-gen compile OUT [--count N] [--variants a,b,...]   ours, typify, ours-<variant>
//! bench-gen features OUT [--count N]                       one feature per vendor
//! ```

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use runcomfy_bench::crates;
use runcomfy_bench::variants::Variant;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench-gen (compile|features) OUT [--count N] [--variants a,b]";
    let command = args.next().context(usage)?;
    let out = PathBuf::from(args.next().context(usage)?);
    let mut count = 500;
    let mut variants = Vec::new();
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--count" => count = value.parse().context("--count")?,
            "--variants" => {
                for name in value.split(',').filter(|s| !s.is_empty()) {
                    let known: Vec<&str> = Variant::ALL.iter().map(|(n, _)| *n).collect();
                    variants.push(Variant::from_name(name).with_context(|| {
                        format!("unknown variant {name}; known: {}", known.join(", "))
                    })?);
                }
            }
            _ => bail!("unknown flag {flag}; {usage}"),
        }
    }
    match command.as_str() {
        "compile" => {
            let written = crates::write_compile_set(&out, count, &variants)?;
            for (dir, lines, bytes) in written.crates {
                println!(
                    "{:<28} {lines:>8} lines {:>8} KiB",
                    dir.file_name().unwrap_or_default().to_string_lossy(),
                    bytes / 1024
                );
            }
        }
        "features" => {
            let dir = crates::write_features_crate(&out, count)?;
            println!("{}", dir.display());
        }
        _ => bail!("{usage}"),
    }
    Ok(())
}
