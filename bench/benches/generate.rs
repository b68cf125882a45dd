//! Generation speed (issue 5): the shipped schemas and synthetic sets of 100, 500 and 1000
//! models, with our generator (`runcomfy_codegen::generate`: load, normalize, catalog, emit,
//! prettyplease) and with typify 0.8 (the same schemas normalized only as far as typify needs,
//! written beforehand; timed: read, parse, one `TypeSpace` per schema, prettyplease). Both
//! use every core.
//!
//! `cargo bench -p runcomfy-bench --bench generate`: criterion's figures, then the ratio
//! ours/typify per set from interleaved rounds (printed last).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use runcomfy_bench::typify_gen;

// The allocator runcomfy-codegen's binary and runtime/build.rs use; typify runs under it too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Set {
    name: String,
    ours: PathBuf,
    typify: PathBuf,
}

fn ours(dir: &Path) -> usize {
    let options = runcomfy_codegen::Options::for_crate("BenchModels");
    runcomfy_codegen::generate(dir, &options)
        .expect("ours")
        .code
        .len()
}

fn typify(dir: &Path) -> usize {
    typify_gen::generate(dir).expect("typify").len()
}

fn sets(tmp: &Path) -> Vec<Set> {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    let mut sets = vec![Set {
        name: "shipped".into(),
        typify: tmp.join("shipped-typify"),
        ours: shipped,
    }];
    for n in [100, 500, 1000] {
        let ours = tmp.join(format!("synthetic-{n}"));
        runcomfy_codegen::synth::write(&ours, n).expect("synthetic schemas");
        sets.push(Set {
            name: format!("synthetic-{n}"),
            typify: tmp.join(format!("synthetic-{n}-typify")),
            ours,
        });
    }
    for s in &sets {
        typify_gen::write_normalized(&s.ours, &s.typify).expect("normalized schemas");
    }
    sets
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` runs bench targets too: the setup is too heavy for that.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let sets = sets(tmp.path());
    let mut c = Criterion::default().configure_from_args();
    for s in &sets {
        let mut group = c.benchmark_group(format!("generate/{}", s.name));
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(5));
        group.bench_function(BenchmarkId::new("ours", &s.name), |b| {
            b.iter(|| ours(&s.ours))
        });
        group.bench_function(BenchmarkId::new("typify", &s.name), |b| {
            b.iter(|| typify(&s.typify))
        });
        group.finish();
    }
    c.final_summary();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average: {}", load.trim());
    for s in &sets {
        let rounds = if s.name == "synthetic-1000" { 5 } else { 7 };
        let (mut o, mut t) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            for side in [round % 2, 1 - round % 2] {
                let started = Instant::now();
                if side == 0 {
                    ours(&s.ours);
                } else {
                    typify(&s.typify);
                }
                let secs = started.elapsed().as_secs_f64();
                if side == 0 { &mut o } else { &mut t }.push(secs);
            }
        }
        let (o, t) = (median(&mut o), median(&mut t));
        println!(
            "generate {}: ours {:.1} ms, typify {:.1} ms; ratio ours/typify: {:.2}",
            s.name,
            o * 1e3,
            t * 1e3,
            o / t
        );
    }
}
