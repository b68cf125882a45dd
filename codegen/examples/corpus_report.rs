//! The corpus report of README: for every model below each DIR, whether the generator
//! accepts it (the whole pipeline: normalize, catalog, emit, format) or the first reason it
//! refuses it, and the slowest model.
//! `cargo run --release -p runcomfy-codegen --example corpus_report -- DIR...`
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use runcomfy_codegen::{catalog, emit, load, normalize, render, Diagnostics, Options};

fn main() {
    let mut slowest: (Duration, String) = (Duration::ZERO, String::new());
    for dir in std::env::args().skip(1) {
        let mut diags = Diagnostics::default();
        let loaded = load::load(dir.as_ref(), &mut diags);
        let unreadable = diags.items().len();
        let (mut accepted, mut refused) = (0, BTreeMap::<String, Vec<String>>::new());
        for files in &loaded.models {
            let t = Instant::now();
            let mut d = Diagnostics::default();
            let result = normalize::normalize(files, &mut d).and_then(|m| {
                let cat = catalog::build(&[m], &mut d);
                let code = render::render(emit::emit(&cat, &Options::for_crate("M")), "report");
                (d.is_empty() && code.is_ok()).then_some(())
            });
            let took = t.elapsed();
            if took > slowest.0 {
                slowest = (took, files.id.clone());
            }
            match (result, d.items().first()) {
                (Some(()), _) => accepted += 1,
                (None, Some(first)) => refused
                    .entry(first.message.clone())
                    .or_default()
                    .push(files.id.clone()),
                (None, None) => refused
                    .entry("generated code does not parse".into())
                    .or_default()
                    .push(files.id.clone()),
            }
        }
        let n_refused: usize = refused.values().map(Vec::len).sum();
        println!(
            "{dir}: {} models, {accepted} accepted, {n_refused} refused, {unreadable} unreadable",
            loaded.models.len()
        );
        for (reason, ids) in refused {
            println!("  refused ({}): {reason}: {}", ids.len(), ids.join(", "));
        }
    }
    println!(
        "slowest: {} in {:.1} ms",
        slowest.1,
        slowest.0.as_secs_f64() * 1e3
    );
}
