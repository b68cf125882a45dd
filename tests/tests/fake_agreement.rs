//! The fake server and the generated typed `Input` (deserialize, then `validate()`) accept and
//! refuse the same bodies, for every shipped model and every edge fixture: both read the
//! schema through the generator (the fake through `runcomfy_codegen::dialect`).
//!
//! Instances are generated from the source schemas (valid ones; values at and past every
//! bound; wrong types; every enum value and one outside; nulls; missing required fields;
//! nested objects, items and union alternatives probed the same way) and sent over HTTP.
//! A body that deserializes into `Input` but does not serialize back to itself (serde reads a
//! `null` or a missing key as "unset" for an optional field) is not one the typed API can
//! send: the fake is judged on the body the typed `Input` would send instead.

use std::path::{Path, PathBuf};

use runcomfy::{Client, Model, Validate};
use runcomfy_fake::FakeServer;
use serde_json::{json, Map, Value};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixtures_dir() -> PathBuf {
    workspace().join("codegen/tests/fixtures/edge")
}

/// Instances of a schema in the RunComfy dialect.
struct Gen<'a> {
    root: &'a Value,
}

const DEPTH: usize = 4;

impl<'a> Gen<'a> {
    /// Follows local `$ref`s and single-schema `allOf`s.
    fn resolve(&self, mut s: &'a Value) -> &'a Value {
        for _ in 0..16 {
            if let Some(target) = s
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix('#'))
                .and_then(|p| self.root.pointer(p))
            {
                s = target;
            } else if let Some([single]) =
                s.get("allOf").and_then(Value::as_array).map(Vec::as_slice)
            {
                s = single;
            } else {
                break;
            }
        }
        s
    }

