//! Generation speed: the shipped schemas, and 500 synthetic models shaped like the catalog.
//! Target (issue 2): 500 models generated and formatted in at most 0.5 s.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench(c: &mut Criterion) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    let synthetic = tempfile::tempdir().expect("tempdir");
    runcomfy_codegen::synth::write(synthetic.path(), 500).expect("synthetic schemas");
    let options = runcomfy_codegen::Options::default();
    let mut group = c.benchmark_group("generate");
    group.sample_size(10);
    group.bench_function("shipped", |b| {
        b.iter(|| runcomfy_codegen::generate(&shipped, &options).expect("generate"))
    });
    group.bench_function("synthetic-500", |b| {
        b.iter(|| runcomfy_codegen::generate(synthetic.path(), &options).expect("generate"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
