//! Prints how long each pipeline stage takes on a schema folder: `cargo run --release -p runcomfy-codegen --example stages -- DIR`.
use std::time::Instant;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "schemas".into());
    let dir = std::path::Path::new(&dir);
    let mut diags = runcomfy_codegen::Diagnostics::default();
    let t = Instant::now();
    let loaded = runcomfy_codegen::load::load(dir, &mut diags);
    let t_load = t.elapsed();
    let t = Instant::now();
    let models: Vec<_> = loaded
        .models
        .iter()
        .filter_map(|f| runcomfy_codegen::normalize::normalize(f, &mut diags))
        .collect();
    let t_norm = t.elapsed();
    let t = Instant::now();
    let catalog = runcomfy_codegen::catalog::build(&models, &mut diags);
    let t_cat = t.elapsed();
    let t = Instant::now();
    let tokens = runcomfy_codegen::emit::emit(&catalog, &runcomfy_codegen::Options::default());
    let t_emit = t.elapsed();
    let t = Instant::now();
    let file: syn::File = syn::parse2(tokens).expect("parse");
    let t_parse = t.elapsed();
    let t = Instant::now();
    let text = prettyplease::unparse(&file);
    let t_print = t.elapsed();
    println!("models {} bytes {}", models.len(), text.len());
    println!("load {t_load:?} normalize {t_norm:?} catalog {t_cat:?} emit {t_emit:?} parse {t_parse:?} print {t_print:?}");
}
