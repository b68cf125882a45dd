//! The generator on hard schemas: the fixture corpus of `fixtures/hard` (each answered
//! within 2 s, with work linear in its size), and random schemas built from the keywords real
//! APIs use (no panic, no hang, code that parses or a diagnostic).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use runcomfy_codegen::diag::Diagnostics;
use runcomfy_codegen::load::ModelFiles;
use runcomfy_codegen::{catalog, emit, normalize, render, Options};
use serde_json::{json, Value};

fn hard() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hard")
}

/// Every model folder below `dir`, as `(id, folder)`.
fn model_dirs(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d.join("input.json").is_file() {
            let id = d
                .strip_prefix(dir)
                .expect("below")
                .to_string_lossy()
                .into_owned();
            out.push((id, d.clone()));
        }
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The whole pipeline on in-memory schemas: `Ok(code)` or the diagnostics.
fn pipeline(id: &str, input: Value, output: Option<Value>) -> Result<(String, usize), String> {
    let files = ModelFiles {
        id: id.to_owned(),
        input: (PathBuf::from("input.json"), input),
        output: output.map(|o| (PathBuf::from("output.json"), o)),
    };
    let mut diags = Diagnostics::default();
    let model = normalize::normalize(&files, &mut diags);
    let Some(model) = model else {
        return Err(diags.to_string());
    };
    let nodes = model.nodes;
    let catalog = catalog::build(&[model], &mut diags);
    if !diags.is_empty() {
        return Err(diags.to_string());
    }
    let tokens = emit::emit(&catalog, &Options::for_crate("Models"));
    // Generated code that does not parse is a generator bug, never an answer.
    let code = render::render(tokens, "test").map_err(|e| format!("BUG: {e}"))?;
    Ok((code, nodes))
}

/// Runs `f` on another thread; `None` when it did not answer within `limit` (a hang).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

/// The JSON objects of a file: an upper bound of its schema nodes.
fn objects(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(objects).sum::<usize>(),
        Value::Array(a) => a.iter().map(objects).sum(),
        _ => 0,
    }
}

fn read(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).expect("fixture is JSON"))
}

#[test]
fn every_hard_fixture_generates_fast_and_linearly() {
    let models = model_dirs(&hard());
    assert!(models.len() >= 20, "{} fixtures", models.len());
    for (id, dir) in models {
        let input = read(&dir.join("input.json")).expect("input");
        let output = read(&dir.join("output.json"));
        let size = objects(&input) + output.as_ref().map_or(0, objects);
        let run_id = format!("hard/{}", id.replace('/', "-"));
        let answer = within(Duration::from_secs(2), move || {
            pipeline(&run_id, input, output)
        })
        .unwrap_or_else(|| panic!("{id}: no answer within 2 s"));
        let (code, nodes) = answer.unwrap_or_else(|d| panic!("{id} refused:\n{d}"));
        // Each ref target is normalized once: nodes stay within a small multiple of the file
        // (a ref to the root normalizes the root a second time, `type` lists split once).
        assert!(
            nodes <= 3 * size + 8,
            "{id}: {nodes} nodes for {size} JSON objects"
        );
        assert!(!code.contains("Unnamed"), "{id}");
    }
}

#[test]
fn refs_to_the_root_answer_at_once() {
    // The three-ref case of issue 9 (40 s and 1 GB before), and a wider one.
    for n in [3, 50] {
        let props: serde_json::Map<String, Value> = (0..n)
            .map(|i| (format!("p{i}"), json!({"$ref": "#"})))
            .collect();
        let schema = json!({"type": "object", "properties": props});
        let answer = within(Duration::from_secs(2), move || {
            pipeline("a/b", schema, None)
        })
        .expect("answers within 2 s");
        let (code, nodes) = answer.expect("accepted");
        assert!(nodes <= 2 * (n + 2), "{nodes} nodes");
        assert!(code.contains("pub p0: Option<Box<Input>>"), "{code}");
    }
}

#[test]
fn two_enums_of_one_definition_get_two_types() {
    let dir = hard().join("pydantic/lora-literals");
    let input = read(&dir.join("input.json")).expect("input");
    let (code, _) = pipeline("a/b", input, None).expect("accepted");
    assert!(code.contains("pub mode: LoraMode,"), "{code}");
    assert!(code.contains("pub target: LoraTarget,"), "{code}");
    assert!(code.contains("#[serde(rename = \"text_encoder\")]"));
}

/// A random schema built from the keywords of real APIs, at most `depth` levels deep.
fn schema(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(json!({"type": "string"})),
        Just(json!({"type": "integer", "minimum": 0, "maximum": 9})),
        Just(json!({"type": "number", "exclusiveMinimum": 0})),
        Just(json!({"type": "boolean"})),
        Just(json!({"enum": ["a", "b", null]})),
        Just(json!({"enum": [1, 2]})),
        Just(json!({"const": "k"})),
        Just(json!({"maximum": 3})),
        Just(json!({"maxLength": 2, "pattern": "^[a-z]*$"})),
        Just(json!({"type": ["string", "null"]})),
        Just(json!({"$ref": "#"})),
        Just(json!({"$ref": "#/$defs/D"})),
        Just(json!({"$ref": "#/$defs/E"})),
        Just(json!({})),
        Just(json!({"type": "string", "format": "uri"})),
    ];
    leaf.prop_recursive(depth, 48, 4, |inner| {
        prop_oneof![
            proptest::collection::btree_map("[a-z]{1,3}", inner.clone(), 1..4).prop_map(|props| {
                let required: Vec<&String> = props.keys().take(1).collect();
                json!({"type": "object", "properties": props, "required": required})
            }),
            inner.clone().prop_map(|i| json!({"type": "array", "items": i, "maxItems": 3})),
            proptest::collection::vec(inner.clone(), 2..4).prop_map(|v| json!({"anyOf": v})),
            proptest::collection::vec(inner.clone(), 2..4).prop_map(|v| json!({"oneOf": v})),
            proptest::collection::vec(inner.clone(), 1..3).prop_map(|v| json!({"allOf": v})),
            inner.clone().prop_map(|i| json!({"type": "object", "additionalProperties": i})),
            inner.clone().prop_map(|i| json!({"type": "object", "patternProperties": {"^x": i}, "additionalProperties": false})),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| json!({"type": "object", "properties": {"m": {"type": "string"}}, "if": a, "then": b})),
            inner.clone().prop_map(|i| json!({"not": i})),
            inner.prop_map(|i| json!({"type": ["object", "string"], "properties": {"v": i}, "maxLength": 3})),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random schemas: the pipeline answers within 2 s with code that parses, or with
    /// diagnostics; it never panics.
    #[test]
    fn random_schemas_never_panic_nor_hang(
        props in proptest::collection::btree_map("[a-z]{1,4}", schema(4), 1..5),
        d in schema(2),
        e in schema(2),
    ) {
        let input = json!({"type": "object", "properties": props, "$defs": {"D": d, "E": e}});
        let shown = input.to_string();
        let answer = within(Duration::from_secs(2), move || {
            std::panic::catch_unwind(|| pipeline("fuzz/case", input, None)).map_err(|_| ())
        });
        let answer = answer.unwrap_or_else(|| panic!("no answer within 2 s: {shown}"));
        let result = answer.unwrap_or_else(|_| panic!("panicked on {shown}"));
        if let Err(d) = result {
            prop_assert!(!d.starts_with("BUG"), "{d}\n{shown}");
        }
    }
}
