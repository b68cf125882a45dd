//! Behaviour of code generated from the edge-case fixtures: wire names, unions, integer
//! enums, nullable fields, recursion and validation paths.

use runcomfy::Validate;
use runcomfy_tests::fixture_models::fixtures::edge;
use serde_json::json;

fn schema_text(id: &str) -> &'static runcomfy::SchemaText {
    runcomfy::SchemaText::find(runcomfy_tests::fixture_models::SCHEMAS, id).expect("a fixture")
}

fn input_schema(id: &str) -> &'static str {
    schema_text(id).input
}

#[test]
fn colliding_names_keep_their_wire_names() {
    use edge::naming_collisions::Input;
    let input = Input::new("lower")
        .prompt("upper")
        .seed_value(3)
        .seed_value_2(-1)
        .negative_prompt("a")
        .negative_prompt_2("b");
    let wire = serde_json::to_value(&input).expect("serialize");
    assert_eq!(
        wire,
        json!({"Prompt": "upper", "prompt": "lower", "seedValue": 3, "seed_value": -1, "negative-prompt": "a", "negative_prompt": "b"})
    );
    let back: Input = serde_json::from_value(wire).expect("deserialize");
    assert_eq!(back, input);
}

#[test]
fn keywords_digits_and_non_ascii_names() {
    let schema: serde_json::Value =
        serde_json::from_str(input_schema(edge::naming_keywords::INFO.id)).expect("schema");
    let wire_names: Vec<String> = schema["properties"]
        .as_object()
        .expect("props")
        .keys()
        .cloned()
        .collect();
    // Every property round-trips through the typed Input under its own wire name.
    let mut full = serde_json::Map::new();
    for (k, v) in schema["properties"].as_object().expect("props") {
        let value = match v["type"].as_str() {
            Some("string") => v.get("enum").map(|e| e[0].clone()).unwrap_or(json!("s")),
            Some("integer") => json!(1),
            Some("number") => json!(1.5),
            Some("boolean") => json!(true),
            _ => continue,
        };
        full.insert(k.clone(), value);
    }
    let input: edge::naming_keywords::Input =
        serde_json::from_value(json!(full)).expect("deserialize every keyword field");
    let back = serde_json::to_value(&input).expect("serialize");
    for name in &wire_names {
        if full.contains_key(name) {
            assert_eq!(back[name], full[name], "field {name}");
        }
    }
}

