//! For every model of the hard-schema corpus (`codegen/tests/fixtures/hard`), instances
//! generated from the source schema (valid ones, one per alternative of each union, and
//! ones breaking each constraint) are judged by the `jsonschema` crate and by the typed
//! `Input` (deserialize, then `validate()`): they agree. Every valid instance round-trips
//! through the typed `Input` unchanged, so each union member lands in its own variant.
//!
//! No fixture needs an exception: every keyword they use is checked (`format` is an
//! annotation for both sides).

use runcomfy::{Model, Validate};
use serde_json::{json, Map, Value};

/// Generates instances of a schema file, following its local refs.
struct Gen<'a> {
    root: &'a Value,
}

const MAX_DEPTH: usize = 8;

impl Gen<'_> {
    fn target(&self, r: &str) -> Option<&Value> {
        self.root.pointer(r.strip_prefix('#')?)
    }

    /// Valid values of `s`: one per alternative where the schema has several.
    fn valid(&self, s: &Value, depth: usize) -> Vec<Value> {
        if depth > MAX_DEPTH {
            return Vec::new();
        }
        let Some(obj) = s.as_object() else {
            return vec![json!("any")];
        };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            return self
                .target(r)
                .map(|t| self.valid(t, depth + 1))
                .unwrap_or_default();
        }
        if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
            let mut merged: Option<Value> = None;
            let mut members: Vec<Value> = all.clone();
            let own: Map<String, Value> = obj
                .iter()
                .filter(|(k, _)| *k != "allOf")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            members.push(Value::Object(own));
            for m in &members {
                let Some(v) = self.valid(m, depth + 1).into_iter().next() else {
                    continue;
                };
                merged = Some(match (merged, v) {
                    (Some(Value::Object(mut a)), Value::Object(b)) => {
                        a.extend(b);
                        Value::Object(a)
                    }
                    (Some(a), Value::String(s)) if s == "any" => a,
                    (_, v) => v,
                });
            }
            return merged.into_iter().collect();
        }
        for kw in ["anyOf", "oneOf"] {
            if let Some(list) = obj.get(kw).and_then(Value::as_array) {
                return list
                    .iter()
                    .filter(|m| m.get("type").and_then(Value::as_str) != Some("null"))
                    .flat_map(|m| self.valid(m, depth + 1).into_iter().take(2))
                    .collect();
            }
        }
        if let Some(c) = obj.get("const") {
            return vec![c.clone()];
        }
        if let Some(e) = obj.get("enum").and_then(Value::as_array) {
            return e.iter().filter(|v| !v.is_null()).take(3).cloned().collect();
        }
        let types: Vec<&str> = match obj.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ if obj.contains_key("properties") || obj.contains_key("patternProperties") => {
                vec!["object"]
            }
            _ if obj.contains_key("items") => vec!["array"],
            _ => vec!["any"],
        };
        types
            .into_iter()
            .filter(|t| *t != "null")
            .filter_map(|t| self.valid_of_type(obj, t, depth))
            .collect()
    }

    fn valid_of_type(&self, obj: &Map<String, Value>, t: &str, depth: usize) -> Option<Value> {
        let num = |k: &str| obj.get(k).and_then(Value::as_f64);
        Some(match t {
            "boolean" => json!(true),
            "integer" => {
                let lo = num("minimum")
                    .or(num("exclusiveMinimum").map(|m| m + 1.0))
                    .unwrap_or(0.0);
                let m = num("multipleOf").unwrap_or(1.0);
                json!(((lo / m).ceil() * m) as i64)
            }
            "number" => {
                let lo = num("minimum").unwrap_or(0.0);
                let hi = num("maximum").unwrap_or(lo + 1.0);
                json!(lo + (hi - lo) / 4.0 + 0.125)
            }
            "string" => {
                if obj.get("format").and_then(Value::as_str) == Some("uri") {
                    json!("https://example.com/a.png")
                } else {
                    let n = obj
                        .get("minLength")
                        .and_then(Value::as_u64)
                        .unwrap_or(1)
                        .max(1);
                    json!("a".repeat(n as usize))
                }
            }
            "array" => {
                let n = obj.get("minItems").and_then(Value::as_u64).unwrap_or(1);
                let item = obj
                    .get("items")
                    .and_then(|i| self.valid(i, depth + 1).into_iter().next())
                    .unwrap_or(json!("a"));
                Value::Array((0..n).map(|_| item.clone()).collect())
            }
            "object" => self.minimal(obj, depth)?,
            _ => {
                // No type: a value that its constraints allow.
                if obj.contains_key("minimum") || obj.contains_key("maximum") {
                    json!(num("minimum").unwrap_or(0.0).max(0.0))
                } else if obj.contains_key("maxLength") || obj.contains_key("pattern") {
                    json!("a")
                } else {
                    // Nothing constrains it: `allOf` merging skips this marker.
                    json!("any")
                }
            }
        })
    }

    /// An object with its required properties only.
    fn minimal(&self, obj: &Map<String, Value>, depth: usize) -> Option<Value> {
        let mut out = Map::new();
        let props = obj.get("properties").and_then(Value::as_object);
        for r in obj
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = r.as_str()?;
            let p = props.and_then(|p| p.get(name))?;
            let v = self.valid(p, depth + 1).into_iter().next()?;
            out.insert(name.to_owned(), v);
        }
        Some(Value::Object(out))
    }

    /// Values of `s` that break one of its constraints each.
    fn invalid(&self, s: &Value, depth: usize) -> Vec<Value> {
        if depth > MAX_DEPTH {
            return Vec::new();
        }
        let Some(obj) = s.as_object() else {
            return Vec::new();
        };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            return self
                .target(r)
                .map(|t| self.invalid(t, depth + 1))
                .unwrap_or_default();
        }
        let mut out = Vec::new();
        for kw in ["allOf", "anyOf", "oneOf"] {
            if let Some(list) = obj.get(kw).and_then(Value::as_array) {
                for m in list {
                    out.extend(self.invalid(m, depth + 1));
                }
            }
        }
        if let Some(not) = obj.get("not") {
            out.extend(self.valid(not, depth + 1));
        }
        let num = |k: &str| obj.get(k).and_then(Value::as_f64);
        let int = obj.get("type").and_then(Value::as_str) == Some("integer");
        let as_num = |f: f64| if int { json!(f as i64) } else { json!(f) };
        if let Some(m) = num("minimum") {
            out.push(as_num(m - 1.0));
        }
        if let Some(m) = num("maximum") {
            out.push(as_num(m + 1.0));
        }
        if let Some(m) = num("exclusiveMinimum") {
            out.push(as_num(m));
        }
        if let Some(m) = num("exclusiveMaximum") {
            out.push(as_num(m));
        }
        if let Some(m) = num("multipleOf") {
            out.push(as_num(m + 1.0));
        }
        if let Some(n) = obj.get("maxLength").and_then(Value::as_u64) {
            out.push(json!("é".repeat(n as usize + 1)));
        }
        if let Some(n) = obj
            .get("minLength")
            .and_then(Value::as_u64)
            .filter(|n| *n > 0)
        {
            out.push(json!("é".repeat(n as usize - 1)));
        }
        if obj.contains_key("pattern") {
            out.push(json!("0 !"));
        }
        if obj.contains_key("enum") || obj.contains_key("const") {
            out.push(json!("not-a-value"));
            out.push(json!(999_999));
        }
        if let Some(n) = obj.get("maxItems").and_then(Value::as_u64) {
            out.push(Value::Array((0..=n).map(|i| json!(i)).collect()));
            if let Some(item) = obj
                .get("items")
                .and_then(|i| self.valid(i, depth + 1).into_iter().next())
            {
                out.push(Value::Array((0..=n).map(|_| item.clone()).collect()));
            }
        }
        if obj.get("uniqueItems") == Some(&json!(true)) {
            out.push(json!([1, 1]));
        }
        if let Some(n) = obj.get("maxProperties").and_then(Value::as_u64) {
            out.push(Value::Object(
                (0..=n).map(|i| (format!("k{i}"), json!(1))).collect(),
            ));
        }
        if let Some(items) = obj.get("items") {
            for bad in self.invalid(items, depth + 1).into_iter().take(3) {
                out.push(json!([bad]));
            }
        }
        match obj.get("type").and_then(Value::as_str) {
            Some("string") => out.push(json!(5)),
            Some("integer") => {
                out.push(json!("five"));
                out.push(json!(1.5));
            }
            Some("number") | Some("boolean") | Some("array") => out.push(json!("five")),
            Some("object") => out.push(json!("five")),
            _ => {}
        }
        if let Some(base) = self.minimal(obj, depth) {
            let base = base.as_object().cloned().unwrap_or_default();
            for r in base.keys() {
                let mut m = base.clone();
                m.remove(r);
                out.push(Value::Object(m));
            }
            if obj.get("additionalProperties") == Some(&json!(false)) {
                let mut m = base.clone();
                m.insert("unknown_key".into(), json!(1));
                out.push(Value::Object(m));
            }
            if let Some(pp) = obj.get("patternProperties").and_then(Value::as_object) {
                for sub in pp.values() {
                    for bad in self.invalid(sub, depth + 1).into_iter().take(2) {
                        let mut m = base.clone();
                        m.insert("x_a".into(), bad);
                        out.push(Value::Object(m));
                    }
                }
            }
        }
        out
    }

    /// Instances of the root object: minimal, each property with each of its valid values,
    /// each property with each of its breaking values.
    fn instances(&self) -> Vec<(String, Value)> {
        let root = self.root.as_object().cloned().unwrap_or_default();
        let base = self.minimal(&root, 0).unwrap_or(json!({}));
        let mut out = vec![("required only".to_owned(), base.clone())];
        let props = root
            .get("properties")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (k, p) in &props {
            for v in self.valid(p, 1) {
                let mut inst = base.clone();
                inst[k] = v;
                out.push((format!("{k}: valid"), inst));
            }
            for v in self.invalid(p, 1) {
                let mut inst = base.clone();
                inst[k] = v;
                out.push((format!("{k}: breaking"), inst));
            }
        }
        for v in self.invalid(self.root, 0) {
            out.push(("root: breaking".to_owned(), v));
        }
        out
    }
}

