//! For every shipped model, the JSON Schema that `schemars` derives from the generated
//! `Input` and the source schema agree, judged by the `jsonschema` crate, on valid and
//! boundary instances generated from the source. The typed `Input` (deserialize, then
//! `validate()`) must agree with both.

use runcomfy::{Model, Validate};
use serde_json::{json, Map, Value};

/// A valid value for a property schema of the RunComfy dialect.
fn valid(schema: &Value) -> Value {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return schema
            .get("default")
            .cloned()
            .unwrap_or_else(|| values[0].clone());
    }
    match schema.get("type").and_then(Value::as_str).unwrap_or("") {
        "boolean" => json!(true),
        "integer" => json!(schema
            .get("minimum")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .max(
                schema
                    .get("exclusiveMinimum")
                    .and_then(Value::as_i64)
                    .map(|m| m + 1)
                    .unwrap_or(i64::MIN)
            )),
        "number" | "float" => json!(schema.get("minimum").and_then(Value::as_f64).unwrap_or(0.0)),
        "string" => {
            let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(1) as usize;
            if schema.get("format").is_some() {
                json!("https://example.com/a.png")
            } else {
                json!("x".repeat(min.max(1)))
            }
        }
        "array" => {
            let item = schema
                .get("items")
                .map(valid)
                .unwrap_or_else(|| json!("https://example.com/a.png"));
            let n = schema
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .max(1) as usize;
            Value::Array((0..n).map(|i| with_index(&item, i)).collect())
        }
        "object" => {
            let mut out = Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                let required: Vec<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                for (k, v) in props {
                    if required.contains(&k.as_str()) {
                        out.insert(k.clone(), valid(v));
                    }
                }
            }
            Value::Object(out)
        }
        _ => json!(null),
    }
}

/// Distinct items, so `uniqueItems` holds.
fn with_index(item: &Value, i: usize) -> Value {
    match item {
        Value::String(s) if s.starts_with("https://") => {
            json!(format!("https://example.com/{i}.png"))
        }
        Value::String(s) => json!(format!("{s}{i}")),
        other => other.clone(),
    }
}

/// Instances that probe each property at and beyond its limits.
fn instances(root: &Value) -> Vec<(String, Value)> {
    let base = valid(root);
    let mut out = vec![("required only".to_owned(), base.clone())];
    let props = root
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut full = base.clone();
    for (k, v) in &props {
        full[k] = valid(v);
    }
    out.push(("every property".to_owned(), full));
    for (k, p) in &props {
        let mut probe = |label: &str, value: Value| {
            let mut inst = base.clone();
            inst[k] = value;
            out.push((format!("{k}: {label}"), inst));
        };
        if let Some(values) = p.get("enum").and_then(Value::as_array) {
            for v in values {
                probe("enum value", v.clone());
            }
            probe(
                "not in enum",
                if values[0].is_string() {
                    json!("not-a-value")
                } else {
                    json!(999_999)
                },
            );
            continue;
        }
        match p.get("type").and_then(Value::as_str).unwrap_or("") {
            "integer" | "number" => {
                let int = p["type"] == "integer";
                let step = if int { json!(1) } else { json!(0.5) };
                for (kw, sign) in [("minimum", -1.0), ("maximum", 1.0)] {
                    if let Some(m) = p.get(kw).and_then(Value::as_f64) {
                        let beyond = m + sign * step.as_f64().unwrap_or(1.0);
                        if int {
                            probe(&format!("at {kw}"), json!(m as i64));
                            probe(&format!("beyond {kw}"), json!(beyond as i64));
                        } else {
                            probe(&format!("at {kw}"), json!(m));
                            probe(&format!("beyond {kw}"), json!(beyond));
                        }
                    }
                }
                probe("wrong type", json!("five"));
                if int {
                    probe("fraction", json!(1.5));
                }
            }
            "string" => {
                if let Some(max) = p.get("maxLength").and_then(Value::as_u64) {
                    probe("at maxLength (multibyte)", json!("é".repeat(max as usize)));
                    probe("beyond maxLength", json!("é".repeat(max as usize + 1)));
                }
                probe("wrong type", json!(5));
            }
            "array" => {
                let item = p
                    .get("items")
                    .map(valid)
                    .unwrap_or_else(|| json!("https://example.com/a.png"));
                if let Some(max) = p.get("maxItems").and_then(Value::as_u64) {
                    probe(
                        "at maxItems",
                        Value::Array((0..max as usize).map(|i| with_index(&item, i)).collect()),
                    );
                    probe(
                        "beyond maxItems",
                        Value::Array((0..=max as usize).map(|i| with_index(&item, i)).collect()),
                    );
                }
                if let Some(min) = p.get("minItems").and_then(Value::as_u64) {
                    if min > 0 {
                        probe(
                            "below minItems",
                            Value::Array(
                                (0..min as usize - 1)
                                    .map(|i| with_index(&item, i))
                                    .collect(),
                            ),
                        );
                    }
                }
                probe("wrong type", json!("not a list"));
            }
            "boolean" => probe("wrong type", json!("yes")),
            _ => {}
        }
    }
    out
}

fn agree<M: Model>()
where
    M::Input: schemars::JsonSchema + serde::de::DeserializeOwned,
{
    let source: Value =
        serde_json::from_str(runcomfy_source::<M>()).expect("source schema is JSON");
    let derived = serde_json::to_value(schemars::schema_for!(M::Input)).expect("derived schema");
    let source_v = jsonschema::validator_for(&source).expect("source compiles");
    let derived_v = jsonschema::validator_for(&derived).expect("derived compiles");
    let cases = instances(&source);
    assert!(cases.len() > 3, "{}: too few instances", M::ID);
    let mut valid_seen = 0;
    for (label, inst) in cases {
        let want = source_v.is_valid(&inst);
        valid_seen += usize::from(want);
        assert_eq!(
            derived_v.is_valid(&inst),
            want,
            "{} [{label}]: derived schema disagrees on {inst}\nderived: {derived}",
            M::ID
        );
        let typed = serde_json::from_value::<M::Input>(inst.clone())
            .map_err(|e| e.to_string())
            .and_then(|i| i.validate().map_err(|e| e.to_string()));
        assert_eq!(
            typed.is_ok(),
            want,
            "{} [{label}]: typed Input disagrees on {inst}: {typed:?}",
            M::ID
        );
    }
    assert!(
        valid_seen >= 2,
        "{}: no valid instance was generated",
        M::ID
    );
}

fn runcomfy_source<M: Model>() -> &'static str {
    runcomfy::SchemaText::find(runcomfy::models::SCHEMAS, M::ID)
        .map(|s| s.input)
        .expect("model in SCHEMAS")
}

#[test]
fn derived_schemas_agree_with_the_sources() {
    let mut count = 0;
    macro_rules! check {
        ($id:expr, $model:ty) => {
            agree::<$model>();
            count += 1;
        };
    }
    runcomfy::for_each_model!(check);
    assert_eq!(count, runcomfy::models::ALL.len());
    assert!(count >= 10);
}