#[test]
fn enum_values_serialize_to_their_wire_values() {
    use edge::enum_values::*;
    let cases = [
        (
            serde_json::to_value(Resolution::V720P).expect("s"),
            json!("720P"),
        ),
        (
            serde_json::to_value(Resolution::V720p).expect("s"),
            json!("720p"),
        ),
        (
            serde_json::to_value(AspectRatio::Ratio16x9).expect("s"),
            json!("16:9"),
        ),
        (serde_json::to_value(Style::Empty).expect("s"), json!("")),
        (
            serde_json::to_value(Direction::Minus1).expect("s"),
            json!(-1),
        ),
        (serde_json::to_value(Count::V1).expect("s"), json!("1")),
        (
            serde_json::to_value(Enhance::True).expect("s"),
            json!("true"),
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
    assert_eq!(
        Resolution::default(),
        Resolution::V720p,
        "default from the schema"
    );
    assert_eq!(i64::from(Direction::Minus1), -1);
    let err = Direction::try_from(7).expect_err("7 is not allowed");
    assert!(
        err.to_string().contains("expected one of -1, 0, 1"),
        "{err}"
    );
    assert!(serde_json::from_value::<Direction>(json!(7)).is_err());
    assert_eq!(
        serde_json::from_value::<Direction>(json!(1)).expect("1"),
        Direction::V1
    );
}

#[test]
fn unions_take_the_right_wire_shape() {
    use edge::unions::{ImageSizePreset, InputImageSize};
    let schema: serde_json::Value =
        serde_json::from_str(input_schema(edge::unions::INFO.id)).expect("schema");
    assert!(schema["properties"].get("image_size").is_some());
    let preset: InputImageSize = serde_json::from_value(json!("square_hd")).expect("preset");
    assert!(
        matches!(preset, InputImageSize::Preset(ImageSizePreset::SquareHd)),
        "{preset:?}"
    );
    let object: InputImageSize =
        serde_json::from_value(json!({"width": 1024, "height": 768})).expect("object");
    assert_eq!(
        serde_json::to_value(&object).expect("s"),
        json!({"width": 1024, "height": 768})
    );
    assert!(serde_json::from_value::<InputImageSize>(json!(true)).is_err());
}

#[test]
fn nested_validation_reports_json_paths() {
    use edge::nested::Input;
    let input: Input = serde_json::from_value(json!({
        "prompt": "p",
        "camera": {"lens": {"focal_length_mm": 2, "aperture": 40.0}},
        "shots": [{"prompt": "a", "seconds": 3}, {"prompt": "b", "seconds": 11}],
        "element_refs": {"hero": {"url": "https://example.com/a.png", "strength": 1.5}}
    }))
    .expect("typed instance");
    let errors = input.validate().expect_err("four nested violations");
    let paths: Vec<&str> = errors.violations.iter().map(|v| v.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/camera/lens/focal_length_mm",
            "/camera/lens/aperture",
            "/shots/1/seconds",
            "/element_refs/hero/strength"
        ]
    );
    assert_eq!(errors.violations[0].value, json!(2));
    assert_eq!(errors.violations[0].rule, runcomfy::Rule::Minimum(8.0));
    // A valid instance passes.
    let ok: Input =
        serde_json::from_value(json!({"prompt": "p", "camera": {"lens": {"focal_length_mm": 50}}}))
            .expect("ok");
    assert!(ok.validate().is_ok());
}

/// The smallest instance the schema accepts: required properties with simple values.
fn minimal(schema: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    for name in required {
        let p = &schema["properties"][name];
        let v = if let Some(e) = p.get("enum") {
            e[0].clone()
        } else {
            match p["type"].as_str() {
                Some("string") => json!("x"),
                Some("integer") => json!(p.get("minimum").cloned().unwrap_or(json!(1))),
                Some("number") => json!(p.get("minimum").cloned().unwrap_or(json!(1.0))),
                Some("boolean") => json!(true),
                Some("array") => json!([]),
                Some("object") => minimal(p),
                _ => json!(null),
            }
        };
        out.insert(name.to_owned(), v);
    }
    json!(out)
}

#[test]
fn constraints_are_all_checked_with_paths() {
    use edge::constraints::*;
    let schema: serde_json::Value = serde_json::from_str(input_schema(INFO.id)).expect("schema");
    let props = schema["properties"].as_object().expect("props");
    // Break every property that has a limit, at once, and expect one violation per property.
    let mut bad = minimal(&schema);
    let mut expected = Vec::new();
    for (k, p) in props {
        let broken = if let Some(max) = p.get("maximum").and_then(|m| m.as_f64()) {
            if p["type"] == "integer" {
                json!(max as i64 + 1)
            } else {
                json!(max + 1.0)
            }
        } else if let Some(max) = p.get("maxLength").and_then(|m| m.as_u64()) {
            json!("a".repeat(max as usize + 1))
        } else if let Some(max) = p.get("maxItems").and_then(|m| m.as_u64()) {
            json!((0..=max).map(|i| format!("v{i}")).collect::<Vec<_>>())
        } else {
            continue;
        };
        bad[k] = broken;
        expected.push(format!("/{k}"));
    }
    assert!(!expected.is_empty());
    let input: Input = serde_json::from_value(bad.clone()).expect("typed instance");
    let errors = input
        .validate()
        .expect_err("every broken limit is reported");
    for path in &expected {
        assert!(
            errors.violations.iter().any(|v| &v.path == path),
            "no violation at {path}: {errors}"
        );
    }
}

#[test]
fn recursive_types_round_trip_and_validate_deep() {
    use edge::ref_recursive::Input;
    let wire = json!({"layout": {"label": "root", "children": [{"label": "a", "children": [{"label": "deep", "weight": 2.0}]}]}});
    let input: Input = serde_json::from_value(wire.clone()).expect("recursive instance");
    assert_eq!(serde_json::to_value(&input).expect("serialize"), wire);
    let errors = input.validate().expect_err("weight above 1");
    assert_eq!(
        errors.violations[0].path,
        "/layout/children/0/children/0/weight"
    );
}

#[test]
fn outputs_keep_unknown_keys_and_type_urls() {
    use edge::output_wrapped::Output;
    let schema: serde_json::Value = serde_json::from_str(
        schema_text(edge::output_wrapped::INFO.id)
            .output
            .expect("output"),
    )
    .expect("schema");
    assert!(schema.get("output").is_none(), "the wrapper is removed");
    let value =
        json!({"images": ["https://cdn.example.com/a.png"], "seed": 7, "surprise": {"a": 1}});
    let out: Output = serde_json::from_value(value).expect("decode");
    assert_eq!(
        out.images[0].as_str(),
        "https://cdn.example.com/a.png",
        "URLs are typed"
    );
    assert_eq!(out.seed, Some(7));
    assert_eq!(
        out.extra.get("surprise"),
        Some(&json!({"a": 1})),
        "unknown keys are kept"
    );
    assert!(
        serde_json::from_value::<Output>(json!({"images": ["not a url"]})).is_err(),
        "a bad URL is a decode error"
    );
    assert!(
        serde_json::from_value::<Output>(json!({"seed": 1})).is_err(),
        "required images"
    );
}

/// Whether the typed `Input` of a fixture takes `value`: it deserializes and validates.
fn takes<I: serde::de::DeserializeOwned + Validate>(value: serde_json::Value) -> bool {
    serde_json::from_value::<I>(value).is_ok_and(|i| i.validate().is_ok())
}

#[test]
fn an_input_with_typed_other_keys_is_built_by_new() {
    use edge::additional_properties_schema::Input;
    let mut input = Input::new("a cat");
    assert!(input.extra.is_empty());
    input.extra.insert("steps".into(), 4);
    assert!(input.validate().is_ok());
    assert_eq!(
        serde_json::to_value(&input).expect("serialize"),
        json!({"prompt": "a cat", "steps": 4})
    );
    assert!(!takes::<Input>(json!({"prompt": "a", "steps": -1})));
}

#[test]
fn a_condition_on_an_optional_string_is_checked() {
    use edge::condition_on_optional_string::Input;
    assert!(Input::new().validate().is_ok());
    assert!(Input::new().mode("fast").validate().is_ok());
    assert!(Input::new().mode("medium").validate().is_ok());
    assert!(Input::new().mode("slow").validate().is_err());
    assert!(Input::new().mode("quick").validate().is_err());
}

#[test]
fn properties_beside_a_one_of_belong_to_each_alternative() {
    use edge::properties_beside_oneof::Input;
    let input: Input =
        serde_json::from_value(json!({"source": {"prompt": "a", "seed": 3}})).expect("deserialize");
    assert_eq!(
        serde_json::to_value(&input).expect("serialize"),
        json!({"source": {"prompt": "a", "seed": 3}}),
        "the seed beside the oneOf is kept"
    );
    assert!(takes::<Input>(
        json!({"source": {"image_url": "u", "seed": 0}})
    ));
    assert!(!takes::<Input>(
        json!({"source": {"prompt": "a", "seed": -1}})
    ));
}

#[test]
fn keys_matching_an_any_valued_pattern_are_kept() {
    use edge::pattern_properties_any::Input;
    let wire = json!({"name": "n", "x-trace": {"id": 1}});
    let input: Input = serde_json::from_value(wire.clone()).expect("deserialize");
    assert!(input.validate().is_ok());
    assert_eq!(serde_json::to_value(&input).expect("serialize"), wire);
    assert!(!takes::<Input>(json!({"name": "n", "other": 1})));
}

#[test]
fn rules_whose_schema_is_not_fully_checked_never_refuse() {
    use edge::rules_not_fully_checked::Input;
    // `not: {contains: ..., minContains: 2}` and `if: {propertyNames: ...}` are left out:
    // checking the rest would refuse every array (the rest of the `not` matches any array).
    assert!(takes::<Input>(json!({"tags": ["a", "b"]})));
    assert!(takes::<Input>(json!({"tags": ["forbidden"]})));
    assert!(takes::<Input>(json!({"options": {"b": 1}})));
    // A fully checked `not` stays.
    assert!(takes::<Input>(json!({"count": 99})));
    assert!(!takes::<Input>(json!({"count": 100})));
}

#[test]
fn graceful_fallbacks_take_what_the_schema_allows() {
    use edge::graceful_fallbacks::Input;
    let valid = json!({
        "external": {"anything": [1, 2]},
        "pair": ["a", 1],
        "slug": "cat",
        "flag": false,
        "on": true,
        "size": "small",
        "quality": 3,
        "labels": {"main": "m", "a1": "x", "b1": 2},
        "both": "whatever the server says",
        "either": "x",
        "loose": 5,
        "closed": {"a": "x"},
        "ratio": 1.5
    });
    assert!(takes::<Input>(valid));
    // `properties` without `type`: any value that is not an object, or the typed object.
    assert!(takes::<Input>(json!({"loose": "text"})));
    assert!(takes::<Input>(json!({"loose": {"k": 1}})));
    assert!(!takes::<Input>(json!({"loose": {"k": "one"}})));
    // What is still checked.
    assert!(!takes::<Input>(json!({"on": false})));
    assert!(!takes::<Input>(json!({"size": "3"})));
    assert!(!takes::<Input>(json!({"never": 1})));
    assert!(!takes::<Input>(json!({"closed": {"a": "x", "b": 1}})));
    assert!(!takes::<Input>(json!({"ratio": 2.0})));
    // An object constant: a closed object of constant values.
    assert!(takes::<Input>(
        json!({"preset": {"w": 512, "h": 512, "label": null}})
    ));
    assert!(!takes::<Input>(json!({"preset": {"w": 512, "h": 512}})));
    assert!(!takes::<Input>(
        json!({"preset": {"w": 512, "h": 256, "label": null}})
    ));
    assert!(!takes::<Input>(
        json!({"preset": {"w": 512, "h": 512, "label": "x"}})
    ));
}

/// Strict mode refuses each shape graceful mode falls back on, with its pointer.
#[test]
fn strict_mode_refuses_what_graceful_mode_types_loosely() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../codegen/tests/fixtures/edge/fixtures/edge/graceful-fallbacks");
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = tmp.path().join("f/graceful-fallbacks");
    std::fs::create_dir_all(&model).expect("mkdir");
    std::fs::copy(dir.join("input.json"), model.join("input.json")).expect("copy");
    let diags = runcomfy_codegen::check_with(tmp.path(), runcomfy_codegen::Mode::Strict)
        .expect_err("strict mode refuses");
    let text = diags.to_string();
    for pointer in [
        "/properties/external/$ref",
        "/properties/pair/items",
        "/properties/slug/pattern",
        "/properties/flag/enum/0",
        "/properties/size/enum",
        "/properties/quality/default",
        "/properties/labels/patternProperties",
        "/properties/both/allOf",
        "/properties/never",
        "/properties/ratio/const",
        "/properties/preset/const",
    ] {
        assert!(
            text.contains(&format!("#{pointer}:")),
            "{pointer} in\n{text}"
        );
    }
    let (catalog, _) = runcomfy_codegen::analyze(tmp.path()).expect("graceful mode accepts");
    assert!(catalog.warnings.len() >= 8, "{:?}", catalog.warnings);
}