/// `v` without `null` members (an unset optional field is not sent back), numbers compared
/// by value (`1` read into an `f64` is written back as `1.0`).
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64()),
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

fn agree<M: Model>(counts: &mut (usize, usize))
where
    M::Input: serde::de::DeserializeOwned,
{
    let text = runcomfy::SchemaText::find(runcomfy_tests::models::SCHEMAS, M::ID)
        .expect("in SCHEMAS")
        .input;
    let source: Value = serde_json::from_str(text).expect("JSON");
    let validator = jsonschema::validator_for(&source).expect("the source compiles");
    let gen = Gen { root: &source };
    let cases = gen.instances();
    let mut valid = 0;
    for (label, inst) in &cases {
        let typed = serde_json::from_value::<M::Input>(inst.clone()).map_err(|e| e.to_string());
        let want = validator.is_valid(inst);
        let checked = typed
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|i| i.validate().map_err(|e| e.to_string()));
        assert_eq!(
            checked.is_ok(),
            want,
            "{} [{label}]: jsonschema says {want}, the typed Input says {checked:?} on {inst}",
            M::ID
        );
        if let (true, Ok(input)) = (want, &typed) {
            valid += 1;
            let back = serde_json::to_value(input).expect("serialize");
            assert_eq!(
                without_nulls(&back),
                without_nulls(inst),
                "{} [{label}]: the typed Input does not round-trip",
                M::ID
            );
        }
    }
    assert!(valid >= 1, "{}: no valid instance", M::ID);
    assert!(cases.len() > valid, "{}: no breaking instance", M::ID);
    counts.0 += valid;
    counts.1 += cases.len() - valid;
}

#[test]
fn typed_inputs_agree_with_jsonschema_on_the_hard_corpus() {
    let mut counts = (0, 0);
    let mut models = 0;
    macro_rules! check {
        ($id:expr, $model:ty) => {
            agree::<$model>(&mut counts);
            models += 1;
        };
    }
    runcomfy_tests::for_each_hard_model!(check);
    assert_eq!(models, runcomfy_tests::models::ALL.len());
    assert!(models >= 20);
    eprintln!(
        "{models} models: {} valid and {} breaking instances agree",
        counts.0, counts.1
    );
}