    /// The non-null alternatives of an `anyOf`/`oneOf`, or the schema itself.
    fn alternatives(&self, s: &'a Value) -> Vec<&'a Value> {
        let s = self.resolve(s);
        match s
            .get("anyOf")
            .or_else(|| s.get("oneOf"))
            .and_then(Value::as_array)
        {
            Some(list) => list
                .iter()
                .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                .map(|a| self.resolve(a))
                .collect(),
            None => vec![s],
        }
    }

    fn ty(s: &Value) -> String {
        let t = match s.get("type") {
            Some(Value::String(t)) => t.to_ascii_lowercase(),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .find(|t| t != "null")
                .unwrap_or_default(),
            _ if s.get("properties").is_some() => "object".to_owned(),
            _ if s.get("items").is_some() => "array".to_owned(),
            _ => String::new(),
        };
        match t.as_str() {
            "float" | "double" => "number".to_owned(),
            _ => t,
        }
    }

    fn valid(&self, s: &'a Value, depth: usize) -> Value {
        let s = self.alternatives(s)[0];
        if let Some(c) = s.get("const") {
            return c.clone();
        }
        if let Some(values) = s.get("enum").and_then(Value::as_array) {
            let default = s.get("default").filter(|d| values.contains(d));
            return default
                .or_else(|| values.iter().find(|v| !v.is_null()))
                .cloned()
                .unwrap_or(Value::Null);
        }
        match Self::ty(s).as_str() {
            "boolean" => json!(true),
            "integer" => json!(int_valid(s)),
            "number" => json!(num_valid(s)),
            "string" => json!(string_valid(s)),
            "array" => {
                let n = count(s, "minItems").unwrap_or(1).max(1) as usize;
                let item = match s.get("items") {
                    Some(items) if depth < DEPTH => self.valid(items, depth + 1),
                    Some(_) => return json!([]),
                    None => json!("https://example.com/a.png"),
                };
                Value::Array((0..n).map(|i| with_index(&item, i)).collect())
            }
            "object" => {
                let mut out = Map::new();
                for (k, p, required) in self.props(s) {
                    if required {
                        out.insert(k.clone(), self.valid(p, depth + 1));
                    }
                }
                Value::Object(out)
            }
            _ => json!("anything"),
        }
    }

    fn props(&self, s: &'a Value) -> Vec<(&'a String, &'a Value, bool)> {
        let required: Vec<&str> = s
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        s.get("properties")
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .map(|(k, p)| (k, p, required.contains(&k.as_str())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Values to try at a position of schema `s`, valid or not.
    fn probes(&self, s: &'a Value, depth: usize) -> Vec<(String, Value)> {
        let mut out = vec![("null".to_owned(), Value::Null)];
        if depth > DEPTH {
            return out;
        }
        for alt in self.alternatives(s) {
            out.push(("valid".to_owned(), self.valid(alt, depth)));
            out.extend(self.shape_probes(alt, depth));
        }
        out
    }

    fn shape_probes(&self, s: &'a Value, depth: usize) -> Vec<(String, Value)> {
        let mut out: Vec<(String, Value)> = Vec::new();
        let mut probe = |label: &str, v: Value| out.push((label.to_owned(), v));
        if let Some(c) = s.get("const") {
            probe("const", c.clone());
            probe(
                "not the const",
                match c {
                    Value::String(_) => json!("other"),
                    Value::Bool(b) => json!(!b),
                    other => json!(other.as_i64().unwrap_or(0) + 1),
                },
            );
            return out;
        }
        if let Some(values) = s.get("enum").and_then(Value::as_array) {
            for v in values {
                probe("enum value", v.clone());
            }
            let strings = values.iter().any(Value::is_string);
            probe(
                "not in enum",
                if strings {
                    json!("not-a-value")
                } else {
                    json!(999_999)
                },
            );
            probe("wrong type", if strings { json!(5) } else { json!("five") });
            return out;
        }
        match Self::ty(s).as_str() {
            "integer" => {
                for (kw, dir) in [
                    ("minimum", -1),
                    ("maximum", 1),
                    ("exclusiveMinimum", -1),
                    ("exclusiveMaximum", 1),
                ] {
                    if let Some(m) = s.get(kw).and_then(Value::as_f64) {
                        let m = m as i64;
                        probe(&format!("at {kw}"), json!(m));
                        probe(&format!("past {kw}"), json!(m + dir));
                        probe(&format!("inside {kw}"), json!(m - dir));
                    }
                }
                if let Some(m) = s.get("multipleOf").and_then(Value::as_i64) {
                    probe("off multipleOf", json!(int_valid(s) + 1));
                    probe("on multipleOf", json!(int_valid(s) + m));
                }
                if s.get("maximum").is_none() && s.get("exclusiveMaximum").is_none() {
                    probe("past i64", json!(1u64 << 63));
                    probe("u64 max", json!(u64::MAX));
                }
                if s.get("minimum").is_none() && s.get("exclusiveMinimum").is_none() {
                    probe("negative", json!(-3));
                }
                probe("fraction", json!(1.5));
                probe("wrong type", json!("five"));
            }
            "number" => {
                for (kw, dir) in [
                    ("minimum", -1.0),
                    ("maximum", 1.0),
                    ("exclusiveMinimum", -1.0),
                    ("exclusiveMaximum", 1.0),
                ] {
                    if let Some(m) = s.get(kw).and_then(Value::as_f64) {
                        probe(&format!("at {kw}"), json!(m));
                        probe(&format!("past {kw}"), json!(m + dir * 0.125));
                        probe(&format!("inside {kw}"), json!(m - dir * 0.125));
                    }
                }
                if let Some(m) = s.get("multipleOf").and_then(Value::as_f64) {
                    probe("off multipleOf", json!(num_valid(s) + m / 2.0));
                    probe("on multipleOf", json!(num_valid(s) + m));
                }
                probe("an integer", json!(1));
                probe("wrong type", json!("five"));
            }
            "string" => {
                if let Some(max) = count(s, "maxLength") {
                    probe("at maxLength (multibyte)", json!("é".repeat(max as usize)));
                    probe("past maxLength", json!("é".repeat(max as usize + 1)));
                }
                if let Some(min) = count(s, "minLength") {
                    probe("at minLength", json!("é".repeat(min as usize)));
                    if min > 0 {
                        probe("below minLength", json!("é".repeat(min as usize - 1)));
                    }
                }
                if s.get("pattern").is_some() {
                    probe("pattern mismatch", json!("!!!"));
                    probe("pattern digits", json!("123"));
                }
                probe("empty", json!(""));
                probe("wrong type", json!(5));
            }
            "boolean" => {
                probe("false", json!(false));
                probe("wrong type", json!("yes"));
            }
            "array" => {
                let items = s.get("items");
                let item = items
                    .map(|i| self.valid(i, depth + 1))
                    .unwrap_or_else(|| json!("https://example.com/a.png"));
                let list = |n: usize| Value::Array((0..n).map(|i| with_index(&item, i)).collect());
                if let Some(max) = count(s, "maxItems") {
                    probe("at maxItems", list(max as usize));
                    probe("past maxItems", list(max as usize + 1));
                }
                if let Some(min) = count(s, "minItems") {
                    if min > 0 {
                        probe("below minItems", list(min as usize - 1));
                    }
                }
                probe("empty", json!([]));
                if s.get("uniqueItems") == Some(&json!(true)) {
                    probe("duplicates", json!([item.clone(), item.clone()]));
                }
                let fill = count(s, "minItems").unwrap_or(1).max(1) as usize;
                match items {
                    Some(items) => {
                        for (label, p) in self.probes(items, depth + 1) {
                            let mut v = vec![p];
                            v.extend((1..fill).map(|i| with_index(&item, i)));
                            out.push((format!("item {label}"), Value::Array(v)));
                        }
                    }
                    None => out.push(("item wrong type".to_owned(), json!([5]))),
                }
                out.push(("wrong type".to_owned(), json!("not a list")));
            }
            "object" => {
                let base = self.valid(s, depth);
                for (k, p, required) in self.props(s) {
                    for (label, v) in self.probes(p, depth + 1) {
                        let mut inst = base.clone();
                        inst[k.as_str()] = v;
                        out.push((format!("{k}: {label}"), inst));
                    }
                    if required {
                        let mut inst = base.clone();
                        if let Some(map) = inst.as_object_mut() {
                            map.remove(k.as_str());
                        }
                        out.push((format!("{k}: missing"), inst));
                    }
                }
                out.push(("wrong type".to_owned(), json!([])));
            }
            _ => {}
        }
        out
    }

    /// Top-level instances: required only, every property, and each property's probes.
    fn instances(&self) -> Vec<(String, Value)> {
        let base = self.valid(self.root, 0);
        let mut full = base.clone();
        for (k, p, _) in self.props(self.root) {
            full[k.as_str()] = self.valid(p, 1);
        }
        let mut out = vec![
            ("required only".to_owned(), base),
            ("every property".to_owned(), full),
        ];
        out.extend(
            self.shape_probes(self.root, 0)
                .into_iter()
                .filter(|(label, _)| label != "wrong type"),
        );
        out
    }
}

fn count(s: &Value, kw: &str) -> Option<u64> {
    s.get(kw).and_then(Value::as_u64)
}

fn int_valid(s: &Value) -> i64 {
    let lo = s.get("minimum").and_then(Value::as_f64).or_else(|| {
        s.get("exclusiveMinimum")
            .and_then(Value::as_f64)
            .map(|m| m + 1.0)
    });
    let v = lo.unwrap_or(0.0) as i64;
    match s.get("multipleOf").and_then(Value::as_i64) {
        Some(m) if m > 0 => (v + m - 1).div_euclid(m) * m,
        _ => v,
    }
}

fn num_valid(s: &Value) -> f64 {
    let max = s
        .get("maximum")
        .or_else(|| s.get("exclusiveMaximum"))
        .and_then(Value::as_f64);
    let v = match (
        s.get("minimum").and_then(Value::as_f64),
        s.get("exclusiveMinimum").and_then(Value::as_f64),
    ) {
        (Some(m), _) => m,
        (None, Some(m)) => match max {
            Some(hi) => (m + hi) / 2.0,
            None => m + 1.0,
        },
        (None, None) => 0.0,
    };
    match s.get("multipleOf").and_then(Value::as_f64) {
        Some(m) if m > 0.0 => (v / m).ceil() * m,
        _ => v,
    }
}

fn string_valid(s: &Value) -> String {
    if s.get("format").is_some() {
        return "https://example.com/a.png".to_owned();
    }
    let min = count(s, "minLength").unwrap_or(1).max(1) as usize;
    let max = count(s, "maxLength").map_or(usize::MAX, |m| m as usize);
    let n = min.min(max);
    let candidates = ["x", "a", "0", "ab"].map(|c| c.repeat(n));
    // A pattern the `regex` crate cannot compile is not checked (graceful mode): any
    // candidate goes.
    match s
        .get("pattern")
        .and_then(Value::as_str)
        .and_then(|p| regex::Regex::new(p).ok())
    {
        Some(re) => candidates
            .iter()
            .find(|c| re.is_match(c))
            .cloned()
            .unwrap_or_else(|| candidates[0].clone()),
        None => candidates[0].clone(),
    }
}

/// Distinct items, so `uniqueItems` holds.
fn with_index(item: &Value, i: usize) -> Value {
    match item {
        Value::String(s) if s.starts_with("https://") => {
            json!(format!("https://example.com/{i}.png"))
        }
        Value::String(s) => json!(format!("{s}{}", "x".repeat(i))),
        other => other.clone(),
    }
}

/// A body for a message, cut to 300 characters.
fn short(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}

#[derive(Default)]
struct Tally {
    models: usize,
    instances: usize,
    accepted: usize,
    refused: usize,
    /// Bodies the typed API would send differently (judged on the re-serialized body).
    normalized: usize,
}

async fn agree<M: Model>(
    server: &FakeServer,
    client: &Client,
    schema_file: &Path,
    tally: &mut Tally,
) where
    M::Input: serde::de::DeserializeOwned + serde::Serialize,
{
    let text = std::fs::read_to_string(schema_file).expect("schema file");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    let cases = Gen { root: &schema }.instances();
    assert!(cases.len() > 3, "{}: too few instances", M::ID);
    let (mut accepted, mut refused) = (0, 0);
    for (label, inst) in cases {
        let (typed_ok, body) = match serde_json::from_value::<M::Input>(inst.clone()) {
            Err(_) => (false, inst.clone()),
            Ok(input) => {
                let body = serde_json::to_value(&input).expect("serialize");
                if body != inst {
                    tally.normalized += 1;
                }
                (input.validate().is_ok(), body)
            }
        };
        let before = server.job_count();
        let _ = client.submit_json(M::ID, &body).await;
        let fake_ok = server.job_count() > before;
        assert_eq!(
            fake_ok,
            typed_ok,
            "{} [{label}]: the fake {} {} but the typed Input {} it",
            M::ID,
            if fake_ok { "accepts" } else { "refuses" },
            short(&body),
            if typed_ok { "accepts" } else { "refuses" },
        );
        tally.instances += 1;
        if typed_ok {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    assert!(accepted >= 2, "{}: only {accepted} valid instances", M::ID);
    assert!(refused >= 2, "{}: only {refused} invalid instances", M::ID);
    tally.accepted += accepted;
    tally.refused += refused;
    tally.models += 1;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_and_the_typed_input_agree_on_every_shipped_model() {
    let server = FakeServer::builder()
        .all_models()
        .start()
        .await
        .expect("fake server");
    let client = server.client().expect("client");
    let schemas = workspace().join("schemas");
    let mut tally = Tally::default();
    macro_rules! check {
        ($id:expr, $model:ty) => {
            agree::<$model>(
                &server,
                &client,
                &schemas.join($id).join("input.json"),
                &mut tally,
            )
            .await;
        };
    }
    runcomfy::for_each_model!(check);
    assert_eq!(tally.models, runcomfy::models::ALL.len());
    assert!(tally.models >= 10);
    assert!(
        tally.instances > 30 * tally.models,
        "{} instances",
        tally.instances
    );
    println!(
        "{} models, {} instances: {} accepted, {} refused by both ({} judged on the body the typed Input sends)",
        tally.models, tally.instances, tally.accepted, tally.refused, tally.normalized
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_and_the_typed_input_agree_on_every_edge_fixture() {
    use runcomfy_tests::fixture_models::fixtures::edge;
    use runcomfy_tests::fixture_models::fixtures::{seed_ja, seed_zh};
    let dir = fixtures_dir();
    let server = FakeServer::builder()
        .models_from_dir(&dir)
        .start()
        .await
        .expect("fake server");
    let client = server.client().expect("client");
    let mut tally = Tally::default();
    macro_rules! check {
        ($($model:ty),* $(,)?) => {
            $(
                let id = <$model as Model>::ID;
                agree::<$model>(&server, &client, &dir.join(id).join("input.json"), &mut tally).await;
            )*
        };
    }
    check!(
        edge::additional_properties_schema::Model,
        edge::condition_on_optional_string::Model,
        edge::graceful_fallbacks::Model,
        edge::pattern_properties_any::Model,
        edge::properties_beside_oneof::Model,
        edge::rules_not_fully_checked::Model,
        edge::constraints::Model,
        edge::defaults_and_enums::Model,
        edge::enum_values::Model,
        edge::float_spellings::Model,
        edge::media_formats::Model,
        edge::naming_collisions::Model,
        edge::naming_keywords::Model,
        edge::nested::Model,
        edge::nullable::Model,
        edge::output_bare::Model,
        edge::output_wrapped::Model,
        edge::r#const::Model,
        edge::ref_components_allof::Model,
        edge::ref_definitions::Model,
        edge::ref_defs::Model,
        edge::ref_recursive::Model,
        edge::unions::Model,
        seed_ja::happyhorse_i2v::Model,
        seed_zh::happyhorse_i2v::Model,
    );
    // Every fixture folder is listed above.
    assert_eq!(tally.models, server.model_ids().len());
    println!(
        "{} fixtures, {} instances: {} accepted, {} refused by both ({} judged on the body the typed Input sends)",
        tally.models, tally.instances, tally.accepted, tally.refused, tally.normalized
    );
}

#[tokio::test]
async fn a_schema_the_generator_refuses_is_refused_by_the_fake() {
    let int = r#"{"type": "object", "properties": {"steps": {"type": "int"}}}"#;
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = dir.path().join("acme/int-model");
    std::fs::create_dir_all(&folder).expect("mkdir");
    std::fs::write(folder.join("input.json"), int).expect("write");

    let generator = runcomfy_codegen::check(dir.path()).expect_err("the generator refuses int");
    assert!(
        generator.to_string().contains("unsupported type \"int\""),
        "{generator}"
    );
    let fake = FakeServer::builder()
        .model("acme/int-model", int)
        .start()
        .await
        .expect_err("the fake refuses int");
    assert_eq!(
        fake.to_string(),
        "bad schema for acme/int-model: the generator refuses it: acme/int-model/input.json#/properties/steps/type: unsupported type \"int\""
    );
    let fake = FakeServer::builder()
        .models_from_dir(dir.path())
        .start()
        .await
        .expect_err("the fake refuses the folder");
    assert!(
        fake.to_string().contains("unsupported type \"int\""),
        "{fake}"
    );
}
